"""Sinc band-pass filterbank front-end of RawNet2 and AASIST.

Ravanelli & Bengio, "Speaker recognition from raw waveform with SincNet", SLT 2018;
Tak et al., "End-to-end anti-spoofing with RawNet2", ICASSP 2021; Jung et al., "AASIST",
ICASSP 2022. The waveform is convolved with windowed ideal band-pass filters whose band
edges are equally spaced on the mel scale from 0 Hz to Nyquist, and the magnitude
``|filter * x|`` is returned: exactly the part of the official AASIST model up to its
``abs()``. AASIST keeps the filters fixed (they are not in its checkpoints); ``learnable``
turns the band edges into parameters, SincNet-style.
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.frontends.common import check_waveform, float32


def hz_to_mel(hz: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_band_edges(n_filters: int, sample_rate: int) -> Tensor:
    """``n_filters + 1`` band edges in Hz, equally spaced in mel from 0 Hz to Nyquist (float64)."""
    top = hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    return mel_to_hz(torch.linspace(0.0, float(top), n_filters + 1, dtype=torch.float64))


def sinc_bandpass(low: Tensor, high: Tensor, taps: int, sample_rate: int) -> Tensor:
    """Hamming-windowed ideal band-pass filters [F, taps] for cut-offs ``low``/``high`` [F] in Hz.

    ``h[n] = 2 f2 sinc(2 f2 n) - 2 f1 sinc(2 f1 n)`` with frequencies normalised by the
    sample rate and ``n`` centred on the middle tap; computed in the dtype of ``low``.
    """
    n = torch.arange(taps, dtype=low.dtype, device=low.device) - (taps - 1) / 2
    f1 = (low / sample_rate).unsqueeze(1)
    f2 = (high / sample_rate).unsqueeze(1)
    ideal = 2 * f2 * torch.sinc(2 * f2 * n) - 2 * f1 * torch.sinc(2 * f1 * n)
    window = torch.hamming_window(taps, periodic=False, dtype=low.dtype, device=low.device)
    return ideal * window


class SincFrontEnd(nn.Module):
    """Waveform [B, T] -> sinc filterbank magnitude [B, n_filters, T - taps + 1].

    Args:
        sample_rate: input sample rate in Hz; the bands span 0 Hz to ``sample_rate / 2``.
        n_filters: number of band-pass filters (= ``out_channels``); AASIST 70, RawNet2 20.
        kernel_size: filter length; an even value is raised by one so that the filters are
            symmetric, as the official code does (AASIST's 128 gives 129 taps).
        learnable: learn the band edges (SincNet) instead of keeping them fixed (AASIST,
            RawNet2). Fixed filters are a non-persistent buffer, rebuilt from the config.
        max_masked_filters: training-time frequency augmentation of the official AASIST code
            ("freq_aug"): per batch, zero a random run of 0 to ``max_masked_filters - 1``
            adjacent filters. 0 disables it (the official configs use 20 when enabled).
    """

    domain: ClassVar[str] = "timefreq"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_filters: int = 70,
        kernel_size: int = 128,
        learnable: bool = False,
        max_masked_filters: int = 0,
    ) -> None:
        super().__init__()
        if n_filters < 1 or kernel_size < 2:
            raise ValueError(
                f"frontend.n_filters ({n_filters}) must be >= 1 and frontend.kernel_size "
                f"({kernel_size}) >= 2"
            )
        if not 0 <= max_masked_filters <= n_filters:
            raise ValueError(
                f"frontend.max_masked_filters={max_masked_filters} must be in [0, {n_filters}]"
            )
        self.sample_rate = sample_rate
        self.n_filters = n_filters
        self.taps = kernel_size + 1 if kernel_size % 2 == 0 else kernel_size
        self.learnable = learnable
        self.max_masked_filters = max_masked_filters
        self.out_channels = n_filters

        edges = mel_band_edges(n_filters, sample_rate)
        if learnable:
            self.low_hz = nn.Parameter(edges[:-1].float())
            self.band_hz = nn.Parameter(edges.diff().float())
        else:
            filters = sinc_bandpass(edges[:-1], edges[1:], self.taps, sample_rate)
            self.register_buffer("fixed_filters", filters.float(), persistent=False)

    def filters(self) -> Tensor:
        """The current filterbank [n_filters, taps] (float32)."""
        if not self.learnable:
            return self.fixed_filters
        low = self.low_hz.abs()
        high = torch.clamp(low + self.band_hz.abs(), max=self.sample_rate / 2)
        return sinc_bandpass(low, high, self.taps, self.sample_rate)

    def forward(self, x: Tensor) -> Tensor:
        x = check_waveform(x, type(self).__name__, min_samples=self.taps)
        with float32(x):
            filters = self.filters()
            if self.training and self.max_masked_filters > 0:
                filters = self._mask_band(filters)
            out = F.conv1d(x.unsqueeze(1), filters.unsqueeze(1))
            return out.abs()

    def _mask_band(self, filters: Tensor) -> Tensor:
        width = int(torch.randint(0, self.max_masked_filters, ()))
        start = int(torch.randint(0, self.n_filters - width + 1, ()))
        keep = torch.ones(self.n_filters, 1, device=filters.device)
        keep[start : start + width] = 0.0
        return filters * keep

    def extra_repr(self) -> str:
        return (
            f"n_filters={self.n_filters}, taps={self.taps}, sample_rate={self.sample_rate}, "
            f"learnable={self.learnable}"
        )


__all__ = ["SincFrontEnd", "hz_to_mel", "mel_band_edges", "mel_to_hz", "sinc_bandpass"]
