"""Tandem detection cost function (t-DCF) of a countermeasure (CM) in front of a fixed ASV.

Two official forms are implemented, both normalised and minimised over every CM
threshold of the exact DET curve (:func:`~spoof_lightning.metrics.eer.compute_det_curve`):

* **ASVspoof 2019** (evaluation plan, Sec. 5; Kinnunen et al., Odyssey 2018) — the form
  used for the 2019 ranking and by AASIST::

      C1 = Ptar (Cmiss_cm - Cmiss_asv Pmiss_asv) - Pnon Cfa_asv Pfa_asv
      C2 = Cfa_cm Pspoof (1 - Pmiss_spoof_asv)
      t-DCF_norm(s) = (C1 Pmiss_cm(s) + C2 Pfa_cm(s)) / min(C1, C2)

* **ASVspoof 2021** (Kinnunen et al., "Tandem assessment of spoofing countermeasures and
  automatic speaker verification: fundamentals", IEEE/ACM TASLP 2020, Eqs. 10-11; the
  2021 evaluation package) — the revised form with a constant term::

      C0 = Ptar Cmiss Pmiss_asv + Pnon Cfa Pfa_asv
      C1 = Ptar Cmiss - C0
      C2 = Pspoof Cfa_spoof Pfa_spoof_asv
      t-DCF_norm(s) = (C0 + C1 Pmiss_cm(s) + C2 Pfa_cm(s)) / (C0 + min(C1, C2))

  (the revised 2019 package, ``tDCF_python_v2`` without ``legacy``, computes the same).
  Published 2019 numbers (AASIST 0.0275, ...) use the first form.

In both, the ASV operates at its own EER threshold (target vs non-target), with
``Pfa = P(score >= t)`` and ``Pmiss = P(score < t)``. Where the official scripts exit,
these functions raise ``ValueError`` with the same reason; a zero normaliser (where the
official code divides by zero) is an error too.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.eer import check_scores, compute_det_curve, compute_eer


@dataclass(frozen=True)
class CostModel2019:
    """t-DCF parameters of the ASVspoof 2019 evaluation plan (the defaults)."""

    p_spoof: float = 0.05
    p_target: float = (1 - 0.05) * 0.99
    p_nontarget: float = (1 - 0.05) * 0.01
    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0


@dataclass(frozen=True)
class CostModel2021:
    """t-DCF parameters of the ASVspoof 2021 evaluation package (the defaults)."""

    p_spoof: float = 0.05
    p_target: float = (1 - 0.05) * 0.99
    p_nontarget: float = (1 - 0.05) * 0.01
    c_miss: float = 1.0
    c_fa: float = 10.0
    c_fa_spoof: float = 10.0


@dataclass(frozen=True)
class AsvScores:
    """Scores of a fixed ASV system on target, non-target and spoof trials.

    ``spoof_attacks`` gives the attack id of each spoof trial when known (the 2019 ASV
    score files do), so per-attack t-DCF can use that attack's spoofs only.
    """

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray
    spoof_attacks: tuple[str, ...] = ()

    def for_attack(self, attack: str) -> "AsvScores":
        """The same target/non-target trials with only ``attack``'s spoof trials."""
        if len(self.spoof_attacks) != len(self.spoof):
            raise ValueError("these ASV scores carry no attack id per spoof trial")
        keep = np.asarray(self.spoof_attacks) == attack
        attacks = tuple(a for a in self.spoof_attacks if a == attack)
        return AsvScores(self.target, self.nontarget, self.spoof[keep], attacks)


@dataclass(frozen=True)
class AsvErrorRates:
    """ASV error rates at one threshold (fractions)."""

    p_fa: float  # non-targets accepted
    p_miss: float  # targets rejected
    p_miss_spoof: float  # spoofs rejected
    p_fa_spoof: float  # spoofs accepted


@dataclass(frozen=True)
class TandemResult:
    """Normalised minimum t-DCF and the operating points behind it."""

    min_tdcf: float
    cm_threshold: float  # CM threshold reaching the minimum
    eer_asv: float
    asv_threshold: float  # the ASV EER threshold


def _check_priors(p_target: float, p_nontarget: float, p_spoof: float) -> None:
    priors = (p_target, p_nontarget, p_spoof)
    if min(priors) < 0 or abs(sum(priors) - 1) > 1e-10:
        raise ValueError(f"t-DCF priors (Ptar, Pnon, Pspoof) = {priors} must be >= 0 and sum to 1")


