"""Deployment end to end, as a user runs it: released weights scored by eval.py, exported and
scored by the infer command; a fine-tuned SSL run scored and exported after its pretrained
file is gone (issue 10.7), with its SWA checkpoint read by eval.py."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from spoof_lightning.frontends.wav2vec2 import Wav2Vec2FrontEnd
from spoof_lightning.metrics.scores import read_cm_scores_2019
from tests.integration.cli import FAST, REPO, run_cli
from tests.tiny_configs import TINY_WAV2VEC2

pytestmark = pytest.mark.slow

SHARED = Path(os.environ.get("SPOOF_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference" / "aasist"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "official_outputs.npz").is_file(),
    reason=f"official AASIST reference data not found in {REFERENCE} (set SPOOF_SHARED)",
)
QUIET_EVAL = ["progress_bar=false", "plots=false"]
FOLDER_IN_PROCESS = ["data.num_workers=0", "data.persistent_workers=false", "data.pin_memory=false"]


def csv_scores(path: Path) -> dict[str, float]:
    with path.open() as handle:
        return {row["utt_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def infer_scores(stdout: str) -> dict[str, float]:
    rows = [line.split("\t") for line in stdout.strip().splitlines()[1:]]
    return {Path(row[0]).stem: float(row[1]) for row in rows}


@needs_reference
def test_official_aasist_scores_a_folder_then_exports(tmp_path: Path) -> None:
    reference = np.load(REFERENCE / "official_outputs.npz")
    folder = tmp_path / "audio"
    folder.mkdir()
    for i, wave in enumerate(reference["waveforms"][:2]):
        sf.write(folder / f"utt{i}.wav", wave, 16000, subtype="FLOAT")
    logits = reference["AASIST_logits"][:2]
    official = {f"utt{i}": float(logits[i, 1] - logits[i, 0]) for i in range(2)}

    out = tmp_path / "eval"
    run_cli(
        "eval.py",
        f"ckpt={REFERENCE / 'AASIST.pth'}",
        "model=aasist",
        "data=folder",
        f"data.root={folder}",
        f"output_dir={out}",
        f"paths.log_dir={tmp_path / 'logs'}",
        *QUIET_EVAL,
        *FOLDER_IN_PROCESS,
    )
    scores = {Path(k).stem: v for k, v in csv_scores(out / "test_scores.csv").items()}
    assert scores.keys() == official.keys()
    for utt, score in official.items():
        assert scores[utt] == pytest.approx(score, abs=1e-4)

    onnx_file = tmp_path / "aasist.onnx"
    run_cli(
        "export",
        f"ckpt={REFERENCE / 'AASIST.pth'}",
        "model=aasist",
        "format=onnx",
        f"out={onnx_file}",
    )
    inferred = infer_scores(
        run_cli("infer", str(onnx_file), *map(str, sorted(folder.iterdir()))).stdout
    )
    for utt, score in official.items():
        assert inferred[utt] == pytest.approx(score, abs=1e-4)


def test_a_fine_tuned_ssl_run_needs_no_pretrained_file(demo_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    pretrained = tmp_path / "xlsr_tiny.pt"
    torch.save(Wav2Vec2FrontEnd(**TINY_WAV2VEC2).ssl.state_dict(), pretrained)
    logs = tmp_path / "logs"
    run_cli(
        "train.py",
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        *FAST,
        "run_name=ssl_tiny",
        "frontend=wav2vec2",
        f"frontend.checkpoint={pretrained}",
        *(f"frontend.{k}={v}" for k, v in TINY_WAV2VEC2.items()),
        "model=ssl_aasist",  # its back-end at a quarter of the channels (the SSL part matters)
        "model.proj_dim=16",
        "model.filts=[[1,8],[8,8],[8,16],[16,16]]",
        "model.gat_dims=[16,8]",
        "data.train_crop=4000",
        "data.eval_crop=4000",
        "trainer.max_epochs=1",
        "callbacks=swa",
        timeout=900,
    )
    pretrained.unlink()  # fine-tuned: every SSL weight is in the checkpoint
    best = next(logs.rglob("best.ckpt"))
    swa = best.with_name("swa.ckpt")
    assert swa.is_file()
    train_scores = read_cm_scores_2019(next(logs.rglob("test_scores.txt")))

    out = tmp_path / "eval_best"
    run_cli("eval.py", f"ckpt={best}", f"output_dir={out}", f"paths.log_dir={logs}", *QUIET_EVAL)
    scores = csv_scores(out / "test_scores.csv")
    assert scores.keys() == {row["utt_id"] for row in train_scores}
    for row in train_scores:  # eval.py gives train.py's own test scores
        assert scores[row["utt_id"]] == pytest.approx(row["score"], abs=1e-5)

    run_cli(
        "eval.py",
        f"ckpt={swa}",
        f"output_dir={tmp_path / 'eval_swa'}",
        f"paths.log_dir={logs}",
        *QUIET_EVAL,
    )
    assert len(csv_scores(tmp_path / "eval_swa" / "test_scores.csv")) == len(scores)

    onnx_file = tmp_path / "ssl.onnx"
    run_cli("export", f"ckpt={best}", "format=onnx", f"out={onnx_file}")
    flac = sorted((demo_root / "LA" / "ASVspoof2019_LA_eval" / "flac").glob("*.flac"))[:3]
    inferred = infer_scores(run_cli("infer", str(onnx_file), *map(str, flac)).stdout)
    for utt, score in inferred.items():
        assert score == pytest.approx(scores[utt], abs=1e-4)
