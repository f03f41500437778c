"""Front-ends: shapes, out_channels, float32 under autocast, values against direct computations."""

import socket
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch
import torchaudio
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.frontends.common import SpecAugment, pre_emphasis
from spoof_lightning.frontends.cqt import CQTFrontEnd
from spoof_lightning.frontends.lfcc import LFCCFrontEnd
from spoof_lightning.frontends.mel import MelFrontEnd
from spoof_lightning.frontends.raw import RawFrontEnd
from spoof_lightning.frontends.spectrogram import SpectrogramFrontEnd

CONF = Path(__file__).resolve().parents[2] / "conf" / "frontend"
SR = 16000
NAMES = ["raw", "lfcc", "spectrogram", "mel", "cqt"]


def build(name: str, **overrides: object) -> torch.nn.Module:
    """Instantiate conf/frontend/<name>.yaml as the composed config would."""
    root = OmegaConf.create({"sample_rate": SR, "frontend": OmegaConf.load(CONF / f"{name}.yaml")})
    return instantiate(root.frontend, **overrides)


@pytest.fixture
def wave() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 8000)


def test_raw_shape_and_options(wave: torch.Tensor) -> None:
    fe = build("raw")
    assert isinstance(fe, RawFrontEnd) and fe.out_channels == 1 and fe.domain == "waveform"
    assert torch.equal(fe(wave), wave.unsqueeze(1))
    out = RawFrontEnd(normalize=True, pre_emphasis=0.97)(3.0 * wave + 1.0)[:, 0]
    assert torch.allclose(out.mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(out.std(1), torch.ones(2), atol=1e-3)


def test_raw_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"RawFrontEnd expects a waveform batch \[B, T\]"):
        RawFrontEnd()(torch.zeros(2, 1, 100))


def test_pre_emphasis_values() -> None:
    x = torch.tensor([[1.0, 2.0, 4.0]])
    assert torch.allclose(pre_emphasis(x, 0.5), torch.tensor([[1.0, 1.5, 3.0]]))