def _cm_det_curve(
    bonafide_cm: ArrayLike, spoof_cm: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CM's DET curve, once its scores are finite and soft (3 or more distinct values)."""
    bona = check_scores(bonafide_cm, "CM bona fide", allow_empty=True)
    spoof = check_scores(spoof_cm, "CM spoof", allow_empty=True)
    if np.unique(np.concatenate([bona, spoof])).size < 3:
        raise ValueError(
            "CM scores take fewer than 3 distinct values: give soft scores, not decisions"
        )
    return compute_det_curve(bona, spoof)


def asv_error_rates(
    target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike, threshold: float
) -> AsvErrorRates:
    """ASV error rates at ``threshold`` (accept when ``score >= threshold``)."""
    tar = check_scores(target, "ASV target", allow_empty=True)
    non = check_scores(nontarget, "ASV non-target", allow_empty=True)
    spf = check_scores(spoof, "ASV spoof", allow_empty=True)
    for array, name in ((tar, "target"), (non, "non-target"), (spf, "spoof")):
        if array.size == 0:
            raise ValueError(f"no ASV {name} scores: the t-DCF needs target, non-target and spoof")
    p_miss_spoof = float(np.mean(spf < threshold))
    return AsvErrorRates(
        p_fa=float(np.mean(non >= threshold)),
        p_miss=float(np.mean(tar < threshold)),
        p_miss_spoof=p_miss_spoof,
        p_fa_spoof=float(np.mean(spf >= threshold)),
    )


def asv_operating_point(
    target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike
) -> tuple[AsvErrorRates, float, float]:
    """``(rates, eer_asv, threshold)`` with the ASV at its EER threshold (target vs non-target)."""
    eer_asv, threshold = compute_eer(target, nontarget)
    return asv_error_rates(target, nontarget, spoof, threshold), eer_asv, threshold


def tdcf_curve_2019(
    bonafide_cm: ArrayLike,
    spoof_cm: ArrayLike,
    asv: AsvErrorRates,
    cost: CostModel2019 = CostModel2019(),
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ASVspoof 2019 t-DCF at every CM threshold: ``(tdcf_norm, cm_thresholds)``."""
    _check_priors(cost.p_target, cost.p_nontarget, cost.p_spoof)
    p_miss_cm, p_fa_cm, thresholds = _cm_det_curve(bonafide_cm, spoof_cm)
    c1 = (
        cost.p_target * (cost.c_miss_cm - cost.c_miss_asv * asv.p_miss)
        - cost.p_nontarget * cost.c_fa_asv * asv.p_fa
    )
    c2 = cost.c_fa_cm * cost.p_spoof * (1 - asv.p_miss_spoof)
    if c1 < 0 or c2 < 0:
        raise ValueError(
            f"negative t-DCF weights C1={c1:.6g}, C2={c2:.6g}: check the ASV error rates {asv}"
        )
    if min(c1, c2) == 0:
        raise ValueError(
            f"t-DCF normaliser min(C1, C2) is 0 (C1={c1:.6g}, C2={c2:.6g}): the ASV rejects every "
            "spoof or accepts every non-target, so the normalised t-DCF is undefined"
        )
    return (c1 * p_miss_cm + c2 * p_fa_cm) / min(c1, c2), thresholds


def min_tdcf_2019(
    bonafide_cm: ArrayLike,
    spoof_cm: ArrayLike,
    asv_target: ArrayLike,
    asv_nontarget: ArrayLike,
    asv_spoof: ArrayLike,
    cost: CostModel2019 = CostModel2019(),
) -> TandemResult:
    """Normalised min t-DCF as the ASVspoof 2019 scoring computes it (ASV at its EER)."""
    asv, eer_asv, asv_threshold = asv_operating_point(asv_target, asv_nontarget, asv_spoof)
    curve, thresholds = tdcf_curve_2019(bonafide_cm, spoof_cm, asv, cost)
    index = int(np.argmin(curve))
    return TandemResult(float(curve[index]), float(thresholds[index]), eer_asv, asv_threshold)


def tdcf_coefficients_2021(
    asv: AsvErrorRates, cost: CostModel2021 = CostModel2021()
) -> tuple[float, float, float]:
    """``(C0, C1, C2)`` of the ASVspoof 2021 t-DCF for the given ASV error rates."""
    if min(cost.c_miss, cost.c_fa, cost.c_fa_spoof) < 0:
        raise ValueError(f"t-DCF costs must be non-negative, got {cost}")
    _check_priors(cost.p_target, cost.p_nontarget, cost.p_spoof)
    c0 = cost.p_target * cost.c_miss * asv.p_miss + cost.p_nontarget * cost.c_fa * asv.p_fa
    c1 = cost.p_target * cost.c_miss - c0
    c2 = cost.p_spoof * cost.c_fa_spoof * asv.p_fa_spoof
    return c0, c1, c2


def tdcf_curve_2021(
    bonafide_cm: ArrayLike, spoof_cm: ArrayLike, c0: float, c1: float, c2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ASVspoof 2021 t-DCF at every CM threshold: ``(tdcf_norm, cm_thresholds)``."""
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise ValueError(
            f"negative t-DCF weights C0={c0:.6g}, C1={c1:.6g}, C2={c2:.6g}: "
            "check the ASV error rates"
        )
    if c0 + min(c1, c2) == 0:
        raise ValueError(f"t-DCF normaliser C0 + min(C1, C2) is 0 (C0={c0}, C1={c1}, C2={c2})")
    p_miss_cm, p_fa_cm, thresholds = _cm_det_curve(bonafide_cm, spoof_cm)
    return (c0 + c1 * p_miss_cm + c2 * p_fa_cm) / (c0 + min(c1, c2)), thresholds


def min_tdcf_2021(
    bonafide_cm: ArrayLike,
    spoof_cm: ArrayLike,
    asv_target: ArrayLike,
    asv_nontarget: ArrayLike,
    asv_spoof: ArrayLike,
    cost: CostModel2021 = CostModel2021(),
) -> TandemResult:
    """Normalised min t-DCF as the ASVspoof 2021 package computes it (ASV at its EER).

    For a decomposed condition (e.g. one codec), pass the ASV and CM scores of that
    condition only: the package recomputes C0, C1, C2 per condition.
    """
    asv, eer_asv, asv_threshold = asv_operating_point(asv_target, asv_nontarget, asv_spoof)
    curve, thresholds = tdcf_curve_2021(bonafide_cm, spoof_cm, *tdcf_coefficients_2021(asv, cost))
    index = int(np.argmin(curve))
    return TandemResult(float(curve[index]), float(thresholds[index]), eer_asv, asv_threshold)


__all__ = [
    "AsvErrorRates",
    "AsvScores",
    "CostModel2019",
    "CostModel2021",
    "TandemResult",
    "asv_error_rates",
    "asv_operating_point",
    "min_tdcf_2019",
    "min_tdcf_2021",
    "tdcf_coefficients_2021",
    "tdcf_curve_2019",
    "tdcf_curve_2021",
]
