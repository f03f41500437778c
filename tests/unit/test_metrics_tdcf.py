"""t-DCF: ASVspoof 2019 against the official reference cases, ASVspoof 2021 by hand."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.tdcf import (
    AsvErrorRates,
    CostModel2019,
    CostModel2021,
    asv_operating_point,
    min_tdcf_2019,
    min_tdcf_2021,
    tdcf_coefficients_2021,
    tdcf_curve_2019,
    tdcf_curve_2021,
)

SHARED = Path(os.environ.get("SPOOF_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = SHARED / "reference" / "asvspoof2019_metrics.json"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_file(), reason=f"reference data absent: {REFERENCE}"
)

# ASV: sorted pooled trials -1n 0n .5n 1t 1.5n 2t 3t 4t -> EER .25 at threshold 1.0;
# with "accept if score >= 1.0": Pmiss_asv = 0, Pfa_asv = 1/4; spoofs [0, 2]: Pfa_spoof = 1/2.
ASV_TARGET = [1.0, 2.0, 3.0, 4.0]
ASV_NONTARGET = [-1.0, 0.0, 0.5, 1.5]
ASV_SPOOF = [0.0, 2.0]
# CM: sorted 0s 1b 1.5s 2b 3s -> Pmiss_cm = 0, 0, .5, .5, 1, 1; Pfa_cm = 1, 2/3, 2/3, 1/3, 1/3, 0
CM_BONA = [1.0, 2.0]
CM_SPOOF = [0.0, 1.5, 3.0]


@needs_reference
def test_cost_model_matches_reference() -> None:
    reference = json.loads(REFERENCE.read_text())["cost_model"]
    cost = CostModel2019()
    assert cost.p_spoof == reference["Pspoof"]
    assert cost.p_target == pytest.approx(reference["Ptar"], abs=1e-15)
    assert cost.p_nontarget == pytest.approx(reference["Pnon"], abs=1e-15)
    assert (cost.c_miss_asv, cost.c_fa_asv) == (reference["Cmiss_asv"], reference["Cfa_asv"])
    assert (cost.c_miss_cm, cost.c_fa_cm) == (reference["Cmiss_cm"], reference["Cfa_cm"])


@needs_reference
@pytest.mark.parametrize("index", range(5))
def test_2019_matches_official_reference(index: int) -> None:
    case = json.loads(REFERENCE.read_text())["cases"][index]
    result = min_tdcf_2019(
        case["bonafide_cm"],
        case["spoof_cm"],
        case["asv_target"],
        case["asv_nontarget"],
        case["asv_spoof"],
    )
    assert abs(result.min_tdcf - case["min_tdcf"]) <= 1e-6
    assert abs(result.eer_asv - case["eer_asv"]) <= 1e-9
    assert abs(result.asv_threshold - case["asv_threshold"]) <= 1e-9


def test_asv_operating_point_by_hand() -> None:
    rates, eer, threshold = asv_operating_point(ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    assert (eer, threshold) == (0.25, 1.0)
    assert rates == AsvErrorRates(p_fa=0.25, p_miss=0.0, p_miss_spoof=0.5, p_fa_spoof=0.5)


def test_2021_coefficients_and_min_by_hand() -> None:
    rates, _, _ = asv_operating_point(ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    c0, c1, c2 = tdcf_coefficients_2021(rates)
    assert c0 == pytest.approx(0.0095 * 10 * 0.25)
    assert c1 == pytest.approx(0.9405 - 0.02375)
    assert c2 == pytest.approx(0.05 * 10 * 0.5)
    curve, thresholds = tdcf_curve_2021(CM_BONA, CM_SPOOF, c0, c1, c2)
    norm = 0.02375 + 0.25
    expected = [
        (0.02375 + c1 * pmiss + 0.25 * pfa) / norm
        for pmiss, pfa in zip(
            [0, 0, 0.5, 0.5, 1, 1], [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0], strict=True
        )
    ]
    np.testing.assert_allclose(curve, expected, rtol=1e-12)
    assert curve[0] == pytest.approx(1.0)  # accept everything = the default system
    result = min_tdcf_2021(CM_BONA, CM_SPOOF, ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    assert result.min_tdcf == pytest.approx((0.02375 + 0.25 * 2 / 3) / 0.27375)
    assert result.cm_threshold == thresholds[1] == 0.0
    assert (result.eer_asv, result.asv_threshold) == (0.25, 1.0)


def test_2021_perfect_cm_reaches_the_asv_floor() -> None:
    result = min_tdcf_2021([5.0, 6.0, 7.0], [-1.0, -2.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    assert result.min_tdcf == pytest.approx(0.02375 / 0.27375)  # C0 / (C0 + min(C1, C2))


def test_2019_by_hand() -> None:
    rates = AsvErrorRates(p_fa=0.25, p_miss=0.0, p_miss_spoof=0.5, p_fa_spoof=0.5)
    curve, _ = tdcf_curve_2019(CM_BONA, CM_SPOOF, rates)
    c1 = 0.9405 * 1 - 0.0095 * 10 * 0.25
    c2 = 10 * 0.05 * 0.5
    assert curve.min() == pytest.approx(min(c2 * 2 / 3, c1 * 0.5 + c2 / 3) / min(c1, c2))


def test_degenerate_inputs_raise_like_the_official_code() -> None:
    with pytest.raises(ValueError, match="not decisions"):
        min_tdcf_2021([1.0, 1.0], [0.0, 0.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    with pytest.raises(ValueError, match="no ASV spoof scores"):
        min_tdcf_2019(CM_BONA, CM_SPOOF, ASV_TARGET, ASV_NONTARGET, [])
    with pytest.raises(ValueError, match="1 of 3 CM spoof scores are not finite"):
        min_tdcf_2019(CM_BONA, [0.0, np.nan, 1.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    with pytest.raises(ValueError, match="negative t-DCF weights"):
        tdcf_curve_2021(CM_BONA, CM_SPOOF, 0.1, -0.2, 0.3)
    with pytest.raises(ValueError, match="normaliser"):  # ASV rejects every spoof: C2 = 0
        min_tdcf_2019(CM_BONA, CM_SPOOF, ASV_TARGET, ASV_NONTARGET, [-5.0, -6.0])
    with pytest.raises(ValueError, match="sum to 1"):
        min_tdcf_2021(
            CM_BONA, CM_SPOOF, ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, CostModel2021(p_spoof=0.5)
        )
    with pytest.raises(ValueError, match="sum to 1"):
        tdcf_curve_2019(CM_BONA, CM_SPOOF, AsvErrorRates(0, 0, 0, 1), CostModel2019(p_target=1))
