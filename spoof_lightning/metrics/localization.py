"""EERs for locating fake regions in partially fake audio (HAD, PartialSpoof).

A segment is ``(start_s, end_s, label)`` in seconds with label 1/True = genuine (HAD
``T``) and 0/False = fake (``F``), as ``data.corpora.had.parse_segments`` gives. Per-frame
scores are "higher = more genuine"; frame ``i`` covers ``[i * shift, i * shift + length)``
seconds.

* **Frame-level EER** (Yi et al., "Half-truth: a partially fake audio detection
  dataset", Interspeech 2021): every frame is a trial; pooled over utterances with the
  official ASVspoof EER (:func:`~spoof_lightning.metrics.eer.compute_eer`).
* **Range-based EER** (Zhang et al., "The PartialSpoof database and countermeasures for
  the detection of short fake speech segments embedded in an utterance", IEEE/ACM TASLP
  2023): errors are measured in *duration* against the true time ranges, so a frame
  that straddles a boundary is only partly wrong. At threshold ``t`` frames scoring
  ``< t`` are called fake; miss rate = genuine duration called fake / genuine duration,
  false-alarm rate = fake duration called genuine / fake duration. The EER is taken as
  in the official ``compute_eer`` (first minimum of ``|miss - fa|``, their mean), with
  thresholds at the distinct frame scores (tied frames are decided together).
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.eer import check_scores, compute_eer

Segment = tuple[float, float, int]


def _check_segments(segments: Sequence[Segment]) -> np.ndarray:
    array = np.asarray(segments, dtype=np.float64).reshape(-1, 3)
    if np.any(array[:, 1] < array[:, 0]) or not np.isin(array[:, 2], (0, 1)).all():
        raise ValueError(f"segments must be (start <= end, label 1 genuine / 0 fake): {segments}")
    return array


def frame_overlaps(
    segments: Sequence[Segment], n_frames: int, shift: float, length: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of genuine and of fake speech inside each of ``n_frames`` frames."""
    length = shift if length is None else length
    starts = np.arange(n_frames) * shift
    ends = starts + length
    genuine, fake = np.zeros(n_frames), np.zeros(n_frames)
    for start, end, label in _check_segments(segments):
        overlap = np.clip(np.minimum(ends, end) - np.maximum(starts, start), 0.0, None)
        if label == 1:
            genuine += overlap
        else:
            fake += overlap
    return genuine, fake


def frame_labels(
    segments: Sequence[Segment], n_frames: int, shift: float, length: float | None = None
) -> np.ndarray:
    """Label of each frame (1 genuine, 0 fake) by majority of its duration; -1 if uncovered."""
    genuine, fake = frame_overlaps(segments, n_frames, shift, length)
    return np.where(genuine + fake == 0, -1, (genuine >= fake).astype(int))


def frame_eer(
    frame_scores: Sequence[ArrayLike], frame_label_seqs: Sequence[ArrayLike]
) -> tuple[float, float]:
    """Pooled frame-level ``(EER, threshold)`` over utterances; frames labelled -1 are ignored."""
    if len(frame_scores) != len(frame_label_seqs):
        raise ValueError(
            f"{len(frame_scores)} score sequences for {len(frame_label_seqs)} label sequences"
        )
    scores, labels = [], []
    for index, (utt_scores, utt_labels) in enumerate(
        zip(frame_scores, frame_label_seqs, strict=True)
    ):
        utt_scores, utt_labels = np.ravel(utt_scores), np.ravel(utt_labels)
        if utt_scores.size != utt_labels.size:
            raise ValueError(
                f"utterance {index}: {utt_scores.size} frame scores, {utt_labels.size} labels"
            )
        scores.append(utt_scores)
        labels.append(utt_labels)
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    return compute_eer(scores[labels == 1], scores[labels == 0])


def range_eer(
    frame_scores: Sequence[ArrayLike],
    segments: Sequence[Sequence[Segment]],
    shift: float,
    length: float | None = None,
) -> tuple[float, float]:
    """Range-based ``(EER, threshold)``: duration-weighted errors against the true segments."""
    if len(frame_scores) != len(segments):
        raise ValueError(f"{len(frame_scores)} score sequences for {len(segments)} utterances")
    scores, genuine, fake = [], [], []
    for utt_scores, utt_segments in zip(frame_scores, segments, strict=True):
        utt_scores = check_scores(utt_scores, "frame")
        g, f = frame_overlaps(utt_segments, utt_scores.size, shift, length)
        scores.append(utt_scores)
        genuine.append(g)
        fake.append(f)
    scores, genuine, fake = map(np.concatenate, (scores, genuine, fake))
    total_genuine, total_fake = genuine.sum(), fake.sum()
    if total_genuine == 0 or total_fake == 0:
        empty = "genuine" if total_genuine == 0 else "fake"
        raise ValueError(f"the frames cover no {empty} speech: the range-based EER is undefined")
    # reject (call fake) every frame scoring below each distinct threshold
    thresholds, group = np.unique(scores, return_inverse=True)
    genuine_below = np.concatenate([[0.0], np.cumsum(np.bincount(group, genuine))])[:-1]
    fake_below = np.concatenate([[0.0], np.cumsum(np.bincount(group, fake))])[:-1]
    thresholds = np.append(thresholds, np.inf)  # also: everything called fake
    miss = np.append(genuine_below, total_genuine) / total_genuine
    # (total - below) / total: exact at the ends, where 1 - below / total can round below 0
    false_alarm = (total_fake - np.append(fake_below, total_fake)) / total_fake
    index = int(np.argmin(np.abs(miss - false_alarm)))
    return float((miss[index] + false_alarm[index]) / 2), float(thresholds[index])


__all__ = ["Segment", "frame_eer", "frame_labels", "frame_overlaps", "range_eer"]
