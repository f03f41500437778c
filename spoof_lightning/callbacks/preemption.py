"""Stop training at the first optimizer-step boundary after a preemption signal, saved."""

from pathlib import Path
from typing import Any

import lightning as L
import torch

from spoof_lightning import preemption
from spoof_lightning.preemption import Preempted


class PreemptionCheckpoint(L.Callback):
    """On SIGTERM, SIGUSR1 or SIGUSR2 during training (see :mod:`spoof_lightning.preemption`),
    writes ``path`` (the run's ``last.ckpt``) at the next optimizer-step boundary and raises
    :class:`~spoof_lightning.preemption.Preempted`.

    A step boundary is the end of a batch after which the optimizer stepped (the last
    micro-batch of a gradient accumulation) or the end of an epoch (after its validation).
    The checkpoint is an ordinary ``last.ckpt``, the same as
    :class:`~spoof_lightning.callbacks.step_checkpoint.StepCheckpoint` writes there. Under
    DDP the processes agree at every step boundary (one all-reduce of the signal number), so
    all stop at the same step even when only one of them got the signal.

    train.py adds it to every run. (A plain callback, not a Lightning ``Checkpoint``, so that
    ``trainer.enable_checkpointing=false`` still works; Lightning calls it before the
    checkpoint callbacks, so their saves at the same boundary are not repeated.)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._step_at_batch_start = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        preemption.install()  # over Lightning's SIGTERM handler, set when fit() started
        preemption.defer(True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        preemption.defer(False)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        preemption.defer(False)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step != self._step_at_batch_start:  # the optimizer stepped
            self._stop_if_signalled(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_signalled(trainer)

    def _stop_if_signalled(self, trainer: L.Trainer) -> None:
        signum = preemption.received() or 0
        if trainer.world_size > 1:
            local = torch.tensor(signum, device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(local, reduce_op="max"))
        if signum:
            trainer.save_checkpoint(self.path)
            raise Preempted(signum, self.path)
