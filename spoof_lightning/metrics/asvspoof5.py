"""ASVspoof 5 metrics, exactly as the official evaluation package computes them.

References: the ASVspoof 5 evaluation plan (Delgado et al., 2024) and challenge summary
(Wang et al., "ASVspoof 5: crowdsourced speech data, deepfakes, and adversarial attacks at
scale", ASVspoof 2024 workshop); a-DCF: Shim et al., "a-DCF: an architecture agnostic metric
with application to spoofing-robust speaker verification", Odyssey 2024; t-DCF: Kinnunen et
al., IEEE/ACM TASLP 2020; t-EER: Kinnunen et al., "t-EER: parameter-free tandem evaluation of
countermeasures and biometric comparators", IEEE TPAMI 2023. Behaviour checked against the
official package (github.com/asvspoof-challenge/asvspoof5, ``evaluation-package/`` at
fe23d30) on every case of ``reference/asvspoof5_metrics.json`` (see ASVSPOOF5_METRICS.md).

Scores: higher = bona fide (and target). Every curve is the exact DET curve of
:func:`~spoof_lightning.metrics.eer.compute_det_curve`: the pooled scores sorted with a
stable sort, the positive class first among ties, one operating point per sorted position
(ties are *not* grouped). Track 1 (``cm_metrics``) uses Pspoof 0.05, Cmiss 1, Cfa 10:

* ``eer`` (fraction) and ``eer_threshold``: :func:`~spoof_lightning.metrics.eer.compute_eer`,
  the same definition as the 2019 and 2021 packages (the first point minimising
  |FRR - FAR|, no interpolation). With tied scores that point can fall inside a tie block,
  giving a higher EER than a tie-grouped one; reproduced, as eval.py reports the official
  value everywhere.
* ``min_dcf``, ``act_dcf``: :func:`~spoof_lightning.metrics.calibration.min_dcf` /
  ``act_dcf`` (actDCF at the Bayes threshold ``-ln 1.9``; meaningful for LLR scores only).
* ``cllr`` (bits): :func:`~spoof_lightning.metrics.calibration.cllr` on the raw scores, as
  the package does (it treats every score as an LLR).

Track 2 / SASV (``sasv_metrics``), Ptar 0.95 x 0.99, Pnon 0.95 x 0.01, Pspoof 0.05:

* ``min_a_dcf``: on the SASV scores; Cmiss 1, Cfa_asv 10, Cfa_cm 10 (the package's
  ``calculate_metrics`` setting, not the default 20 of its ``a_dcf.CostModel``),
  normalised by ``min(Cfa_asv Pnon + Cfa_cm Pspoof, Cmiss Ptar)``; the first point's
  threshold is ``min - 1e-8``.
* ``min_tdcf``: the 2021 C0/C1/C2 form (:func:`~spoof_lightning.metrics.tdcf.tdcf_curve_2021`)
  on the CM scores only (bona fide = target + non-target trials), with the *organisers'
  fixed ASV error rates* (:data:`ORGANISER_ASV`): the ASV scores passed in are not used.
* ``t_eer`` (percent): the concurrent t-EER. The package does not take the minimum of the
  t-EER path: for each ASV point inside the region ``Pmiss_asv < (Pfa_non + Pfa_spoof)/2``
  it takes the CM point nearest ``Pmiss_tdm = Pfa_tdm``, then keeps the first pair
  minimising ``|Pfa_non/Pfa_spoof - Pfa_cm/(1 - Pmiss_cm)|`` (NaN/inf values from a zero
  division drop out) and returns ``100 Pfa_spoof Pfa_cm`` there. ASV false-alarm rates are
  ``1 - count/n``, as in the package. When both curves have >= 3000 points the package
  searches curves decimated by ``len // 3000`` first, then +/-1600-point windows around
  that point (``accelerated=True``, the default, as the package's ``calculate_metrics``);
  both searches are vectorised here.

Where the project's functions differed from the package they were changed to compute what
the package computes, so eval.py reports the official values everywhere: ``min_dcf`` (the
package's spoof prior ``1 - (1 - 0.05)`` moves the last bit) and ``cllr`` (``log1p(exp(.))``
instead of ``logaddexp``: equal within rounding, but ``inf`` where ``exp`` overflows, as in
the package). ``compute_eer`` / ``compute_det_curve`` needed no change.

Where the package would exit or crash (an empty class, fewer than 3 distinct CM scores, no
admissible t-EER point left after dropping NaN/inf) these functions raise ValueError.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.calibration import act_dcf, cllr, min_dcf
from spoof_lightning.metrics.eer import check_scores, compute_det_curve, compute_eer
from spoof_lightning.metrics.tdcf import (
    AsvErrorRates,
    CostModel2021,
    tdcf_coefficients_2021,
    tdcf_curve_2021,
)

P_SPOOF, C_MISS, C_FA = 0.05, 1.0, 10.0  # Track 1 and SASV costs of the evaluation plan
TDCF_COST = CostModel2021(p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA, c_fa_spoof=C_FA)
# ASV error rates of the organisers' ASV, pooled over all conditions (calculate_metrics.py)
ORGANISER_ASV = AsvErrorRates(
    p_fa=0.01881016557566423,
    p_miss=0.01880141010575793,
    p_miss_spoof=1 - 0.4607082907604729,
    p_fa_spoof=0.4607082907604729,
)
TEER_DECIMATED_POINTS = 3000  # the accelerated search of the package
TEER_WINDOW = 1600
_BLOCK_ELEMENTS = 1 << 22  # ASV points x CM points evaluated at once by the t-EER search


@dataclass(frozen=True)
class ADcfCost:
    """a-DCF parameters as the ASVspoof 5 package sets them (Shim et al., 2024)."""

    p_target: float = TDCF_COST.p_target
    p_nontarget: float = TDCF_COST.p_nontarget
    p_spoof: float = P_SPOOF
    c_miss: float = C_MISS
    c_fa_asv: float = C_FA
    c_fa_cm: float = C_FA


@dataclass(frozen=True)
class TeerPoint:
    """The concurrent t-EER (percent) and the ASV / CM operating point giving it."""

    t_eer: float
    asv_threshold: float
    cm_threshold: float
    asv_index: int
    cm_index: int


def cm_metrics(bonafide: ArrayLike, spoof: ArrayLike) -> dict[str, float]:
    """Track 1 metrics of CM scores: ``eer`` (fraction), ``eer_threshold``, ``min_dcf``,
    ``act_dcf`` and ``cllr`` (bits), as the official package returns them."""
    bona, spf = check_scores(bonafide, "bona fide"), check_scores(spoof, "spoof")
    eer, threshold = compute_eer(bona, spf)
    return {
        "eer": eer,
        "eer_threshold": threshold,
        "min_dcf": min_dcf(bona, spf, P_SPOOF, C_MISS, C_FA)[0],
        "act_dcf": act_dcf(bona, spf, P_SPOOF, C_MISS, C_FA)[0],
        "cllr": cllr(bona, spf),
    }


def _three_classes(
    target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike, system: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        check_scores(target, f"{system} target"),
        check_scores(nontarget, f"{system} non-target"),
        check_scores(spoof, f"{system} spoof"),
    )


def _rejected_counts(*classes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted thresholds (``min - 0.001`` first) and, per class, how many of its trials
    are rejected at each point (stable sort, earlier classes first among ties)."""
    pooled = np.concatenate(classes)
    labels = np.repeat(np.arange(len(classes)), [c.size for c in classes])
    order = np.argsort(pooled, kind="mergesort")
    labels = labels[order]
    counts = [np.concatenate([[0], np.cumsum(labels == k)]) for k in range(len(classes))]
    return np.concatenate([[pooled[order[0]] - 0.001], pooled[order]]), counts


