"""Linear-frequency cepstral coefficients, the ASVspoof 2019/2021 LFCC baseline front-end.

Defaults follow the LFCC-GMM / LFCC-LCNN baselines (Todisco et al., "ASVspoof 2019: Future
horizons in spoofed and fake audio detection", Interspeech 2019; Wang & Yamagishi, "A
comparative study on recent neural spoofing countermeasures for synthetic speech
detection", Interspeech 2021): 20 ms Hamming window, 10 ms hop and a 512-point FFT at
16 kHz, 20 linear triangular filters, 20 cepstra, plus deltas and delta-deltas (60 channels).
Filterbank energies are compressed as ``log(E + 1e-6)`` (torchaudio's ``log_lf``).
"""

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from spoof_lightning.frontends.common import SpectralFrontEnd, check_band, stft_kwargs


class Deltas(nn.Module):
    """Append ``order`` successive delta regressions along time: [B, C, T] -> [B, C(1+order), T].

    The regression of ``torchaudio.functional.compute_deltas`` (edges replicated), written
    as one single-channel convolution over all rows so that it exports (torchaudio's
    per-channel kernel has a batch-dependent shape, which ONNX and tracing cannot follow).
    """

    def __init__(self, order: int, win_length: int) -> None:
        super().__init__()
        self.order = order
        self.win_length = win_length
        half = (win_length - 1) // 2
        self.register_buffer(
            "kernel", torch.arange(-half, half + 1, dtype=torch.float32).view(1, 1, -1), False
        )
        self.denominator = half * (half + 1) * (2 * half + 1) / 3

    def forward(self, x: Tensor) -> Tensor:
        parts = [x]
        half = (self.win_length - 1) // 2
        for _ in range(self.order):
            rows = parts[-1].reshape(-1, 1, x.shape[-1])
            rows = F.pad(rows, (half, half), mode="replicate")
            delta = F.conv1d(rows, self.kernel.to(x.dtype)) / self.denominator
            parts.append(delta.reshape(x.shape))
        return torch.cat(parts, dim=1)


class LFCCFrontEnd(SpectralFrontEnd):
    """Waveform [B, T] -> LFCC [B, n_lfcc * (1 + deltas), frames], always float32.

    Args:
        sample_rate: input sample rate.
        n_lfcc: cepstra kept per frame (must be <= n_filter).
        n_filter: linear triangular filters between ``f_min`` and ``f_max``.
        f_min, f_max: the filterbank's band in Hz (None = Nyquist); e.g. 0-4000 for
            telephone-band speech.
        n_fft, win_length, hop_length: STFT in samples.
        window: "hamming", "hann" or "blackman".
        deltas: 0 = static only, 1 = + deltas, 2 = + deltas and delta-deltas.
        delta_win: window of the delta regression (3 = the baselines' [-1, 0, 1]).
        pre_emphasis: coefficient applied to the waveform first; 0 disables it.
        freq_mask, time_mask: SpecAugment widths (coefficients / frames), training only.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_lfcc: int = 20,
        n_filter: int = 20,
        n_fft: int = 512,
        win_length: int = 320,
        hop_length: int = 160,
        window: str = "hamming",
        deltas: int = 2,
        delta_win: int = 3,
        pre_emphasis: float = 0.0,
        freq_mask: int = 0,
        time_mask: int = 0,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        check_band(f_min, f_max, sample_rate)
        if n_lfcc > n_filter:
            raise ValueError(f"frontend.n_lfcc={n_lfcc} must be <= frontend.n_filter={n_filter}")
        if deltas not in (0, 1, 2):
            raise ValueError(f"frontend.deltas={deltas} must be 0, 1 or 2")
        if delta_win < 3 or delta_win % 2 == 0:
            raise ValueError(f"frontend.delta_win={delta_win} must be odd and >= 3")
        lfcc = torchaudio.transforms.LFCC(
            sample_rate=sample_rate,
            n_filter=n_filter,
            n_lfcc=n_lfcc,
            f_min=f_min,
            f_max=f_max,
            log_lf=True,
            speckwargs={**stft_kwargs(n_fft, win_length, hop_length, window), "power": 2.0},
        )
        super().__init__(
            transform=nn.Sequential(lfcc, Deltas(deltas, delta_win)),
            out_channels=n_lfcc * (1 + deltas),
            pre_emphasis=pre_emphasis,
            log_eps=0.0,
            freq_mask=freq_mask,
            time_mask=time_mask,
            min_samples=n_fft // 2 + 1,  # the centred STFT reflect-pads by n_fft // 2
        )
