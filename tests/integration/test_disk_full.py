"""A full disk (a small tmpfs) during training and evaluation: one paragraph naming the file
(exit 2), earlier files intact, no temporary file left."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spoof_lightning.atomic import DiskFullError
from spoof_lightning.evaluation import evaluate
from spoof_lightning.rundir import LOCK_FILE
from tests.integration.cli import FAST, REPO, FinishedRun, run_cli
from tests.integration.test_eval import eval_config

pytestmark = pytest.mark.slow

IN_NAMESPACE = "SPOOF_TEST_IN_USER_NAMESPACE"


def small_disk(request: pytest.FixtureRequest, tmp_path: Path, size: str = "4m") -> Path | None:
    """A tmpfs of ``size`` at ``tmp_path/disk``, unmounted after the test.

    As root it is mounted here. Otherwise the test runs again inside a user and mount
    namespace (``unshare``), where it may mount; then this returns None: the test ran
    there, and passed. Skips when neither works.
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() == 0:
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)]
        proc = subprocess.run(mount, capture_output=True, text=True)
        if proc.returncode == 0:
            request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(disk)]))
            return disk
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    if os.environ.get(IN_NAMESPACE) or not shutil.which("unshare"):
        pytest.skip("not root, and no user namespace (unshare) to mount a tmpfs in")
    inner = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount"]
        + [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
        + [request.node.nodeid],
        cwd=REPO,
        env={**os.environ, IN_NAMESPACE: "1"},
        capture_output=True,
        text=True,
    )
    if inner.returncode == 0 and " 1 passed" in inner.stdout:
        return None
    if "unshare:" in inner.stderr or " skipped" in inner.stdout:
        pytest.skip(f"no user namespace with a tmpfs: {(inner.stderr or inner.stdout)[-500:]}")
    pytest.fail(f"inside a user namespace:\n{inner.stdout[-4000:]}\n{inner.stderr[-2000:]}")


def _fill(disk: Path, leave: int) -> None:
    """Fill the tmpfs until ``leave`` bytes are free."""
    filler = disk / f"filler{len(list(disk.glob('filler*')))}"
    filler.write_bytes(b"\1" * (shutil.disk_usage(disk).free - leave))


def _digests(*directories: Path) -> dict[str, str]:
    """Every file but the lock (it names the process holding it)."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for directory in directories
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def _full_disk_error(proc: subprocess.CompletedProcess, where: Path) -> str:
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("error: ") == 1, proc.stderr
    message = proc.stderr[proc.stderr.index("error: ") :]
    assert f"cannot write {where}" in message and "no space left" in message, message
    assert "(DiskFullError;" in message and message.count("\n") == 2  # one paragraph
    return message


def test_a_full_disk_fails_in_one_paragraph_and_keeps_the_earlier_files(
    request: pytest.FixtureRequest, finished_run: FinishedRun, demo_root: Path, tmp_path: Path
):
    disk = small_disk(request, tmp_path)
    if disk is None:
        return
    logs, out = disk / "logs", disk / "eval"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", "run_name=full", *FAST]
    run_dir = logs / "runs" / "full" / "v1"
    shutil.copytree(finished_run.run_dir, run_dir)  # 2 epochs: checkpoints and test scores
    best = run_dir / "checkpoints" / "best.ckpt"
    evaluation = eval_config(f"ckpt={best}", f"output_dir={out}", "progress_bar=false")
    evaluate(evaluation)  # in this process: eval.py's start-up is tested elsewhere
    earlier = _digests(run_dir / "checkpoints", run_dir / "scores", out)
    assert len(earlier) > 10

    _fill(disk, leave=300_000)  # room for logs and summaries, not for a checkpoint (~760 kB)
    _full_disk_error(
        run_cli("train.py", *common, "resume=true", "trainer.max_epochs=3", check=False),
        run_dir / "checkpoints",
    )
    _fill(disk, leave=20_000)  # not enough for the score files and plots of an evaluation
    with pytest.raises(DiskFullError, match=f"^cannot write {out}/test_"):
        evaluate(evaluation)

    assert _digests(run_dir / "checkpoints", run_dir / "scores", out) == earlier
    assert not list(disk.rglob(".partial-*"))
