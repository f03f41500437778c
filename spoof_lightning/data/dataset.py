"""Map-style dataset of protocol utterances, its epoch-aware sampler and the collate function.

Randomness (crop offsets, augmentation) comes from a generator seeded with
``(seed, epoch, index)``, so a run is reproducible whatever the number of workers,
and every item of every epoch draws differently. The epoch reaches the workers
inside the sampled index: :class:`EpochSampler` yields ``(epoch, index)`` pairs
(Lightning calls its ``set_epoch``, also through its DDP sampler wrapper).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from spoof_lightning.data.audio import AudioError, PadPolicy, fix_length, load_audio
from spoof_lightning.data.protocols import Utterance

log = logging.getLogger(__name__)
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
OnError = Literal["strict", "skip"]
MAX_REPLACEMENTS = 16


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one item of one epoch."""
    return np.random.default_rng([seed, epoch, index])


def record_bad_file(csv_path: Path | None, path: Path, reason: str, stage: str) -> None:
    """Append ``path,reason,stage`` to the bad-file CSV (one short append, safe across workers)."""
    log.warning("skipping bad audio %s: %s", path, reason)
    if csv_path is None:
        return
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new = not csv_path.exists()
    with open(csv_path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(["path", "reason", "stage", "pid"])
        writer.writerow([str(path), reason, stage, os.getpid()])


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)``; shuffled with a generator seeded by ``(seed, epoch)``.

    Every DDP rank builds the same order, so Lightning's sampler wrapper can shard it.
    ``set_epoch`` is called by Lightning; without it the epoch advances on each pass.
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0) -> None:
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        return ((epoch, int(i)) for i in order)


class UtteranceDataset(Dataset):
    """Waveforms of protocol utterances as dicts (the item contract of ``contracts.py``).

    ``train=True``: random crop + pad to ``crop`` samples, then ``augment``.
    ``train=False``: the first ``crop`` samples, padded (deterministic); with
    ``crop=None`` the full utterance (collate pads the batch and gives ``length``).
    A bad file raises :class:`AudioError` under ``on_error='strict'``; under ``'skip'``
    it is logged, appended to ``bad_file_log`` and replaced by the next readable item.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        sample_rate: int = 16000,
        crop: int | None = 64600,
        train: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        pad: PadPolicy = "repeat",
        on_error: OnError = "strict",
        bad_file_log: str | Path | None = None,
    ) -> None:
        if on_error not in ("strict", "skip"):
            raise ValueError(f"on_error must be 'strict' or 'skip', got {on_error!r}")
        if crop is None and train:
            raise ValueError("training needs a fixed crop length (data.train_crop)")
        self.utterances = list(utterances)
        self.sample_rate, self.crop, self.train = sample_rate, crop, train
        self.augment, self.seed, self.pad, self.on_error = augment, seed, pad, on_error
        self.bad_file_log = Path(bad_file_log) if bad_file_log is not None else None
        self.bad_files: list[tuple[Path, str]] = []

    def __len__(self) -> int:
        return len(self.utterances)

    def waveform(self, utt: Utterance, rng: np.random.Generator) -> np.ndarray:
        """Decode, crop/pad and augment one utterance."""
        x = load_audio(utt.path, self.sample_rate)
        if self.crop is not None:
            x = fix_length(x, self.crop, "random" if self.train else "first", self.pad, rng)
        if self.augment is not None and self.train:
            x = np.asarray(self.augment(x, rng), dtype=np.float32)
            if self.crop is not None and len(x) != self.crop:
                x = fix_length(x, self.crop, "first", self.pad)
        return x

    def make_item(self, utt: Utterance, x: np.ndarray) -> dict[str, Any]:
        return {
            "waveform": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "label": utt.label,
            "utt_id": utt.utt_id,
            "speaker": utt.speaker,
            "attack": utt.attack,
        }

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        for attempt in range(MAX_REPLACEMENTS + 1):
            i = (index + attempt) % len(self.utterances)
            utt = self.utterances[i]
            try:
                x = self.waveform(utt, item_rng(self.seed, epoch, i))
            except AudioError as err:
                if self.on_error == "strict":
                    raise
                self.bad_files.append((utt.path, err.reason))
                record_bad_file(
                    self.bad_file_log, utt.path, err.reason, "train" if self.train else "eval"
                )
                continue
            return self.make_item(utt, x)
        raise AudioError(
            self.utterances[index].path,
            f"this and the next {MAX_REPLACEMENTS} files are unreadable; is the corpus intact?",
        )


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: waveforms ``[B, T]`` (zero-padded to the longest), ``length`` ``[B]``,
    ``label`` long ``[B]``, other tensors stacked (padded with -1 along their first axis
    when lengths differ), strings as lists."""
    lengths = torch.tensor([len(it["waveform"]) for it in items], dtype=torch.long)
    waves = torch.zeros(len(items), int(lengths.max()), dtype=torch.float32)
    for row, it in enumerate(items):
        waves[row, : len(it["waveform"])] = it["waveform"]
    batch: dict[str, Any] = {"waveform": waves, "length": lengths}
    for name in items[0]:
        if name == "waveform":
            continue
        values = [it[name] for it in items]
        if isinstance(values[0], torch.Tensor):
            batch[name] = torch.nn.utils.rnn.pad_sequence(
                values, batch_first=True, padding_value=-1
            )
        elif isinstance(values[0], int | float | bool):
            batch[name] = torch.tensor(values, dtype=torch.long if name == "label" else None)
        else:
            batch[name] = values
    return batch


__all__ = ["EpochSampler", "UtteranceDataset", "collate", "item_rng", "record_bad_file"]
