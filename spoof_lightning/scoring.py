"""Score utterances: the one scoring path of training's validation and test and of eval.py.

:func:`score_batch` scores a collated batch (each utterance on its own samples when their
lengths differ, with frame scores when the model has a frame head); :class:`ScoreSet` keeps
one score per utterance id and gathers them from every process. Metrics are computed
exactly on the whole set (DESIGN.md), never averaged over batches or processes.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch.distributed as dist
from torch import Tensor

from spoof_lightning import preemption
from spoof_lightning.contracts import BONAFIDE, SPOOF, ModelOutput, scores_from_logits
from spoof_lightning.data.dataset import utterance_groups
from spoof_lightning.metrics.summary import class_values

STAGE = {"test": "test", "val": "validate"}
Net = Callable[[Tensor], ModelOutput]  # waveform [B, T] -> output: a Detector, a Countermeasure


@dataclass
class UttScore:
    """The score of one utterance, its label (-1: none) and attack, and its frame scores /
    frame labels when available."""

    utt_id: str
    score: float
    label: int = -1
    attack: str = "-"
    frame_scores: np.ndarray | None = None
    frame_labels: np.ndarray | None = None


class ScoreSet:
    """Scores of one pass over a split, one per utterance id: a padded or wrapped loader (a
    distributed sampler pads its last batch with repeats) neither double-counts nor loses any.
    """

    def __init__(self, items: Iterable[UttScore] = ()) -> None:
        self.by_id: dict[str, UttScore] = {}
        self.add(items)

    def add(self, items: Iterable[UttScore]) -> None:
        for item in items:
            self.by_id.setdefault(item.utt_id, item)  # a repeat keeps the first score

    def __len__(self) -> int:
        return len(self.by_id)

    @property
    def utt_ids(self) -> list[str]:
        return list(self.by_id)

    @property
    def scores(self) -> dict[str, float]:
        return {utt: item.score for utt, item in self.by_id.items()}

    @property
    def frame_scores(self) -> dict[str, np.ndarray]:
        return {u: i.frame_scores for u, i in self.by_id.items() if i.frame_scores is not None}

    @property
    def frame_labels(self) -> dict[str, np.ndarray]:
        return {u: i.frame_labels for u, i in self.by_id.items() if i.frame_labels is not None}

    def split(self) -> tuple[np.ndarray, ...]:
        """(bona fide scores, spoof scores)."""
        return class_values(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """``utt_id``, ``label``, ``attack``, ``score`` per utterance: what the batches carried
        (the protocol's rows, with all its metadata, come from the datamodule)."""
        return [
            {"utt_id": i.utt_id, "label": i.label, "attack": i.attack, "score": i.score}
            for i in self.by_id.values()
        ]

    def gather(self) -> "ScoreSet":
        """All processes' scores, sorted by utterance id (the same set on every rank)."""
        parts: list[Any] = [self]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self)
        merged = ScoreSet(item for part in parts for item in part.by_id.values())
        return ScoreSet(merged.by_id[utt] for utt in sorted(merged.by_id))


def frame_scores_of(output: ModelOutput) -> Tensor | None:
    """Per-frame bona fide scores ``[B, F]`` from ``output.frame_logits`` ``[B, F, 2]``, if any."""
    frame_logits = getattr(output, "frame_logits", None)
    if frame_logits is None:
        return None
    if frame_logits.ndim != 3 or frame_logits.shape[-1] != 2:
        raise ValueError(
            f"frame_logits must be [B, F, 2] (spoof, bona fide), got {list(frame_logits.shape)}"
        )
    return (frame_logits[..., BONAFIDE] - frame_logits[..., SPOOF]).float()


def _labelled_frames(labels: np.ndarray) -> int:
    """Frames up to the last labelled one (the rest is padding, -1)."""
    return int(np.flatnonzero(labels != -1).max(initial=-1)) + 1


def _aligned_labels(utt_id: str, n_frames: int, labels: Tensor) -> np.ndarray:
    """The first ``n_frames`` frame labels; the rest must be padding (-1)."""
    labels_np = labels.detach().cpu().numpy()
    if n_frames > labels_np.size or (labels_np[n_frames:] != -1).any():
        raise ValueError(
            f"{utt_id}: the model gives {n_frames} frame scores but the data has "
            f"{_labelled_frames(labels_np)} labelled frames; frame_logits must be on the "
            "data.frame_hop grid"
        )
    return labels_np[:n_frames]


def score_batch(net: Net, batch: Mapping[str, Any]) -> list[UttScore]:
    """Score a collated batch with ``net``, with labels, attacks and frame scores if any.

    Utterances of different lengths (``data.eval_crop: null``) are scored on their own
    samples (:func:`utterance_groups`): zero padding never changes a score. Frames of
    padding (label -1 after the last labelled frame: the crop's or the minimum length's
    padding) are left out of the frame scores: they are no part of the audio.
    """
    labels, attacks = batch.get("label"), batch.get("attack")
    frame_labels = batch.get("frame_labels")
    results = []
    for indices, x in utterance_groups(batch):
        output = net(x)
        scores = scores_from_logits(output.logits).cpu().tolist()
        frames = frame_scores_of(output)
        for j, i in enumerate(indices):
            item = UttScore(batch["utt_id"][i], scores[j])
            if labels is not None:
                item.label, item.attack = int(labels[i]), attacks[i] if attacks else "-"
            if frames is not None:
                utt_frames = frames[j].cpu().double().numpy()
                if frame_labels is not None:
                    aligned = _aligned_labels(item.utt_id, utt_frames.size, frame_labels[i])
                    audio = _labelled_frames(aligned)
                    utt_frames, item.frame_labels = utt_frames[:audio], aligned[:audio]
                item.frame_scores = utt_frames
            results.append(item)
    return results


class ScoringModule(L.LightningModule):
    """Runs a countermeasure under ``Trainer.predict`` (device, precision, progress)."""

    def __init__(self, net: Net) -> None:
        super().__init__()
        self.net = net

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[UttScore]:
        return score_batch(self.net, batch)


class SignalsStopScoring(L.Callback):
    """Puts back the handlers of :func:`~spoof_lightning.preemption.handling_signals` over
    the SIGTERM handler that Lightning sets when ``predict`` starts (its predict loop never
    reads it), so that a signal stops scoring at once."""

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if preemption.active():
            preemption.install()


def score_split(
    net: Net, datamodule: Any, split: str, trainer_options: Mapping[str, Any]
) -> ScoreSet:
    """Score every utterance of ``split`` (test/val) of ``datamodule`` on one device."""
    datamodule.prepare_data()
    datamodule.setup(STAGE[split])
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    trainer = L.Trainer(
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[SignalsStopScoring()],
        **trainer_options,
    )
    result = ScoreSet()
    for batch_scores in trainer.predict(ScoringModule(net), dataloaders=loader) or []:
        result.add(batch_scores)
    return result
