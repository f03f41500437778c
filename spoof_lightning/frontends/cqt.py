"""Log power constant-Q transform front-end (nnAudio, GPU-friendly, nothing downloaded).

Defaults are the CQT of Li et al., "Replay and synthetic speech detection with Res2Net
architecture", ICASSP 2021: pre-emphasis 0.97, Hann windows, hop 256 (16 ms), 432 bins at
48 bins per octave from 15 Hz (9 octaves, up to ~7.6 kHz at 16 kHz).

It uses nnAudio's ``CQT2010v2`` (Cheuk et al., "nnAudio: An on-the-fly GPU audio to
spectrogram conversion toolbox using 1D convolutional neural networks", IEEE Access 2020):
the top octave's kernels applied to a repeatedly halved signal, a few hundred KB of
buffers. ``CQT1992v2`` would need full-length kernels (2 x 432 x 131,072 floats, ~450 MB, at
fmin 15 Hz), so it is not offered. The kernels are computed locally at construction.
"""

import math

from nnAudio.features import CQT2010v2
from torch import Tensor, nn

from spoof_lightning.frontends.common import SpectralFrontEnd


class _CQTPower(nn.Module):
    """|CQT|^2 from nnAudio's complex output [B, F, frames, (re, im)]."""

    def __init__(self, cqt: CQT2010v2) -> None:
        super().__init__()
        self.cqt = cqt

    def forward(self, x: Tensor) -> Tensor:
        return self.cqt(x).pow(2).sum(dim=-1)


class CQTFrontEnd(SpectralFrontEnd):
    """Waveform [B, T] -> log |CQT|^2 [B, n_bins, T // hop_length + 1], always float32.

    Args:
        sample_rate: input sample rate.
        n_bins, bins_per_octave, fmin: the frequency axis; the top bin must stay below Nyquist.
        hop_length: frame hop in samples; a multiple of ``2 ** (octaves - 1)`` (256 for the
            default 9 octaves), since every lower octave is computed at half the rate.
        filter_scale: scales the kernel lengths (1 = constant Q as in librosa).
        pad_mode: "constant" or "reflect" padding of every octave (reflect fails on inputs
            shorter than the low octaves' kernels).
        pre_emphasis: coefficient applied to the waveform first; 0 disables it.
        log_eps: ``log(power + log_eps)``; 0 keeps the linear power.
        freq_mask, time_mask: SpecAugment widths (bins / frames), training only.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_bins: int = 432,
        bins_per_octave: int = 48,
        fmin: float = 15.0,
        hop_length: int = 256,
        filter_scale: float = 1.0,
        pad_mode: str = "constant",
        pre_emphasis: float = 0.97,
        log_eps: float = 1e-8,
        freq_mask: int = 0,
        time_mask: int = 0,
    ) -> None:
        top = fmin * 2 ** ((n_bins - 1) / bins_per_octave)
        if fmin <= 0 or top >= sample_rate / 2:
            raise ValueError(
                f"frontend: fmin={fmin} Hz with n_bins={n_bins} at bins_per_octave="
                f"{bins_per_octave} reaches {top:.0f} Hz, above Nyquist ({sample_rate / 2:.0f} Hz)"
            )
        octaves = math.ceil(n_bins / bins_per_octave)  # as nnAudio counts them
        decimation = 2 ** (octaves - 1)  # the lowest octave runs at this fraction of the rate
        if hop_length < 1 or hop_length % decimation:
            raise ValueError(
                f"frontend.hop_length={hop_length} must be a multiple of {decimation}: the CQT "
                f"halves the signal {octaves - 1} times for its lower octaves "
                f"(n_bins={n_bins}, bins_per_octave={bins_per_octave})"
            )
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"frontend.pad_mode={pad_mode!r} must be 'constant' or 'reflect'")
        cqt = CQT2010v2(
            sr=sample_rate,
            hop_length=hop_length,
            fmin=fmin,
            n_bins=n_bins,
            bins_per_octave=bins_per_octave,
            filter_scale=filter_scale,
            pad_mode=pad_mode,
            output_format="Complex",
            verbose=False,
        )
        super().__init__(
            _CQTPower(cqt),
            out_channels=n_bins,
            pre_emphasis=pre_emphasis,
            log_eps=log_eps,
            freq_mask=freq_mask,
            time_mask=time_mask,
            min_samples=decimation,  # the lowest octave needs >= 1 sample
        )
        self.sample_rate = sample_rate
