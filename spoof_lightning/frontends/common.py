"""Pieces shared by the front-ends: float32 regions, pre-emphasis, log compression, SpecAugment.

Spectral front-ends run their transform inside :func:`float32` so that mixed precision
(autocast) never computes an FFT, a filterbank or a logarithm in half precision.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import Tensor, nn

WINDOWS: dict[str, Callable[..., Tensor]] = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
}


def window_fn(name: str, key: str = "window") -> Callable[..., Tensor]:
    """The torch window function called ``name``; a clear error names the config key."""
    if name not in WINDOWS:
        raise ValueError(f"frontend.{key}={name!r} is not one of {sorted(WINDOWS)}")
    return WINDOWS[name]


@contextmanager
def float32(x: Tensor) -> Iterator[None]:
    """Disable autocast on ``x``'s device for the duration of the block."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        yield


def check_waveform(x: Tensor, name: str, min_samples: int = 1) -> Tensor:
    """Return ``x`` [B, T] as float32, or raise an error naming the front-end."""
    if x.dim() != 2:
        raise ValueError(f"{name} expects a waveform batch [B, T], got shape {tuple(x.shape)}")
    if x.shape[1] < min_samples:
        raise ValueError(
            f"{name} needs at least {min_samples} samples per waveform with this frontend "
            f"config, got {x.shape[1]}"
        )
    return x.float()


def stft_kwargs(n_fft: int, win_length: int, hop_length: int, window: str) -> dict[str, object]:
    """Checked STFT settings for the torchaudio transforms (``frontend.*`` keys)."""
    if not 0 < win_length <= n_fft:
        raise ValueError(f"frontend.win_length={win_length} must be in [1, frontend.n_fft={n_fft}]")
    if hop_length < 1:
        raise ValueError(f"frontend.hop_length={hop_length} must be >= 1")
    return {
        "n_fft": n_fft,
        "win_length": win_length,
        "hop_length": hop_length,
        "window_fn": window_fn(window),
    }


def pre_emphasis(x: Tensor, coef: float) -> Tensor:
    """First-order high-pass ``y[t] = x[t] - coef * x[t-1]`` (``y[0] = x[0]``); [B, T] -> [B, T]."""
    if coef == 0.0:
        return x
    return torch.cat([x[:, :1], x[:, 1:] - coef * x[:, :-1]], dim=1)


def check_band(f_min: float, f_max: float | None, sample_rate: int) -> None:
    """Refuse a filterbank band outside ``0 <= f_min < f_max <= Nyquist`` (``f_max=None``:
    Nyquist)."""
    nyquist = sample_rate / 2
    if not 0 <= f_min < (f_max or nyquist) <= nyquist:
        raise ValueError(
            f"frontend.f_min={f_min} and frontend.f_max={f_max} must satisfy 0 <= f_min < "
            f"f_max <= {nyquist} (Nyquist at sample_rate={sample_rate})"
        )


class SpecAugment(nn.Module):
    """Time and frequency masking (Park et al., "SpecAugment", Interspeech 2019).

    Each example gets ``n_freq_masks`` bands of up to ``freq_mask`` bins and
    ``n_time_masks`` spans of up to ``time_mask`` frames set to the example's mean.
    Active in training mode only; identity in eval mode or when all widths are 0.
    """

    def __init__(
        self,
        freq_mask: int = 0,
        time_mask: int = 0,
        n_freq_masks: int = 1,
        n_time_masks: int = 1,
    ) -> None:
        super().__init__()
        if min(freq_mask, time_mask, n_freq_masks, n_time_masks) < 0:
            raise ValueError("frontend.spec_augment widths and counts must be >= 0")
        self.freq_mask = freq_mask
        self.time_mask = time_mask
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks

    @property
    def active(self) -> bool:
        return self.training and (self.freq_mask > 0 or self.time_mask > 0)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, F, T] -> [B, F, T] with masked bands/spans."""
        if not self.active:
            return x
        fill = x.mean(dim=(1, 2), keepdim=True)
        keep = torch.ones_like(x, dtype=torch.bool)
        masks = ((1, self.freq_mask, self.n_freq_masks), (2, self.time_mask, self.n_time_masks))
        for dim, width, count in masks:
            if width == 0:
                continue
            size = x.shape[dim]
            for _ in range(count):
                span = torch.randint(0, min(width, size) + 1, (x.shape[0], 1), device=x.device)
                start = (torch.rand(x.shape[0], 1, device=x.device) * (size - span + 1)).long()
                idx = torch.arange(size, device=x.device).unsqueeze(0)
                band = (idx >= start) & (idx < start + span)  # [B, size]
                keep &= ~(band.unsqueeze(2) if dim == 1 else band.unsqueeze(1))
        return torch.where(keep, x, fill)


class SpectralFrontEnd(nn.Module):
    """Base of the spectral front-ends: pre-emphasis -> transform -> log -> SpecAugment.

    Everything runs in float32 with autocast disabled. ``transform`` maps [B, T] to a
    non-negative map [B, F, frames] (power or magnitude); ``log_eps`` > 0 applies
    ``log(x + log_eps)``, 0 keeps the linear values. Shorter waveforms than
    ``min_samples`` (what the transform needs) are refused with a clear error.
    """

    domain: ClassVar[str] = "timefreq"

    def __init__(
        self,
        transform: nn.Module,
        out_channels: int,
        pre_emphasis: float,
        log_eps: float,
        freq_mask: int,
        time_mask: int,
        min_samples: int = 1,
    ) -> None:
        super().__init__()
        if log_eps < 0:
            raise ValueError(f"frontend.log_eps={log_eps} must be >= 0 (0 = no log)")
        self.transform = transform
        self.out_channels = out_channels
        self.pre_emphasis = pre_emphasis
        self.log_eps = log_eps
        self.min_samples = min_samples
        self.spec_augment = SpecAugment(freq_mask=freq_mask, time_mask=time_mask)

    def forward(self, x: Tensor) -> Tensor:
        x = check_waveform(x, type(self).__name__, self.min_samples)
        with float32(x):
            feats = self.transform(pre_emphasis(x, self.pre_emphasis))
            if self.log_eps > 0:
                feats = torch.log(feats + self.log_eps)
            return self.spec_augment(feats)
