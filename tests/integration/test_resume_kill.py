"""Crash-proof resume: SIGKILL a real training process mid-epoch, resume it, and kill a
process in the middle of writing a checkpoint."""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from spoof_lightning.atomic import PARTIAL_PREFIX
from spoof_lightning.rundir import claim
from tests.integration.cli import FAST, REPO, Run, run_cli, start_cli

pytestmark = pytest.mark.slow


def offline_env(home: Path) -> dict[str, str]:
    """The environment of a user without W&B credentials (W&B must go offline by itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _load(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return None


def _wait_for(predicate, proc: Run | subprocess.Popen, output: Path, timeout: float = 240) -> None:
    """Wait until ``predicate()``; on any failure (the predicate's own included) the process
    is killed, so that a failed test never leaves a writer running."""
    deadline = time.monotonic() + timeout
    try:
        while not predicate():
            if proc.poll() is not None:
                out = output.read_text() if output.is_file() else ""
                pytest.fail(
                    f"the process ended (rc {proc.returncode}) before the kill:\n{out[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for the training process")
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        raise


def test_sigkill_mid_epoch_then_resume_continues_the_same_run(demo_root: Path, tmp_path: Path):
    logs = tmp_path / "logs"
    run_dir = logs / "runs" / "killed" / "v1"
    last = run_dir / "checkpoints" / "last.ckpt"
    command = [
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        "run_name=killed",
        *FAST,  # 64 train utterances in batches of 16: 4 steps an epoch
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "callbacks.step_checkpoint.every_n_train_steps=1",
        "test_after_fit=false",
        "logger=[csv,wandb]",
    ]
    env = offline_env(tmp_path / "home")
    output = tmp_path / "killed.log"
    proc = start_cli("train.py", *command, log=output, env=env)
    state: dict = {}

    def mid_epoch_checkpoint() -> bool:
        checkpoint = _load(last) if last.is_file() else None
        if checkpoint is None or checkpoint["global_step"] < 2:
            return False
        state.update(checkpoint)
        return True

    _wait_for(mid_epoch_checkpoint, proc, output)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # Whatever the moment of the kill, last.ckpt is whole; it was written within epoch 0.
    killed = _load(last)
    assert killed is not None and killed["global_step"] >= state["global_step"]
    progress = killed["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    if killed["epoch"] == 0:
        assert 0 < progress["completed"] < 4
    # The data position: the batches of the epoch trained so far (the resume skips them).
    [position] = killed["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (position["epoch"], position["batches"]) == (killed["epoch"], progress["processed"])
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    summary = (run_dir / "summary.json").read_text()
    assert '"status": "running"' in summary  # the killed run never finished

    resumed = run_cli("train.py", *command, "resume=true", env=env)
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr
    final = _load(last)
    assert (final["global_step"], final["epoch"]) == (8, 1)  # 2 epochs x 4 steps, not restarted
    assert [p.name for p in run_dir.parent.iterdir()] == ["v1"]  # the same run

    # The same logger runs: the CSV goes on, steps never repeat; the W&B run id is reused.
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert steps == sorted(set(steps)) and steps[-1] == 7
    assert [r["epoch"] for r in rows if r["val/eer"]] == ["0", "1"]
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == run_id
    offline_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2 and all(p.name.endswith(f"-{run_id}") for p in offline_runs)
    assert '"status": "completed"' in (run_dir / "summary.json").read_text()


WRITER = textwrap.dedent(
    """
    import sys, torch
    from spoof_lightning.callbacks.checkpoint_io import AtomicCheckpointIO
    io, path = AtomicCheckpointIO(), sys.argv[1]
    io.save_checkpoint({"version": 0, "weights": torch.arange(10.0)}, path)
    print("saved", flush=True)
    version = 1
    while True:  # large checkpoints, so that a kill lands in the middle of a write
        weights = torch.full((8_000_000,), float(version))
        io.save_checkpoint({"version": version, "weights": weights}, path)
        version += 1
    """
)


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_usable(tmp_path: Path):
    path = tmp_path / "last.ckpt"
    output = tmp_path / "writer.log"
    with output.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=log, stderr=log
        )
    _wait_for(lambda: "saved" in output.read_text(), proc, output, timeout=60)

    def partial() -> list[Path]:
        return list(tmp_path.glob(f"{PARTIAL_PREFIX}*-last.ckpt"))

    _wait_for(partial, proc, output, timeout=60)  # a save is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    checkpoint = _load(path)
    assert checkpoint is not None, "the checkpoint was left truncated"
    version = checkpoint["version"]
    expected = torch.arange(10.0) if version == 0 else torch.full((8_000_000,), float(version))
    assert torch.equal(checkpoint["weights"], expected)
    # What the killed writer left is removed by the next process that claims the directory.
    left = partial()
    assert claim(tmp_path) == left and not partial()
