"""Map-style dataset of protocol utterances, the per-item transform, sampler and collate.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from spoof_lightning.data.audio import (
    AudioError,
    PadPolicy,
    crop_to,
    fix_length,
    load_audio,
    pad_to,
    zero_pad,
)
from spoof_lightning.data.corpora.had import parse_segments
from spoof_lightning.data.protocols import BONAFIDE, SPOOF, Utterance

log = logging.getLogger(__name__)
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
OnError = Literal["strict", "skip"]
BAD_FILES_CSV = "bad_files.csv"
MAX_REPLACEMENTS = 16


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one item of one epoch."""
    return np.random.default_rng([seed, epoch, index])


def record_bad_file(csv_path: Path | None, source: str | Path, reason: str, stage: str) -> None:
    """Log a skipped file and append it to ``csv_path`` (one short append; safe across workers)."""
    log.warning("skipping bad audio %s: %s", source, reason)
    if csv_path is None:
        return
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new = not csv_path.exists()
    with open(csv_path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(["path", "reason", "stage", "pid"])
        writer.writerow([str(source), reason, stage, os.getpid()])


def sample_targets(utt: Utterance, n: int, sample_rate: int) -> np.ndarray:
    """Per-sample targets ``[n]``: +1 genuine, -1 fake, from HAD segments or the label.

    Samples after the last segment take its flag (segment times are rounded to 10 ms).
    """
    segments = utt.meta.get("segments")
    if not segments:
        return np.full(n, 1.0 if utt.label == 1 else -1.0, dtype=np.float32)
    parsed = parse_segments(segments)
    out = np.full(n, 1.0 if parsed[0][2] else -1.0, dtype=np.float32)
    for i, (start, end, genuine) in enumerate(parsed):
        b = n if i == len(parsed) - 1 else round(end * sample_rate)
        out[round(start * sample_rate) : b] = 1.0 if genuine else -1.0
    return out


def frame_labels(targets: np.ndarray, hop: int) -> np.ndarray:
    """Pool per-sample targets (+1 genuine, -1 fake, 0 padding) into frames of ``hop`` samples.

    A frame is 0 (fake) when any sample is fake, 1 when it has genuine samples only,
    -1 (ignore) when it is all padding.
    """
    frames = -(-len(targets) // hop)
    t = np.zeros(frames * hop, dtype=np.float32)
    t[: len(targets)] = targets
    t = t.reshape(frames, hop)
    return np.where((t < 0).any(1), 0, np.where((t > 0).any(1), 1, -1)).astype(np.int64)


@dataclass
class ItemTransform:
    """Turns a decoded utterance into a dataset item (shared by map-style and streaming).

    ``train``: random crop + pad to ``crop`` samples, then ``augment(x, rng)``.
    Otherwise the first ``crop`` samples, padded, or the whole utterance when ``crop``
    is None. ``min_samples`` is the shortest waveform the front-end and model accept
    (train.py and eval.py probe it, see :func:`spoof_lightning.build.min_input_samples`):
    without a crop, shorter utterances are padded to it; a crop may not be shorter.

    With ``frame_hop`` (seconds) the item also holds ``frame_labels`` (1 genuine, 0 fake,
    -1 padding; HAD segments, else the utterance label), cropped with the waveform.
    Padding carries no target: its frames are -1 (ignored by losses and metrics), also
    where repeat-padding copies the waveform. The label of an utterance with HAD segments
    is that of the samples kept: a crop without a fake sample is bona fide, a crop with
    any fake sample is spoofed.
    """

    sample_rate: int = 16000
    crop: int | None = 64600
    train: bool = False
    augment: Augment | None = None
    pad: PadPolicy = "repeat"
    frame_hop: float | None = None
    min_samples: int = 1

    def __post_init__(self) -> None:
        if self.crop is None and self.train:
            raise ValueError("training needs a fixed crop length (data.train_crop)")
        if self.crop is not None and self.crop < self.min_samples:
            raise ValueError(
                f"a crop of {self.crop} samples is shorter than the {self.min_samples} samples "
                "the front-end and model need"
            )

    def __call__(self, utt: Utterance, x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        segmented = bool(utt.meta.get("segments")) and utt.label in (BONAFIDE, SPOOF)
        targets = None
        if self.frame_hop is not None or segmented:
            targets = sample_targets(utt, len(x), self.sample_rate)
        if self.crop is not None:
            policy = "random" if self.train else "first"
            if targets is None:
                x = crop_to(x, self.crop, policy, rng)
            else:
                x, targets = crop_to(np.stack([x, targets]), self.crop, policy, rng)
        label = utt.label
        if segmented:
            label = SPOOF if (targets < 0).any() else BONAFIDE
        length = self.crop if self.crop is not None else max(len(x), self.min_samples)
        x = pad_to(x, length, self.pad)
        if self.augment is not None and self.train:
            x = np.asarray(self.augment(x, rng), dtype=np.float32)
            if len(x) != length:
                x = fix_length(x, length, "first", self.pad)
        item: dict[str, Any] = {
            "waveform": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "label": label,
            "utt_id": utt.utt_id,
            "speaker": utt.speaker,
            "attack": utt.attack,
        }
        if self.frame_hop is not None:
            hop = max(1, round(self.frame_hop * self.sample_rate))
            padded = zero_pad(targets, length)  # 0: no target
            item["frame_labels"] = torch.from_numpy(frame_labels(padded, hop))
        return item


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

    ``transform`` crops, pads and augments (see :class:`ItemTransform`). A bad file
    raises :class:`AudioError` under ``on_error='strict'``; under ``'skip'`` it is
    logged, appended to ``bad_file_log`` and replaced by the next readable item (which
    keeps its own utt_id: an evaluation run then scores that utterance twice and the
    bad one not at all, so the CSV must be read with the scores).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        transform: ItemTransform | None = None,
        seed: int = 0,
        on_error: OnError = "strict",
        bad_file_log: str | Path | None = None,
    ) -> None:
        if on_error not in ("strict", "skip"):
            raise ValueError(f"on_error must be 'strict' or 'skip', got {on_error!r}")
        if not utterances:
            raise ValueError("UtteranceDataset needs at least one utterance")
        self.utterances = list(utterances)
        self.transform = transform or ItemTransform()
        self.seed, self.on_error = seed, on_error
        self.bad_file_log = Path(bad_file_log) if bad_file_log is not None else None

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        for attempt in range(MAX_REPLACEMENTS + 1):
            i = (index + attempt) % len(self.utterances)
            utt = self.utterances[i]
            try:
                x = load_audio(utt.path, self.transform.sample_rate)
            except AudioError as err:
                if self.on_error == "strict":
                    raise
                stage = "train" if self.transform.train else "eval"
                record_bad_file(self.bad_file_log, utt.path, err.reason, stage)
                continue
            return self.transform(utt, x, item_rng(self.seed, epoch, i))
        raise AudioError(
            self.utterances[index].path,
            f"this and the next {MAX_REPLACEMENTS} files are unreadable; is the corpus intact?",
        )


def _stack(tensors: list[torch.Tensor], padding: float) -> torch.Tensor:
    """Stack 1-D tensors, right-padding shorter ones with ``padding``.

    The copy is NumPy's: torch's own (``torch.stack``, ``pad_sequence``) splits it over the
    intra-op threads, which on a busy machine made a batch of 32 four-second waveforms take
    ~100x longer (~0.4 s instead of 4 ms), and with ``num_workers=0`` collation runs in the
    training process with all its threads (DataLoader workers use one thread anyway).
    """
    arrays = [t.numpy() for t in tensors]
    longest = max(len(a) for a in arrays)
    if all(len(a) == longest for a in arrays):
        return torch.from_numpy(np.stack(arrays))
    out = np.full((len(arrays), longest), padding, dtype=arrays[0].dtype)
    for row, a in zip(out, arrays, strict=True):
        row[: len(a)] = a
    return torch.from_numpy(out)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: waveforms ``[B, T]`` (zero-padded to the longest) with ``length`` ``[B]``,
    ``label`` long ``[B]``, other tensors stacked (padded with -1 along their first axis
    when lengths differ, e.g. ``frame_labels``), strings as lists."""
    waves = [it["waveform"] for it in items]
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch: dict[str, Any] = {"waveform": _stack(waves, 0.0), "length": lengths}
    for name in items[0]:
        if name == "waveform":
            continue
        values = [it[name] for it in items]
        if isinstance(values[0], torch.Tensor):
            batch[name] = _stack(values, -1)
        elif isinstance(values[0], int | float | bool):
            batch[name] = torch.tensor(values, dtype=torch.long if name == "label" else None)
        else:
            batch[name] = values
    return batch


def utterance_groups(batch: Mapping[str, Any]) -> list[tuple[list[int], torch.Tensor]]:
    """``(batch indices, waveform)`` pieces to score: the whole batch when its utterances
    have one length, else each utterance on its own samples (``eval_crop: null``), so zero
    padding never changes a score."""
    waveform: torch.Tensor = batch["waveform"]
    lengths = batch.get("length")
    if lengths is None or bool((lengths == waveform.shape[1]).all()):
        return [(list(range(waveform.shape[0])), waveform)]
    return [([i], waveform[i : i + 1, : int(n)]) for i, n in enumerate(lengths)]


__all__ = [
    "BAD_FILES_CSV",
    "EpochSampler",
    "ItemTransform",
    "UtteranceDataset",
    "collate",
    "frame_labels",
    "item_rng",
    "record_bad_file",
    "sample_targets",
    "utterance_groups",
]
