"""Equal error rate and DET curve, exactly as the official ASVspoof 2019 scoring defines them.

The official definition (ASVspoof 2019 evaluation plan, ``compute_det_curve`` /
``compute_eer`` of the organisers' scoring script):

* pool the target (bona fide) and non-target (spoof) scores, target scores first, and
  sort them with a *stable* sort, so tied scores keep that order (targets before
  non-targets);
* the thresholds are ``min(score) - 0.001`` followed by every sorted score; at the
  ``k``-th threshold the first ``k`` sorted trials are rejected, so
  ``frr[k]`` = targets among them / n_target and ``far[k]`` = non-targets after them /
  n_nontarget (``frr[0] = 0``, ``far[0] = 1``);
* the EER is the mean of ``frr`` and ``far`` at the first index minimising
  ``|frr - far|``, and the EER threshold is the threshold at that index.

Scores are "higher = more bona fide". The EER is returned as a fraction in [0, 1].
"""

import numpy as np
from numpy.typing import ArrayLike


def check_scores(scores: ArrayLike, name: str, allow_empty: bool = False) -> np.ndarray:
    """1-D float64 array of finite scores, or a ValueError naming the class (also for an
    empty class, unless ``allow_empty``)."""
    array = np.asarray(scores, dtype=np.float64).ravel()
    if array.size == 0 and not allow_empty:
        raise ValueError(f"no {name} scores: the {name} class is empty, the EER is undefined")
    n_bad = int(np.count_nonzero(~np.isfinite(array)))
    if n_bad:
        raise ValueError(f"{n_bad} of {array.size} {name} scores are not finite (NaN or inf)")
    return array


def compute_det_curve(
    bonafide_scores: ArrayLike, spoof_scores: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(frr, far, thresholds)``, each of length ``n_bonafide + n_spoof + 1``.

    ``frr[k]`` is the bona fide miss rate and ``far[k]`` the spoof false-acceptance rate
    when the ``k`` lowest-ranked trials are rejected; ``thresholds[k]`` is the score of
    the ``k``-th trial in the stable sort (``thresholds[0] = min - 0.001``).
    """
    bonafide = check_scores(bonafide_scores, "bona fide")
    spoof = check_scores(spoof_scores, "spoof")
    n_bona, n_spoof = bonafide.size, spoof.size

    pooled = np.concatenate([bonafide, spoof])
    is_bona = np.concatenate([np.ones(n_bona), np.zeros(n_spoof)])
    order = np.argsort(pooled, kind="mergesort")  # stable: ties keep bona fide first
    sorted_scores = pooled[order]
    bona_rejected = np.cumsum(is_bona[order])
    n_rejected = np.arange(1, pooled.size + 1)
    spoof_accepted = n_spoof - (n_rejected - bona_rejected)

    frr = np.concatenate([[0.0], bona_rejected / n_bona])
    far = np.concatenate([[1.0], spoof_accepted / n_spoof])
    thresholds = np.concatenate([[sorted_scores[0] - 0.001], sorted_scores])
    return frr, far, thresholds


def compute_eer(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[float, float]:
    """Return ``(eer, threshold)``: the official ASVspoof 2019 EER (fraction) and its threshold.

    Raises ValueError when a class is empty or a score is not finite.
    """
    frr, far, thresholds = compute_det_curve(bonafide_scores, spoof_scores)
    index = int(np.argmin(np.abs(frr - far)))
    return float(np.mean((frr[index], far[index]))), float(thresholds[index])


__all__ = ["compute_det_curve", "compute_eer"]
