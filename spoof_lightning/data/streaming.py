"""Streaming (iterable) datasets: lazy reads, (rank, worker) sharding, buffer shuffling.

Each epoch the units of the source (files, or tar shards of many samples) are put in
an order seeded by ``(seed, epoch)``, the same on every rank, and their samples laid
end to end as positions ``0 .. N-1``. With S = world_size x num_workers streams, the
stream ``rank * num_workers + worker`` reads the contiguous positions
``[s * n, (s + 1) * n)``, so every stream opens only its own files or shards (plus
at most two partial shards) and reads them lazily.

Equal work on every rank (so DDP never waits on a rank that ran out of data):
``n = ceil(N / S)`` and positions past ``N`` wrap to the start of the epoch order
(``uneven='wrap'``: every sample is seen at least once per epoch, fewer than S
twice); ``uneven='drop'`` uses ``n = floor(N / S)`` instead (fewer than S samples are
left out of the epoch, different ones each epoch when shuffled). Every rank then yields
the same number of batches: ``num_workers * ceil(n / batch_size)``, which
:class:`StreamLoader` reports as its length.

A shuffle buffer (``shuffle_buffer`` entries of undecoded samples) mixes the samples
within a stream; it matters for shards, whose samples are stored in a fixed order.
A resumed epoch leaves out the batches already trained: batch ``j`` of an epoch comes from
the stream of worker ``j % num_workers`` (the DataLoader asks its workers in turn, and all
streams have the same length), so each stream drops its share of samples from its start,
before decoding, and the workers' streams are rotated so that the first worker asked
serves the next batch.
Under ``on_error='skip'`` a sample that cannot be decoded (or the rest of a damaged
shard) is recorded and replaced by a copy of the stream's previous good item, so the
stream keeps its length.
"""

from __future__ import annotations

import io
import json
import logging
import math
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from spoof_lightning.data.audio import AUDIO_EXTENSIONS, AudioError, decode_audio, load_audio
from spoof_lightning.data.dataset import ItemTransform, OnError, item_rng, record_bad_file
from spoof_lightning.data.loader import EpochLoader
from spoof_lightning.data.protocols import Utterance

log = logging.getLogger(__name__)
Uneven = Literal["wrap", "drop"]
# A sample before decoding: its entry and a function returning the waveform at the model rate.
Pending = tuple[int, Utterance, Callable[[], np.ndarray]]


class FileSource:
    """Utterances read one file at a time (each file is a unit of one sample)."""

    def __init__(self, utterances: Sequence[Utterance], sample_rate: int) -> None:
        if not utterances:
            raise ValueError("a streaming source needs at least one utterance")
        self.utterances = list(utterances)
        self.sample_rate = sample_rate
        self.sizes = [1] * len(self.utterances)

    def read(self, unit: int, start: int, stop: int) -> Iterator[tuple[Utterance, Callable]]:
        utt = self.utterances[unit]
        yield utt, lambda: load_audio(utt.path, self.sample_rate)


@dataclass(frozen=True)
class Shard:
    path: Path
    count: int


class ShardSource:
    """WebDataset-format tar shards written by :mod:`spoof_lightning.data.shards`.

    Each sample is the members ``<key>.json`` (utt_id, label, speaker, attack, meta)
    and ``<key>.<flac|wav|...>`` (the original file's bytes); ``index.json`` lists
    the shards with their sample counts.
    """

    def __init__(self, index: Path, sample_rate: int) -> None:
        self.index = Path(index)
        info = json.loads(self.index.read_text())
        self.shards = [
            Shard(self.index.parent / s["name"], int(s["count"])) for s in info["shards"]
        ]
        if not self.shards:
            raise ValueError(f"{self.index}: no shards listed")
        self.sizes = [s.count for s in self.shards]
        self.sample_rate = sample_rate

    def utterances(self) -> list[Utterance]:
        """The entries of every shard, in order (reads only the small json members)."""
        out = []
        for unit in range(len(self.shards)):
            out += [utt for utt, _ in self.read(unit, 0, self.sizes[unit], audio=False)]
        return out

    def read(
        self, unit: int, start: int, stop: int, audio: bool = True
    ) -> Iterator[tuple[Utterance, Callable]]:
        """Samples ``start .. stop-1`` of shard ``unit``; data of earlier samples is not read."""
        shard = self.shards[unit]
        with tarfile.open(shard.path, "r:") as tar:
            for position, (key, members) in enumerate(_groups(tar)):
                if position >= stop:
                    return
                if position < start:
                    continue
                yield self._sample(tar, shard.path, key, members, audio)

    def _sample(
        self,
        tar: tarfile.TarFile,
        shard: Path,
        key: str,
        members: dict[str, tarfile.TarInfo],
        read_audio: bool,
    ) -> tuple[Utterance, Callable]:
        meta = json.loads(_read(tar, members["json"])) if "json" in members else {}
        audio = next((members[e] for e in _EXTS if e in members), None)
        name = f"{shard}#{key}"
        utt = Utterance(
            meta.get("utt_id", key),
            Path(name),
            int(meta.get("label", -1)),
            meta.get("speaker", "-"),
            meta.get("attack", "-"),
            meta.get("meta", {}),
        )
        if audio is None or not read_audio:

            def missing() -> np.ndarray:
                raise AudioError(name, "no audio member in the shard sample")

            return utt, missing
        data = _read(tar, audio)
        return utt, lambda: decode_audio(io.BytesIO(data), self.sample_rate, name)


