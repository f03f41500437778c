"""train.py in bf16-mixed on CPU, and a run whose loss turns NaN: it stops with a clear
message, marks the run failed and keeps the last good checkpoint (real processes)."""

import json
from pathlib import Path

import pytest
import torch

from tests.integration.cli import FAST, run_cli

pytestmark = pytest.mark.slow


def _finite_weights(path: Path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return all(bool(torch.isfinite(v).all()) for k, v in state.items() if k != "eer_threshold")


def test_bf16_mixed_training_run_on_cpu(demo_root: Path, tmp_path: Path):
    logs = tmp_path / "logs"
    run_cli(
        "train.py",
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        *FAST,
        "run_name=bf16",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=1",
    )
    run_dir = logs / "runs" / "bf16" / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 0 <= summary["test_eer_percent"] <= 100
    assert summary["choices"]["trainer"] == "cpu"
    checkpoint = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert checkpoint["spoof_lightning_config"]["trainer"]["precision"] == "bf16-mixed"
    # Weights stay float32 (autocast computes in bf16, the master weights are not cast).
    assert all(
        v.dtype == torch.float32 for v in checkpoint["state_dict"].values() if v.is_floating_point()
    )
    assert _finite_weights(Path(summary["best_checkpoint"]))


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(demo_root: Path, tmp_path: Path):
    """The learning rate becomes infinite after the first epoch (StepLR, gamma=inf): the
    first step of epoch 1 makes the weights inf, the next batch's loss is NaN."""
    logs = tmp_path / "logs"
    proc = run_cli(
        "train.py",
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        *FAST,
        "run_name=diverged",
        "trainer.max_epochs=3",
        "scheduler._target_=torch.optim.lr_scheduler.StepLR",
        "~scheduler.T_max",
        "~scheduler.eta_min",
        "+scheduler.step_size=1",
        "+scheduler.gamma=inf",
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    message = proc.stderr.strip().splitlines()[-2]
    assert message.startswith("error: training stopped: the loss is nan at optimizer step")
    assert "Traceback" not in proc.stderr
    run_dir = logs / "runs" / "diverged" / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "NonFiniteError" in summary["error"]
    step = int(message.split("optimizer step ")[1].split()[0])
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    steps_per_epoch = last["global_step"]
    assert last["epoch"] == 0 and step == steps_per_epoch + 2  # epoch 1's second batch
    assert str(checkpoints / "last.ckpt") in message
    assert _finite_weights(checkpoints / "last.ckpt") and _finite_weights(checkpoints / "best.ckpt")
