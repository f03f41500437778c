"""DataLoaders that know where they are, so that a resumed run reads exactly what is left.

Lightning's fit loop stores ``state_dict()`` of a stateful train loader in every checkpoint
and, on a mid-epoch resume, calls ``load_state_dict`` before the first ``iter``. Here the
state is ``{"epoch", "batches"}``: the epoch of the current pass and how many batches of it
were handed to the trainer (counted where they leave the loader, so the batches that worker
processes have prefetched but nobody trained on are not counted). The data order of an
epoch is a function of ``(seed, epoch)``, so nothing else is needed to continue; the state
also records the batch size (and the streams of a streaming loader), so that a resumed run
with other ones is warned that it does not continue the interrupted epoch exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

log = logging.getLogger(__name__)


class _WithoutFirst:
    """A loader's batches of indices, less the first ``leave_out`` (read when iterated)."""

    def __init__(self, batches: Any) -> None:
        self.batches, self.leave_out = batches, 0

    def __iter__(self) -> Iterator[Any]:
        return islice(self.batches, self.leave_out, None)

    def __len__(self) -> int:
        return len(self.batches)


class EpochLoader(DataLoader):
    """A DataLoader whose passes are numbered by epoch and whose position can be saved.

    Each pass starts on its first ``next``: it reads the epoch (``epoch_source()``, which the
    datamodule points at the trainer's epoch; a pass counter when it returns None), seeds the
    loader's own generator from ``(seed, epoch)`` (so loading never draws from the global
    torch RNG, which dropout and SpecAugment use, and worker seeds follow the epoch) and,
    after ``load_state_dict``, leaves out the batches of that epoch that were already trained.
    It starts lazily because Lightning creates the first iterator of a resumed run before the
    trainer's epoch counter is restored to the epoch that runs.

    A map-style pass leaves out index batches, so the skipped items are never loaded; it
    works with any sampler, the distributed one Lightning puts in place under DDP included
    (each rank skips its own batches). An iterable dataset skips in :meth:`start_pass`
    (see :class:`~.streaming.StreamLoader`).
    """

    def __init__(
        self,
        dataset: Any,
        epoch_source: Callable[[], int | None] | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("generator", torch.Generator())  # Lightning passes it when rebuilding
        super().__init__(dataset, **kwargs)
        self.epoch_source, self.seed = epoch_source, seed
        self.epoch, self.batches = 0, 0  # the current pass, and batches it handed out
        self.next_epoch = 0
        self.restored: tuple[int, int] | None = None
        # torch's loader iterators take their batches of indices from ``_index_sampler``
        # (when created, and again on each pass of persistent workers).
        self._batches = _WithoutFirst(super()._index_sampler)

    def layout(self) -> dict[str, int]:
        """What the batches of an epoch depend on besides ``(seed, epoch)``."""
        return {"batch_size": self.batch_size or 1}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches": self.batches, "layout": self.layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["batches"]`` batches
        (applies to the next pass if it is that epoch)."""
        self.restored = (int(state["epoch"]), int(state["batches"]))
        self.next_epoch = self.restored[0]
        saved = state.get("layout", self.layout())
        if saved != self.layout():
            log.warning(
                "the checkpoint's loader had %s, this one has %s: the resumed epoch leaves out "
                "%d batches but does not continue the interrupted one exactly",
                saved,
                self.layout(),
                self.restored[1],
            )

    @property
    def _index_sampler(self) -> _WithoutFirst:
        return self._batches

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
        batches = super().__iter__()
        self._batches.leave_out = 0
        for batch in batches:
            self.batches += 1
            yield batch

    def start_pass(self, epoch: int, skip: int) -> None:
        """Prepare the pass over ``epoch`` that leaves out its first ``skip`` batches: tell
        the sampler the epoch (:class:`~.dataset.EpochSampler`, also through Lightning's
        distributed wrapper) and the iterator what to leave out."""
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        self._batches.leave_out = skip


__all__ = ["EpochLoader"]
