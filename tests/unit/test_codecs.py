"""Codec and channel augmentation: each transform changes the signal the way it claims."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from scipy.signal import correlate, welch

from spoof_lightning.data.augment import Compose, RawBoost
from spoof_lightning.data.codecs import CODECS, Codec, PacketLoss, Telephone, encode_decode

SR = 16_000
CONF = Path(__file__).resolve().parents[2] / "conf"


def voiced(n: int = SR, seed: int = 0, amplitude: float = 0.5) -> np.ndarray:
    """Harmonics of 150 Hz up to 2.85 kHz under a slow envelope: speech-like, band-limited."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6)) / k for k in range(1, 20))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def snr_db(clean: np.ndarray, coded: np.ndarray) -> float:
    """Coding SNR after the best gain (libsndfile's MP3 round trip also scales by 0.95)."""
    clean, coded = clean.astype(np.float64), coded.astype(np.float64)
    clean = clean * np.dot(clean, coded) / np.dot(clean, clean)
    return float(10 * np.log10(np.sum(clean**2) / np.sum((coded - clean) ** 2)))


def lag(reference: np.ndarray, signal: np.ndarray, span: int = 400) -> int:
    """The shift of ``signal`` against ``reference`` (positive: delayed)."""
    c = correlate(signal, reference, mode="full", method="fft")
    centre = len(reference) - 1
    return int(np.argmax(c[centre - span : centre + span + 1])) - span


