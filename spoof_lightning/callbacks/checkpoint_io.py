"""Crash-safe checkpoint writing: a kill or a full disk during a save leaves the previous
checkpoint as it was.

Lightning's default writer stages the file in the system temp directory and moves it into
place; when that directory is on another file system (a node-local /tmp, logs on a shared
disk, as on most clusters) the move becomes a copy into the destination, and a job killed
mid-copy leaves a truncated ``last.ckpt``. Here the checkpoint is written beside its
destination and renamed over it (:mod:`spoof_lightning.atomic`).
"""

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from spoof_lightning.atomic import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints with :func:`~spoof_lightning.atomic.atomic_open` (a temporary file
    beside the target, fsynced, then renamed into place); a full disk raises
    :class:`~spoof_lightning.atomic.DiskFullError` naming the checkpoint.

    Remote paths (``s3://...``) keep Lightning's behaviour. Use it as a Trainer plugin
    (conf/trainer/cpu.yaml, inherited by every trainer preset).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)
