"""Preflight and the bad-data policy: strict fails with the list, skip drops and records."""

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spoof_lightning.data.audio import AudioError
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.preflight import DataError, check_split
from spoof_lightning.data.protocols import load_split
from tests.corpora import make_asvspoof5, make_asvspoof2019, synth, write_audio

CROP = 2000


def damaged_corpus(root: Path) -> dict[str, str]:
    """An LA corpus whose train split has one problem of every kind; returns utt -> kind."""
    make_asvspoof2019(root, "LA", counts={"train": (4, 8), "dev": (2, 2), "eval": (1, 1)})
    base = root / "LA"
    protocol = base / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    lines = protocol.read_text().splitlines()
    utts = [line.split()[1] for line in lines]
    flac = base / "ASVspoof2019_LA_train" / "flac"
    (flac / f"{utts[0]}.flac").unlink()
    (flac / f"{utts[1]}.flac").write_bytes(b"garbage" * 50)
    # a valid header announcing 0 samples (libsndfile cannot write an empty FLAC)
    sf.write(flac / f"{utts[2]}.flac", np.zeros(0, dtype=np.float32), 16000, format="WAV")
    data = (flac / f"{utts[3]}.flac").read_bytes()
    (flac / f"{utts[3]}.flac").write_bytes(data[: len(data) // 2])
    lines += [lines[5], "LA_0001 LA_T_9999999 - A01", "LA_0001 LA_T_9999998 - A01 maybe"]
    protocol.write_text("\n".join(lines) + "\n")
    return {utts[0]: "missing_file", utts[1]: "unreadable", utts[2]: "empty", utts[3]: "truncated"}


@pytest.fixture()
def corpus(tmp_path) -> tuple[Path, dict[str, str]]:
    return tmp_path / "c", damaged_corpus(tmp_path / "c")


def module(root: Path, **kw) -> AntiSpoofDataModule:
    kw = {"train_crop": CROP, "eval_crop": CROP, "batch_size": 4, **kw}
    return AntiSpoofDataModule(corpus="asvspoof2019_la", root=str(root), **kw)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_strict_fails_listing_every_problem(corpus, tmp_path):
    root, bad = corpus
    dm = module(root, on_error="strict", report_dir=str(tmp_path / "run"))
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    message = str(err.value)
    kinds = ["missing_file", "unreadable", "empty", "truncated", "duplicate_id", "malformed"]
    for kind in [*kinds, "unknown_key"]:
        assert kind in message
    assert "train.trn.txt:14" in message and "data.on_error=skip" in message
    rows = read_csv(tmp_path / "run" / "data_problems.csv")
    assert len(rows) == 7 and {r["split"] for r in rows} == {"train"}


def test_skip_drops_and_reports(corpus, tmp_path, caplog):
    root, bad = corpus
    dm = module(root, on_error="skip", preflight="decode", report_dir=str(tmp_path / "run"))
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    kept = {u.utt_id for u in dm.utterances("train")}
    assert kept.isdisjoint(bad) and len(kept) == 12 - 4
    rows = read_csv(tmp_path / "run" / "data_problems.csv")
    assert {r["utt_id"] for r in rows if r["utt_id"]} >= set(bad)
    assert sorted(r["kind"] for r in rows).count("unreadable") == 2  # garbage + truncated
    assert "train: 8 usable of 15 entries" in caplog.text
    assert "skipping 7 bad entries" in caplog.text


def test_problems_csv_keeps_earlier_splits(corpus, tmp_path):
    root, _ = corpus
    (root / "LA" / "ASVspoof2019_LA_eval" / "flac").iterdir().__next__().unlink()
    dm = module(root, on_error="skip", report_dir=str(tmp_path / "run"))
    dm.setup("fit")
    dm.setup("test")  # checked later, as trainer.test does: must not erase the train rows
    rows = read_csv(tmp_path / "run" / "data_problems.csv")
    assert sorted({r["split"] for r in rows}) == ["test", "train"] and len(rows) == 7 + 1
    module(root, on_error="skip", report_dir=str(tmp_path / "run")).setup("test")  # re-check
    assert len(read_csv(tmp_path / "run" / "data_problems.csv")) == 8


def test_the_default_header_check_finds_what_a_decode_finds(corpus):
    root, bad = corpus
    entries = load_split("asvspoof2019_la", root, "train", problems=[])
    header = {p.utt_id: p.kind for p in check_split("train", entries, level="header").problems}
    decode = {p.utt_id for p in check_split("train", entries, level="decode").problems}
    assert header == bad and decode == set(bad)  # a FLAC cut in half included


def test_bad_file_mid_epoch_skip_replaces_and_records(corpus, tmp_path):
    root, bad = corpus
    run = tmp_path / "run"
    dm = module(root, on_error="skip", preflight="exists", report_dir=str(run))
    dm.setup("fit")
    damaged = {u for u, kind in bad.items() if kind != "missing_file"}
    assert damaged <= {u.utt_id for u in dm.utterances("train")}  # passed the exists check
    batches = list(dm.train_dataloader())
    assert [len(b["utt_id"]) for b in batches] == [4, 4, 3]  # the run goes on, nothing lost
    seen = [u for b in batches for u in b["utt_id"]]
    assert damaged.isdisjoint(seen) and len(set(seen)) == 8  # others stood in for them
    rows = read_csv(run / "bad_files.csv")
    assert {Path(r["path"]).stem for r in rows} == damaged


def test_bad_file_mid_epoch_strict_raises(corpus):
    root, _ = corpus
    dm = module(root, on_error="skip", preflight="exists")
    dm.setup("fit")
    ds = dm.dataset("train")
    ds.on_error = "strict"
    with pytest.raises(AudioError, match="LA_T_.*flac: cannot decode"):
        for i in range(len(ds)):
            ds[i]


def test_wrong_rate_and_stereo_files_are_converted(tmp_path):
    make_asvspoof2019(tmp_path, "LA", counts={"train": (1, 1), "dev": (1, 1), "eval": (1, 1)})
    flac = tmp_path / "LA" / "ASVspoof2019_LA_eval" / "flac"
    bona, spoof = sorted(flac.iterdir())
    write_audio(bona, synth(4000, 8000, seed=1), 8000)  # 0.5 s at 8 kHz
    write_audio(spoof, synth(8000, 16000, seed=2, channels=2), 16000)
    dm = module(tmp_path, eval_crop=None)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["length"].tolist() == [8000, 8000]
    assert batch["waveform"].shape == (2, 8000)


def test_preflight_logs_bona_fide_and_spoof_counts_per_split(tmp_path, caplog):
    make_asvspoof5(tmp_path, {"train": (2, 3), "dev": (1, 2), "eval": (3, 5)})
    dm = AntiSpoofDataModule(corpus="asvspoof5", root=str(tmp_path), train_crop=CROP,
                             eval_crop=CROP, batch_size=2)  # fmt: skip
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
        dm.setup("test")
    assert "train: 5 usable of 5 entries: 2 bona fide, 3 spoof (no problems)" in caplog.text
    assert "val: 3 usable of 3 entries: 1 bona fide, 2 spoof (no problems)" in caplog.text
    assert "test: 8 usable of 8 entries: 3 bona fide, 5 spoof (no problems)" in caplog.text


def faulty_folder(root: Path) -> dict[str, str]:
    """Readable files and files cut short or holding NaN / inf; returns bad name -> kind."""
    x = synth(16000, seed=5)
    write_audio(root / "good.flac", x)
    write_audio(root / "good.wav", x)
    sf.write(root / "float.wav", x, 16000, subtype="FLOAT")
    for name in ("cut.wav", "cut.flac", "cut_end.flac"):
        data = write_audio(root / name, x).read_bytes()
        (root / name).write_bytes(data[: len(data) // 2] if "end" not in name else data[:-100])
    y = x.copy()
    y[8000] = np.nan
    sf.write(root / "nan.wav", y, 16000, subtype="FLOAT")
    y[8000] = np.inf
    sf.write(root / "inf.wav", y.astype(np.float64), 16000, subtype="DOUBLE")
    return {
        "cut.wav": "truncated",
        "cut.flac": "truncated",
        "cut_end.flac": "truncated",
        "nan.wav": "non_finite",
        "inf.wav": "non_finite",
    }


@pytest.mark.parametrize("level", ["header", "decode"])
def test_truncated_and_non_finite_audio_are_problems(tmp_path, level):
    bad = faulty_folder(tmp_path)
    entries = load_split("folder", tmp_path, "test", problems=[])
    found = {p.utt_id: p.kind for p in check_split("test", entries, level=level).problems}
    assert found.keys() == bad.keys()
    if level == "header":  # a decode reports the FLACs as undecodable
        assert found == bad


def test_strict_lists_bad_audio_and_skip_leaves_it_out_and_records_it(tmp_path):
    bad = faulty_folder(tmp_path / "audio")
    folder = {"corpus": "folder", "root": str(tmp_path / "audio"), "eval_crop": None}
    strict = AntiSpoofDataModule(**folder, report_dir=str(tmp_path / "strict"))
    with pytest.raises(DataError) as error:
        strict.setup("test")
    assert all(name in str(error.value) for name in bad)
    skip = AntiSpoofDataModule(**folder, on_error="skip", report_dir=str(tmp_path / "skip"))
    skip.setup("test")
    kept = {u.utt_id for u in skip.utterances("test")}
    assert kept == {"good.flac", "good.wav", "float.wav"}
    rows = read_csv(tmp_path / "skip" / "data_problems.csv")
    assert {r["utt_id"]: r["kind"] for r in rows} == bad
    assert [len(b["utt_id"]) for b in skip.test_dataloader()] == [3]  # nothing fails later
