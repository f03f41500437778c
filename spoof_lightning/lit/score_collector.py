"""Collect per-utterance scores over an epoch and gather them from every process.

Metrics must be computed exactly on the full score set (DESIGN.md), so scores are
gathered as plain Python objects and de-duplicated by utterance id: a distributed
sampler that pads the last batch with repeated utterances neither double-counts nor
loses any.
"""

from dataclasses import dataclass, field

import numpy as np
import torch.distributed as dist
from torch import Tensor


@dataclass
class ScoreSet:
    """Scores of one evaluation pass, one entry per unique utterance."""

    utt_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    attacks: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(bona fide scores, spoof scores)."""
        scores, labels = np.asarray(self.scores, dtype=np.float64), np.asarray(self.labels)
        return scores[labels == 1], scores[labels == 0]

    def by_attack(self) -> dict[str, np.ndarray]:
        """Spoof scores per attack id."""
        scores, attacks = np.asarray(self.scores, dtype=np.float64), np.asarray(self.attacks)
        labels = np.asarray(self.labels)
        spoofed = labels == 0
        return {a: scores[(attacks == a) & spoofed] for a in sorted(set(attacks[spoofed]))}


class ScoreCollector:
    """Accumulates batches of scores on one process; :meth:`gather` merges all processes."""

    def __init__(self) -> None:
        self._local = ScoreSet()

    def reset(self) -> None:
        self._local = ScoreSet()

    def update(
        self, utt_ids: list[str], scores: Tensor, labels: Tensor, attacks: list[str]
    ) -> None:
        self._local.utt_ids.extend(utt_ids)
        self._local.scores.extend(scores.detach().float().cpu().tolist())
        self._local.labels.extend(labels.detach().cpu().tolist())
        self._local.attacks.extend(attacks)

    def gather(self) -> ScoreSet:
        """All processes' scores, unique by utterance id, sorted by id (same on every rank)."""
        parts = [self._local]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self._local)
        merged: dict[str, tuple[float, int, str]] = {}
        for part in parts:
            for utt, score, label, attack in zip(
                part.utt_ids, part.scores, part.labels, part.attacks, strict=True
            ):
                merged.setdefault(utt, (score, label, attack))
        result = ScoreSet()
        for utt in sorted(merged):
            score, label, attack = merged[utt]
            result.utt_ids.append(utt)
            result.scores.append(score)
            result.labels.append(label)
            result.attacks.append(attack)
        return result
