"""Bootstrap confidence interval of the EER (percentile method; Efron & Tibshirani, 1993).

Each resample draws ``n_bonafide`` bona fide and ``n_spoof`` spoof trials with replacement,
the two classes independently (their sizes stay fixed, as in the evaluation protocol), and
takes the official EER of :func:`~spoof_lightning.metrics.eer.compute_eer` of the resample,
ties included. The interval is the ``(1 - level)/2`` and ``(1 + level)/2`` percentiles of
the resampled EERs (linear interpolation). Seeded: the same inputs, ``n_resamples`` and
``seed`` give the same interval.

Fast: the pooled scores are sorted once. A resample is a count per original trial; its
sorted trial sequence is the sorted original with each trial repeated by its count (bona fide
before spoof among ties, as the stable sort of the resample puts them), so each resample
costs a bincount, a repeat and a cumulative sum, vectorised over blocks of resamples, with no
sort. 1000 resamples of 71k trials take about 2.5 s of CPU (bench/metrics_cost.py).
"""

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.eer import check_scores

DEFAULT_RESAMPLES = 1000
_BLOCK_ELEMENTS = 1 << 22  # resamples x trials held at once


def bootstrap_eers(
    bonafide: ArrayLike, spoof: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """The EER (fraction) of each of ``n_resamples`` bootstrap resamples.

    Resample ``b`` of each block of resamples is ``bonafide[i_b]`` and ``spoof[j_b]`` with
    ``i = rng.integers(0, n_bonafide, (block, n_bonafide), dtype=np.int32)`` drawn before
    ``j = rng.integers(0, n_spoof, (block, n_spoof), dtype=np.int32)``, ``rng = default_rng(seed)``.
    """
    bona, spf = check_scores(bonafide, "bona fide"), check_scores(spoof, "spoof")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n_bona, n_spoof = bona.size, spf.size
    n = n_bona + n_spoof
    order = np.argsort(np.concatenate([bona, spf]), kind="mergesort")
    sorted_is_bona = order < n_bona
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ELEMENTS // n)
    eers = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        drawn = np.concatenate(
            [
                rank[rng.integers(0, n_bona, (size, n_bona), dtype=np.int32)],
                rank[n_bona + rng.integers(0, n_spoof, (size, n_spoof), dtype=np.int32)],
            ],
            axis=1,
        )
        offsets = (np.arange(size) * n)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * n)
        labels = np.repeat(np.tile(sorted_is_bona, size), counts).reshape(size, n)
        curve = _Det(np.cumsum(labels, axis=1, dtype=np.int64), n_bona, n_spoof)
        eers[start : start + size] = curve.eer()
    return eers


class _Det:
    """The DET curves of a block of resamples, evaluated only where the EER search looks.

    ``bona_rejected[r, k - 1]`` bona fide trials are among the ``k`` lowest of resample
    ``r``; rates are computed with the operations of ``compute_det_curve``, so they are
    bit-identical to it. ``h = frr - far`` is non-decreasing in ``k`` (each operation is
    monotone), so the first minimiser of ``|h|`` is found by binary search.
    """

    def __init__(self, bona_rejected: np.ndarray, n_bona: int, n_spoof: int) -> None:
        self.bona_rejected, self.n_bona, self.n_spoof = bona_rejected, n_bona, n_spoof
        self.rows = np.arange(bona_rejected.shape[0])

    def rates(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(frr, far)`` at point ``k`` (0..n) of each resample."""
        rejected = self.bona_rejected[self.rows, np.maximum(k - 1, 0)].astype(np.float64)
        frr = np.where(k == 0, 0.0, rejected / self.n_bona)
        far = np.where(k == 0, 1.0, (self.n_spoof - (k - rejected)) / self.n_spoof)
        return frr, far

    def first_at_least(self, value: np.ndarray) -> np.ndarray:
        """First point ``k`` with ``h(k) >= value`` (``h(n) = 1 >= value``)."""
        low = np.zeros_like(self.rows)
        high = np.full_like(self.rows, self.bona_rejected.shape[1])
        while np.any(low < high):
            mid = (low + high) // 2
            frr, far = self.rates(mid)
            above = frr - far >= value
            high = np.where(above, mid, high)
            low = np.where(above, low, mid + 1)
        return low

    def eer(self) -> np.ndarray:
        crossing = self.first_at_least(np.zeros(self.rows.size))
        frr, far = self.rates(crossing)
        before_frr, before_far = self.rates(np.maximum(crossing - 1, 0))
        before = before_frr - before_far
        use_before = (crossing > 0) & (-before <= frr - far)
        index = np.where(use_before, self.first_at_least(before), crossing)
        frr, far = self.rates(index)
        return np.mean(np.stack([frr, far], axis=1), axis=1)


def eer_confidence_interval(
    bonafide: ArrayLike,
    spoof: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | int | str]:
    """``{"low", "high"}`` (EER fractions) of the percentile bootstrap interval, with
    ``level``, ``n_resamples``, ``seed`` and ``method`` recorded beside them."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    eers = bootstrap_eers(bonafide, spoof, n_resamples, seed)
    low, high = np.percentile(eers, [50 * (1 - level), 50 * (1 + level)])
    return {
        "low": float(low),
        "high": float(high),
        "level": level,
        "n_resamples": n_resamples,
        "seed": seed,
        "method": "percentile bootstrap, classes resampled independently",
    }


__all__ = ["DEFAULT_RESAMPLES", "bootstrap_eers", "eer_confidence_interval"]
