"""Deterministic, seeded subsets of a split, for small machines and quick experiments.

Three ways to choose (exactly one per split):

- ``per_class``: up to N bona fide and N spoofed utterances (a balanced subset),
  or a mapping ``{bonafide: N1, spoof: N2}``;
- ``per_attack``: up to N utterances of every attack id (bona fide counts as one group);
- ``size``: N utterances in total, stratified by attack (every group keeps its share).

The selection depends only on the entries and the seed, and keeps protocol order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from spoof_lightning.data.protocols import BONAFIDE, SPOOF, UNKNOWN, Utterance

log = logging.getLogger(__name__)
_CLASS_NAMES = {"bonafide": BONAFIDE, "spoof": SPOOF, "unknown": UNKNOWN}


def _groups(utterances: Sequence[Utterance], by: str) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, u in enumerate(utterances):
        groups[u.label if by == "label" else u.attack].append(i)
    return dict(groups)


def _draw(indices: list[int], n: int, rng: np.random.Generator) -> list[int]:
    if n >= len(indices):
        return indices
    return [indices[i] for i in rng.choice(len(indices), size=n, replace=False)]


def _largest_remainder(sizes: dict[Hashable, int], total: int) -> dict[Hashable, int]:
    """Split ``total`` across groups in proportion to ``sizes`` (sums exactly to ``total``)."""
    n = sum(sizes.values())
    exact = {g: total * s / n for g, s in sizes.items()}
    quota = {g: int(q) for g, q in exact.items()}
    by_remainder = sorted(sizes, key=lambda g: (-(exact[g] - quota[g]), str(g)))
    for g in by_remainder[: total - sum(quota.values())]:
        quota[g] += 1
    return quota


def select_subset(
    utterances: Sequence[Utterance],
    seed: int = 0,
    per_class: int | Mapping[str, int] | None = None,
    per_attack: int | None = None,
    size: int | None = None,
) -> list[Utterance]:
    """A seeded subset of ``utterances`` (see the module docstring), in protocol order."""
    chosen = [x is not None for x in (per_class, per_attack, size)]
    if sum(chosen) != 1:
        raise ValueError("a subset needs exactly one of per_class, per_attack or size")
    rng = np.random.default_rng(seed)
    if per_class is not None:
        groups = _groups(utterances, "label")
        if isinstance(per_class, Mapping):
            unknown = set(per_class) - set(_CLASS_NAMES)
            if unknown:
                names = list(_CLASS_NAMES)
                raise ValueError(f"subset per_class keys {sorted(unknown)}: use {names}")
            wanted = {_CLASS_NAMES[k]: int(v) for k, v in per_class.items()}
        else:
            wanted = {label: int(per_class) for label in groups}
    elif per_attack is not None:
        groups = _groups(utterances, "attack")
        wanted = {g: int(per_attack) for g in groups}
    else:
        groups = _groups(utterances, "attack")
        if size >= len(utterances):
            return list(utterances)
        wanted = _largest_remainder({g: len(ix) for g, ix in groups.items()}, int(size))
    picked: list[int] = []
    for group in sorted(groups, key=str):
        n, have = wanted.get(group, 0), len(groups[group])
        if n > have:
            log.warning("subset: group %s has %d entries, fewer than %d", group, have, n)
        picked += _draw(groups[group], n, rng)
    return [utterances[i] for i in sorted(picked)]


__all__ = ["select_subset"]
