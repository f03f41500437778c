"""Constant-Q cepstral coefficients, the CQCC front-end of the ASVspoof CQCC-GMM baseline.

Todisco, Delgado & Evans, "A new feature for automatic speaker verification anti-spoofing:
constant Q cepstral coefficients", Odyssey 2016 (and CSL 2017): constant-Q transform ->
log power -> uniform resampling of the geometrically spaced bins onto a linear frequency
axis -> DCT. The resampling period is set by the first octave: ``resample_d`` uniform
samples per ``fmin`` Hz, i.e. ``d * (2^octaves - 1)`` samples between ``fmin`` and the top.
Defaults follow the ASVspoof 2019 baseline: 96 bins per octave over 9 octaves below
Nyquist (fmin = 8000 / 2^9 = 15.6 Hz), d = 16, 20 static coefficients (c0 included) plus
deltas and delta-deltas (60 channels).

Linear interpolation and the DCT are both linear maps of the log-power spectrum, so they
are folded into one ``[n_bins, n_ceps]`` matrix applied per frame. The CQT is nnAudio's
(see :mod:`spoof_lightning.frontends.cqt`), whose hop must be a multiple of
``2^(octaves - 1)`` (256 here, 16 ms frames; the MATLAB baseline uses a finer hop).
"""

import math

import numpy as np
import torch
from scipy.fft import dct
from torch import Tensor, nn

from spoof_lightning.frontends.common import SpectralFrontEnd
from spoof_lightning.frontends.cqt import CQTFrontEnd
from spoof_lightning.frontends.lfcc import Deltas


def cqcc_matrix(n_bins: int, bins_per_octave: int, resample_d: int, n_ceps: int) -> np.ndarray:
    """``[n_bins, n_ceps]``: linear interpolation of the CQT bins (geometric frequencies
    ``fmin * 2^(k / bins_per_octave)``) onto a uniform grid of step ``fmin / resample_d``,
    followed by an orthonormal DCT-II truncated to ``n_ceps`` coefficients."""
    octaves = (n_bins - 1) / bins_per_octave
    # Frequencies in units of fmin: geometric bins, uniform grid over the same span.
    geometric = 2.0 ** (np.arange(n_bins) / bins_per_octave)
    uniform = np.arange(1.0, geometric[-1], 1.0 / resample_d)
    if len(uniform) < n_ceps:
        raise ValueError(
            f"frontend.n_ceps={n_ceps} exceeds the {len(uniform)} uniform samples of "
            f"{octaves:.1f} octaves at resample_d={resample_d}"
        )
    upper = np.clip(np.searchsorted(geometric, uniform, side="right"), 1, n_bins - 1)
    lower = upper - 1
    frac = (uniform - geometric[lower]) / (geometric[upper] - geometric[lower])
    interp = np.zeros((n_bins, len(uniform)))
    cols = np.arange(len(uniform))
    interp[lower, cols] += 1 - frac
    interp[upper, cols] += frac
    basis = dct(np.eye(len(uniform)), type=2, norm="ortho", axis=1)[:, :n_ceps]
    return interp @ basis


class _Cepstra(nn.Module):
    """Log-power CQT [B, n_bins, T] -> cepstra [B, n_ceps, T] by a fixed matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("matrix", torch.tensor(matrix.T, dtype=torch.float32))

    def forward(self, log_power: Tensor) -> Tensor:
        return torch.einsum("cf,bft->bct", self.matrix, log_power)


class CQCCFrontEnd(SpectralFrontEnd):
    """Waveform [B, T] -> CQCC [B, n_ceps * (1 + deltas), frames], always float32.

    Args:
        sample_rate: input sample rate.
        octaves: CQT octaves below Nyquist (fmin = Nyquist / 2^octaves).
        bins_per_octave: CQT resolution (96 in the baseline).
        hop_length: frame hop in samples, a multiple of 2^(octaves - 1).
        resample_d: uniform samples per fmin Hz (the first octave's resolution).
        n_ceps: static coefficients kept (c0 included).
        deltas, delta_win: as in the LFCC front-end.
        pre_emphasis: coefficient applied to the waveform first; 0 disables it.
        log_eps: floor inside the log of the CQT power.
        freq_mask, time_mask: SpecAugment widths (coefficients / frames), training only.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        octaves: int = 9,
        bins_per_octave: int = 96,
        hop_length: int = 256,
        resample_d: int = 16,
        n_ceps: int = 20,
        deltas: int = 2,
        delta_win: int = 3,
        pre_emphasis: float = 0.0,
        log_eps: float = 1e-10,
        freq_mask: int = 0,
        time_mask: int = 0,
    ) -> None:
        if deltas not in (0, 1, 2):
            raise ValueError(f"frontend.deltas={deltas} must be 0, 1 or 2")
        if octaves < 1 or bins_per_octave < 1 or resample_d < 1 or n_ceps < 1:
            raise ValueError(
                "frontend.octaves, bins_per_octave, resample_d and n_ceps must be >= 1 "
                f"(got {octaves}, {bins_per_octave}, {resample_d}, {n_ceps})"
            )
        fmin = sample_rate / 2 / 2**octaves
        n_bins = octaves * bins_per_octave  # the top bin stays one bin below Nyquist
        cqt = CQTFrontEnd(
            sample_rate=sample_rate,
            n_bins=n_bins,
            bins_per_octave=bins_per_octave,
            fmin=fmin,
            hop_length=hop_length,
            pre_emphasis=0.0,
            log_eps=log_eps,
        )
        matrix = cqcc_matrix(n_bins, bins_per_octave, resample_d, n_ceps)
        super().__init__(
            transform=nn.Sequential(cqt, _Cepstra(matrix), Deltas(deltas, delta_win)),
            out_channels=n_ceps * (1 + deltas),
            pre_emphasis=pre_emphasis,
            log_eps=0.0,
            freq_mask=freq_mask,
            time_mask=time_mask,
            min_samples=cqt.min_samples,
        )
        self.fmin = fmin
        self.n_uniform = int(math.ceil((2 ** ((n_bins - 1) / bins_per_octave) - 1) * resample_d))
