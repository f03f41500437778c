"""Run directories: every run gets its own, and one live process at a time writes into it.

Layout: ``<root>/<name>/v<N>``, where ``root`` is ``logs/runs`` (single runs) or the sweep
directory ``logs/multiruns/<sweep_name>``, and ``name`` is ``run_name`` or the sweep job's
name. Hydra's run directory (``hydra.run.dir`` / ``hydra.sweep.subdir``) is chosen by
:func:`run_directory` when the job starts, before Hydra writes ``.hydra/`` into it:

* ``resume=false``: a new version, ``v<max + 1>``, created with an exclusive :func:`os.mkdir`,
  so two runs started at the same moment never share one and no earlier run is touched;
* ``resume=true``: the newest version that holds ``checkpoints/last.ckpt``; a new version
  when there is none (what a re-launched sweep needs for jobs that never ran);
* ``resume=v<N>`` (or ``<N>``): that version; ``resume=<path>``: that run directory (a
  run-name folder means its newest version with a ``last.ckpt``).

The chosen directory is locked (:func:`lock`) by the process of global rank 0 for as long
as it lives. Processes that join a run do not choose: DDP workers started by Lightning get
``hydra.run.dir=<the directory>``; the tasks of one SLURM job step (one process per device,
e.g. the submitit launcher) wait for task 0's choice, which it records in the directory.
"""

import fcntl
import functools
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spoof_lightning.atomic import remove_partial_files, write_text
from spoof_lightning.errors import ConfigError

VERSION = re.compile(r"v([1-9][0-9]*)")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=+@%-]*")
MAX_NAME = 200
LOCK_FILE = "run.lock"
LAUNCH_FILE = ".launch"  # the SLURM job step that chose this directory (multi-task jobs)
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
LAUNCH_WAIT_S = 600


class RunDirError(RuntimeError):
    """A run directory that cannot be used now (another process holds it); names both."""


def check_name(key: str, value: Any) -> str:
    """``value`` if it can name a directory (``run_name``, ``sweep_name``), else ConfigError."""
    text = str(value)
    if len(text) > MAX_NAME or ".." in text or not NAME.fullmatch(text):
        raise ConfigError(
            f"{key}={text!r} cannot name a run directory: use letters, digits and - _ . , = + "
            f"@ %, starting with a letter, digit or _ (no path separators, no '..', at most "
            f"{MAX_NAME} characters)"
        )
    return text


def versions(parent: Path) -> list[Path]:
    """The ``v<N>`` directories of a run name, oldest first."""
    if not parent.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in parent.iterdir() if (m := VERSION.fullmatch(p.name))]
    return [path for _, path in sorted(found) if path.is_dir()]


def new_version(parent: Path) -> Path:
    """Create and return the next free ``v<N>`` under ``parent`` (exclusive mkdir)."""
    parent.mkdir(parents=True, exist_ok=True)
    existing = versions(parent)
    number = _version_number(existing[-1]) + 1 if existing else 1
    while True:
        path = parent / f"v{number}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def latest_resumable(parent: Path) -> Path | None:
    """The newest version under ``parent`` that holds ``checkpoints/last.ckpt``."""
    return next((p for p in reversed(versions(parent)) if (p / LAST_CHECKPOINT).is_file()), None)


def _wanted(resume: Any) -> bool | int | Path:
    """``resume`` as False (new run), True (latest), a version number or a path."""
    if isinstance(resume, bool) or resume is None:
        return bool(resume)
    if isinstance(resume, int):
        if resume < 1:
            raise ConfigError(f"resume={resume}: versions are numbered from 1")
        return resume
    text = str(resume).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    match = VERSION.fullmatch(text)
    return int(match.group(1)) if match else Path(text).expanduser()


def _explicit(path: Path, resume: Any) -> Path:
    if not path.is_dir():
        raise ConfigError(
            f"resume={resume}: {path} is not a directory (resume=true continues the latest run "
            "of run_name, resume=v<N> one version of it, resume=<path> a run directory)"
        )
    if versions(path) and not (path / "checkpoints").exists():  # a run-name folder
        found = latest_resumable(path)
        if found is None:
            raise ConfigError(f"resume={resume}: no version under {path} holds {LAST_CHECKPOINT}")
        return found
    return path


def _launch() -> tuple[str, int] | None:
    """``(id, task)`` of a SLURM job step with several tasks: they share one run directory."""
    env = os.environ
    if int(env.get("SLURM_NTASKS", "1")) < 2 or "SLURM_PROCID" not in env:
        return None
    keys = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT")
    return "/".join(env.get(key, "") for key in keys), int(env["SLURM_PROCID"])


def _wait_for_task_zero(parent: Path, launch: str, job_num: Any) -> Path:
    deadline = time.monotonic() + LAUNCH_WAIT_S
    while time.monotonic() < deadline:
        for path in reversed(versions(parent)):
            marker = path / LAUNCH_FILE
            if marker.is_file() and marker.read_text().strip() == f"{launch}/{job_num}":
                return path
        time.sleep(0.2)
    raise RunDirError(
        f"waited {LAUNCH_WAIT_S} s for task 0 of SLURM job step {launch} to choose its run "
        f"directory under {parent}; did task 0 fail?"
    )


