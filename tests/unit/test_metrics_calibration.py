"""Calibration (logistic regression), Cllr / minCllr, ASVspoof 5 min/act DCF."""

import numpy as np
import pytest

from spoof_lightning.metrics.calibration import (
    LogisticCalibration,
    act_dcf,
    cllr,
    min_cllr,
    min_dcf,
)


def _miscalibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes N(2, 1) / N(0, 1) (true LLR = 2x - 2), then scaled by 5 and shifted."""
    return 5 * rng.normal(2, 1, n) - 20, 5 * rng.normal(0, 1, 4 * n) - 20


def test_calibration_recovers_the_true_llr_and_improves_cllr() -> None:
    rng = np.random.default_rng(0)
    dev_bona, dev_spoof = _miscalibrated(rng, 2000)
    eval_bona, eval_spoof = _miscalibrated(rng, 2000)
    calibration = LogisticCalibration.fit(dev_bona, dev_spoof)
    # true LLR in the shifted scores: 2 (s + 20) / 5 - 2 = 0.4 s + 6
    assert calibration.scale == pytest.approx(0.4, abs=0.03)
    assert calibration.offset == pytest.approx(6.0, abs=0.4)
    raw = cllr(eval_bona, eval_spoof)
    calibrated = cllr(calibration(eval_bona), calibration(eval_spoof))
    floor = min_cllr(eval_bona, eval_spoof)
    assert raw > 3 and calibrated < 0.6
    assert floor <= calibrated <= floor + 0.02
    assert min_cllr(eval_bona, eval_spoof) == pytest.approx(
        min_cllr(calibration(eval_bona), calibration(eval_spoof))
    )  # invariant to monotonic maps
    raw_act = act_dcf(eval_bona, eval_spoof)[0]
    cal_act = act_dcf(calibration(eval_bona), calibration(eval_spoof))[0]
    best = min_dcf(eval_bona, eval_spoof)[0]
    assert best <= cal_act < raw_act and cal_act < best + 0.05


def test_cllr_hand_values() -> None:
    assert cllr([0.0], [0.0]) == pytest.approx(1.0)  # uninformative
    assert cllr([np.log(3)], [-np.log(3)]) == pytest.approx(np.log2(4 / 3))
    assert min_cllr([2.0, 3.0], [0.0, 1.0]) == 0.0  # separable
    assert min_cllr([0.0, 1.0], [2.0, 3.0]) == pytest.approx(1.0)  # PAV: constant at the prior


def test_dcf_hand_values() -> None:
    # weights: miss 1 * 0.95, fa 10 * 0.05 = 0.5; normaliser 0.5
    bona, spoof = [1.0, 2.0], [0.0, 1.5]
    # DET points (pmiss, pfa): (0,1) (0,.5) (.5,.5) (.5,0) (1,0)
    value, threshold = min_dcf(bona, spoof)
    assert value == pytest.approx(min(0.5, 0.25, 0.725, 0.475, 0.95) / 0.5)
    assert threshold == 0.0
    value, threshold = act_dcf([0.0, 2.0], [-1.0, -0.5])  # threshold -log(1.9) = -0.642
    assert threshold == pytest.approx(-np.log(1.9))
    assert value == pytest.approx(0.5 * 0.5 / 0.5)  # one spoof (-0.5) accepted


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="prior must be in"):
        LogisticCalibration.fit([1.0], [0.0], prior=1.0)
    with pytest.raises(ValueError, match="spoof class is empty"):
        cllr([1.0], [])
