"""ASVspoof protocol parsing and official layout resolution on tiny generated fixtures."""

from pathlib import Path

import pytest

from spoof_lightning.data.corpora.asvspoof5 import parse_asvspoof5
from spoof_lightning.data.corpora.asvspoof2019 import parse_asvspoof2019
from spoof_lightning.data.corpora.asvspoof2021 import parse_asvspoof2021
from spoof_lightning.data.corpora.had import parse_had, parse_segments
from spoof_lightning.data.corpora.in_the_wild import parse_in_the_wild
from spoof_lightning.data.protocols import (
    CORPORA,
    CORPUS_CONDITIONS,
    MissingDataError,
    Problem,
    ProtocolError,
    SplitUnavailableError,
    Utterance,
    corpus,
    load_split,
)
from tests.corpora import (
    ITW_SPEAKERS,
    make_asvspoof5,
    make_asvspoof2019,
    make_asvspoof2021,
    make_had,
    make_in_the_wild,
    synth,
    write_audio,
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


def test_a_registered_loader_is_a_corpus(tmp_path):
    def load_one(root: Path, split: str, problems: list, key: str = "data.root") -> list:
        problems.append(Problem("malformed", f"{root}/list.txt:2", "bad line"))
        return [Utterance(split, root / f"{split}.wav", 1)]

    assert len(CORPORA) == 9 and "asvspoof2021_df" in CORPORA  # every corpora/ module loaded
    corpus("one_file", conditions=("speaker",))(load_one)
    try:
        found: list = []
        assert load_split("one_file", tmp_path, "val", found)[0].path == tmp_path / "val.wav"
        assert [p.kind for p in found] == ["malformed"] and CORPUS_CONDITIONS["one_file"]
        with pytest.raises(ProtocolError, match="list.txt:2: malformed: bad line"):
            load_split("one_file", tmp_path, "test")
        with pytest.raises(ValueError, match="'one_file' is registered twice"):
            corpus("one_file")(lambda *args, **kwargs: [])
        assert CORPORA["one_file"] is load_one
    finally:
        CORPORA.pop("one_file"), CORPUS_CONDITIONS.pop("one_file")


@pytest.mark.parametrize("track", ["LA", "DF", "PA"])
def test_asvspoof2021_eval_phase_and_meta(tmp_path, track):
    make_asvspoof2021(tmp_path, track, per_phase=(2, 3))
    corpus = f"asvspoof2021_{track.lower()}"
    test = load_split(corpus, tmp_path, "test")
    assert len(test) == 5 and all(u.meta["phase"] == "eval" for u in test)
    assert [u.label for u in test] == [1, 1, 0, 0, 0]
    assert all(u.path.is_file() for u in test)
    assert test[0].attack == "-" and test[-1].attack != "-"
    assert len(load_split(corpus, tmp_path, "test", phase=None)) == 15
    expected_meta = {"LA": "codec", "DF": "vocoder", "PA": "asv_room"}[track]
    assert expected_meta in test[0].meta and "trim" in test[0].meta
    if track == "PA":
        assert test[-1].attack == "r1_m2_s3_c4"
    with pytest.raises(ValueError, match="train_root"):
        load_split(corpus, tmp_path, "train")


def test_asvspoof2021_missing_keys_names_path(tmp_path):
    make_asvspoof2021(tmp_path, "LA")
    (tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"trial_metadata\.txt.*data\.root"):
        load_split("asvspoof2021_la", tmp_path, "test")


def test_asvspoof2021_malformed_line(tmp_path):
    keys = write(tmp_path, "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim\n")
    with pytest.raises(ProtocolError, match=r"proto\.txt:1: malformed: expected 8 fields"):
        parse_asvspoof2021(keys, tmp_path, "LA")


def test_had_layout_with_conbine_folder(tmp_path):
    make_had(tmp_path, {"train": (2, 3), "dev": (1, 1), "test": (1, 1)})
    train = load_split("had", tmp_path, "train")
    assert [u.label for u in train] == [1, 1, 0, 0, 0]
    assert {u.path.parent.name for u in train} == {"real", "conbine"}
    assert all(u.path.is_file() for u in train)
    fake = train[-1]
    assert fake.attack == "partial" and fake.meta["segments"].count("/") == 2
    assert [g for _, _, g in parse_segments(fake.meta["segments"])] == [True, False, True]
    assert load_split("had", tmp_path / "HAD", "val")[0].path.parent.name == "real"
    assert load_split("had", tmp_path, "test")[0].path.parent.name == "test"


@pytest.mark.parametrize(
    "line",
    ["HAD_x 0.00-1.00-T", "HAD_x 0.00-1.00-X 1", "HAD_x 0.0-1.0-T/1.0-2.0-F 1", "HAD_x a-b-T 0"],
)
def test_had_malformed(tmp_path, line):
    labels = write(tmp_path, line + "\n")
    with pytest.raises(ProtocolError, match=r"proto\.txt:1: malformed"):
        parse_had(labels, tmp_path)


def test_folder_unlabeled_recursive(tmp_path):
    for name in ["a.wav", "sub/b.flac", "sub/deeper/c.ogg", "notes.txt"]:
        path = tmp_path / name
        if name.endswith(".txt"):
            path.write_text("not audio")
        else:
            write_audio(path, synth(800))
    test = load_split("folder", tmp_path, "test")
    assert [u.utt_id for u in test] == ["a.wav", "sub/b.flac", "sub/deeper/c.ogg"]
    assert {u.label for u in test} == {-1}
    with pytest.raises(FileNotFoundError, match="data.root"):
        load_split("folder", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="data.root"):
        load_split("folder", tmp_path / "none", "test")


def test_folder_split_dirs_and_csv_labels(tmp_path):
    for name in ["train/x.wav", "dev/y.wav", "eval/z.wav"]:
        write_audio(tmp_path / name, synth(800))
    assert [u.utt_id for u in load_split("folder", tmp_path, "val")] == ["dev/y.wav"]
    assert [u.utt_id for u in load_split("folder", tmp_path, "test")] == ["eval/z.wav"]
    (tmp_path / "labels.csv").write_text(
        "path,label,split,attack\ntrain/x.wav,bonafide,train,\ndev/y.wav,0,dev,A01\n"
        "eval/z.wav,spoof,eval,A02\n"
    )
    train = load_split("folder", tmp_path, "train", labels="labels.csv")
    assert [(u.utt_id, u.label, u.attack) for u in train] == [("train/x.wav", 1, "-")]
    (val,) = load_split("folder", tmp_path, "val", labels="labels.csv")
    assert (val.label, val.attack, val.path) == (0, "A01", tmp_path / "dev/y.wav")


def test_folder_csv_problems(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.wav,maybe\na.wav,1\na.wav,0\n")
    problems = []
    out = load_split("folder", tmp_path, "test", problems, labels="l.csv")
    assert [u.label for u in out] == [1]
    assert [p.kind for p in problems] == ["unknown_key", "duplicate_id"]
    assert problems[0].source.endswith("l.csv:2")
    with pytest.raises(ProtocolError, match="no 'split' column"):
        load_split("folder", tmp_path, "train", labels="l.csv")
    (tmp_path / "bad.csv").write_text("file,key\n")
    with pytest.raises(ProtocolError, match="path,label"):
        load_split("folder", tmp_path, "test", labels="bad.csv")


def test_folder_csv_unknown_split_is_a_problem_not_dropped(tmp_path):
    (tmp_path / "l.csv").write_text("path,label,split\na.wav,1,train\nb.wav,0,training\n")
    problems = []
    out = load_split("folder", tmp_path, "train", problems, labels="l.csv")
    assert [u.utt_id for u in out] == ["a.wav"]
    assert [(p.kind, p.source) for p in problems] == [("malformed", f"{tmp_path / 'l.csv'}:3")]
    assert "'training'" in problems[0].detail
    with pytest.raises(ProtocolError, match="split 'training' not in"):
        load_split("folder", tmp_path, "test", labels="l.csv")


def test_problems_collected_instead_of_raised(tmp_path):
    p = write(tmp_path, "LA_1 LA_T_1 - - bonafide\nbroken line\nLA_1 LA_T_1 - - bonafide\n")
    problems = []
    out = parse_asvspoof2019(p, tmp_path, "LA", problems)
    assert [u.utt_id for u in out] == ["LA_T_1"]
    assert sorted(x.kind for x in problems) == ["duplicate_id", "malformed"]


def test_asvspoof5_layout(tmp_path):
    make_asvspoof5(tmp_path, {"train": (2, 3), "dev": (1, 1), "eval": (1, 2)})
    train = load_split("asvspoof5", tmp_path, "train")
    assert [u.label for u in train] == [1, 1, 0, 0, 0]
    assert all(u.path.is_file() for u in train) and train[0].path.parent.name == "flac_T"
    assert (train[0].attack, train[-1].attack, train[-1].meta["gender"]) == ("-", "A05", "F")
    assert load_split("asvspoof5", tmp_path, "test")[0].path.parent.name == "flac_E_eval"
    (tmp_path / "ASVspoof5_protocols" / "ASVspoof5.dev.track_1.tsv").write_text("D_0001 D_1 F\n")
    with pytest.raises(ProtocolError, match=r"track_1\.tsv:1: malformed: expected 10 fields"):
        load_split("asvspoof5", tmp_path, "val")


def test_asvspoof5_released_columns_are_conditions(tmp_path):
    # lines as in the released ASVspoof5.eval.track_1.tsv / dev.track_1.tsv
    protocol = write(
        tmp_path,
        "E_1607 E_0009538969 M C05 2 E_0009486171 AC1 A26 spoof -\n"
        "E_0002 E_0000000001 F - - - - bonafide bonafide -\n",
    )
    spoof, bona = parse_asvspoof5(protocol, tmp_path)
    assert (spoof.utt_id, spoof.speaker, spoof.attack, spoof.label) == (
        "E_0009538969",
        "E_1607",
        "A26",
        0,
    )
    assert spoof.meta == {"gender": "M", "codec": "C05", "codec_q": "2",
                          "codec_seed": "E_0009486171", "attack_tag": "AC1",
                          "tmp": "-"}  # fmt: skip
    assert (bona.attack, bona.label, bona.meta["codec"]) == ("-", 1, "-")
    make_asvspoof5(tmp_path / "c", {"eval": (2, 6)})
    codecs = {u.meta["codec"] for u in load_split("asvspoof5", tmp_path / "c", "test")}
    assert codecs == {"-", "C01", "C05", "C08"}


@pytest.mark.parametrize("release_folder", [True, False])
def test_in_the_wild_meta_csv(tmp_path, release_folder):
    base = make_in_the_wild(tmp_path, per_speaker=(2, 1), release_folder=release_folder)
    test = load_split("in_the_wild", tmp_path, "test")
    assert len(test) == 9 and all(u.path.is_file() and u.path.parent == base for u in test)
    assert [(u.utt_id, u.label, u.speaker, u.attack) for u in test[:3]] == [
        ("0.wav", 1, "Alec Guinness", "-"),
        ("1.wav", 1, "Alec Guinness", "-"),
        ("2.wav", 0, "Alec Guinness", "unknown"),
    ]
    assert {u.speaker for u in test} == set(ITW_SPEAKERS)
    for split in ("train", "val"):
        with pytest.raises(SplitUnavailableError, match="In-the-Wild is an evaluation-only"):
            load_split("in_the_wild", tmp_path, split)


def test_in_the_wild_bad_rows_and_header(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("file,speaker,label\n0.wav,A B,bona-fide\n1.wav,A B,fake\n0.wav,A B,spoof\n")
    problems: list = []
    out = parse_in_the_wild(meta, tmp_path, problems)
    assert [u.utt_id for u in out] == ["0.wav"]
    assert sorted(p.kind for p in problems) == ["duplicate_id", "unknown_key"]
    assert "meta.csv:3" in str(problems[0]) or "meta.csv:3" in str(problems[1])
    meta.write_text("path,label\n0.wav,spoof\n")
    with pytest.raises(ProtocolError, match=r"meta\.csv:1: header must be 'file,speaker,label'"):
        parse_in_the_wild(meta, tmp_path)
    with pytest.raises(MissingDataError, match="In-the-Wild meta.csv not found"):
        load_split("in_the_wild", tmp_path / "..", "test")