def _choose(parent: Path, resume: Any, job_num: Any) -> Path:
    wanted = _wanted(resume)
    if isinstance(wanted, Path):
        return _explicit(wanted, resume)
    if not isinstance(wanted, bool):
        path = parent / f"v{wanted}"
        if not path.is_dir():
            known = ", ".join(p.name for p in versions(parent)) or "none"
            raise ConfigError(f"resume={resume}: {path} does not exist (versions: {known})")
        return path
    launch = _launch()
    if launch is not None and launch[1] != 0:
        return _wait_for_task_zero(parent, launch[0], job_num)
    chosen = (latest_resumable(parent) if wanted else None) or new_version(parent)
    if launch is not None:
        write_text(chosen / LAUNCH_FILE, f"{launch[0]}/{job_num}\n")
    return chosen


@functools.cache  # Hydra and Lightning's DDP launcher resolve hydra.run.dir more than once
def run_directory(root: str, name: str, resume: Any = False, job_num: Any = None) -> str:
    """The run directory of ``name`` under ``root`` for ``resume`` (see the module docstring),
    locked by this process when it has global rank 0. ``job_num``: the sweep job's number."""
    if name in ("", ".", "..") or "/" in name or os.sep in name:
        raise ConfigError(f"run_name {name!r} must be one directory name")
    chosen = _choose(Path(root) / name, resume, job_num).absolute()
    if _global_rank() == 0:
        lock(chosen)
    return str(chosen)


def _global_rank() -> int:
    """The rank a launcher gave this process, read from the environment as Lightning does
    before a Trainer exists (this module stays free of heavy imports)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


# ------------------------------------------------------------------------ lock

_HELD: dict[Path, int] = {}  # locked directory -> the file descriptor holding its flock


def _forget_locks_in_child() -> None:
    """A forked child (DataLoader worker) drops its copies: the lock stays its parent's and
    ends with it, even if the child lives on a moment longer."""
    for fd in _HELD.values():
        os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def _owner(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"PID {info['pid']} on {info['host']}, started {info['started']} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


def lock(directory: str | Path, owner_file: str | None = LOCK_FILE) -> None:
    """Hold a lock on ``directory`` until this process ends (a no-op when it already does).

    :func:`fcntl.flock` on ``<directory>/<owner_file>``, where the process writes its PID,
    host, start time and command (``owner_file=None``: on the directory itself, which then
    holds no extra file). The kernel releases it when the process dies, even by SIGKILL, so
    a lock left by a dead process never blocks. Raises :class:`RunDirError` naming the
    live process that holds it.
    """
    directory = Path(directory).absolute()
    if directory in _HELD:
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / owner_file if owner_file else directory
    flags = os.O_RDWR | os.O_CREAT if owner_file else os.O_RDONLY | os.O_DIRECTORY
    fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = _owner(path) if owner_file else "another process"
        raise RunDirError(
            f"{directory} is in use by {who}. Two processes must not write into one "
            "directory; wait for that one to end, or start a new run (leave out resume= and "
            "hydra.run.dir) or evaluation (another output_dir)."
        ) from None
    if owner_file:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
    _HELD[directory] = fd


def claim(directory: str | Path, owner_file: str | None = LOCK_FILE) -> list[Path]:
    """:func:`lock` ``directory`` for this process, then remove what killed writers left in
    it (unfinished ``.partial-*`` files of :mod:`spoof_lightning.atomic`); returns those."""
    lock(directory, owner_file)
    return remove_partial_files(directory)


# ------------------------------------------------------------------------ reading runs


def run_label(run_dir: Path) -> str:
    """``<name>/v<N>`` for a versioned run directory, else its name."""
    versioned = VERSION.fullmatch(run_dir.name)
    return f"{run_dir.parent.name}/{run_dir.name}" if versioned else run_dir.name


def newest_versions(run_dirs: Iterable[Path]) -> list[Path]:
    """Of several versions of one run name keep the newest; other directories as they are."""
    newest: dict[Path, Path] = {}
    for path in sorted(run_dirs, key=_version_number):  # a newer version replaces an older
        newest[path.parent if VERSION.fullmatch(path.name) else path] = path
    return sorted(newest.values())


def _version_number(path: Path) -> int:
    match = VERSION.fullmatch(path.name)
    return int(match.group(1)) if match else 0


def requeue_overrides(overrides: Iterable[str], run_dir: str | Path) -> list[str]:
    """A requeued job's overrides: the same ones, with ``resume=<its run directory>``."""
    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != "resume"]
    quoted = str(run_dir).replace("'", "\\'")  # a quoted Hydra value: commas, = are plain
    return [*kept, f"resume='{quoted}'"]


__all__ = [
    "RunDirError",
    "check_name",
    "claim",
    "latest_resumable",
    "lock",
    "new_version",
    "newest_versions",
    "requeue_overrides",
    "run_directory",
    "run_label",
    "versions",
]
