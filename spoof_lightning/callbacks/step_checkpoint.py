"""``last.ckpt`` within and at the end of every epoch, so that a killed run loses little."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class StepCheckpoint(ModelCheckpoint):
    """Overwrites ``<dirpath>/last.ckpt`` every ``every_n_train_steps`` optimizer steps
    (except after an epoch's last batch) and at the end of every training epoch (after its
    validation).

    The epoch-end save is needed because Lightning (>= 2.6) writes a monitored
    ModelCheckpoint's ``last.ckpt`` only in the epochs where it saved a new best, so without
    it ``resume=true`` would go back to the last improvement. List it after the main
    ModelCheckpoint (as conf/callbacks/default.yaml does): Lightning calls checkpoint
    callbacks in that order, so this ``last.ckpt`` holds the main callback's updated best.
    It keeps no top-k. ``resume=true`` continues from the newest ``last.ckpt`` exactly
    where it was written (see :mod:`spoof_lightning.callbacks.resume_state`).
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

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        # Not on the epoch's last batch: its save follows the validation. A run resumed from
        # the last batch would skip that validation (Lightning counts the epoch as done).
        if idx + 1 < trainer.num_training_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not skipped when a step save fell on the epoch's last batch: that one preceded
        # the validation, whose results (threshold, best score) this save must hold.
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Epoch-end saves happen in :meth:`on_train_epoch_end`."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The save at the end of the last epoch is the final last.ckpt."""
