"""Run train.py / eval.py or a ``spoof-lightning`` command as a user would, with settings that
keep runs to seconds."""

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Tiny crops keep every end-to-end run to seconds on 2 CPU cores.
FAST = [
    "data.demo=false",
    "data.train_crop=16000",
    "data.eval_crop=16000",
    "data.batch_size=16",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@dataclass(frozen=True)
class FinishedRun:
    """A completed train.py run (the ``finished_run`` fixture)."""

    run_dir: Path  # <log_dir>/runs/<run_name>/v1
    stdout: str  # what train.py printed


def _run(script: str, overrides: tuple[str, ...], timeout: int) -> subprocess.CompletedProcess:
    """``python <script>.py ...``, or ``spoof-lightning <script> ...`` (``python -m
    spoof_lightning``: the console script exists only once the project is pip-installed)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [str(REPO / script)] if script.endswith(".py") else ["-m", "spoof_lightning", script]
    return subprocess.run(
        [sys.executable, *command, *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(
    script: str, *overrides: str, timeout: int = 300, check: bool = True
) -> subprocess.CompletedProcess:
    """Run train.py / eval.py / a command like a user would; fail with its output on a non-zero exit
    (unless ``check=False``: the caller looks at the exit status)."""
    proc = _run(script, overrides, timeout)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{script} {' '.join(overrides)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def run_cli_user_error(script: str, *overrides: str, timeout: int = 300) -> tuple[str, float]:
    """Run a command that must end in a user error: exit code 2 and one ``error:`` paragraph,
    no traceback. Returns ``(the message, CPU seconds the command used)``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = _run(script, overrides, timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 2, f"{script} {' '.join(overrides)} exited {proc.returncode}:{output}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in proc.stderr and len(errors) == 1, output
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return errors[0], cpu
