"""eval.py end to end on a 2-epoch demo checkpoint: every file it writes (through the command
line), unlabelled folders and refused checkpoints (composed in-process, as eval.py does)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from spoof_lightning.build import ConfigError
from spoof_lightning.checkpoint import CheckpointError, load_countermeasure
from spoof_lightning.data.audio import repeat_pad
from spoof_lightning.data.preflight import DataError
from spoof_lightning.evaluation import evaluate
from spoof_lightning.export import main as export_main
from spoof_lightning.metrics.calibration import cllr
from spoof_lightning.metrics.scores import read_cm_scores_2019, read_scores_2021, read_scores_csv
from spoof_lightning.metrics.summary import split_metrics
from spoof_lightning.outputs import format_report
from tests.corpora import synth, write_audio
from tests.integration.cli import REPO, FinishedRun, run_cli

pytestmark = pytest.mark.slow


def eval_config(*overrides: str) -> DictConfig:
    """conf/eval.yaml composed as eval.py does (in-process: no interpreter start-up), with the
    Hydra node that tells evaluate() which keys the command line set."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("eval", overrides=list(overrides), return_hydra_config=True)


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(finished_run: FinishedRun) -> Path:
    """best.ckpt of a 2-epoch run on the small demo corpus (read, never written)."""
    return finished_run.run_dir / "checkpoints" / "best.ckpt"


def _protocol(demo_root: Path) -> dict[str, list[str]]:
    path = demo_root / "LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.eval.trl.txt"
    return {fields[1]: fields for fields in map(str.split, path.read_text().splitlines())}


def test_eval_writes_every_output(checkpoint: Path, demo_root: Path, tmp_path: Path):
    out = tmp_path / "eval"
    stdout = run_cli(
        "eval.py",
        f"ckpt={checkpoint}",
        f"output_dir={out}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "calibrate=true",
        "progress_bar=false",
    ).stdout
    assert "pooled   EER" in stdout and "calibrated on dev" in stdout

    # 2019 CM file: every protocol utterance once, with its attack and key
    protocol = _protocol(demo_root)
    cm_rows = read_cm_scores_2019(out / "test_scores.txt")
    assert {r["utt_id"] for r in cm_rows} == protocol.keys() and len(cm_rows) == len(protocol)
    for row in cm_rows:
        _, _, _, attack, key = protocol[row["utt_id"]]
        assert (row["attack"], row["label"]) == (attack, int(key == "bonafide"))
    scores = {r["utt_id"]: r["score"] for r in cm_rows}
    assert read_scores_2021(out / "test_submission.txt") == scores

    # CSV: the protocol metadata, the decision at the checkpoint's dev threshold, the LLR
    threshold = float(
        torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]["eer_threshold"]
    )
    csv_rows = read_scores_csv(out / "test_scores.csv")
    assert set(csv_rows[0]) == {
        "utt_id",
        "path",
        "label",
        "speaker",
        "attack",
        "decision",
        "llr",
        "score",
    }
    for row in csv_rows:
        speaker, utt, _, attack, _ = protocol[row["utt_id"]]
        assert (row["speaker"], row["attack"], row["score"]) == (speaker, attack, scores[utt])
        assert Path(row["path"]).name == f"{utt}.flac"
        assert row["decision"] == ("bonafide" if row["score"] > threshold else "spoof")

    # metrics.json: what the score file gives when scored again
    metrics = json.loads((out / "test_metrics.json").read_text())
    recomputed = split_metrics(cm_rows, threshold=threshold)
    assert {k: metrics[k] for k in recomputed} == recomputed
    assert metrics["threshold"]["value"] == threshold
    calibration = metrics["calibration"]
    llr = np.array([float(r["llr"]) for r in csv_rows])
    score = np.array([r["score"] for r in csv_rows])
    np.testing.assert_allclose(llr, calibration["scale"] * score + calibration["offset"])
    labels = np.array([r["label"] for r in csv_rows])
    assert calibration["cllr"] == pytest.approx(cllr(llr[labels == 1], llr[labels == 0]))
    for name in ("test_det.png", "test_score_hist.png"):
        assert (out / name).read_bytes()[:8] == PNG and (out / name).stat().st_size > 5000


def test_unlabelled_folder_gets_scores_and_decisions(checkpoint: Path, tmp_path: Path):
    if not (REPO / "conf" / "data" / "folder.yaml").is_file():
        pytest.skip("conf/data/folder.yaml (data=folder) is not in this checkout")
    audio = tmp_path / "audio"
    lengths = {"a.wav": 8000, "sub/b.flac": 16000, "c.wav": 5000}
    for i, (name, n) in enumerate(lengths.items()):
        write_audio(audio / name, synth(n, seed=i))
    model = tmp_path / "model.pt"
    export_main([f"ckpt={checkpoint}", f"out={model}"])  # score with the exported model

    out = tmp_path / "eval"
    folder = ["data.num_workers=0", "data.persistent_workers=false", "data.pin_memory=false"]
    report = evaluate(
        eval_config(
            f"ckpt={model}",
            "data=folder",
            f"data.root={audio}",
            "data.eval_crop=null",  # whole files, not the checkpoint's crop
            *folder,
            "threshold=0.0",
            f"output_dir={out}",
            "progress_bar=false",
        )
    )
    assert "decisions  score > 0 (threshold=)" in format_report(report)
    assert sorted(p.name for p in out.iterdir()) == [
        "test_metrics.json",
        "test_scores.csv",
        "test_submission.txt",
    ]
    scores = read_scores_2021(out / "test_submission.txt")
    assert scores.keys() == lengths.keys()
    # each file is scored whole and alone, exactly as the checkpoint's model scores it
    net = load_countermeasure(checkpoint).net
    for name, score in scores.items():
        wave, _ = sf.read(audio / name, dtype="float32")
        with torch.no_grad():
            assert score == pytest.approx(net.score(torch.from_numpy(wave)[None]).item(), abs=1e-5)
    rows = read_scores_csv(out / "test_scores.csv")
    assert all(r["label"] == -1 for r in rows)
    assert all(r["decision"] == ("bonafide" if r["score"] > 0 else "spoof") for r in rows)
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert "eer" not in metrics and metrics["n_unlabelled"] == 3
    n_bona = sum(r["decision"] == "bonafide" for r in rows)
    assert metrics["decisions"] == {"bonafide": n_bona, "spoof": 3 - n_bona}


