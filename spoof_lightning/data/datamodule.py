"""The LightningDataModule of every corpus (built by Hydra from ``conf/data/<name>.yaml``)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from spoof_lightning.data.audio import PadPolicy
from spoof_lightning.data.dataset import Augment, EpochSampler, OnError, UtteranceDataset, collate
from spoof_lightning.data.protocols import SPLITS, Utterance, load_split

log = logging.getLogger(__name__)


class AntiSpoofDataModule(L.LightningDataModule):
    """Train/val/test loaders over a registered corpus (``protocols.CORPORA``).

    Args:
        corpus: registry name, e.g. ``asvspoof2019_la``.
        root: corpus root directory (config key ``data.root``).
        sample_rate: model rate; files at another rate are resampled.
        train_crop: training excerpt length in samples (random crop + pad).
        eval_crop: val/test excerpt length (first N + pad); None = full utterances,
            padded per batch with a ``length`` tensor.
        batch_size / eval_batch_size: loader batch sizes (eval defaults to batch_size).
        num_workers: loader processes.
        seed: seeds crop offsets, augmentation and shuffling (per epoch and item).
        demo: generate the synthetic demo corpus under ``root`` in ``prepare_data``.
        augment: ``augment(waveform, rng) -> waveform`` callable, train split only.
        pad: ``repeat`` (AASIST) or ``zero`` padding of short utterances.
        on_error: ``strict`` raises on an unreadable file; ``skip`` replaces it and
            records it in ``bad_file_log``.
        bad_file_log: CSV where skipped files are recorded (e.g. in the run dir).
        pin_memory / persistent_workers: passed to the loaders.
    """

    def __init__(
        self,
        corpus: str = "asvspoof2019_la",
        root: str = "data/demo",
        sample_rate: int = 16000,
        train_crop: int = 64600,
        eval_crop: int | None = 64600,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        demo: bool = False,
        augment: Augment | None = None,
        pad: PadPolicy = "repeat",
        on_error: OnError = "strict",
        bad_file_log: str | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        self.corpus, self.root = corpus, Path(root)
        self.sample_rate, self.train_crop, self.eval_crop = sample_rate, train_crop, eval_crop
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers, self.seed, self.demo = num_workers, seed, demo
        self.augment, self.pad, self.on_error = augment, pad, on_error
        self.bad_file_log = bad_file_log
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self._utterances: dict[str, list[Utterance]] = {}
        self.datasets: dict[str, UtteranceDataset] = {}

    def prepare_data(self) -> None:
        if self.demo:
            from spoof_lightning.data.demo import ensure_demo_corpus

            ensure_demo_corpus(self.root)

    def utterances(self, split: str) -> list[Utterance]:
        """Protocol entries of ``split`` (train/val/test), read on first use."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        if split not in self._utterances:
            self._utterances[split] = load_split(self.corpus, self.root, split)
            log.info("%s %s: %d utterances", self.corpus, split, len(self._utterances[split]))
        return self._utterances[split]

    def dataset(self, split: str) -> UtteranceDataset:
        """The dataset of ``split``, built on first use."""
        if split not in self.datasets:
            train = split == "train"
            self.datasets[split] = UtteranceDataset(
                self.utterances(split),
                sample_rate=self.sample_rate,
                crop=self.train_crop if train else self.eval_crop,
                train=train,
                augment=self.augment if train else None,
                seed=self.seed,
                pad=self.pad,
                on_error=self.on_error,
                bad_file_log=self.bad_file_log,
            )
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
        }.get(stage or "", SPLITS)
        for split in wanted:
            self.dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        return DataLoader(
            ds,
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            sampler=EpochSampler(len(ds), shuffle=shuffle, seed=self.seed),
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


__all__ = ["AntiSpoofDataModule"]
