"""Res-TSSDNet and Inc-TSSDNet: light end-to-end detectors on the raw waveform.

Hua, Teoh & Zhang, "Towards End-to-End Synthetic Speech Detection", IEEE Signal Processing
Letters 28, 2021. Both read 6 s of 16 kHz audio (96,000 samples)::

    conv7 (in -> 16, no bias) -> BN -> ReLU -> max-pool 4
    4 modules (16->32, 32->64, 64->128, 128->128), max-pool 4 after the first three
    global max-pool over time -> FC 64 -> ReLU -> FC 32 -> ReLU -> FC 2

Res-TSSDNet's module is ResNet-style: three 3-tap convs (BN+ReLU after the first two),
a 1x1 "network-in-network" skip, then BN and ReLU of the sum. Inc-TSSDNet's module is
Inception-style: four parallel 3-tap convs with dilations 1, 2, 4, 8, each with BN+ReLU,
each giving a quarter of the output channels. The paper pools the last map with a fixed
375-frame kernel (= global at 6 s); here the pooling is global for any length, and a
max-pool by 4 is skipped when it would leave no frame.

``embedding``: the 32-d input of the output layer; ``stage_features``: the 4 module outputs.
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput

POOL = 4


class ResModule(nn.Module):
    """ResNet-style module (RSM) of Res-TSSDNet."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Conv1d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Conv1d(c_out, c_out, 3, padding=1, bias=False),
        )
        self.nin = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.body(x) + self.nin(x)))


class DilatedModule(nn.Module):
    """Inception-style module of Inc-TSSDNet: parallel dilated convs, concatenated."""

    def __init__(self, c_in: int, c_out: int, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        if c_out % len(dilations):
            raise ValueError(
                f"model.channels: {c_out} output channels do not split into "
                f"{len(dilations)} dilated branches"
            )
        branch = c_out // len(dilations)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(c_in, branch, 3, dilation=d, padding=d, bias=False),
                nn.BatchNorm1d(branch),
                nn.ReLU(),
            )
            for d in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


@torch.jit.script_if_tracing  # the branch stays a branch in TorchScript / ONNX exports
def _pool(x: Tensor, pool: int = POOL) -> Tensor:
    if x.shape[-1] >= pool:
        return F.max_pool1d(x, pool)
    return x


class _TSSDNet(nn.Module):
    """Shared TSSDNet skeleton; subclasses pick the module type."""

    accepts: ClassVar[frozenset[str]] = frozenset({"waveform"})
    module: ClassVar[type[nn.Module]]

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128, 128),
        stem_kernel: int = 7,
        fc_dims: Sequence[int] = (64, 32),
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"model.channels={list(channels)} needs a stem width and >= 1 module")
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, channels[0], stem_kernel, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList(
            type(self).module(c_in, c_out)
            for c_in, c_out in zip(channels, channels[1:], strict=False)
        )
        fc: list[nn.Module] = []
        width = channels[-1]
        for dim in fc_dims:
            fc += [nn.Linear(width, dim), nn.ReLU()]
            width = dim
        self.fc = nn.Sequential(*fc)
        self.out = nn.Linear(width, 2)

    def forward(self, x: Tensor) -> ModelOutput:
        if x.dim() != 3:
            name = type(self).__name__
            raise ValueError(f"{name} expects a waveform [B, C, T], got {tuple(x.shape)}")
        x = _pool(self.stem(x))
        stages = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            stages.append(x)
            if i < len(self.blocks) - 1:
                x = _pool(x)
        embedding = self.fc(x.amax(dim=-1))
        return ModelOutput(logits=self.out(embedding), embedding=embedding, stage_features=stages)


class ResTSSDNet(_TSSDNet):
    """Res-TSSDNet (348,530 parameters with the defaults; "0.35M" in the paper).

    Args:
        in_channels: front-end channels (1 for the raw waveform).
        channels: stem width, then the output width of each module.
        stem_kernel: taps of the first conv.
        fc_dims: hidden widths of the classifier.
    """

    module = ResModule


class IncTSSDNet(_TSSDNet):
    """Inc-TSSDNet (92,658 parameters with the defaults; "0.09M" in the paper).

    Args:
        in_channels: front-end channels (1 for the raw waveform).
        channels: stem width, then the output width of each module (multiples of 4).
        stem_kernel: taps of the first conv.
        fc_dims: hidden widths of the classifier.
    """

    module = DilatedModule