def test_lfcc_config_shape_and_channels(wave: torch.Tensor) -> None:
    fe = build("lfcc")
    assert isinstance(fe, LFCCFrontEnd) and fe.domain == "timefreq"
    assert fe.out_channels == 60
    assert fe(wave).shape == (2, 60, 8000 // 160 + 1)
    assert LFCCFrontEnd(deltas=0)(wave).shape[1] == LFCCFrontEnd(deltas=0).out_channels == 20
    assert LFCCFrontEnd(n_lfcc=30, n_filter=40, deltas=1).out_channels == 60


def test_lfcc_matches_direct_computation(wave: torch.Tensor) -> None:
    """Static LFCC = DCT-II(ortho) of log(linear filterbank power + 1e-6) of a Hamming STFT."""
    feats = LFCCFrontEnd(deltas=0)(wave)
    window = torch.hamming_window(320)
    spec = torch.stft(wave, 512, 160, 320, window=window, return_complex=True).abs() ** 2
    fb = torchaudio.functional.linear_fbanks(257, 0.0, SR / 2, 20, SR)  # [257, 20]
    log_fb = torch.log(torch.einsum("bft,fk->bkt", spec, fb) + 1e-6).numpy()
    expected = scipy.fft.dct(log_fb, type=2, norm="ortho", axis=1)[:, :20]
    np.testing.assert_allclose(feats.numpy(), expected, rtol=1e-3, atol=1e-3)


def test_lfcc_deltas_are_regression_of_statics(wave: torch.Tensor) -> None:
    feats = LFCCFrontEnd(deltas=2)(wave)
    static, delta = feats[:, :20], feats[:, 20:40]
    inner = (static[..., 2:] - static[..., :-2]) / 2  # window 3: (x[t+1] - x[t-1]) / 2
    assert torch.allclose(delta[..., 1:-1], inner, atol=1e-4)


def tone(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return torch.sin(2 * torch.pi * freq * t).unsqueeze(0)


@pytest.mark.parametrize(
    ("name", "cls", "channels", "hop"),
    [
        ("spectrogram", SpectrogramFrontEnd, 257, 160),
        ("mel", MelFrontEnd, 80, 160),
        ("cqt", CQTFrontEnd, 432, 256),
    ],
)
def test_spectral_config_shapes(
    name: str, cls: type, channels: int, hop: int, wave: torch.Tensor
) -> None:
    fe = build(name)
    assert isinstance(fe, cls) and fe.domain == "timefreq" and fe.out_channels == channels
    out = fe(wave)
    assert out.shape == (2, channels, 8000 // hop + 1)
    assert torch.isfinite(out).all()


def test_spectrogram_matches_direct_computation(wave: torch.Tensor) -> None:
    """log(|STFT(pre-emphasised x)|^2 + 1e-6) with a 400-sample Hann window, 512 FFT, hop 160."""
    feats = build("spectrogram")(wave)
    x = torch.cat([wave[:, :1], wave[:, 1:] - 0.97 * wave[:, :-1]], dim=1)
    window = torch.hann_window(400)
    spec = torch.stft(x, 512, 160, 400, window=window, return_complex=True).abs() ** 2
    assert torch.allclose(feats, torch.log(spec + 1e-6), atol=1e-4)


def test_spectrogram_f_max_keeps_the_low_bins(wave: torch.Tensor) -> None:
    """f_max=4000 at 16 kHz with a 512-point FFT: bins 0..128 (31.25 Hz apart), unchanged."""
    full = build("spectrogram")
    band = build("spectrogram", f_max=4000.0)
    assert band.out_channels == 129
    assert torch.equal(band(wave), full(wave)[:, :129])


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_cqt_tone_peaks_at_its_bin(freq: float) -> None:
    """A pure tone peaks at CQT bin 48 * log2(f / 15 Hz) (432 bins, 48 per octave)."""
    feats = CQTFrontEnd(pre_emphasis=0.0)(tone(freq))
    expected = 48 * np.log2(freq / 15.0)
    assert abs(int(feats[0].mean(dim=1).argmax()) - expected) <= 1


def test_mel_tone_peaks_at_its_band() -> None:
    fe = MelFrontEnd()
    peak = int(fe(tone(1000.0))[0].mean(dim=1).argmax())
    mel = 2595 * np.log10(1 + np.array([20.0, 1000.0, 8000.0]) / 700)  # HTK scale
    expected = (mel[1] - mel[0]) / (mel[2] - mel[0]) * 81 - 1  # band centres are evenly spaced
    assert abs(peak - expected) <= 1


def test_cqt_builds_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CQT front-end tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert CQTFrontEnd()(torch.zeros(1, 4000)).shape == (1, 432, 16)


@pytest.mark.parametrize("name", NAMES)
def test_float32_under_autocast(name: str, wave: torch.Tensor) -> None:
    fe = build(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fe(wave.bfloat16())
    assert out.dtype == torch.float32


@pytest.mark.parametrize("name", ["lfcc", "spectrogram", "mel", "cqt"])
def test_spec_augment_through_frontend(name: str, wave: torch.Tensor) -> None:
    fe = build(name, freq_mask=8, time_mask=10)
    clean = fe.eval()(wave)
    torch.manual_seed(1)
    assert not torch.equal(fe.train()(wave), clean)
    assert torch.equal(fe.eval()(wave), clean)


def test_lfcc_bad_config_names_key() -> None:
    with pytest.raises(ValueError, match="frontend.n_lfcc"):
        LFCCFrontEnd(n_lfcc=40, n_filter=20)
    with pytest.raises(ValueError, match="frontend.deltas"):
        LFCCFrontEnd(deltas=3)
    with pytest.raises(ValueError, match="frontend.window"):
        LFCCFrontEnd(window="kaiser")


def test_spectral_bad_config_names_key() -> None:
    with pytest.raises(ValueError, match="above Nyquist"):
        CQTFrontEnd(fmin=32.0, n_bins=480)
    with pytest.raises(ValueError, match="frontend.pad_mode"):
        CQTFrontEnd(pad_mode="wrap")
    with pytest.raises(ValueError, match="frontend.f_min"):
        MelFrontEnd(f_min=100.0, f_max=9000.0)
    with pytest.raises(ValueError, match="frontend.win_length"):
        SpectrogramFrontEnd(win_length=1024)
    with pytest.raises(ValueError, match="frontend.log_eps"):
        SpectrogramFrontEnd(log_eps=-1.0)
    with pytest.raises(ValueError, match="frontend.f_max"):
        SpectrogramFrontEnd(f_max=9000.0)


def test_spec_augment_masks_in_training_only() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 40, 100)
    aug = SpecAugment(freq_mask=10, time_mask=20, n_freq_masks=2, n_time_masks=2)
    assert torch.equal(aug.eval()(x), x)
    out = aug.train()(x)
    changed = out != x
    assert changed.any()
    # every change is a whole band (all frames) or a whole span (all bins) set to the mean
    for b in range(4):
        rows = changed[b].all(dim=1)
        cols = changed[b].all(dim=0)
        assert torch.equal(changed[b], rows[:, None] | cols[None, :])
        assert torch.allclose(out[b][changed[b]], x[b].mean().expand(int(changed[b].sum())))


@pytest.mark.parametrize(
    ("name", "min_samples"), [("spectrogram", 257), ("mel", 257), ("lfcc", 257), ("cqt", 256)]
)
def test_too_short_waveform_is_refused_clearly(name: str, min_samples: int) -> None:
    fe = build(name).eval()
    assert fe(torch.randn(1, min_samples)).shape[0] == 1
    with pytest.raises(ValueError, match=f"needs at least {min_samples} samples"):
        fe(torch.randn(1, min_samples - 1))


def test_cqt_hop_must_be_a_multiple_of_the_octave_halvings() -> None:
    assert CQTFrontEnd(hop_length=512)(torch.randn(1, 4096)).shape == (1, 432, 9)
    assert CQTFrontEnd().transform.cqt.n_octaves == 9  # 2**8 = 256 divides the hop
    for hop in (128, 160):
        with pytest.raises(
            ValueError, match=f"frontend.hop_length={hop} must be a multiple of 256"
        ):
            CQTFrontEnd(hop_length=hop)
    small = CQTFrontEnd(n_bins=84, bins_per_octave=12, fmin=32.7, hop_length=64)
    assert small(torch.randn(1, 64)).shape == (1, 84, 2)


def test_lfcc_window_longer_than_fft_names_key() -> None:
    with pytest.raises(ValueError, match="frontend.win_length=1024"):
        LFCCFrontEnd(win_length=1024, n_fft=512)
