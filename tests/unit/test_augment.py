"""On-the-fly waveform augmentation: contracts, determinism and the size of each effect."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.signal import welch

from spoof_lightning.data.augment import (
    AddNoise,
    BandLimit,
    Compose,
    Gain,
    RawBoost,
    colored_noise,
    mu_law,
)

SR = 16_000
CONF = Path(__file__).resolve().parents[2] / "conf" / "augment"


def speechish(seed: int = 0, n: int = 16_000, amplitude: float = 0.1) -> np.ndarray:
    """Harmonics with a slow envelope plus a little noise, peak well below 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6)) / k for k in range(1, 20))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(n)
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean, noisy = clean.astype(np.float64), noisy.astype(np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))


TRANSFORMS = {
    **{f"rawboost{a}": RawBoost(algo=a) for a in range(1, 9)},
    "noise": AddNoise(),
    "gain": Gain(),
    "bandlimit_mulaw": BandLimit(mu_law_p=1.0),
    "compose": Compose([Gain(p=0.5), AddNoise(p=0.5), BandLimit(p=0.5)]),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_contract_and_determinism(name):
    transform = TRANSFORMS[name]
    x = speechish()
    before = x.copy()
    y = transform(x, np.random.default_rng(7))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_array_equal(transform(x, np.random.default_rng(7)), y)
    outputs = [transform(x, np.random.default_rng(s)) for s in range(8)]
    assert any(not np.array_equal(o, y) for o in outputs)
    assert any(not np.allclose(o, x) for o in outputs)  # it does something
    assert pickle.loads(pickle.dumps(transform)).__class__ is type(transform)  # worker-safe


def test_loud_input_is_normalized_not_clipped():
    x = speechish(amplitude=0.9)
    y = Gain(min_db=12, max_db=12)(x, np.random.default_rng(0))
    assert np.abs(y).max() == pytest.approx(1.0)
    np.testing.assert_allclose(y, x / np.abs(x).max(), atol=1e-6)  # shape kept


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_add_noise_hits_requested_snr(snr, exponent):
    x = speechish(amplitude=0.05)
    noise = AddNoise(min_snr_db=snr, max_snr_db=snr, min_exponent=exponent, max_exponent=exponent)
    y = noise(x, np.random.default_rng(1))
    assert abs(snr_db(x, y) - snr) < 0.5


def test_noise_colour():
    rng = np.random.default_rng(0)
    for exponent, expected_slope in [(0.0, 0.0), (1.0, -1.0), (2.0, -2.0)]:
        f, psd = welch(colored_noise(rng, 64_000, exponent), fs=SR, nperseg=1024)
        band = (f > 100) & (f < 6000)
        slope = np.polyfit(np.log10(f[band]), np.log10(psd[band]), 1)[0]
        assert abs(slope - expected_slope) < 0.2


def test_gain_in_range():
    x = speechish()
    for seed in range(5):
        y = Gain(min_db=-6, max_db=3)(x, np.random.default_rng(seed))
        db = 20 * np.log10(np.abs(y).max() / np.abs(x).max())
        assert -6.01 <= db <= 3.01


def test_band_limit_removes_energy_above_cutoff():
    x = (0.1 * np.random.default_rng(0).standard_normal(32_000)).astype(np.float32)
    y = BandLimit(min_cutoff_hz=4000, max_cutoff_hz=4000)(x, np.random.default_rng(0))
    f, psd = welch(y, fs=SR, nperseg=1024)
    passband = psd[(f > 500) & (f < 3000)].mean()
    assert psd[f > 5000].mean() < passband * 1e-4  # > 40 dB down
    assert passband == pytest.approx(
        welch(x, fs=SR, nperseg=1024)[1][(f > 500) & (f < 3000)].mean(), rel=0.2
    )


def test_mu_law_quantization():
    x = speechish(amplitude=1.0).astype(np.float64)
    for bits in (4, 8):
        y = mu_law(x, bits)
        assert len(np.unique(y)) <= 2**bits
    assert snr_db(x, mu_law(x, 8)) > 25  # 8-bit mu-law is telephone quality
    assert snr_db(x, mu_law(x, 4)) < snr_db(x, mu_law(x, 8)) - 10


def test_rawboost_lnl_linear_vs_nonlinear():
    x = speechish(amplitude=0.2).astype(np.float64)
    linear = RawBoost(n_f=1)
    y1 = linear.lnl(x, np.random.default_rng(3))
    y2 = linear.lnl(2 * x, np.random.default_rng(3))
    np.testing.assert_allclose(y2, 2 * y1, rtol=1e-9, atol=1e-12)  # a pure linear filter
    assert not np.allclose(y1, x, atol=1e-3)
    nonlinear = RawBoost(n_f=5)
    z1 = nonlinear.lnl(x, np.random.default_rng(3))
    z2 = nonlinear.lnl(2 * x, np.random.default_rng(3))
    assert not np.allclose(z2, 2 * z1, rtol=1e-3)
    assert abs(z1.mean()) < 1e-9


def test_rawboost_multiband_filter():
    rb = RawBoost()
    for seed in range(5):
        taps = rb.multiband_filter(np.random.default_rng(seed), gain_db=-6.0)
        assert len(taps) % 2 == 1  # linear phase, zero-delay "same" filtering
        response = np.abs(np.fft.rfft(taps, 8192))
        assert response.max() == pytest.approx(10 ** (-6 / 20), rel=0.01)
        assert response.min() < 0.5 * response.max()  # it notches something out


def test_rawboost_isd_is_sparse_and_signal_dependent():
    x = speechish(amplitude=0.2).astype(np.float64)
    rb = RawBoost(p_max=10, g_sd=2)
    for seed in range(5):
        y = rb.isd(x, np.random.default_rng(seed))
        changed = y != x
        assert changed.mean() <= 0.10
        assert np.all(np.abs(y - x) <= 2 * np.abs(x) + 1e-12)


def test_rawboost_ssi_snr_in_range():
    x = speechish(amplitude=0.1).astype(np.float64)
    rb = RawBoost(min_snr_db=10, max_snr_db=40)
    values = [snr_db(x, rb.ssi(x, np.random.default_rng(s))) for s in range(6)]
    assert all(10 - 0.5 <= v <= 40 + 0.5 for v in values)
    assert max(values) - min(values) > 3  # drawn, not fixed


def test_probability_and_compose():
    x = speechish()
    rng = np.random.default_rng(0)
    applied = [not np.allclose(Gain(min_db=6, max_db=6, p=0.3)(x, rng), x) for _ in range(400)]
    assert 0.22 < np.mean(applied) < 0.38
    np.testing.assert_array_equal(Compose([])(x, rng), x)
    np.testing.assert_array_equal(AddNoise(p=0.0)(x, rng), x)
    chain = Compose([Gain(min_db=6, max_db=6), Gain(min_db=-6, max_db=-6)])
    np.testing.assert_allclose(chain(x, rng), x, rtol=1e-5)


def test_bad_input_and_config_errors():
    with pytest.raises(ValueError, match=r"RawBoost.*1-D float waveform"):
        RawBoost()(np.zeros((2, 100), np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="AddNoise.*1-D float"):
        AddNoise()(np.zeros(100, np.int16), np.random.default_rng(0))
    with pytest.raises(ValueError, match="algo=9"):
        RawBoost(algo=9)
    with pytest.raises(ValueError, match="p=1.5"):
        Gain(p=1.5)
    with pytest.raises(ValueError, match="max_cutoff_hz"):
        BandLimit(max_cutoff_hz=9000)
    with pytest.raises(TypeError, match=r"transforms\[1\]"):
        Compose([Gain(), "noise"])


@pytest.mark.parametrize("name", ["none", "rawboost", "noise"])
def test_hydra_configs_instantiate(name):
    cfg = OmegaConf.create({"sample_rate": SR, "augment": OmegaConf.load(CONF / f"{name}.yaml")})
    augment = instantiate(cfg.augment)
    x = speechish()
    y = augment(x, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
    if name == "none":
        np.testing.assert_array_equal(y, x)
    pickle.loads(pickle.dumps(augment))
