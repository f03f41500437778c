"""DDP on CPU (2 processes, gloo): a training run on the demo learns, and the scores of one
checkpoint gathered from both processes are exactly those of a single process."""

import csv
import json
from collections import defaultdict
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from spoof_lightning.lit.detector import Detector
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.scoring import ScoreSet
from tests.integration.cli import FAST, run_cli

pytestmark = pytest.mark.slow


def _read_scores(path: Path) -> dict[str, tuple[int, float]]:
    rows: dict[str, tuple[int, float]] = {}
    for line in path.read_text().splitlines():
        utt, _, key, score = line.split()
        assert utt not in rows, f"{utt} scored twice in {path}"
        rows[utt] = (int(key == "bonafide"), float(score))
    return rows


def _eer(labels: np.ndarray, scores: np.ndarray) -> float:
    return compute_eer(scores[labels == 1], scores[labels == 0])[0]


def _single_process(checkpoint_path: Path) -> dict[str, ScoreSet]:
    """Validate and test the checkpoint in this process, on one device."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    module = Detector(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    datamodule = instantiate(checkpoint["spoof_lightning_config"]["data"], _convert_="all")
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, datamodule=datamodule, verbose=False)
    trainer.test(module, datamodule=datamodule, verbose=False)
    return module.last_scores


def test_ddp_learns_and_its_scores_are_those_of_one_process(demo_root: Path, tmp_path: Path):
    logs = tmp_path / "logs"
    run_cli(
        "train.py",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        "run_name=ddp",
        *FAST,
        "data.batch_size=8",  # per process: 64 / 2 / 8 = 4 steps an epoch
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1",
        # Odd set sizes: the distributed sampler pads each with a repeated utterance.
        "data.subset.val={size:39}",
        "data.subset.test={size:59}",
    )  # Lightning starts the second process as `python train.py ...` (a new interpreter)
    run_dir = logs / "runs" / "ddp" / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2

    # It learns: the mean training loss falls from the first epoch to the last.
    losses: dict[int, list[float]] = defaultdict(list)
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["train/loss"]:
                losses[int(row["epoch"])].append(float(row["train/loss"]))
    assert sorted(losses) == [0, 1, 2]
    assert np.mean(losses[2]) < np.mean(losses[0])

    # The test pass of best.ckpt under DDP scored each of the 59 utterances once ...
    ddp = _read_scores(Path(summary["score_file"]))
    assert len(ddp) == 59
    labels = np.array([label for label, _ in ddp.values()])
    ddp_eer = _eer(labels, np.array([score for _, score in ddp.values()]))
    assert 100 * ddp_eer == pytest.approx(summary["test_eer_percent"], abs=1e-12)

    # ... and one process, validating and testing the same checkpoint, finds the same.
    single = _single_process(Path(summary["best_checkpoint"]))
    test = single["test"]
    assert sorted(test.utt_ids) == sorted(ddp)
    for utt, score in test.scores.items():
        assert score == pytest.approx(ddp[utt][1], abs=1e-5)
    assert compute_eer(*test.split())[0] == pytest.approx(ddp_eer, abs=1e-12)
    # best_val_eer is the float32 value logged during DDP training (val/eer).
    val = single["val"]
    assert len(set(val.utt_ids)) == len(val) == 39
    single_val = compute_eer(*val.split())[0]
    assert 100 * single_val == pytest.approx(summary["best_val_eer_percent"], abs=1e-4)
