"""AASIST back-end for self-supervised (wav2vec 2.0 / XLS-R) features.

Tak et al., "Automatic speaker verification spoofing and deepfake detection using
wav2vec 2.0 and data augmentation", Odyssey 2022. Pair it with the wav2vec2 front-end
(``frontend=wav2vec2``). Differences from AASIST on sinc features, as in the authors' code:

- a linear layer maps the D-dim SSL frames to ``proj_dim`` (128) "frequency" rows;
- the residual blocks do not pool time (the SSL frame rate is already 50 Hz);
- after the encoder, BN + SELU, and the graph nodes are attention-weighted sums
  (softmax over time for the spectral nodes, over frequency for the temporal nodes, with
  weights from a 1x1-conv attention net) instead of max |.|.

The residual blocks, graph attention layers and readout are the AASIST ones
(:mod:`spoof_lightning.models.aasist`), including its unused input BatchNorm.
``stage_features`` are the encoder stage outputs, as in AASIST.
"""

from collections.abc import Sequence
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.models.aasist import GraphHead, residual_stages


class SSLAASIST(nn.Module):
    """SSL features [B, in_channels, T'] -> logits, 160-dim embedding (defaults).

    Args:
        in_channels: SSL feature dim D (1024 for XLS-R 300M).
        proj_dim: output size of the D -> proj_dim linear layer (128); ``proj_dim // 3``
            spectral graph nodes.
        filts, gat_dims, pool_ratios, temperatures, preactivation: as for
            :class:`~spoof_lightning.models.aasist.AASIST`.
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"ssl"})

    def __init__(
        self,
        in_channels: int,
        proj_dim: int = 128,
        filts: Sequence[Sequence[int]] = ((1, 32), (32, 32), (32, 64), (64, 64)),
        gat_dims: Sequence[int] = (64, 32),
        pool_ratios: Sequence[float] = (0.5, 0.5, 0.5, 0.5),
        temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0),
        preactivation: bool = False,
    ) -> None:
        super().__init__()
        if proj_dim < 3:
            raise ValueError(f"model.proj_dim must be at least 3, got {proj_dim}")
        self.in_channels = in_channels
        self.proj = nn.Linear(in_channels, proj_dim)
        self.stem_norm = nn.BatchNorm2d(1)
        self.stages = residual_stages(filts, time_pool=1, preactivation=preactivation)
        channels = filts[-1][-1]
        self.post_norm = nn.BatchNorm2d(channels)
        self.attention = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, kernel_size=1),
            nn.SELU(),
            nn.BatchNorm2d(2 * channels),
            nn.Conv2d(2 * channels, channels, kernel_size=1),
        )
        self.head = GraphHead(channels, proj_dim // 3, gat_dims, pool_ratios, temperatures)

    def forward(self, features: Tensor) -> ModelOutput:
        if features.dim() != 3 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"SSLAASIST expects SSL features [B, {self.in_channels}, T], "
                f"got {tuple(features.shape)}"
            )
        if features.shape[2] < 3:
            raise ValueError(f"SSLAASIST needs at least 3 frames, got {features.shape[2]}")
        x = self.proj(features.transpose(1, 2)).transpose(1, 2)  # [B, proj_dim, T]
        x = F.selu(self.stem_norm(F.max_pool2d(x.unsqueeze(1), (3, 3))))
        stage_features = []
        for stage in self.stages:
            x = stage(x)
            stage_features.append(x)
        x = F.selu(self.post_norm(x))  # [B, C, F, T]
        weights = self.attention(x)
        nodes_s = (x * F.softmax(weights, dim=-1)).sum(dim=-1).transpose(1, 2)
        nodes_t = (x * F.softmax(weights, dim=-2)).sum(dim=-2).transpose(1, 2)
        logits, embedding = self.head(nodes_s, nodes_t)
        return ModelOutput(logits=logits, embedding=embedding, stage_features=stage_features)


__all__ = ["SSLAASIST"]
