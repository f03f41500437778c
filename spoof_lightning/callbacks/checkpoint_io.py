"""Crash-safe checkpoint writing: a kill during a save leaves the previous checkpoint usable.

Lightning's default writer stages the file in the system temp directory and moves it into
place; when that directory is on another file system (a node-local /tmp, logs on a shared
disk, as on most clusters) the move becomes a copy into the destination, and a job killed
mid-copy leaves a truncated ``last.ckpt``. Here the checkpoint is written next to its
destination, flushed to disk, then renamed over it with :func:`os.replace` (atomic on
POSIX and Windows).
"""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

PARTIAL_SUFFIX = ".partial"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes ``<name>.partial`` beside the checkpoint, fsyncs it, then renames it into place.

    Remote paths (``s3://...``) keep Lightning's behaviour. Use it as a Trainer plugin
    (conf/trainer/cpu.yaml, inherited by every trainer preset).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        with partial.open("wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