def min_a_dcf(
    target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike, cost: ADcfCost = ADcfCost()
) -> tuple[float, float]:
    """Normalised minimum a-DCF of SASV scores and its threshold (the first minimum)."""
    tar, non, spf = _three_classes(target, nontarget, spoof, "SASV")
    thresholds, (n_tar, n_non, n_spf) = _rejected_counts(tar, non, spf)
    thresholds[0] = float(thresholds[1]) - 1e-8  # a_dcf.py's first threshold
    p_miss = n_tar / tar.size
    p_fa_asv = (non.size - n_non) / non.size
    p_fa_cm = (spf.size - n_spf) / spf.size
    costs = (
        cost.c_miss * cost.p_target * p_miss
        + cost.c_fa_asv * cost.p_nontarget * p_fa_asv
        + cost.c_fa_cm * cost.p_spoof * p_fa_cm
    )
    norm = min(
        cost.c_fa_asv * cost.p_nontarget + cost.c_fa_cm * cost.p_spoof, cost.c_miss * cost.p_target
    )
    normed = costs / norm
    index = int(np.argmin(normed))
    return float(normed[index]), float(thresholds[index])


def min_tdcf(bonafide_cm: ArrayLike, spoof_cm: ArrayLike) -> tuple[float, float]:
    """ASVspoof 5 normalised min t-DCF of CM scores with the organisers' fixed ASV error
    rates, and the CM threshold reaching it."""
    coefficients = tdcf_coefficients_2021(ORGANISER_ASV, TDCF_COST)
    curve, thresholds = tdcf_curve_2021(bonafide_cm, spoof_cm, *coefficients)
    index = int(np.argmin(curve))
    return float(curve[index]), float(thresholds[index])


