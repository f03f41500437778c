"""SE-Res2Net50 countermeasure on a time-frequency map treated as a 1-channel image.

Backbone: Gao et al., "Res2Net: A New Multi-scale Backbone Architecture", IEEE TPAMI 2019
(the "v1b" variant: a deep 3-conv stem, average-pooling shortcuts). Anti-spoofing setup:
Li, Tu, Wu et al., "Replay and synthetic speech detection with Res2Net architecture",
ICASSP 2021: no stem stride or max-pool, stage widths 16/32/64/128, squeeze-and-excitation
(Hu et al., CVPR 2018; reduction 16) on every block, global average pooling, linear 2-way output.

A Bottle2neck splits its 1x1-conv output into ``scale`` groups of ``width =
floor(planes * base_width / 64)`` channels; group i > 0 gets a 3x3 conv of (group i + output
of group i-1), widening the receptive field inside one block. The first block of a stage
convolves every group independently (strided) and average-pools the last group.

``expansion`` (block output = planes * expansion) is 2 in the ICASSP 2021 authors' code and
gives 0.92M parameters for 26w4s; 4 is the ImageNet Res2Net value.
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return [conv, nn.BatchNorm2d(c_out)]


class SqueezeExcite(nn.Module):
    """Channel re-weighting by a bottleneck MLP on the global average (no biases)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class SEBottle2neck(nn.Module):
    """Res2Net bottleneck with squeeze-and-excitation before the residual sum."""

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int,
        first: bool,
        base_width: int,
        scale: int,
        expansion: int,
        se_reduction: int,
    ) -> None:
        super().__init__()
        width = planes * base_width // 64
        if width < 1:
            raise ValueError(f"model.base_width={base_width} leaves no channel per scale group")
        out_ch = planes * expansion
        self.width, self.scale, self.first = width, scale, first
        self.reduce = nn.Sequential(*_conv_bn(in_ch, width * scale), nn.ReLU(inplace=True))
        n_convs = max(1, scale - 1)
        self.convs = nn.ModuleList(
            nn.Sequential(*_conv_bn(width, width, 3, stride), nn.ReLU(inplace=True))
            for _ in range(n_convs)
        )
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if first else nn.Identity()
        self.expand = nn.Sequential(*_conv_bn(width * scale, out_ch))
        self.se = SqueezeExcite(out_ch, se_reduction)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            self.shortcut = nn.Sequential(pool, *_conv_bn(in_ch, out_ch))

    def forward(self, x: Tensor) -> Tensor:
        groups = torch.split(self.reduce(x), self.width, dim=1)
        outs: list[Tensor] = []
        for i, conv in enumerate(self.convs):
            outs.append(conv(groups[i] if i == 0 or self.first else groups[i] + outs[-1]))
        if self.scale > 1:
            outs.append(self.pool(groups[-1]))
        out = self.se(self.expand(torch.cat(outs, dim=1)))
        return F.relu(out + self.shortcut(x))


class SERes2Net(nn.Module):
    """SE-Res2Net on features [B, C, T'] (seen as a [B, 1, C, T'] image).

    Args:
        in_channels: front-end channels (the image height; any value works).
        layers: blocks per stage (Res2Net50: [3, 4, 6, 3]).
        base_width, scale: Res2Net width and number of scale groups (26w4s, 14w8s, 26w8s).
        stem_channels: channels of the stem; stage ``i`` has ``stem_channels * 2**i`` planes.
        expansion: block output channels = planes * expansion.
        se_reduction: squeeze-and-excitation reduction ratio.

    ``embedding``: the globally pooled last stage; ``stage_features``: the 4 stage outputs.
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"timefreq", "ssl"})

    def __init__(
        self,
        in_channels: int,
        layers: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 26,
        scale: int = 4,
        stem_channels: int = 16,
        expansion: int = 2,
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        if len(layers) < 1 or min(layers) < 1:
            raise ValueError(f"model.layers={list(layers)} must be positive block counts")
        if scale < 1:
            raise ValueError(f"model.scale={scale} must be >= 1")
        self.in_channels = in_channels
        s = stem_channels
        stem: list[nn.Module] = []
        for c_in in (1, s, s):  # the v1b "deep stem": three 3x3 convs, no stride, no pooling
            stem += [*_conv_bn(c_in, s, 3), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList()
        ch = s
        for i, n_blocks in enumerate(layers):
            planes = s * 2**i
            blocks = []
            for b in range(n_blocks):
                stride = 2 if i > 0 and b == 0 else 1
                args = (base_width, scale, expansion, se_reduction)
                blocks.append(SEBottle2neck(ch, planes, stride, b == 0, *args))
                ch = planes * expansion
            self.stages.append(nn.Sequential(*blocks))
        self.head = nn.Linear(ch, 2)

    def forward(self, x: Tensor) -> ModelOutput:
        if x.dim() != 3:
            raise ValueError(f"SERes2Net expects features [B, C, T'], got {tuple(x.shape)}")
        x = self.stem(x.unsqueeze(1))
        stages = []
        for stage in self.stages:
            x = stage(x)
            stages.append(x)
        embedding = x.mean(dim=(2, 3))
        return ModelOutput(logits=self.head(embedding), embedding=embedding, stage_features=stages)
