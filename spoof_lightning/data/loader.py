"""DataLoaders that know where they are, so that a resumed run reads exactly what is left.

Lightning's fit loop stores ``state_dict()`` of a stateful train loader in every checkpoint
and, on a mid-epoch resume, calls ``load_state_dict`` before the first ``iter``. Here the
state is ``{"epoch", "batches"}``: the epoch of the current pass and how many batches of it
were handed to the trainer (counted where they leave the loader, so the batches that worker
processes have prefetched but nobody trained on are not counted). The data order of an
epoch is a function of ``(seed, epoch)``, so nothing else is needed to continue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader


class SkippingBatchSampler(BatchSampler):
    """A BatchSampler whose next pass leaves out its first ``skip`` batches (index lists only:
    the skipped items are never loaded). A pass resets ``skip`` to 0.

    It batches whatever sampler it is given, so it also works with the distributed sampler
    that Lightning puts in its place under DDP (each rank skips its own batches).
    """

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.skip = 0

    def __iter__(self) -> Iterator[list[Any]]:
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(super().__iter__()):
            if i >= skip:
                yield batch


class EpochLoader(DataLoader):
    """A DataLoader whose passes are numbered by epoch and whose position can be saved.

    Each pass starts on its first ``next``: it reads the epoch (``epoch_source()``, which the
    datamodule points at the trainer's epoch; a pass counter when it returns None), seeds the
    loader's own generator from ``(seed, epoch)`` (so loading never draws from the global
    torch RNG, which dropout and SpecAugment use, and worker seeds follow the epoch) and,
    after ``load_state_dict``, leaves out the batches of that epoch that were already trained.
    It starts lazily because Lightning creates the first iterator of a resumed run before the
    trainer's epoch counter is restored to the epoch that runs.

    Map-style datasets need a :class:`SkippingBatchSampler` to skip without reading; an
    iterable dataset skips in :meth:`start_pass` (see :class:`~.streaming.StreamLoader`).
    """

    def __init__(
        self,
        dataset: Any,
        epoch_source: Callable[[], int | None] | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, generator=torch.Generator(), **kwargs)
        self.epoch_source, self.seed = epoch_source, seed
        self.epoch, self.batches = 0, 0  # the current pass, and batches it handed out
        self.next_epoch = 0
        self.restored: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["batches"]`` batches
        (applies to the next pass if it is that epoch)."""
        self.restored = (int(state["epoch"]), int(state["batches"]))
        self.next_epoch = self.restored[0]

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._pass()

    def _pass(self) -> Iterator[Any]:
        epoch = self.epoch_source() if self.epoch_source is not None else None
        epoch = self.next_epoch if epoch is None else epoch
        skip = self.restored[1] if self.restored and self.restored[0] == epoch else 0
        self.restored = None
        self.epoch, self.batches, self.next_epoch = epoch, skip, epoch + 1
        self.generator.manual_seed(int(np.random.default_rng([self.seed, epoch]).integers(2**62)))
        self.start_pass(epoch, skip)
        for batch in super().__iter__():
            self.batches += 1
            yield batch

    def start_pass(self, epoch: int, skip: int) -> None:
        """Prepare the pass over ``epoch`` that leaves out its first ``skip`` batches: tell
        the sampler the epoch (:class:`~.dataset.EpochSampler`, also through Lightning's
        distributed wrapper) and the batch sampler what to skip."""
        set_epoch = getattr(getattr(self.batch_sampler, "sampler", None), "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        if isinstance(self.batch_sampler, SkippingBatchSampler):
            self.batch_sampler.skip = skip
        elif skip:
            raise ValueError("this loader cannot resume mid-epoch: give it a SkippingBatchSampler")


__all__ = ["EpochLoader", "SkippingBatchSampler"]
