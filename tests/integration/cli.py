"""Run train.py / eval.py or a ``spoof-lightning`` command as a user would, with settings that
keep runs to seconds.

Every run is a process of its own: real exit codes, signals, files and locks. By default it
is forked from a server that imported torch, Lightning and spoof_lightning once
(multiprocessing's forkserver with :data:`PRELOAD`) and runs the script's ``__main__`` from
its first line, as the interpreter would, without the ~10 s a new interpreter spends on those
imports. ``fresh=True`` starts a new interpreter: for the tests of the command line itself
(every command, its user errors and their CPU cost, one train.py and one eval.py run, DDP).
"""

import atexit
import math
import multiprocessing
import os
import resource
import runpy
import subprocess
import sys
import tempfile
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
# What the fork server imports before it forks a run.
PRELOAD = ["lightning", "spoof_lightning.training", "spoof_lightning.evaluation", __name__]
SERVER = multiprocessing.get_context("forkserver")
SERVER.set_forkserver_preload(PRELOAD)


@dataclass(frozen=True)
class FinishedRun:
    """A completed train.py run (the ``finished_run`` fixture)."""

    run_dir: Path  # <log_dir>/runs/<run_name>/v1
    stdout: str  # what train.py printed


def user_env() -> dict[str, str]:
    """The environment runs get by default: W&B disabled, no HYDRA_FULL_ERROR."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _main(script: str, overrides: list[str], env: dict, out: str, err: str, session: bool):
    """In the forked process: what ``python <script> ...`` (a ``.py`` file) or ``python -m
    spoof_lightning <script> ...`` runs once the interpreter has started; on a normal exit,
    the CPU seconds it used go to ``<err>.cpu``."""
    if session:
        os.setsid()
    multiprocessing.set_start_method(None, force=True)  # not the server's: the default again
    os.environ.clear()
    os.environ.update(env)
    os.chdir(REPO)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout.reconfigure(line_buffering=True)  # as PYTHONUNBUFFERED, line by line
    try:
        if script.endswith(".py"):
            sys.argv = [str(REPO / script), *overrides]
            runpy.run_path(sys.argv[0], run_name="__main__")
        else:
            sys.argv = ["spoof_lightning", script, *overrides]
            runpy.run_module("spoof_lightning", run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # as the interpreter does on its way out
        used = os.times()
        cpu = used.user + used.system + used.children_user + used.children_system
        Path(f"{err}.cpu").write_text(str(cpu))


class Run:
    """A run forked from the server, with the part of :class:`subprocess.Popen`'s interface
    the tests use."""

    def __init__(
        self,
        script: str,
        overrides: tuple[str, ...],
        out: Path,
        err: Path,
        env: dict[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.args = [script, *overrides]
        args = (script, list(overrides), env or user_env(), str(out), str(err), new_session)
        self.process = SERVER.Process(target=_main, args=args)
        self.process.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.process.exitcode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        if self.poll() is None:
            self.process.kill()


def start_cli(
    script: str, *overrides: str, log: Path, env: dict[str, str] | None = None, new_session=False
) -> Run:
    """Start a forked run writing its stdout and stderr to ``log``; ``new_session``: in a
    process group of its own (``os.killpg(run.pid, ...)`` signals its loader workers too)."""
    return Run(script, overrides, log, log, env, new_session)


def _run(
    script: str, overrides: tuple[str, ...], timeout: int, fresh: bool, env: dict | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    """``python <script>.py ...``, or ``spoof-lightning <script> ...`` (``python -m
    spoof_lightning``: the console script exists only once the project is pip-installed);
    the CPU seconds it used (NaN if it was killed)."""
    if fresh:
        python = (
            [str(REPO / script)] if script.endswith(".py") else ["-m", "spoof_lightning", script]
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            [sys.executable, *python, *overrides],
            cwd=REPO,
            env=env or user_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return proc, sum(getattr(after, k) - getattr(before, k) for k in ("ru_utime", "ru_stime"))
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        run = Run(script, overrides, out, err, env)
        try:
            returncode = run.wait(timeout)
        finally:
            run.kill()
        cpu = Path(f"{err}.cpu")
        proc = subprocess.CompletedProcess(run.args, returncode, out.read_text(), err.read_text())
        return proc, float(cpu.read_text()) if cpu.is_file() else math.nan


def run_cli(
    script: str,
    *overrides: str,
    timeout: int = 300,
    check: bool = True,
    fresh: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run train.py / eval.py / a command like a user would; fail with its output on a non-zero exit
    (unless ``check=False``: the caller looks at the exit status)."""
    proc, _ = _run(script, overrides, timeout, fresh, env)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{script} {' '.join(overrides)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def run_cli_user_error(
    script: str, *overrides: str, timeout: int = 300, fresh: bool = False
) -> tuple[str, float]:
    """Run a command that must end in a user error: exit code 2 and one ``error:`` paragraph,
    no traceback. Returns ``(the message, CPU seconds the command used)``."""
    proc, cpu = _run(script, overrides, timeout, fresh)
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 2, f"{script} {' '.join(overrides)} exited {proc.returncode}:{output}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in proc.stderr and len(errors) == 1, output
    return errors[0], cpu
