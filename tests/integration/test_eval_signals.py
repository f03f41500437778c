"""eval.py and a real SIGTERM: scoring stops at once, nothing is written, exit 143.

(Lightning's own SIGTERM handler is only read by its fit and validation loops; under it,
eval.py would have scored the whole split and exited 0.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.cli import REPO

pytestmark = pytest.mark.slow

SHARED = Path(os.environ.get("SPOOF_SHARED", REPO.parent / "shared"))
AASIST = SHARED / "reference" / "aasist" / "AASIST.pth"


@pytest.mark.skipif(not AASIST.is_file(), reason=f"{AASIST} not found (set SPOOF_SHARED)")
def test_sigterm_stops_scoring_at_once_and_writes_nothing(demo_root: Path, tmp_path: Path):
    out = tmp_path / "eval"
    command = [
        sys.executable,
        str(REPO / "eval.py"),
        f"ckpt={AASIST}",  # AASIST on 4 s excerpts: about a second per utterance here
        "model=aasist",
        "data=asvspoof2019_la",
        f"data.root={demo_root}",
        "data.batch_size=1",
        "data.num_workers=2",  # workers must not die of the signal or keep the process alive
        "progress_bar=false",
        "plots=false",
        f"output_dir={out}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    log = tmp_path / "eval.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=sink, start_new_session=True
        )
    deadline = time.monotonic() + 300
    while "preflight test" not in log.read_text():  # logged just before scoring starts
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"rc {proc.poll()} before scoring started:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGTERM)  # as SLURM and Kubernetes do: every process
    sent = time.monotonic()
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    assert time.monotonic() - sent < 30, "scoring went on after the signal"
    written = sorted(
        p.name
        for p in out.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"  # Hydra's own
    )
    assert written == [], f"eval.py wrote {written} although it was stopped"
