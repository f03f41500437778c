"""ASVspoof protocol parsing and official layout resolution on tiny generated fixtures."""

from pathlib import Path

import pytest

from spoof_lightning.data.fixtures import make_asvspoof2019
from spoof_lightning.data.protocols import (
    MissingDataError,
    ProtocolError,
    load_split,
    parse_asvspoof2019,
)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "proto.txt"
    p.write_text(text)
    return p


def test_la_lines(tmp_path):
    p = write(tmp_path, "LA_0079 LA_T_1138215 - - bonafide\n\nLA_0039 LA_E_2834763 - A11 spoof\n")
    bona, spoof = parse_asvspoof2019(p, tmp_path / "flac", "LA")
    assert (bona.utt_id, bona.label, bona.speaker, bona.attack) == (
        "LA_T_1138215",
        1,
        "LA_0079",
        "-",
    )
    assert (spoof.label, spoof.attack, spoof.path) == (
        0,
        "A11",
        tmp_path / "flac/LA_E_2834763.flac",
    )
    assert dict(bona.meta) == {}


def test_pa_keeps_environment(tmp_path):
    p = write(tmp_path, "PA_0079 PA_T_0000001 aaa - bonafide\nPA_0080 PA_T_0000002 bcb AC spoof\n")
    bona, spoof = parse_asvspoof2019(p, tmp_path, "PA")
    assert bona.meta["environment"] == "aaa" and spoof.meta["environment"] == "bcb"
    assert spoof.attack == "AC"


def test_unkeyed_line_is_unlabeled(tmp_path):
    (u,) = parse_asvspoof2019(write(tmp_path, "LA_E_0000001\n"), tmp_path, "LA")
    assert u.label == -1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LA_0079 LA_T_1 - bonafide", "expected 5 fields"),
        ("LA_0079 LA_T_1 - - bonafide extra", "expected 5 fields"),
        ("LA_0079 LA_T_1 - A01 fake", "unknown_key: key 'fake'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    p = write(tmp_path, f"LA_0079 LA_T_0 - - bonafide\n{line}\n")
    with pytest.raises(ProtocolError, match=message) as err:
        parse_asvspoof2019(p, tmp_path, "LA")
    assert f"{p}:2" in str(err.value) and line in str(err.value)


def test_duplicate_ids(tmp_path):
    p = write(
        tmp_path, "LA_1 LA_T_1 - - bonafide\nLA_1 LA_T_2 - - bonafide\nLA_2 LA_T_1 - A01 spoof\n"
    )
    with pytest.raises(ProtocolError, match="duplicate.*LA_T_1"):
        parse_asvspoof2019(p, tmp_path, "LA")


@pytest.mark.parametrize("track", ["LA", "PA"])
def test_official_layout(tmp_path, track):
    make_asvspoof2019(tmp_path, track, counts={"train": (2, 3), "dev": (1, 1), "eval": (1, 2)})
    corpus = f"asvspoof2019_{track.lower()}"
    train = load_split(corpus, tmp_path, "train")
    assert [u.label for u in train] == [1, 1, 0, 0, 0]
    assert all(u.path.is_file() for u in train)
    assert train[0].path.parent == tmp_path / track / f"ASVspoof2019_{track}_train" / "flac"
    assert len(load_split(corpus, tmp_path, "val")) == 2
    assert {u.attack for u in load_split(corpus, tmp_path, "test")} >= {"-"}
    # root may also be the track folder itself (data.root=/data/LA)
    assert load_split(corpus, tmp_path / track, "train") == train


def test_missing_root_and_protocol_name_path_and_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data\.root") as err:
        load_split("asvspoof2019_la", tmp_path / "nowhere", "train")
    assert "nowhere" in str(err.value)
    make_asvspoof2019(tmp_path, "LA", counts={"train": (1, 1)})
    with pytest.raises(MissingDataError, match=r"ASVspoof2019\.LA\.cm\.dev\.trl\.txt.*data\.root"):
        load_split("asvspoof2019_la", tmp_path, "val")


def test_unknown_corpus():
    with pytest.raises(ValueError, match="data.corpus"):
        load_split("asvspoof1999", "/x", "train")
