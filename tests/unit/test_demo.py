"""The procedural demo corpus: official ASVspoof 2019 LA layout, determinism, idempotence."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spoof_lightning.data import demo
from spoof_lightning.data.demo import ensure_demo_corpus

SIZES = {"n_train": 20, "n_dev": 10, "n_eval": 20}
PROTOCOLS = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}
PREFIX = {"train": "LA_T_", "dev": "LA_D_", "eval": "LA_E_"}


def protocol(root: Path, split: str) -> list[list[str]]:
    name = f"ASVspoof2019.LA.cm.{PROTOCOLS[split]}.txt"
    text = (root / "LA" / "ASVspoof2019_LA_cm_protocols" / name).read_text()
    assert text.endswith("\n")
    return [line.split() for line in text.splitlines()]


def flac(root: Path, split: str, utt: str) -> Path:
    return root / "LA" / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac"


def snapshot(root: Path) -> dict[str, bytes]:
    la = root / "LA"
    return {str(p.relative_to(la)): p.read_bytes() for p in sorted(la.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    assert ensure_demo_corpus(root, seed=3, **SIZES) == root
    return root


def test_layout_and_protocol_format(corpus):
    la = corpus / "LA"
    assert sorted(p.name for p in la.iterdir() if not p.name.startswith(".")) == [
        "ASVspoof2019_LA_cm_protocols",
        "ASVspoof2019_LA_dev",
        "ASVspoof2019_LA_eval",
        "ASVspoof2019_LA_train",
    ]
    line_re = re.compile(r"^LA_\d{4} LA_[TDE]_\d{7} - (A\d\d|-) (bonafide|spoof)$")
    speakers = {}
    for split, n in zip(PROTOCOLS, SIZES.values(), strict=True):
        rows = protocol(corpus, split)
        assert len(rows) == n
        for row in rows:
            assert line_re.match(" ".join(row)), row
            spk, utt, dash, attack, key = row
            assert utt.startswith(PREFIX[split]) and dash == "-"
            assert (attack == "-") == (key == "bonafide")
            assert flac(corpus, split, utt).is_file()
        assert len({r[1] for r in rows}) == n  # unique utterance ids
        keys = [r[4] for r in rows]
        assert 0.1 <= keys.count("bonafide") / n <= 0.25  # between 1:9 and 1:3
        files = list((la / f"ASVspoof2019_LA_{split}" / "flac").iterdir())
        assert len(files) == n
        speakers[split] = {r[0] for r in rows}
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["eval"]
    assert not speakers["dev"] & speakers["eval"]


def test_eval_has_unseen_attacks(corpus):
    seen = {r[3] for s in ("train", "dev") for r in protocol(corpus, s)} - {"-"}
    eval_attacks = {r[3] for r in protocol(corpus, "eval")} - {"-"}
    assert {r[3] for r in protocol(corpus, "train")} == {r[3] for r in protocol(corpus, "dev")}
    assert len(eval_attacks - seen) >= 2
    assert eval_attacks & seen


def test_audio_format_and_range(corpus):
    for split in PROTOCOLS:
        for _, utt, _, _, _ in protocol(corpus, split):
            info = sf.info(str(flac(corpus, split, utt)))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            wave, _ = sf.read(flac(corpus, split, utt), dtype="float32")
            assert wave.dtype == np.float32 and wave.ndim == 1
            assert 1.0 <= len(wave) / 16000 <= 4.0
            assert np.abs(wave).max() <= 1.0
            assert np.sqrt(np.mean(wave**2)) > 1e-3  # not silent


def test_duration_and_level_do_not_separate_classes(corpus):
    for split in PROTOCOLS:
        dur = {"bonafide": [], "spoof": []}
        level = {"bonafide": [], "spoof": []}
        for _, utt, _, _, key in protocol(corpus, split):
            wave, _ = sf.read(flac(corpus, split, utt), dtype="float32")
            dur[key].append(len(wave))
            level[key].append(10 * np.log10(np.mean(wave**2)))
        ratio = np.mean(dur["bonafide"]) / np.mean(dur["spoof"])
        assert 0.85 <= ratio <= 1.15, (split, ratio)
        assert abs(np.mean(level["bonafide"]) - np.mean(level["spoof"])) < 3.0
    # The planner itself, on a realistic size: per-class duration distributions match.
    rows = demo._plan_split(np.random.default_rng(0), "train", 600, ["LA_0001", "LA_0002"])
    bona = [r[3] for r in rows if r[2] == "-"]
    spoof = [r[3] for r in rows if r[2] != "-"]
    assert abs(np.mean(bona) / np.mean(spoof) - 1) < 0.02
    assert abs(np.std(bona) / np.std(spoof) - 1) < 0.05


def test_deterministic(corpus, tmp_path):
    ensure_demo_corpus(tmp_path / "same", seed=3, **SIZES)
    assert snapshot(tmp_path / "same") == snapshot(corpus)
    other = tmp_path / "other"
    ensure_demo_corpus(other, seed=4, **SIZES)
    assert protocol(other, "train") != protocol(corpus, "train")
    first_other = flac(other, "eval", protocol(other, "eval")[0][1]).read_bytes()
    assert first_other not in set(snapshot(corpus).values())


def test_idempotent_and_rebuilds_damage(tmp_path):
    sizes = {"n_train": 6, "n_dev": 5, "n_eval": 6}
    ensure_demo_corpus(tmp_path, seed=1, **sizes)
    files = [p for p in (tmp_path / "LA").rglob("*") if p.is_file()]
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    ensure_demo_corpus(tmp_path, seed=1, **sizes)
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert [p.name for p in tmp_path.iterdir()] == ["LA"]  # no temporary build left behind
    marker = json.loads((tmp_path / "LA" / demo.MARKER).read_text())
    assert marker["seed"] == 1 and marker["n_eval"] == 6

    victim = next(p for p in files if p.suffix == ".flac")
    before = victim.read_bytes()
    victim.unlink()  # a damaged corpus is rebuilt, identically
    ensure_demo_corpus(tmp_path, seed=1, **sizes)
    assert victim.read_bytes() == before

    ensure_demo_corpus(tmp_path, seed=1, n_train=7, n_dev=5, n_eval=6)  # other parameters
    assert len(protocol(tmp_path, "train")) == 7


def test_refuses_foreign_directory_and_bad_sizes(tmp_path):
    (tmp_path / "LA").mkdir()
    (tmp_path / "LA" / "precious.txt").write_text("real data")
    with pytest.raises(FileExistsError, match="not a demo corpus"):
        ensure_demo_corpus(tmp_path, n_train=5, n_dev=5, n_eval=5)
    assert (tmp_path / "LA" / "precious.txt").read_text() == "real data"
    with pytest.raises(ValueError, match="n_dev"):
        ensure_demo_corpus(tmp_path / "x", n_train=5, n_dev=2, n_eval=5)