def asv_curves(
    target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Pmiss, Pfa_nontarget, Pfa_spoof, thresholds)`` of ASV scores at every sorted point
    (false-alarm rates as ``1 - rejected/n``, as the package computes them)."""
    tar, non, spf = _three_classes(target, nontarget, spoof, "ASV")
    thresholds, (n_tar, n_non, n_spf) = _rejected_counts(tar, non, spf)
    p_fa_non = np.concatenate([[1.0], 1 - n_non[1:] / non.size])
    p_fa_spf = np.concatenate([[1.0], 1 - n_spf[1:] / spf.size])
    return n_tar / tar.size, p_fa_non, p_fa_spf, thresholds


def _teer_search(
    cm: tuple[np.ndarray, np.ndarray], asv: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[float, int, int]:
    """``(t-EER fraction, ASV index, CM index)`` of the package's concurrent t-EER search."""
    p_miss_cm, p_fa_cm = cm
    p_miss_asv, p_fa_non, p_fa_spf = asv
    # never empty: the first ASV point (Pmiss 0, Pfa 1) is always inside the region
    allowed = np.flatnonzero(p_miss_asv < 0.5 * p_fa_non + 0.5 * p_fa_spf)
    pass_cm = 1 - p_miss_cm
    rows = max(1, _BLOCK_ELEMENTS // p_miss_cm.size)
    nearest = np.empty(allowed.size, dtype=np.int64)
    for start in range(0, allowed.size, rows):
        j = allowed[start : start + rows, None]
        p_miss_tdm = p_miss_cm + pass_cm * p_miss_asv[j]
        p_fa_tdm = 0.5 * pass_cm * p_fa_non[j] + 0.5 * p_fa_cm * p_fa_spf[j]
        nearest[start : start + rows] = np.argmin(np.abs(p_miss_tdm - p_fa_tdm), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        crit = np.abs(p_fa_non[allowed] / p_fa_spf[allowed] - p_fa_cm[nearest] / pass_cm[nearest])
    crit[~np.isfinite(crit)] = np.inf
    best = int(np.argmin(crit))
    if not np.isfinite(crit[best]):
        raise ValueError("t-EER undefined: every admissible operating point divides by zero")
    asv_index, cm_index = int(allowed[best]), int(nearest[best])
    return float(p_fa_spf[asv_index] * p_fa_cm[cm_index]), asv_index, cm_index


def _window(centre: int, size: int) -> slice:
    return slice(max(centre - TEER_WINDOW, 0), min(centre + TEER_WINDOW, size))


def t_eer(
    asv_target: ArrayLike,
    asv_nontarget: ArrayLike,
    asv_spoof: ArrayLike,
    cm_bonafide: ArrayLike,
    cm_spoof: ArrayLike,
    accelerated: bool = True,
) -> TeerPoint:
    """Concurrent t-EER (percent) of an ASV and a CM, as the ASVspoof 5 package computes it.

    ``accelerated`` reproduces ``compute_teer_accelerated`` (coarse then windowed search,
    used when both curves have >= 3000 points); False searches the full curves.
    """
    p_miss_asv, p_fa_non, p_fa_spf, tau_asv = asv_curves(asv_target, asv_nontarget, asv_spoof)
    p_miss_cm, p_fa_cm, tau_cm = compute_det_curve(cm_bonafide, cm_spoof)
    asv_step = tau_asv.size // TEER_DECIMATED_POINTS
    cm_step = tau_cm.size // TEER_DECIMATED_POINTS
    asv_part, cm_part = slice(None), slice(None)
    if accelerated and asv_step > 0 and cm_step > 0:
        coarse_asv, coarse_cm = slice(None, None, asv_step), slice(None, None, cm_step)
        _, asv_index, cm_index = _teer_search(
            (p_miss_cm[coarse_cm], p_fa_cm[coarse_cm]),
            (p_miss_asv[coarse_asv], p_fa_non[coarse_asv], p_fa_spf[coarse_asv]),
        )
        asv_part = _window(asv_index * asv_step, tau_asv.size)
        cm_part = _window(cm_index * cm_step, tau_cm.size)
    value, asv_index, cm_index = _teer_search(
        (p_miss_cm[cm_part], p_fa_cm[cm_part]),
        (p_miss_asv[asv_part], p_fa_non[asv_part], p_fa_spf[asv_part]),
    )
    asv_index += asv_part.start or 0
    cm_index += cm_part.start or 0
    return TeerPoint(
        100 * value, float(tau_asv[asv_index]), float(tau_cm[cm_index]), asv_index, cm_index
    )


def sasv_metrics(
    asv_target: ArrayLike,
    asv_nontarget: ArrayLike,
    asv_spoof: ArrayLike,
    cm_target: ArrayLike,
    cm_nontarget: ArrayLike,
    cm_spoof: ArrayLike,
    sasv_target: ArrayLike,
    sasv_nontarget: ArrayLike,
    sasv_spoof: ArrayLike,
    accelerated: bool = True,
) -> dict[str, float]:
    """Track 2 (SASV) metrics: ``min_a_dcf`` (SASV scores), ``min_tdcf`` (CM scores, the
    organisers' ASV error rates) and ``t_eer`` (percent; ASV and CM scores).

    The i-th entries of the ASV, CM and SASV arrays of a class are the same trial.
    """
    classes = {"target": (asv_target, cm_target, sasv_target)}
    classes |= {"non-target": (asv_nontarget, cm_nontarget, sasv_nontarget)}
    classes |= {"spoof": (asv_spoof, cm_spoof, sasv_spoof)}
    for name, arrays in classes.items():
        sizes = [np.size(a) for a in arrays]
        if len(set(sizes)) != 1:
            raise ValueError(f"{name} trials: ASV, CM and SASV scores differ in number: {sizes}")
    cm_bonafide = np.concatenate([np.ravel(cm_target), np.ravel(cm_nontarget)])
    return {
        "min_a_dcf": min_a_dcf(sasv_target, sasv_nontarget, sasv_spoof)[0],
        "min_tdcf": min_tdcf(cm_bonafide, cm_spoof)[0],
        "t_eer": t_eer(
            asv_target, asv_nontarget, asv_spoof, cm_bonafide, cm_spoof, accelerated
        ).t_eer,
    }


__all__ = [
    "ORGANISER_ASV",
    "ADcfCost",
    "TeerPoint",
    "asv_curves",
    "cm_metrics",
    "min_a_dcf",
    "min_tdcf",
    "sasv_metrics",
    "t_eer",
]
