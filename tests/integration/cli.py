"""Run train.py / eval.py as a user would, with settings that keep runs to seconds."""

import os
import subprocess
import sys
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


def run_cli(
    script: str, *overrides: str, timeout: int = 300, check: bool = True
) -> subprocess.CompletedProcess:
    """Run train.py / eval.py like a user would; fail with its output on a non-zero exit
    (unless ``check=False``: the caller looks at the exit status)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(REPO / script), *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{script} {' '.join(overrides)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc
