"""``last.ckpt`` within epochs, so that a killed or preempted run loses little."""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """Overwrites ``<dirpath>/last.ckpt`` every ``every_n_train_steps`` optimizer steps.

    It only adds mid-epoch saves beside the main ModelCheckpoint (best.ckpt + last.ckpt at
    each validation): it keeps no top-k and, unlike a plain ModelCheckpoint that has not
    saved yet, writes nothing more when training ends. ``resume=true`` continues from
    whichever ``last.ckpt`` is newest, with the epoch and step counters of that moment.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 100) -> None:
        if every_n_train_steps < 1:
            raise ValueError(
                f"callbacks.step_checkpoint.every_n_train_steps must be >= 1, "
                f"got {every_n_train_steps}"
            )
        super().__init__(
            dirpath=dirpath,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The epoch-end checkpoint of the main ModelCheckpoint is the final last.ckpt."""