@pytest.mark.parametrize("codec", list(CODECS))
def test_every_codec_keeps_length_timing_and_dtype(codec: str) -> None:
    x = voiced(SR + 7)  # odd length: no codec frame divides it
    transform = Codec(codecs=[codec], min_compression=0.9, max_compression=0.9)
    y = transform(x, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
    assert lag(x, y) == 0  # encoder delay and padding removed
    assert 3 < snr_db(x, y) < 45  # coded: changed, still the same speech
    np.testing.assert_array_equal(transform(x, np.random.default_rng(0)), y)  # deterministic


def test_mp3_error_falls_as_the_bit_rate_rises() -> None:
    x = voiced().astype(np.float64)
    snrs = [snr_db(x, encode_decode(x, "mp3", SR, level)) for level in (0.95, 0.9, 0.8, 0.6)]
    assert all(a < b for a, b in zip(snrs, snrs[1:], strict=False)), snrs
    assert snrs[0] < 25 and snrs[-1] > 45


@pytest.mark.parametrize("codec", ["vorbis", "opus"])
def test_ogg_codecs_lose_more_at_higher_compression(codec: str) -> None:
    x = voiced().astype(np.float64)
    assert snr_db(x, encode_decode(x, codec, SR, 1.0)) + 5 < snr_db(
        x, encode_decode(x, codec, SR, 0.0)
    )


@pytest.mark.parametrize(
    ("codec", "unit", "floor"), [("ulaw", 1 / 8192, 65 / 32), ("alaw", 1 / 4096, 2)]
)
def test_g711_error_is_bounded_as_the_segmented_quantiser_says(
    codec: str, unit: float, floor: float
) -> None:
    """G.711 segments: the step doubles with the level, so |error| <= |x| / 32 plus a few
    steps of the linear code (14 bits mu-law, 13 bits A-law) near zero."""
    x = np.linspace(-1, 1, 100_001)
    error = np.abs(encode_decode(x, codec, SR) - x)
    assert np.all(error <= np.abs(x) / 32 + floor * unit + 1e-9)
    loud = np.abs(x) > 0.1
    assert (error[loud] / np.abs(x[loud])).max() > 1 / 40  # the bound is tight, not vacuous
    assert error[~loud].max() < 0.1 / 32 + floor * unit


def test_telephone_removes_everything_above_4khz() -> None:
    x = (0.2 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    for codec_p in (0.0, 1.0):
        y = Telephone(codec_p=codec_p)(x, np.random.default_rng(1))
        f, psd = welch(y, fs=SR, nperseg=1024)
        band = psd[(f > 500) & (f < 3000)].mean()
        assert psd[f >= 4000].max() < band * 1e-8  # > 80 dB down
        assert psd[(f > 20) & (f < 150)].mean() < band * 0.05  # and below 300 Hz
        assert y.shape == x.shape and y.dtype == np.float32
    speech = voiced()
    assert lag(speech, Telephone(codec_p=0.0)(speech, np.random.default_rng(0))) == 0


@pytest.mark.parametrize("mean_burst", [1.0, 4.0])
def test_packet_loss_zeroes_the_drawn_fraction_in_bursts(mean_burst: float) -> None:
    x = voiced(10 * SR) + 0.01  # never exactly zero on its own
    loss = PacketLoss(min_rate=0.25, max_rate=0.25, mean_burst=mean_burst)
    fractions, runs = [], []
    for seed in range(8):
        lost = loss(x, np.random.default_rng(seed)).reshape(-1, 320) == 0
        assert np.all(lost.all(1) | ~lost.any(1))  # whole 20 ms packets
        packets = lost.all(1)
        fractions.append(packets.mean())
        edges = np.diff(np.concatenate([[0], packets.astype(int), [0]]))
        runs += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert abs(np.mean(fractions) - 0.25) < 0.03
    assert abs(np.mean(runs) - mean_burst) < 0.35 * mean_burst


def test_packet_loss_repeat_replays_the_last_packet() -> None:
    x = voiced(2 * SR)
    y = PacketLoss(min_rate=0.3, max_rate=0.3, conceal="repeat")(x, np.random.default_rng(3))
    packets_x, packets_y = x.reshape(-1, 320), y.reshape(-1, 320)
    replaced = np.flatnonzero(~np.all(packets_x == packets_y, axis=1))
    assert 0.15 < len(replaced) / len(packets_x) < 0.45
    for i in replaced[replaced > 0]:
        previous = packets_y[i - 1]
        np.testing.assert_array_equal(packets_y[i], previous)


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"Codec.codecs.*\['aac'\]"):
        Codec(codecs=["aac"])
    with pytest.raises(ValueError, match=r"opus does not encode 22050 Hz"):
        Codec(sample_rate=22050, codecs=["opus"])
    with pytest.raises(ValueError, match="min_compression"):
        Codec(min_compression=0.8, max_compression=0.2)
    with pytest.raises(ValueError, match="high_hz"):
        Telephone(high_hz=5000)
    with pytest.raises(ValueError, match="conceal='drop'"):
        PacketLoss(conceal="drop")


def test_rawboost_filters_are_zero_phase() -> None:
    """An impulse through LnL's linear term comes out symmetric about the impulse: no delay."""
    impulse = np.zeros(4001)
    impulse[2000] = 1.0
    rb = RawBoost(n_f=1)
    for seed in range(3):
        y = rb.lnl(impulse, np.random.default_rng(seed)) + impulse.mean()  # undo mean removal
        np.testing.assert_allclose(y[2000:], y[2000::-1], atol=1e-6)
        assert np.argmax(np.abs(y)) == 2000


@pytest.mark.parametrize("name", ["codec", "chain"])
def test_configs_compose_and_run(name: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"augment={name}"])
    augment = instantiate(cfg.augment)
    assert isinstance(augment, Compose)
    if name == "chain":
        assert isinstance(augment.transforms[0], RawBoost)
        assert isinstance(augment.transforms[1], Compose)
    x = voiced()
    outputs = [augment(x, np.random.default_rng(seed)) for seed in range(4)]
    assert all(o.shape == x.shape and o.dtype == np.float32 for o in outputs)
    assert any(not np.allclose(o, x) for o in outputs)
    pickle.loads(pickle.dumps(augment))  # goes to data-loader workers
