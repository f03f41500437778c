"""Log mel filterbank front-end (torchaudio ``MelSpectrogram``, HTK mel scale)."""

import torchaudio

from spoof_lightning.frontends.common import SpectralFrontEnd, check_band, stft_kwargs


class MelFrontEnd(SpectralFrontEnd):
    """Waveform [B, T] -> log mel power [B, n_mels, frames], always float32.

    Args:
        sample_rate: input sample rate.
        n_mels: mel filters.
        n_fft, win_length, hop_length: STFT in samples (defaults: 512, 25 ms, 10 ms at 16 kHz).
        f_min, f_max: filterbank range in Hz (``f_max=None`` = Nyquist).
        window: "hann", "hamming" or "blackman".
        pre_emphasis: coefficient applied to the waveform first; 0 disables it.
        log_eps: ``log(x + log_eps)``; 0 keeps linear energies.
        freq_mask, time_mask: SpecAugment widths (mel bins / frames), training only.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float | None = None,
        window: str = "hann",
        pre_emphasis: float = 0.0,
        log_eps: float = 1e-6,
        freq_mask: int = 0,
        time_mask: int = 0,
    ) -> None:
        stft = stft_kwargs(n_fft, win_length, hop_length, window)
        check_band(f_min, f_max, sample_rate)
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, f_min=f_min, f_max=f_max, n_mels=n_mels, power=2.0, **stft
        )
        super().__init__(
            mel,
            out_channels=n_mels,
            pre_emphasis=pre_emphasis,
            log_eps=log_eps,
            freq_mask=freq_mask,
            time_mask=time_mask,
            min_samples=n_fft // 2 + 1,  # the centred STFT reflect-pads by n_fft // 2
        )
