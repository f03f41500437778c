"""The LightningDataModule of every corpus (built by Hydra from ``conf/data/<name>.yaml``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L

from spoof_lightning.data.audio import PadPolicy
from spoof_lightning.data.dataset import (
    BAD_FILES_CSV,
    Augment,
    EpochSampler,
    ItemTransform,
    OnError,
    UtteranceDataset,
    collate,
)
from spoof_lightning.data.loader import EpochLoader
from spoof_lightning.data.preflight import DataError, Level, SplitReport, apply_policy, check_split
from spoof_lightning.data.protocols import (
    BONAFIDE,
    SPLITS,
    UNKNOWN,
    MissingDataError,
    Problem,
    Utterance,
    load_split,
)
from spoof_lightning.data.shards import INDEX
from spoof_lightning.data.streaming import (
    FileSource,
    ShardSource,
    StreamingDataset,
    StreamLoader,
    Uneven,
)
from spoof_lightning.data.subset import select_subset

log = logging.getLogger(__name__)
LoaderKind = Literal["map", "stream", "shards"]


class AntiSpoofDataModule(L.LightningDataModule):
    """Train/val/test loaders over a registered corpus (``protocols.CORPORA``).

    Args:
        corpus: registry name, e.g. ``asvspoof2019_la``, ``asvspoof2021_df``, ``had``, ``folder``.
        root: corpus root directory (config key ``data.root``).
        corpus_options: extra loader options, e.g. ``{phase: eval}`` (2021),
            ``{labels: labels.csv}`` (folder), ``{keys_root: ...}`` (2021).
        train_corpus / train_root / train_corpus_options: where the train and val splits
            come from when it is not ``corpus`` (the 2021 sets have no train/dev:
            train and validate on 2019).
        sample_rate: model rate; files at another rate are resampled.
        train_crop: training excerpt length in samples (random crop + pad).
        eval_crop: val/test excerpt length (first N + pad); None = full utterances,
            padded per batch with a ``length`` tensor.
        pad: ``repeat`` (AASIST) or ``zero`` padding of short utterances.
        min_samples: the shortest waveform the front-end and model accept; without a
            crop, shorter utterances are padded to it. train.py and eval.py set it (see
            :func:`spoof_lightning.build.instantiate_data`).
        frame_hop: seconds per frame of the ``frame_labels`` targets (HAD localisation);
            None = no frame targets.
        batch_size / eval_batch_size: loader batch sizes (eval defaults to batch_size).
        num_workers / pin_memory / persistent_workers: passed to the loaders.
        seed: seeds crop offsets, augmentation, shuffling and subsets.
        demo: generate the synthetic demo corpus under ``root`` in ``prepare_data``.
        augment: ``augment(waveform, rng) -> waveform`` callable, train split only.
        attacks: per split, the attack ids to keep with all bona fide entries, e.g.
            ``{train: [A01, A02], test: [A16]}`` (continual learning, unseen-attack
            studies); splits not listed are kept whole; None = all. Applied before
            ``subset``. An id the split lacks is an error listing the ids it has.
        subset: per split, a seeded subset, e.g. ``{train: {per_class: 1000}}`` (from the
            command line: ``data.subset.train={per_class:1000}``); keys ``per_class``
            (int or ``{bonafide: n, spoof: m}``), ``per_attack`` or ``size``; None = all.
        loader: ``map`` (default, local disks), ``stream`` (iterable, lazy reads) or
            ``shards`` (tar shards under ``shards_root/<split>/``).
        shards_root: folder written by ``spoof-lightning shards``.
        shuffle_buffer: samples in the streaming shuffle buffer (train only).
        uneven: streaming; ``wrap`` repeats a few samples, ``drop`` leaves a few out,
            so that every rank gets the same number of batches.
        preflight: ``off``, ``exists``, ``header`` (default) or ``decode``: how deeply the
            files are checked in ``setup``.
        on_error: ``strict`` fails on any bad entry or file; ``skip`` leaves them out
            (mid-epoch: replaces them) and records them.
        report_dir: where ``data_problems.csv`` and ``bad_files.csv`` go (the run dir).
    """

    def __init__(
        self,
        corpus: str = "asvspoof2019_la",
        root: str = "data/demo",
        corpus_options: Mapping[str, Any] | None = None,
        train_corpus: str | None = None,
        train_root: str | None = None,
        train_corpus_options: Mapping[str, Any] | None = None,
        sample_rate: int = 16000,
        train_crop: int = 64600,
        eval_crop: int | None = 64600,
        pad: PadPolicy = "repeat",
        min_samples: int = 1,
        frame_hop: float | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
        demo: bool = False,
        augment: Augment | None = None,
        attacks: Mapping[str, Sequence[str] | None] | None = None,
        subset: Mapping[str, Mapping[str, Any]] | None = None,
        loader: LoaderKind = "map",
        shards_root: str | None = None,
        shuffle_buffer: int = 1000,
        uneven: Uneven = "wrap",
        preflight: Level = "header",
        on_error: OnError = "strict",
        report_dir: str | None = None,
    ) -> None:
        super().__init__()
        if loader not in ("map", "stream", "shards"):
            raise ValueError(f"data.loader must be map, stream or shards, got {loader!r}")
        if loader == "shards" and not shards_root:
            raise ValueError(
                "data.loader=shards needs data.shards_root (written by spoof-lightning shards)"
            )
        subset = _per_split(subset, "data.subset", loader)
        attacks = _per_split(attacks, "data.attacks", loader)
        self.corpus, self.root = corpus, Path(root)
        self.corpus_options = dict(corpus_options or {})
        self.train_corpus, self.train_root = train_corpus, train_root
        self.train_corpus_options = dict(train_corpus_options or {})
        self.sample_rate, self.train_crop, self.eval_crop = sample_rate, train_crop, eval_crop
        self.pad, self.min_samples, self.frame_hop = pad, min_samples, frame_hop
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.seed, self.demo, self.augment = seed, demo, augment
        self.subset = {k: dict(v) for k, v in subset.items() if v}
        self.attacks = {k: [str(a) for a in v] for k, v in attacks.items()}
        for split, ids in self.attacks.items():
            if not ids:
                raise ValueError(
                    f"data.attacks.{split} is empty: list attack ids, or null to keep it whole"
                )
        self.loader, self.shards_root = loader, shards_root
        self.shuffle_buffer, self.uneven = shuffle_buffer, uneven
        self.preflight, self.on_error = preflight, on_error
        self.report_dir = Path(report_dir) if report_dir else None
        self.reports: dict[str, SplitReport] = {}
        self._utterances: dict[str, list[Utterance]] = {}
        self.datasets: dict[str, UtteranceDataset | StreamingDataset] = {}

    # ------------------------------------------------------------------ data

    def prepare_data(self) -> None:
        if self.demo:
            from spoof_lightning.data.demo import ensure_demo_corpus

            ensure_demo_corpus(self.root)

    def source(self, split: str) -> tuple[str, Path, dict[str, Any], str]:
        """``(corpus, root, options, config key)`` that ``split`` is read from."""
        if split in ("train", "val") and self.train_corpus:
            if not self.train_root:
                raise FileNotFoundError(
                    f"the {split} split is read from {self.train_corpus}, but data.train_root "
                    f"is not set: python train.py data.train_root=/path/to/{self.train_corpus}"
                )
            return (
                self.train_corpus,
                Path(self.train_root),
                self.train_corpus_options,
                "data.train_root",
            )
        return self.corpus, self.root, self.corpus_options, "data.root"

    def utterances(self, split: str) -> list[Utterance]:
        """Usable entries of ``split`` (train/val/test) after preflight and subset; read once.

        Eval code joins scores with this metadata (speaker, attack, ``meta``) by utt_id.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        if split not in self._utterances:
            self._load([split])
        return self._utterances[split]

    def _load(self, splits: list[str]) -> None:
        for split in splits:
            if self.loader == "shards":
                self._utterances[split] = self._shard_source(split).utterances()
                continue
            corpus, root, options, key = self.source(split)
            problems: list[Problem] = []
            entries = load_split(corpus, root, split, problems, key=key, **options)
            self.reports[split] = check_split(split, entries, problems, self.preflight)
        pending = {s: self.reports[s] for s in splits if s in self.reports}
        kept = apply_policy(pending, self.on_error, self.report_dir)
        for split, entries in kept.items():
            if not entries:
                corpus, root, _, key = self.source(split)
                raise DataError(f"{corpus} {split} under {root} ({key}) has no usable entry")
            unlabeled = [u for u in entries if u.label == UNKNOWN]
            if split == "train" and unlabeled:
                corpus, root, _, key = self.source(split)
                raise DataError(
                    f"{corpus} train split under {root} ({key}) has {len(unlabeled)} unlabeled "
                    f"entries (e.g. {unlabeled[0].utt_id}): training needs a bonafide/spoof "
                    "label for each; for data=folder give a CSV in data.corpus_options.labels"
                )
            if split in self.attacks:
                entries = self._keep_attacks(split, entries)
            if split in self.subset:
                entries = select_subset(entries, self.seed, **self.subset[split])
                log.info("%s subset: %d entries (%s)", split, len(entries), self.subset[split])
            self._utterances[split] = entries

    def _keep_attacks(self, split: str, entries: list[Utterance]) -> list[Utterance]:
        """Bona fide entries and the spoofed entries of ``data.attacks.<split>``."""
        wanted = set(self.attacks[split])
        present = {u.attack for u in entries if u.label != BONAFIDE}
        if wanted - present:
            corpus, root, _, _ = self.source(split)
            raise ValueError(
                f"data.attacks.{split}: {sorted(wanted - present)} not in the {split} split "
                f"of {corpus} under {root} (it has {sorted(present)})"
            )
        kept = [u for u in entries if u.label == BONAFIDE or u.attack in wanted]
        log.info("%s: %d of %d entries (bona fide + %s)", split, len(kept), len(entries), wanted)
        return kept

    def _shard_source(self, split: str) -> ShardSource:
        index = Path(self.shards_root) / split / INDEX
        if not index.is_file():
            raise MissingDataError(
                f"{split} shards (write them with spoof-lightning shards ... --out <shards_root>)",
                index,
                "data.shards_root",
            )
        return ShardSource(index, self.sample_rate)

    def transform(self, split: str) -> ItemTransform:
        train = split == "train"
        return ItemTransform(
            sample_rate=self.sample_rate,
            crop=self.train_crop if train else self.eval_crop,
            train=train,
            augment=self.augment if train else None,
            pad=self.pad,
            frame_hop=self.frame_hop,
            min_samples=self.min_samples,
        )

    def dataset(self, split: str) -> UtteranceDataset | StreamingDataset:
        """The dataset of ``split``, built on first use."""
        if split in self.datasets:
            return self.datasets[split]
        bad_log = self.report_dir / BAD_FILES_CSV if self.report_dir else None
        if self.loader == "map":
            ds: UtteranceDataset | StreamingDataset = UtteranceDataset(
                self.utterances(split), self.transform(split), self.seed, self.on_error, bad_log
            )
        else:
            source = (
                self._shard_source(split)
                if self.loader == "shards"
                else FileSource(self.utterances(split), self.sample_rate)
            )
            trainer = self.trainer
            ds = StreamingDataset(
                source,
                self.transform(split),
                shuffle=split == "train",
                seed=self.seed,
                shuffle_buffer=self.shuffle_buffer if split == "train" else 0,
                uneven=self.uneven if split == "train" else "wrap",
                rank=trainer.global_rank if trainer is not None else None,
                world_size=trainer.world_size if trainer is not None else None,
                on_error=self.on_error,
                bad_file_log=bad_log,
            )
        self.datasets[split] = ds
        return ds

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": ["test"],
            "predict": ["test"],
        }.get(stage or "", list(SPLITS))
        missing = [s for s in wanted if s not in self._utterances]
        if missing and self.loader != "shards":
            self._load(missing)
        for split in wanted:
            self.dataset(split)

    # --------------------------------------------------------------- loaders

    def _loader(self, split: str) -> EpochLoader:
        """The loader of ``split``; its position in the epoch goes into checkpoints
        (:mod:`~spoof_lightning.data.loader`), so a resumed run reads exactly what is left."""
        ds = self.dataset(split)
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        common = {
            "num_workers": self.num_workers,
            "collate_fn": collate,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
        }
        if isinstance(ds, StreamingDataset):
            return StreamLoader(ds, self._trainer_epoch, batch_size=batch_size, **common)
        sampler = EpochSampler(len(ds), shuffle=split == "train", seed=self.seed)
        return EpochLoader(
            ds, self._trainer_epoch, self.seed, sampler=sampler, batch_size=batch_size, **common
        )

    def _trainer_epoch(self) -> int | None:
        return self.trainer.current_epoch if self.trainer is not None else None

    def train_dataloader(self) -> EpochLoader:
        return self._loader("train")

    def val_dataloader(self) -> EpochLoader:
        return self._loader("val")

    def test_dataloader(self) -> EpochLoader:
        return self._loader("test")

    def predict_dataloader(self) -> EpochLoader:
        return self._loader("test")


def _per_split(option: Mapping[str, Any] | None, key: str, loader: str) -> dict[str, Any]:
    """The splits that ``option`` (``data.subset`` or ``data.attacks``) sets, checked."""
    chosen = {k: v for k, v in (option or {}).items() if v is not None}
    unknown = set(chosen) - set(SPLITS)
    if unknown:
        raise ValueError(f"{key} keys {sorted(unknown)}: use {list(SPLITS)}")
    if chosen and loader == "shards":
        raise ValueError(f"{key} applies to protocol entries; convert the selection to shards")
    return chosen


__all__ = ["AntiSpoofDataModule"]
