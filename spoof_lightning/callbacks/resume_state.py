"""The global RNG states in every checkpoint, put back where the saved run stood.

Together with the data position that the train loader saves (:mod:`spoof_lightning.data.loader`)
and Lightning's own loop, optimizer and scheduler states, this makes a resumed run draw the
same dropout masks, SpecAugment spans, ... as an uninterrupted one. The states are taken
when a checkpoint is written and set again just before the first training batch after a
resume: whatever model building, Lightning and the loaders draw in between does not count.
Nothing between a save and the next training batch draws from these generators in an
uninterrupted run (validation runs in eval mode; loaders have their own generator).

Item randomness (crops, augmentation) needs no state: it is seeded per item and epoch
(:func:`spoof_lightning.data.dataset.item_rng`), in whichever worker process.
Under DDP the checkpoint holds rank 0's states, which every rank gets back: seeded alike
at the start, ranks draw alike.
"""

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from spoof_lightning.loggers import ResumableCSVLogger

log = logging.getLogger(__name__)


def rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU, CUDA) global generators, as
    tensors and plain numbers (checkpoints load with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    states: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    numpy = states["numpy"]
    key = numpy["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning(
                "the checkpoint has CUDA RNG states of %d devices, this machine %d: not restored",
                len(cuda),
                torch.cuda.device_count(),
            )


class ResumeState(Callback):
    """Saves the global RNG states with every checkpoint and restores them on resume.

    When a fit starts it also drops from ``metrics.csv`` the rows that a killed run logged
    after the checkpoint this fit continues from (all of them when it starts afresh): the
    rows of its ``global_step`` and later, which this fit logs again. Lightning logs a row
    with the number of optimizer steps before it, so the row of a checkpoint's last step,
    written just after the checkpoint, has the step before and is kept.
    """

    def __init__(self) -> None:
        self.restored: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restored = state_dict["rng"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.drop_steps_from(trainer.global_step)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.restored is not None:
            set_rng_states(self.restored)
            self.restored = None
