"""ASVspoof 5 metrics against the official package's outputs, and their properties."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.asvspoof5 import (
    ADcfCost,
    asv_curves,
    cm_metrics,
    min_a_dcf,
    min_tdcf,
    sasv_metrics,
    t_eer,
)
from spoof_lightning.metrics.calibration import min_dcf
from spoof_lightning.metrics.eer import compute_det_curve

SHARED = Path(os.environ.get("SPOOF_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = SHARED / "reference" / "asvspoof5_metrics.json"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_file(), reason=f"reference data absent: {REFERENCE}"
)
CLASSES = ("target", "nontarget", "spoof")


def _cases(kind: str) -> list[dict]:
    return json.loads(REFERENCE.read_text())[kind] if REFERENCE.is_file() else []


def _names(kind: str) -> list[str]:
    return [case["name"] for case in _cases(kind)] or ["absent"]


def _case(kind: str, name: str) -> dict:
    return next(case for case in _cases(kind) if case["name"] == name)


def _sasv_arrays(case: dict) -> list[np.ndarray]:
    return [np.asarray(case[f"{s}_{c}"]) for s in ("asv", "cm", "sasv") for c in CLASSES]


@needs_reference
@pytest.mark.parametrize("name", _names("track1_cases"))
def test_track1_matches_official_package(name: str) -> None:
    case = _case("track1_cases", name)
    result = cm_metrics(case["bonafide_cm"], case["spoof_cm"])
    assert set(result) == {"eer", "eer_threshold", "min_dcf", "act_dcf", "cllr"}
    for key in result:
        assert abs(result[key] - case[key]) <= 1e-9, key
    threshold = min_dcf(case["bonafide_cm"], case["spoof_cm"])[1]
    assert abs(threshold - case["min_dcf_threshold"]) <= 1e-9


@needs_reference
@pytest.mark.parametrize("name", _names("sasv_cases"))
def test_sasv_matches_official_package(name: str) -> None:
    case = _case("sasv_cases", name)
    arrays = _sasv_arrays(case)
    result = sasv_metrics(*arrays)
    assert set(result) == {"min_a_dcf", "min_tdcf", "t_eer"}
    assert abs(result["min_a_dcf"] - case["min_a_dcf"]) <= 1e-9
    assert abs(result["min_tdcf"] - case["min_tdcf"]) <= 1e-9
    assert abs(result["t_eer"] - case["t_eer"]) <= 1e-7
    assert abs(min_a_dcf(*arrays[6:])[1] - case["min_a_dcf_threshold"]) <= 1e-9
    bona_cm = np.concatenate(arrays[3:5])
    assert abs(min_tdcf(bona_cm, arrays[5])[1] - case["min_tdcf_cm_threshold"]) <= 1e-9
    full = t_eer(*arrays[:3], bona_cm, arrays[5], accelerated=False)
    point = case["t_eer_full_search_point"]
    assert abs(full.t_eer - case["t_eer_full_search"]) <= 1e-7
    assert (full.asv_index, full.cm_index) == (point["asv_index"], point["cm_index"])
    assert (full.asv_threshold, full.cm_threshold) == (
        point["asv_threshold"],
        point["cm_threshold"],
    )
    # the accelerated search runs exactly when both curves have >= 3000 points
    sizes = (sum(map(np.size, arrays[:3])) + 1, sum(map(np.size, arrays[3:6])) + 1)
    assert (min(sizes) >= 3000) == (case["t_eer_path"] == "accelerated")


# ---------------------------------------------------------------- reference loop


def _naive_teer(cm: tuple, asv: tuple) -> tuple[float, int, int] | None:
    """The documented t-EER search, one ASV point at a time (ASVSPOOF5_METRICS.md)."""
    p_miss_cm, p_fa_cm = cm
    best, found = np.inf, None
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, (p_miss, p_non, p_spf) in enumerate(zip(*asv, strict=True)):
            if not p_miss < 0.5 * p_non + 0.5 * p_spf:
                continue
            tdm_miss = p_miss_cm + (1 - p_miss_cm) * p_miss
            tdm_fa = 0.5 * (1 - p_miss_cm) * p_non + 0.5 * p_fa_cm * p_spf
            i = int(np.argmin(np.abs(tdm_miss - tdm_fa)))
            crit = abs(p_non / p_spf - p_fa_cm[i] / (1 - p_miss_cm[i]))
            if crit < best:
                best, found = crit, (float(p_spf * p_fa_cm[i]), j, i)
    return found


def _naive_teer_accelerated(asv_scores: tuple, cm_bona: np.ndarray, cm_spoof: np.ndarray):
    asv = asv_curves(*asv_scores)
    p_miss_cm, p_fa_cm, tau_cm = compute_det_curve(cm_bona, cm_spoof)
    a_step, c_step = asv[3].size // 3000, tau_cm.size // 3000
    a_part, c_part = slice(None), slice(None)
    if a_step and c_step:
        _, j, i = _naive_teer(
            (p_miss_cm[::c_step], p_fa_cm[::c_step]), tuple(x[::a_step] for x in asv[:3])
        )
        a_part = slice(max(j * a_step - 1600, 0), min(j * a_step + 1600, asv[3].size))
        c_part = slice(max(i * c_step - 1600, 0), min(i * c_step + 1600, tau_cm.size))
    value, _, _ = _naive_teer(
        (p_miss_cm[c_part], p_fa_cm[c_part]), tuple(x[a_part] for x in asv[:3])
    )
    return 100 * value


def _random_sasv(rng: np.random.Generator, n: tuple[int, int, int], decimals: int | None):
    def draw(mean: float, sd: float, size: int) -> np.ndarray:
        x = rng.normal(mean, sd, size)
        return x if decimals is None else np.round(x, decimals)

    asv = (draw(3, 1, n[0]), draw(-1, 1.3, n[1]), draw(2, 1.8, n[2]))
    cm = (draw(2, 1.5, n[0] + n[1]), draw(-1.5, 1.5, n[2]))
    return asv, cm


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, 1), (2, 0)])
def test_teer_search_equals_the_documented_loop(seed: int, decimals: int | None) -> None:
    asv, cm = _random_sasv(np.random.default_rng(seed), (150, 90, 200), decimals)
    p_miss_cm, p_fa_cm, _ = compute_det_curve(*cm)
    value, j, i = _naive_teer((p_miss_cm, p_fa_cm), asv_curves(*asv)[:3])
    point = t_eer(*asv, *cm, accelerated=False)
    assert (point.t_eer, point.asv_index, point.cm_index) == (100 * value, j, i)
    assert t_eer(*asv, *cm).t_eer == point.t_eer  # fewer than 3000 points: no acceleration


@pytest.mark.parametrize("seed", [3])
def test_accelerated_teer_equals_the_documented_coarse_and_window_search(seed: int) -> None:
    asv, cm = _random_sasv(np.random.default_rng(seed), (2600, 1800, 3300), 2)
    assert t_eer(*asv, *cm).t_eer == _naive_teer_accelerated(asv, *cm)


# ---------------------------------------------------------------- properties


def test_metrics_do_not_depend_on_trial_order() -> None:
    rng = np.random.default_rng(5)
    asv, cm = _random_sasv(rng, (300, 200, 400), 1)
    sasv = tuple(a + c for a, c in zip(asv, (cm[0][:300], cm[0][300:], cm[1]), strict=True))
    arrays = [*asv, cm[0][:300], cm[0][300:], cm[1], *sasv]
    shuffled = list(arrays)
    for k in range(3):  # the same permutation for the ASV, CM and SASV scores of a class
        order = rng.permutation(arrays[k].size)
        for system in range(3):
            shuffled[3 * system + k] = arrays[3 * system + k][order]
    assert sasv_metrics(*shuffled) == sasv_metrics(*arrays)
    bona, spoof = cm
    assert cm_metrics(rng.permutation(bona), rng.permutation(spoof)) == cm_metrics(bona, spoof)


def test_track1_hand_values() -> None:
    # sorted: -1s 0b 0.5s 2b; |FRR - FAR| = 1, .5, 0, .5, 1 -> EER 0.5 at threshold 0
    result = cm_metrics([0.0, 2.0], [-1.0, 0.5])
    assert (result["eer"], result["eer_threshold"]) == (0.5, 0.0)
    # DCF points (FRR, FAR): (0,1) (0,.5) (.5,.5) (.5,0) (1,0); cost .95 FRR + .5 FAR, / .5
    assert result["min_dcf"] == pytest.approx(min(0.5, 0.25, 0.725, 0.475, 0.95) / 0.5, abs=1e-15)
    # actDCF at -ln 1.9: the bona fide 0 is accepted, the spoof 0.5 too
    assert result["act_dcf"] == pytest.approx(0.5 * 0.5 / 0.5)
    assert result["cllr"] == pytest.approx(
        (np.log1p(np.exp(-0.0)) + np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0)))
        / 2
        / 2
        / np.log(2)
        + np.log1p(np.exp(0.5)) / 2 / 2 / np.log(2)
    )


def test_cllr_overflows_as_the_package_does() -> None:
    assert cm_metrics([-800.0, 1.0], [0.0, -1.0])["cllr"] == np.inf


def test_min_dcf_uses_the_packages_spoof_prior() -> None:
    bona, spoof = np.array([0.3, 1.2, 2.0]), np.array([-0.5, 0.7, 1.0, 2.5])
    frr, far, _ = compute_det_curve(bona, spoof)
    p_spoof_used = 1 - (1 - 0.05)
    expected = np.min(1 * frr * 0.95 + 10 * far * p_spoof_used) / min(0.95, 10 * p_spoof_used)
    assert cm_metrics(bona, spoof)["min_dcf"] == expected


def test_a_dcf_hand_values() -> None:
    # sorted non 0, spoof 1, target 2: rejecting the non-target and the spoof costs nothing
    assert min_a_dcf([2.0], [0.0], [1.0]) == (0.0, 1.0)
    # all tied: target sorts first; the best point is to accept all (cost 0.595 / 0.595)
    value, threshold = min_a_dcf([1.0], [1.0], [1.0])
    assert value == pytest.approx(1.0) and threshold == 1.0 - 1e-8
    # the default a_dcf.CostModel (Cfa_cm 20) is not what calculate_metrics uses
    assert ADcfCost().c_fa_cm == 10.0


def test_min_tdcf_ignores_the_asv_scores() -> None:
    asv, cm = _random_sasv(np.random.default_rng(6), (50, 40, 60), None)
    cm_parts = (cm[0][:50], cm[0][50:], cm[1])
    base = sasv_metrics(*asv, *cm_parts, *asv)
    other = sasv_metrics(asv[0] + 5, asv[1] - 5, asv[2] * 2, *cm_parts, *asv)
    assert base["min_tdcf"] == other["min_tdcf"] and base["min_a_dcf"] == other["min_a_dcf"]


def test_bad_inputs_raise_value_error() -> None:
    with pytest.raises(ValueError, match="spoof class is empty|no spoof"):
        cm_metrics([1.0], [])
    with pytest.raises(ValueError, match="not finite"):
        cm_metrics([np.nan], [0.0])
    asv = ([3.0, 4.0], [0.0, 1.0], [2.0, 2.5])
    with pytest.raises(ValueError, match="differ in number"):
        sasv_metrics(*asv, [1.0], [0.0, 0.1], [-1.0, -2.0], *asv)
    with pytest.raises(ValueError, match="fewer than 3 distinct"):
        sasv_metrics(*asv, [1.0, 1.0], [1.0, 1.0], [0.0, 0.0], *asv)
