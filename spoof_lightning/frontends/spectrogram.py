"""Log power spectrogram front-end (the "LPS" input of many ASVspoof countermeasures).

Defaults follow the spectrogram set-up of Li et al., "Replay and synthetic speech detection
with Res2Net architecture", ICASSP 2021: pre-emphasis 0.97, 25 ms Hann window, 10 ms hop,
512-point FFT at 16 kHz (257 bins).
"""

import torchaudio
from torch import Tensor, nn

from spoof_lightning.frontends.common import SpectralFrontEnd, check_band, stft_kwargs


class LowBins(nn.Module):
    """``transform`` followed by keeping its first ``n_bins`` frequency bins."""

    def __init__(self, transform: nn.Module, n_bins: int) -> None:
        super().__init__()
        self.transform, self.n_bins = transform, n_bins

    def forward(self, x: Tensor) -> Tensor:
        return self.transform(x)[:, : self.n_bins]


class SpectrogramFrontEnd(SpectralFrontEnd):
    """Waveform [B, T] -> log |STFT|^power [B, n_fft // 2 + 1, frames], always float32.

    Args:
        sample_rate: input sample rate (kept for the config; the STFT is in samples).
        n_fft, win_length, hop_length: STFT in samples.
        window: "hann", "hamming" or "blackman".
        power: 2 = power spectrum, 1 = magnitude.
        pre_emphasis: coefficient applied to the waveform first; 0 disables it.
        log_eps: ``log(x + log_eps)``; 0 keeps the linear spectrogram.
        f_max: keep only the bins at or below this frequency (Hz), e.g. 4000 for
            telephone-band speech; None = up to Nyquist.
        freq_mask, time_mask: SpecAugment widths (bins / frames), training only.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hann",
        power: float = 2.0,
        pre_emphasis: float = 0.97,
        log_eps: float = 1e-6,
        freq_mask: int = 0,
        time_mask: int = 0,
        f_max: float | None = None,
    ) -> None:
        stft = stft_kwargs(n_fft, win_length, hop_length, window)
        spec: nn.Module = torchaudio.transforms.Spectrogram(**stft, power=power)
        n_bins = n_fft // 2 + 1
        if f_max is not None:
            check_band(0.0, f_max, sample_rate)
            n_bins = int(f_max * n_fft / sample_rate) + 1
            spec = LowBins(spec, n_bins)
        super().__init__(
            spec,
            out_channels=n_bins,
            pre_emphasis=pre_emphasis,
            log_eps=log_eps,
            freq_mask=freq_mask,
            time_mask=time_mask,
            min_samples=n_fft // 2 + 1,  # the centred STFT reflect-pads by n_fft // 2
        )
        self.sample_rate = sample_rate
