"""Raw waveform front-end: [B, T] -> [B, 1, T] for end-to-end models (RawNet2, TSSDNet)."""

from typing import ClassVar

from torch import Tensor, nn

from spoof_lightning.frontends.common import check_waveform, pre_emphasis


class RawFrontEnd(nn.Module):
    """Pass the waveform through as one channel.

    Args:
        sample_rate: sample rate of the input (kept for the config; nothing is resampled).
        pre_emphasis: coefficient of ``y[t] = x[t] - a * x[t-1]``; 0 disables it.
        normalize: standardise each utterance to zero mean and unit variance.
    """

    domain: ClassVar[str] = "waveform"

    def __init__(
        self, sample_rate: int = 16000, pre_emphasis: float = 0.0, normalize: bool = False
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.pre_emphasis = pre_emphasis
        self.normalize = normalize
        self.out_channels = 1

    def forward(self, x: Tensor) -> Tensor:
        x = pre_emphasis(check_waveform(x, type(self).__name__), self.pre_emphasis)
        if self.normalize:
            x = (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + 1e-5)
        return x.unsqueeze(1)