FOLDER = ["data=folder", "data.num_workers=0", "data.persistent_workers=false"]
FOLDER += ["data.pin_memory=false", "progress_bar=false", "accelerator=cpu"]


def _score(net, wave: np.ndarray) -> float:
    with torch.no_grad():
        return net.score(torch.from_numpy(np.ascontiguousarray(wave))[None]).item()


def test_folder_scores_every_readable_file_however_short(checkpoint: Path, tmp_path: Path):
    audio = tmp_path / "audio"
    clips = {"tiny.wav": 10, "short.wav": 1600, "sub/normal.flac": 8000}  # 10 samples, 0.1 s
    waves = {name: synth(n, seed=i) for i, (name, n) in enumerate(clips.items())}
    for name, wave in waves.items():
        write_audio(audio / name, wave)
    waves = {name: sf.read(audio / name, dtype="float32")[0] for name in waves}  # as stored
    net = load_countermeasure(checkpoint).net
    # whole files: shorter than the 257 samples LFCC + CNN-GRU need, repeat-padded to 257
    out = tmp_path / "whole"
    stdout = run_cli(
        "eval.py", f"ckpt={checkpoint}", *FOLDER, f"data.root={audio}", "data.eval_crop=null",
        f"output_dir={out}", f"paths.log_dir={tmp_path / 'logs'}", "data.on_error=strict",
    ).stdout  # fmt: skip
    assert "eval_crop=None (command line), pad=repeat (checkpoint)" in stdout
    scores = read_scores_2021(out / "test_submission.txt")
    assert scores.keys() == clips.keys()
    assert scores["tiny.wav"] == pytest.approx(_score(net, repeat_pad(waves["tiny.wav"], 257)))
    for name in ("short.wav", "sub/normal.flac"):
        assert scores[name] == pytest.approx(_score(net, waves[name]), abs=1e-5)
    # the checkpoint's crop (16000 samples): every clip repeat-padded to it, under skip too
    out = tmp_path / "crop"
    overrides = [f"ckpt={checkpoint}", *FOLDER, f"data.root={audio}", f"output_dir={out}"]
    report = evaluate(eval_config(*overrides, "data.on_error=skip"))
    assert report["metrics"]["n_trials"] == 3
    scores = read_scores_2021(out / "test_submission.txt")
    for name, wave in waves.items():
        assert scores[name] == pytest.approx(_score(net, repeat_pad(wave, 16000)), abs=1e-5)
    with pytest.raises(ConfigError, match=r"data.eval_crop=100 is shorter than the 257 samples"):
        evaluate(eval_config(*overrides, "data.eval_crop=100"))


def test_folder_with_broken_audio_strict_fails_skip_scores_the_rest(
    checkpoint: Path, tmp_path: Path
):
    audio = tmp_path / "audio"
    x = synth(8000, seed=1)
    write_audio(audio / "good.flac", x)
    data = write_audio(audio / "cut.flac", x).read_bytes()
    (audio / "cut.flac").write_bytes(data[: len(data) // 2])  # a FLAC cut in half
    x[100] = np.nan
    sf.write(audio / "nan.wav", x, 16000, subtype="FLOAT")
    overrides = [f"ckpt={checkpoint}", *FOLDER, f"data.root={audio}"]
    strict = eval_config(*overrides, f"output_dir={tmp_path / 'strict'}", "data.on_error=strict")
    with pytest.raises(DataError, match=r"preflight found 2 problem\(s\)") as error:
        evaluate(strict)  # eval.py: exit 2 with this message (a user error)
    assert "cut.flac" in str(error.value) and "nan.wav" in str(error.value)
    out = tmp_path / "skip"
    report = evaluate(eval_config(*overrides, f"output_dir={out}", "data.on_error=skip"))
    assert read_scores_2021(out / "test_submission.txt").keys() == {"good.flac"}
    assert report["metrics"]["n_trials"] == 1
    with open(out / "data_problems.csv", newline="") as fh:
        problems = {row["utt_id"]: row["kind"] for row in csv.DictReader(fh)}
    assert problems == {"cut.flac": "truncated", "nan.wav": "non_finite"}


def test_a_checkpoint_of_another_model_is_refused_clearly(checkpoint: Path, tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(CheckpointError) as error:
        evaluate(eval_config(f"ckpt={checkpoint}", "model=aasist", f"output_dir={out}"))
    message = str(error.value)  # (eval.py also names the requested group: model=aasist)
    assert message.startswith(
        f"{checkpoint} holds model=cnn_gru (spoof_lightning.models.cnn_gru.CNNGRU), not the "
        "requested model"
    )
    assert "(spoof_lightning.models.aasist.AASIST). Leave out `model=`" in message
    assert not out.exists()  # refused before anything is scored or written
