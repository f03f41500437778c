"""EER / DET curve against the official ASVspoof 2019 definition and reference cases."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.eer import compute_det_curve, compute_eer

SHARED = Path(os.environ.get("SPOOF_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = SHARED / "reference" / "asvspoof2019_metrics.json"


def _reference_cases() -> list[dict]:
    if not REFERENCE.is_file():
        return []
    return json.loads(REFERENCE.read_text())["cases"]


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference data absent: {REFERENCE}")
@pytest.mark.parametrize("index", range(5))
def test_matches_official_reference(index: int) -> None:
    case = _reference_cases()[index]
    eer, threshold = compute_eer(np.array(case["bonafide_cm"]), np.array(case["spoof_cm"]))
    assert abs(eer - case["eer_cm"]) <= 1e-9
    assert abs(threshold - case["eer_cm_threshold"]) <= 1e-9
    eer_asv, asv_threshold = compute_eer(case["asv_target"], case["asv_nontarget"])
    assert abs(eer_asv - case["eer_asv"]) <= 1e-9
    assert abs(asv_threshold - case["asv_threshold"]) <= 1e-9


def test_hand_computed_with_ties() -> None:
    # pooled sort (bona fide first on ties): 0.1s 0.5b 0.5s 0.9b
    frr, far, thr = compute_det_curve([0.5, 0.9], [0.1, 0.5])
    np.testing.assert_allclose(frr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(far, [1, 0.5, 0.5, 0, 0])
    np.testing.assert_allclose(thr, [0.099, 0.1, 0.5, 0.5, 0.9])
    # |frr - far| = 1, .5, 0, .5, 1 -> index 2
    assert compute_eer([0.5, 0.9], [0.1, 0.5]) == (0.5, 0.5)


def test_perfect_and_inverted_separation() -> None:
    eer, threshold = compute_eer([2.0, 3.0, 4.0], [-1.0, 0.0])
    assert eer == 0.0 and threshold == 0.0
    eer, threshold = compute_eer([-1.0, 0.0], [2.0, 3.0, 4.0])
    # frr = 0, .5, 1, 1, 1, 1 and far = 1, 1, 1, 2/3, 1/3, 0: |frr - far| = 0 at k = 2
    assert eer == 1.0 and threshold == 0.0


def test_all_tied_scores_rank_bonafide_first() -> None:
    # the stable sort puts tied bona fide trials first, so they are all rejected first:
    # the official definition gives EER 1 (not 0.5) when every score is equal
    assert compute_eer([1.0, 1.0], [1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="bona fide class is empty"):
        compute_eer([], [1.0])
    with pytest.raises(ValueError, match="spoof class is empty"):
        compute_eer([1.0], np.array([]))
    with pytest.raises(ValueError, match="2 of 3 spoof scores are not finite"):
        compute_eer([1.0], [np.nan, 0.0, np.inf])
