"""Atomic file writes: whoever reads a file (or a run that continues) sees the old version or
the new one, never a part of it.

Each file is written under a temporary name beside its target (``.partial-<random>-<name>``,
same directory, so the same file system), flushed to disk with ``fsync``, then renamed over
the target with :func:`os.replace` (atomic on POSIX) and the directory is fsynced, so the
rename itself survives a power cut. On any error, including a signal's exception, the
temporary file is removed. A process killed outright (SIGKILL) can leave one behind; the next
process that takes the directory's lock (:func:`spoof_lightning.rundir.claim`) removes it.

A full disk (or quota) raises :class:`DiskFullError`, one sentence that names the file;
the previous version of the file is untouched. :func:`atomic_files` replaces several files
together: all are written first and renamed into place only when every one is complete, so
a failure leaves the whole previous set (e.g. the score files, metrics and plots of an
evaluation).
"""

import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PARTIAL_PREFIX = ".partial-"
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# torch.save reports a failed write as a RuntimeError without errno: a write that failed with
# less than this free on the target's file system counts as a full disk.
FULL_BELOW_BYTES = 1 << 20


class DiskFullError(OSError):
    """No space left to write a file; the message names it and says what was kept."""


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries (a rename into it), to disk."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full(err: BaseException, directory: Path) -> bool:
    chain: BaseException | None = err
    for _ in range(8):  # the exception, then what it was raised from
        if chain is None:
            break
        if isinstance(chain, OSError) and chain.errno in FULL_ERRNOS:
            return True
        chain = chain.__cause__ or chain.__context__
    if not isinstance(err, OSError | RuntimeError):
        return False
    try:
        return shutil.disk_usage(directory).free < FULL_BELOW_BYTES
    except OSError:
        return False


class FileSet:
    """Temporary paths for a set of targets, renamed into place together by :func:`atomic_files`."""

    def __init__(self) -> None:
        self.temps: dict[Path, Path] = {}
        self.current: Path | None = None  # the target being written (named by a failure)

    def temp(self, target: str | Path) -> Path:
        """A fresh temporary path beside ``target`` (same suffix, for writers that infer the
        format from it); write the file there, e.g. ``figure.savefig(files.temp(path))``."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{target.name}")
        self.temps[target] = temp
        self.current = target
        return temp

    def _commit(self) -> None:
        for temp in self.temps.values():
            _fsync(temp)
        for target, temp in self.temps.items():
            os.replace(temp, target)
        for directory in {target.parent for target in self.temps}:
            _fsync(directory)

    def _discard(self) -> None:
        for temp in self.temps.values():
            temp.unlink(missing_ok=True)


@contextmanager
def atomic_files() -> Iterator[FileSet]:
    """Write files to ``files.temp(target)`` inside the block; they replace their targets
    when the block ends without error, and are removed otherwise."""
    files = FileSet()
    try:
        yield files
        files._commit()
    except BaseException as err:
        target = files.current
        full = target is not None and _disk_full(err, target.parent)
        files._discard()
        if full:
            free = shutil.disk_usage(target.parent).free
            raise DiskFullError(
                f"cannot write {target}: no space left on the device ({free / 1e6:.1f} MB free "
                f"once the unfinished file was removed). Nothing is half-written: "
                f"{target.name} is as it was before (or absent) and no temporary file is left. "
                "Free some space and run again (a training run continues with resume=true)."
            ) from err
        raise


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path that replaces ``target`` when the block ends without error."""
    with atomic_files() as files:
        yield files.temp(target)


@contextmanager
def atomic_new_file(target: str | Path) -> Iterator[Path]:
    """As :func:`atomic_path`, but never replaces a file: the finished file is hard-linked
    into place, which raises :class:`FileExistsError` if ``target`` appeared meanwhile."""
    target = Path(target)
    with atomic_files() as files:
        temp = files.temp(target)
        yield temp
        _fsync(temp)
        os.link(temp, target)
        del files.temps[target]
        temp.unlink()
        _fsync(target.parent)


@contextmanager
def atomic_open(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open()`` a temporary file that replaces ``target`` when the block ends without error."""
    with atomic_path(target) as temp, open(temp, mode, **kwargs) as handle:
        yield handle


def write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(target)


def write_json(target: str | Path, content: Any) -> Path:
    """Write ``content`` as indented JSON to ``target`` atomically."""
    return write_text(target, json.dumps(content, indent=2) + "\n")


def remove_partial_files(directory: str | Path) -> list[Path]:
    """Remove the temporary files that killed writers left under ``directory``.

    Only safe while no other process writes there: call it holding the directory's lock.
    """
    found = sorted(Path(directory).rglob(f"{PARTIAL_PREFIX}*"))
    for path in found:
        path.unlink(missing_ok=True)
    return found


__all__ = [
    "DiskFullError",
    "FileSet",
    "atomic_files",
    "atomic_new_file",
    "atomic_open",
    "atomic_path",
    "remove_partial_files",
    "write_json",
    "write_text",
]
