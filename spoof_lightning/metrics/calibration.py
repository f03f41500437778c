"""Score calibration to log-likelihood ratios, and the calibration-sensitive metrics.

Notation: ``P`` is the prior of bona fide used to weight the calibration objective,
``softplus(z) = log(1 + e^z)``, LLRs are natural-log ``log p(s|bona fide)/p(s|spoof)``.

* Logistic-regression calibration (Brümmer & du Preez, "Application-independent
  evaluation of speaker detection", CSL 2006): ``llr = a * score + b`` with ``a, b``
  minimising the prior-weighted cross-entropy on labelled (dev) scores::

      P * mean_bona softplus(-(llr + logit P)) + (1 - P) * mean_spoof softplus(llr + logit P)

* ``Cllr = (mean_bona softplus(-llr) + mean_spoof softplus(llr)) / (2 ln 2)`` bits
  (0 = perfect, 1 = uninformative LLR 0); ``minCllr`` is the Cllr after the optimal
  monotonic recalibration, found with pool-adjacent-violators (PAV) on the scores.
  Evaluated as the ASVspoof 5 evaluation package does, ``log1p(exp(.))``: a bona fide
  LLR below about -709 (or a spoof LLR above 709) overflows to a Cllr of ``inf``, as there.
* Detection cost as ASVspoof 5 (evaluation plan, Track 1; ``Pspoof = 0.05``,
  ``Cmiss = 1``, ``Cfa = 10``)::

      DCF(t) = (Cmiss (1 - Pspoof) Pmiss(t) + Cfa Pspoof Pfa(t))
               / min(Cmiss (1 - Pspoof), Cfa Pspoof)

  ``minDCF`` minimises over the thresholds of the exact DET curve (the first minimum; the
  spoof prior is formed as ``1 - (1 - Pspoof)``, which is 0.050000000000000044 for 0.05, as in
  the ASVspoof 5 evaluation package, so the values agree to the last bit); ``actDCF`` applies
  the Bayes threshold for LLRs, ``t = -log(beta)``, ``beta = Cmiss (1 - Pspoof) / (Cfa
  Pspoof)``, with ``Pmiss = P(llr < t | bona fide)`` and ``Pfa = P(llr >= t | spoof)``.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.eer import check_scores, compute_det_curve


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _cllr(bona: np.ndarray, spoof: np.ndarray) -> float:
    # the official log1p(exp(.)) form; +inf bona fide / -inf spoof LLRs (pure PAV blocks)
    # cost exactly 0, an overflow gives inf
    with np.errstate(over="ignore"):
        costs = np.log1p(np.exp(-bona)).mean() + np.log1p(np.exp(spoof)).mean()
    return float(0.5 * costs / np.log(2))


def cllr(bonafide_llr: ArrayLike, spoof_llr: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits of LLR scores (natural log)."""
    return _cllr(check_scores(bonafide_llr, "bona fide"), check_scores(spoof_llr, "spoof"))


def _pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted non-decreasing least-squares fit of ``values`` (pool adjacent violators)."""
    means, sizes, counts = [], [], []
    for value, weight in zip(values, weights, strict=True):
        means.append(value)
        sizes.append(weight)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            size = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / size
            sizes[-2], counts[-2] = size, counts[-2] + counts[-1]
            del means[-1], sizes[-1], counts[-1]
    return np.repeat(means, counts)


def min_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Cllr after the optimal monotonic score-to-LLR map (PAV; tied scores share one LLR)."""
    from scipy.special import logit

    bona = check_scores(bonafide_scores, "bona fide")
    spoof = check_scores(spoof_scores, "spoof")
    scores = np.concatenate([bona, spoof])
    is_bona = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    unique, group = np.unique(scores, return_inverse=True)
    n_trials = np.bincount(group, minlength=unique.size).astype(float)
    n_bona = np.bincount(group, weights=is_bona, minlength=unique.size)
    posterior = _pav(n_bona / n_trials, n_trials)[group]
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - logit(bona.size / scores.size)
    return _cllr(llr[is_bona == 1], llr[is_bona == 0])


