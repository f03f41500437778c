"""No run is ever lost: reruns get new versions, a live run is not shared, a finished run
continues with more epochs, a bad last.ckpt is refused before anything is built."""

import csv
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.integration.cli import FAST, REPO, FinishedRun, run_cli, start_cli

pytestmark = pytest.mark.slow

ONE_EPOCH = [*FAST, "trainer.max_epochs=1", "test_after_fit=false"]


def _train(*overrides: str) -> subprocess.CompletedProcess:
    return run_cli("train.py", *overrides, check=False)


def _one_paragraph(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The user error of a process that exited 2: one `error:` paragraph, no traceback."""
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("error: ") == 1, proc.stderr
    message = proc.stderr[proc.stderr.index("error: ") :]
    for word in words:
        assert word in message, message
    return message


def _digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_reruns_never_touch_earlier_runs_and_bad_names_are_refused(
    finished_run: FinishedRun, demo_root: Path, tmp_path: Path
):
    logs = tmp_path / "logs"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", "run_name=again", *ONE_EPOCH]
    runs = logs / "runs" / "again"
    shutil.copytree(finished_run.run_dir, runs / "v1")  # an earlier run of the same name
    first = _digests(runs / "v1" / "checkpoints")
    assert set(first) == {"best.ckpt", "last.ckpt"}

    # A rerun that dies on a bad value (after its directory exists) ...
    _one_paragraph(
        _train(*common, "trainer.micro_batch_size=0"), "trainer.micro_batch_size must be"
    )
    # ... and one that completes: each in its own version, the first run untouched.
    run_cli("train.py", *common)
    assert [p.name for p in sorted(runs.iterdir())] == ["v1", "v2", "v3"]
    assert _digests(runs / "v1" / "checkpoints") == first
    assert not (runs / "v2" / "summary.json").exists()  # refused before anything was written
    assert json.loads((runs / "v3" / "summary.json").read_text())["status"] == "completed"
    assert (runs / "v3" / "checkpoints" / "last.ckpt").is_file()

    _one_paragraph(_train(f"paths.log_dir={logs}", "run_name=../../x"), "run_name=")  # more: unit
    assert sorted(p.name for p in logs.iterdir()) == ["runs"]
    assert sorted(p.name for p in (logs / "runs").iterdir()) == ["again"]


HOLD_AND_DIE = (
    "import sys, time; from spoof_lightning.rundir import lock; lock(sys.argv[1]); "
    "print('locked', flush=True); time.sleep(600)"
)


def test_a_live_run_is_not_shared_and_a_dead_ones_lock_does_not_block(
    demo_root: Path, tmp_path: Path
):
    logs = tmp_path / "logs"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", "run_name=shared", *FAST]
    run_dir = logs / "runs" / "shared" / "v1"
    log = tmp_path / "first.log"
    first = start_cli("train.py", *common, "trainer.max_epochs=2", "test_after_fit=false", log=log)
    try:
        deadline = time.monotonic() + 600
        while not (run_dir / "summary.json").is_file():  # written once the lock is held
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        # The same directory, named as a version and as a path: refused, naming the first
        # (stopped meanwhile, so that it surely is alive and training).
        first.send_signal(signal.SIGSTOP)
        with ThreadPoolExecutor(2) as pool:
            refused = pool.map(
                lambda where: _train(*common, where, "trainer.max_epochs=3"),
                ["resume=v1", f"hydra.run.dir={run_dir}"],
            )
            for second in refused:
                _one_paragraph(second, str(run_dir), f"PID {first.pid} on")
        first.send_signal(signal.SIGCONT)
        first.wait(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, log.read_text()[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert [p.name for p in run_dir.parent.iterdir()] == ["v1"]
    last = run_dir / "checkpoints" / "last.ckpt"
    first_steps = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    steps_per_epoch = first_steps // 2
    assert steps_per_epoch > 0 and first_steps == 2 * steps_per_epoch

    # A process that held the lock and was killed leaves nothing that blocks a resume.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_DIE, str(run_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    # The finished run continues for one more epoch, in the same directory and logger run.
    out = run_cli(
        "train.py", *common, "resume=true", "trainer.max_epochs=3", "test_after_fit=false"
    )
    assert "run directory" in out.stdout
    assert f"continuing {run_dir} from {last}" in out.stdout + out.stderr
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["epochs"] == 3
    assert resumed["resumed_from"] == str(last)
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 3 * steps_per_epoch  # continued, not restarted
    assert [p.name for p in run_dir.parent.iterdir()] == ["v1"]
    with (run_dir / "csv" / "metrics.csv").open() as handle:  # epochs 0-1's rows, then 2's
        assert [row["epoch"] for row in csv.DictReader(handle) if row["val/eer"]] == ["0", "1", "2"]


class _Pwned:
    """Pickled code: unpickling it would create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _bad_checkpoint(kind: str, path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True)
    if kind == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(10_000)}, "epoch": 0}, path)
        path.write_bytes(path.read_bytes()[:5000])
    else:  # pickled code
        with path.open("wb") as handle:
            pickle.dump({"state_dict": _Pwned(marker)}, handle, protocol=2)


@pytest.mark.parametrize("kind", ["truncated", "malicious"])
def test_a_bad_last_ckpt_is_refused_before_the_trainer_is_built(kind: str, tmp_path: Path):
    """Foreign files (a zip, official weights, an export, another model): unit/test_rundir.py."""
    logs, marker = tmp_path / "logs", tmp_path / "pwned"
    last = logs / "runs" / "bad" / "v1" / "checkpoints" / "last.ckpt"
    _bad_checkpoint(kind, last, marker)
    proc = _train(f"paths.log_dir={logs}", "run_name=bad", "resume=true", *FAST)
    message = _one_paragraph(proc, str(last))
    assert "GPU available" not in proc.stdout + proc.stderr  # no Trainer was built
    assert not marker.exists()  # nothing was unpickled
    assert {"truncated": "truncated or corrupt", "malicious": "refusing to load"}[kind] in message
