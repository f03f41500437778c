"""Bootstrap confidence interval of the EER: exact per resample, seeded, shrinking with n."""

import numpy as np
import pytest

from spoof_lightning.metrics.bootstrap import bootstrap_eers, eer_confidence_interval
from spoof_lightning.metrics.eer import compute_eer


@pytest.mark.parametrize("seed", range(4))
def test_each_resample_is_the_official_eer_of_that_resample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_bona, n_spoof = int(rng.integers(1, 40)), int(rng.integers(1, 80))
    decimals = int(rng.integers(0, 2))  # rounded scores: many ties, across the classes too
    bona = np.round(rng.normal(1, 1, n_bona), decimals)
    spoof = np.round(rng.normal(-0.5, 1, n_spoof), decimals)
    eers = bootstrap_eers(bona, spoof, n_resamples=150, seed=7)
    draws = np.random.default_rng(7)
    i = draws.integers(0, n_bona, (150, n_bona), dtype=np.int32)
    j = draws.integers(0, n_spoof, (150, n_spoof), dtype=np.int32)
    expected = [compute_eer(bona[i[b]], spoof[j[b]])[0] for b in range(150)]
    np.testing.assert_array_equal(eers, expected)


def test_interval_is_seeded_contains_the_eer_and_narrows_with_more_trials() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(1.5, 1, 200), rng.normal(0, 1, 600)
    large = rng.normal(1.5, 1, 5000), rng.normal(0, 1, 15000)
    ci = eer_confidence_interval(*small, n_resamples=300, seed=1)
    assert ci == eer_confidence_interval(*small, n_resamples=300, seed=1)
    assert ci != eer_confidence_interval(*small, n_resamples=300, seed=2)
    assert ci["low"] < compute_eer(*small)[0] < ci["high"]
    assert (ci["level"], ci["n_resamples"], ci["seed"]) == (0.95, 300, 1)
    wide = ci["high"] - ci["low"]
    narrow = eer_confidence_interval(*large, n_resamples=300, seed=1)
    # the width scales about as 1/sqrt(n): 25x the trials, about 1/5 of the width
    assert 0.1 < (narrow["high"] - narrow["low"]) / wide < 0.4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_eers([1.0], [0.0], n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        eer_confidence_interval([1.0], [0.0], level=1.0)
    with pytest.raises(ValueError, match="spoof class is empty"):
        bootstrap_eers([1.0], [])