_EXTS = tuple(e.lstrip(".") for e in AUDIO_EXTENSIONS)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise tarfile.ReadError(f"{member.name} is not a regular file")
    return fh.read()


def _groups(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, tarfile.TarInfo]]]:
    """Consecutive members sharing a key (the name up to its first dot), WebDataset style."""
    key, members = None, {}
    for member in tar:
        if not member.isfile():
            continue
        stem, _, ext = member.name.partition(".")
        if stem != key and members:
            yield key, members
            members = {}
        key = stem
        members[ext] = member
    if members:
        yield key, members


class StreamingDataset(IterableDataset):
    """Iterable dataset over a :class:`FileSource` or :class:`ShardSource` (module docstring).

    ``rank``/``world_size`` default to torch.distributed's when it is initialised;
    ``num_workers`` must match the loader's (:class:`StreamLoader` sets it).
    """

    def __init__(
        self,
        source: FileSource | ShardSource,
        transform: ItemTransform,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer: int = 0,
        uneven: Uneven = "wrap",
        rank: int | None = None,
        world_size: int | None = None,
        on_error: OnError = "strict",
        bad_file_log: str | Path | None = None,
    ) -> None:
        if uneven not in ("wrap", "drop"):
            raise ValueError(f"uneven must be 'wrap' or 'drop', got {uneven!r}")
        self.source, self.transform = source, transform
        self.shuffle, self.seed, self.uneven = shuffle, seed, uneven
        self.shuffle_buffer = shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.on_error = on_error
        self.bad_file_log = Path(bad_file_log) if bad_file_log is not None else None
        self.num_workers, self.batch_size = 0, 1
        # (epoch, batches of it to leave out) in shared memory: persistent workers see it too.
        self._pass = torch.zeros(2, dtype=torch.int64).share_memory_()
        self.total = sum(source.sizes)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Set the epoch of the next pass and how many of its first batches to leave out
        (batches of ``batch_size``, as the loader makes them; nonzero on a resume)."""
        self._pass[0], self._pass[1] = epoch, skip_batches

    def distributed(self) -> tuple[int, int]:
        """``(rank, world_size)``: as given, else torch.distributed's, else ``(0, 1)``."""
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def per_stream(self, streams: int) -> int:
        n = math.ceil(self.total / streams) if self.uneven == "wrap" else self.total // streams
        if n == 0:
            raise ValueError(
                f"{self.total} samples cannot feed {streams} streams with uneven='drop'"
            )
        return n

    def samples_per_rank(self) -> int:
        """Samples per rank and epoch (no ``__len__``: its meaning is ambiguous for
        iterable datasets; :class:`StreamLoader` has the exact number of batches)."""
        workers = max(1, self.num_workers)
        return self.per_stream(self.distributed()[1] * workers) * workers

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per rank and epoch (each worker batches its own stream)."""
        workers = max(1, self.num_workers)
        n = self.per_stream(self.distributed()[1] * workers)
        return workers * (n // batch_size if drop_last else math.ceil(n / batch_size))

    def _segments(self, epoch: int, q: int, q_end: int) -> Iterator[tuple[int, int, int, int]]:
        """``(unit, start, stop, first_position)`` pieces of the positions ``[q, q_end)``.

        Positions index the epoch order repeated end to end; ``q % N`` is the position
        within the epoch order. Stream ``s`` covers ``[s * n, (s + 1) * n)``.
        """
        sizes = self.source.sizes
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(sizes))
        else:
            order = np.arange(len(sizes))
        bounds = np.concatenate([[0], np.cumsum([sizes[u] for u in order])])
        while q < q_end:
            p = q % self.total
            hi = p + min(q_end - q, self.total - p)  # stay within one lap
            q += hi - p
            while p < hi:
                k = int(np.searchsorted(bounds, p, side="right")) - 1
                stop = min(hi, int(bounds[k + 1]))
                yield int(order[k]), p - int(bounds[k]), stop - int(bounds[k]), p
                p = stop

    def _pending(self, epoch: int, q: int, q_end: int) -> Iterator[Pending | int]:
        """Undecoded samples of positions ``[q, q_end)``; an int ``k`` stands for k samples
        of a bad shard."""
        for unit, start, stop, position in self._segments(epoch, q, q_end):
            produced = 0
            try:
                for utt, load in self.source.read(unit, start, stop):
                    yield position + produced, utt, load
                    produced += 1
            except (OSError, tarfile.TarError) as err:
                if self.on_error == "strict":
                    raise AudioError(_unit_name(self.source, unit), f"unreadable ({err})") from err
                record_bad_file(
                    self.bad_file_log, _unit_name(self.source, unit), str(err), "stream"
                )
            if produced < stop - start:
                yield stop - start - produced

    def _shuffled(self, items: Iterator[Pending | int], rng: np.random.Generator):
        if self.shuffle_buffer <= 1:
            yield from items
            return
        buffer: list[Pending | int] = []
        for item in items:
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                i = int(rng.integers(len(buffer)))
                buffer[i], buffer[-1] = buffer[-1], buffer[i]
                yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, skip_batches = (int(v) for v in self._pass)
        info = get_worker_info()
        workers = info.num_workers if info is not None else 1
        # The loader asks worker 0 first: after ``skip_batches`` it must serve the stream
        # of the next batch's worker, so a resumed pass rotates the workers' streams.
        worker = ((info.id if info is not None else 0) + skip_batches) % workers
        rank, world_size = self.distributed()
        streams = world_size * workers
        stream = rank * workers + worker
        rng = np.random.default_rng([self.seed, epoch, stream, 1])
        n = self.per_stream(streams)
        pending = self._shuffled(self._pending(epoch, stream * n, (stream + 1) * n), rng)
        skip = len(range(worker, skip_batches, workers)) * self.batch_size  # this worker's share
        pending = _without_first(pending, skip)
        owed = 0  # stand-ins to emit once a good item exists
        last: dict[str, Any] | None = None
        for item in self._decoded(epoch, pending):
            if isinstance(item, int):
                owed += item
                continue
            last = item
            for _ in range(owed + 1):
                yield item
            owed = 0
        if owed and last is None:  # the whole stream was bad: borrow the next readable sample
            later = self._pending(epoch, (stream + 1) * n, (stream + 1) * n + self.total)
            last = next((it for it in self._decoded(epoch, later) if not isinstance(it, int)), None)
            if last is None:
                raise AudioError(f"stream {stream} of {streams}", "no readable sample at all")
        for _ in range(owed):
            yield last

    def _decoded(
        self, epoch: int, pending: Iterator[Pending | int]
    ) -> Iterator[dict[str, Any] | int]:
        """Items of ``pending``; under ``skip`` a bad sample becomes the int 1 (owed)."""
        for entry in pending:
            if isinstance(entry, int):
                yield entry
                continue
            position, utt, load = entry
            try:
                yield self.transform(utt, load(), item_rng(self.seed, epoch, position))
            except AudioError as err:
                if self.on_error == "strict":
                    raise
                record_bad_file(self.bad_file_log, err.path, err.reason, "stream")
                yield 1


def _without_first(items: Iterator[Pending | int], count: int) -> Iterator[Pending | int]:
    """``items`` less its first ``count`` samples (an int entry stands for that many)."""
    for item in items:
        size = item if isinstance(item, int) else 1
        if count >= size:
            count -= size
            continue
        yield item if count == 0 else size - count
        count = 0


def _unit_name(source: FileSource | ShardSource, unit: int) -> str:
    if isinstance(source, ShardSource):
        return str(source.shards[unit].path)
    return str(source.utterances[unit].path)


class StreamLoader(EpochLoader):
    """:class:`~.loader.EpochLoader` for a :class:`StreamingDataset`.

    At the start of every pass it tells the dataset the epoch and the batches to leave out
    (shared with running workers; Lightning never calls ``set_epoch`` on a loader of an
    iterable dataset), and it reports the exact number of batches per rank.
    """

    def __init__(
        self,
        dataset: StreamingDataset,
        epoch_source: Callable[[], int | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, epoch_source, dataset.seed, **kwargs)
        dataset.num_workers, dataset.batch_size = self.num_workers, self.batch_size or 1

    def layout(self) -> dict[str, int]:
        streams = self.dataset.distributed()[1] * max(1, self.num_workers)
        return {"batch_size": self.batch_size or 1, "streams": streams}

    def start_pass(self, epoch: int, skip: int) -> None:
        # rank and world size fixed before workers start (they cannot ask torch.distributed)
        self.dataset.rank, self.dataset.world_size = self.dataset.distributed()
        self.dataset.set_epoch(epoch, skip)

    def __len__(self) -> int:
        return self.dataset.num_batches(self.batch_size, self.drop_last)


__all__ = ["FileSource", "ShardSource", "StreamLoader", "StreamingDataset"]
