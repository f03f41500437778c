"""Preemption with real signals: SIGTERM / SIGUSR1 to a training process group, and SIGUSR2 to a
submitit job that is then requeued (submitit's local executor runs the SLURM code path)."""

import csv
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.integration.cli import FAST, Run, run_cli, start_cli

pytestmark = pytest.mark.slow

# 64 training utterances in batches of 8, two per optimizer step: 4 steps an epoch, 8 in all.
STEPS = [
    *FAST,
    "data.batch_size=8",
    "trainer.accumulate_grad_batches=2",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "+logger.csv.flush_logs_every_n_steps=1",  # metrics.csv appears after the first step
    "test_after_fit=false",
]


def _wait(condition: Callable[[], bool], proc: Run, log: Path) -> None:
    deadline = time.monotonic() + 600
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"rc {proc.poll()} before the signal:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _trained(metrics: Path) -> bool:
    """At least one optimizer step logged in metrics.csv."""
    if not metrics.is_file():
        return False
    with metrics.open() as handle:
        return any(row.get("train/loss") for row in csv.DictReader(handle))


def _at_step_boundary(last: Path) -> dict:
    """last.ckpt was written after a complete accumulation of 2 batches, before the end."""
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert progress["ready"] % 2 == 0, progress  # never inside a gradient accumulation
    assert checkpoint["global_step"] == 4 * checkpoint["epoch"] + progress["ready"] // 2
    assert 0 < checkpoint["global_step"] < 8
    return checkpoint


@pytest.mark.parametrize(
    ("signum", "workers"), [(signal.SIGTERM, 2), (signal.SIGUSR1, 0)], ids=["SIGTERM", "SIGUSR1"]
)
def test_a_signal_saves_last_ckpt_at_a_step_boundary_and_resume_completes(
    signum: int, workers: int, demo_root: Path, tmp_path: Path
):
    logs = tmp_path / "logs"
    run_dir = logs / "runs" / "preempted" / "v1"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", "run_name=preempted", *STEPS]
    log = tmp_path / "train.log"
    workers = f"data.num_workers={workers}"
    proc = start_cli("train.py", *common, workers, log=log, new_session=True)
    _wait(lambda: _trained(run_dir / "csv" / "metrics.csv"), proc, log)
    os.killpg(proc.pid, signum)  # as SLURM does: every process, DataLoader workers too
    assert proc.wait(timeout=600) == 128 + signum, log.read_text()[-3000:]

    name = signal.Signals(signum).name
    summary = json.loads((run_dir / "summary.json").read_text())
    last = run_dir / "checkpoints" / "last.ckpt"
    assert (summary["status"], summary["signal"], summary["checkpoint"]) == (
        "preempted",
        name,
        str(last),
    )
    assert f"stopped by {name}; saved {last}" in log.read_text()
    _at_step_boundary(last)
    if signum == signal.SIGUSR1:
        return  # resuming is the same after either signal

    run_cli("train.py", *common, "resume=true")
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert (final["global_step"], final["epoch"]) == (8, 1)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from"] == str(last)
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle) if r["train/loss"]]
    assert steps[-1] == 7


def test_a_requeued_submitit_job_continues_its_own_run_directory(demo_root: Path, tmp_path: Path):
    """SIGUSR2 (submitit's time-out / preemption signal): last.ckpt at a step boundary, then
    submitit requeues the job through the launcher's checkpoint(), with resume=<its dir>."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    logs = tmp_path / "logs"
    command = [
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher._target_=hydra_plugins.spoof_lightning_launchers.ResumingLocalLauncher",
        "hydra.launcher.timeout_min=60",
        f"data.root={demo_root}",
        f"paths.log_dir={logs}",
        "sweep_name=requeued",
        "run_name=job",
        *STEPS,
    ]
    log = tmp_path / "sweep.log"
    proc = start_cli("train.py", *command, log=log)

    def job_dir() -> Path | None:
        found = sorted((logs / "multiruns" / "requeued").glob("job*/v1"))
        return found[0] if found and _trained(found[0] / "csv" / "metrics.csv") else None

    _wait(lambda: job_dir() is not None, proc, log)
    run_dir = job_dir()
    job_pid = json.loads((run_dir / "run.lock").read_text())["pid"]
    os.kill(job_pid, signal.SIGUSR2)
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]

    job_logs = "".join(p.read_text() for p in (logs / "multiruns" / "requeued").rglob("*_log.*"))
    assert "Requeued job" in job_logs and "stopped by SIGUSR2; saved" in job_logs
    assert [p.name for p in run_dir.parent.iterdir()] == ["v1"]
    summary = json.loads((run_dir / "summary.json").read_text())
    last = run_dir / "checkpoints" / "last.ckpt"
    assert summary["status"] == "completed" and summary["resumed_from"] == str(last)
    assert f"resume='{run_dir}'" in summary["overrides"]
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert (final["global_step"], final["epoch"]) == (8, 1)