@dataclass(frozen=True)
class LogisticCalibration:
    """``llr = scale * score + offset``, fitted by prior-weighted logistic regression."""

    scale: float
    offset: float
    prior: float = 0.5

    @classmethod
    def fit(
        cls, bonafide_scores: ArrayLike, spoof_scores: ArrayLike, prior: float = 0.5
    ) -> "LogisticCalibration":
        """Fit on labelled (dev) scores; ``prior`` is the bona fide prior of the objective."""
        from scipy.optimize import minimize
        from scipy.special import expit, logit

        if not 0 < prior < 1:
            raise ValueError(f"calibration prior must be in (0, 1), got {prior}")
        bona = check_scores(bonafide_scores, "bona fide")
        spoof = check_scores(spoof_scores, "spoof")
        # standardise for conditioning; map the solution back afterwards
        pooled = np.concatenate([bona, spoof])
        centre, spread = pooled.mean(), pooled.std() or 1.0
        zb, zs = (bona - centre) / spread, (spoof - centre) / spread
        prior_logit = logit(prior)

        def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
            a, b = params
            tb, ts = a * zb + b + prior_logit, a * zs + b + prior_logit
            loss = prior * _softplus(-tb).mean() + (1 - prior) * _softplus(ts).mean()
            gb, gs = -prior * expit(-tb) / zb.size, (1 - prior) * expit(ts) / zs.size
            grad = np.array([gb @ zb + gs @ zs, gb.sum() + gs.sum()])
            return float(loss), grad

        result = minimize(objective, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        a, b = result.x
        return cls(scale=float(a / spread), offset=float(b - a * centre / spread), prior=prior)

    def __call__(self, scores: ArrayLike) -> np.ndarray:
        """Calibrated LLRs of ``scores``."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset


def stored_calibration(value: Any) -> dict[str, float] | None:
    """``{scale, offset, prior}`` of a :class:`LogisticCalibration` as files store it (a
    metrics.json entry, an export's fields), or None unless all three are finite numbers and
    the prior is in (0, 1)."""
    try:
        found = {key: float(value[key]) for key in ("scale", "offset", "prior")}
    except (TypeError, KeyError, ValueError):
        return None
    valid = all(math.isfinite(v) for v in found.values()) and 0 < found["prior"] < 1
    return found if valid else None


def _dcf_weights(p_spoof: float, c_miss: float, c_fa: float) -> tuple[float, float, float]:
    if not 0 < p_spoof < 1 or c_miss <= 0 or c_fa <= 0:
        raise ValueError(
            f"need 0 < p_spoof < 1 and positive costs, got {p_spoof}, {c_miss}, {c_fa}"
        )
    w_miss, w_fa = c_miss * (1 - p_spoof), c_fa * p_spoof
    return w_miss, w_fa, min(w_miss, w_fa)


def min_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    p_spoof: float = 0.05,
    c_miss: float = 1.0,
    c_fa: float = 10.0,
) -> tuple[float, float]:
    """Normalised minimum DCF (ASVspoof 5) and the threshold reaching it (the first minimum)."""
    _dcf_weights(p_spoof, c_miss, c_fa)
    frr, far, thresholds = compute_det_curve(bonafide_scores, spoof_scores)
    p_bona = 1 - p_spoof
    p_spoof_used = 1 - p_bona  # 0.050000000000000044 for 0.05, as the official code has it
    costs = c_miss * frr * p_bona + c_fa * far * p_spoof_used
    index = int(np.argmin(costs))
    norm = min(c_miss * p_bona, c_fa * p_spoof_used)
    return float(costs[index] / norm), float(thresholds[index])


def act_dcf(
    bonafide_llr: ArrayLike,
    spoof_llr: ArrayLike,
    p_spoof: float = 0.05,
    c_miss: float = 1.0,
    c_fa: float = 10.0,
) -> tuple[float, float]:
    """Normalised actual DCF (ASVspoof 5) of LLRs at the Bayes threshold, and the threshold."""
    w_miss, w_fa, norm = _dcf_weights(p_spoof, c_miss, c_fa)
    bona = check_scores(bonafide_llr, "bona fide")
    spoof = check_scores(spoof_llr, "spoof")
    threshold = -np.log(w_miss / w_fa)
    p_miss, p_fa = np.mean(bona < threshold), np.mean(spoof >= threshold)
    return float((w_miss * p_miss + w_fa * p_fa) / norm), float(threshold)


__all__ = ["LogisticCalibration", "act_dcf", "cllr", "min_cllr", "min_dcf", "stored_calibration"]
