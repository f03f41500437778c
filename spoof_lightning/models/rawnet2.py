"""RawNet2: a CNN-GRU countermeasure on a raw waveform or its sinc filterbank output.

Tak et al., "End-to-end anti-spoofing with RawNet2", ICASSP 2021 (after Jung et al.,
"Improved RawNet with filter-wise rescaling for text-independent speaker verification",
Interspeech 2020). Pipeline::

    stem      learnable strided conv (1 input channel) | 1x1 projection | identity
              -> |x| -> max-pool 3 -> BN -> SELU
    groups    residual blocks ([BN, LeakyReLU(0.3)], conv3, BN, LeakyReLU, conv3, + skip,
              max-pool 3) each followed by filter-wise feature map scaling (FMS):
              s = sigmoid(W avgpool(x)), x <- x * s + s
    GRU       BN -> SELU -> GRU; the last time step is the embedding
    head      [Linear(gru_hidden, fc_hidden)] -> Linear(., 2)

``filts = [stem_channels, [in, out], [in, out], ...]``; each group has ``blocks_per_group``
blocks, the first mapping in -> out and the others out -> out. RawNet2's
``[20, [20, 20], [20, 128], [128, 128]]`` with 2 blocks per group gives its 2 + 4 blocks.
The RawNet2 preset reads the output of a fixed 20-filter sinc front-end, so the stem is the
identity there.

The blocks' pre-activation: the paper's table puts BN + LeakyReLU before the first conv of
every block but the first; the official code (the ASVspoof 2021 baseline) computes it and
then feeds the block's *input* to the first conv, so the published model never uses it.
``preactivation=False`` (the default) is that official block: the BN is kept, unused and
frozen, so the parameter count and the state dict stay those of the official model;
``preactivation=True`` applies it as the paper describes (the demo's :class:`CNNGRU`).

To accept any input length (a 400-frame LFCC as well as a 64,600-sample waveform) every
max-pool by 3 is skipped when it would leave fewer than ``min_frames`` frames.
``stage_features``: the output of each residual group, then the GRU output sequence.
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput

POOL = 3


@torch.jit.script_if_tracing  # the branch stays a branch in TorchScript / ONNX exports
def _pool(x: Tensor, min_frames: int, pool: int = POOL) -> Tensor:
    """Max-pool time by ``pool`` unless fewer than ``min_frames`` frames would remain."""
    if x.shape[-1] // pool >= min_frames:
        return F.max_pool1d(x, pool)
    return x


class ResidualBlock(nn.Module):
    """Pre-activation residual block with max-pooling and FMS (see the module docstring)."""

    def __init__(
        self, in_ch: int, out_ch: int, first: bool, min_frames: int, preactivation: bool
    ) -> None:
        super().__init__()
        self.pre = (
            nn.Identity() if first else nn.Sequential(nn.BatchNorm1d(in_ch), nn.LeakyReLU(0.3))
        )
        self.preactivation = preactivation
        if not preactivation:
            self.pre.requires_grad_(False)
        self.conv1 = nn.Conv1d(in_ch, out_ch, 3, padding=1)
        self.mid = nn.Sequential(nn.BatchNorm1d(out_ch), nn.LeakyReLU(0.3))
        self.conv2 = nn.Conv1d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv1d(in_ch, out_ch, 1)
        self.fms = nn.Linear(out_ch, out_ch)
        self.min_frames = min_frames

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.mid(self.conv1(self.pre(x) if self.preactivation else x)))
        out = _pool(out + self.skip(x), self.min_frames)
        scale = torch.sigmoid(self.fms(out.mean(dim=-1))).unsqueeze(-1)
        return out * scale + scale


class RawNet2(nn.Module):
    """RawNet2 on a waveform [B, 1, T] or any feature map [B, C, T']; official sizes by default.

    Args:
        in_channels: channels of the front-end output.
        filts: ``[stem_channels, [in, out], ...]``; one entry per residual group.
        blocks_per_group: residual blocks in each group (RawNet2: 2).
        first_conv_kernel, first_conv_stride: the learnable stem conv, used only when
            ``in_channels == 1`` (a raw waveform).
        gru_hidden, gru_layers: the GRU.
        fc_hidden: width of a linear layer between the GRU and the 2-way output (RawNet2:
            1024, with no non-linearity in between as in the paper's code); 0 = none.
        min_frames: never max-pool below this many frames.
        preactivation: feed the blocks' BN + LeakyReLU to their first conv (the paper's
            block); False is the official code's block (see the module docstring).
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"waveform", "timefreq"})

    def __init__(
        self,
        in_channels: int,
        filts: Sequence[int | Sequence[int]] = (20, (20, 20), (20, 128), (128, 128)),
        blocks_per_group: int = 2,
        first_conv_kernel: int = 1024,
        first_conv_stride: int = 1,
        gru_hidden: int = 1024,
        gru_layers: int = 3,
        fc_hidden: int = 1024,
        min_frames: int = 8,
        preactivation: bool = False,
    ) -> None:
        super().__init__()
        stem_ch, groups = self._check_filts(filts)
        if in_channels == 1:
            self.stem = nn.Conv1d(1, stem_ch, first_conv_kernel, stride=first_conv_stride)
        elif in_channels != stem_ch:
            self.stem = nn.Conv1d(in_channels, stem_ch, 1)
        else:
            self.stem = nn.Identity()
        self.stem_norm = nn.Sequential(nn.BatchNorm1d(stem_ch), nn.SELU())
        self.groups = nn.ModuleList()
        for g, (g_in, g_out) in enumerate(groups):
            blocks = [
                ResidualBlock(
                    g_in if b == 0 else g_out, g_out, g == 0 and b == 0, min_frames, preactivation
                )
                for b in range(blocks_per_group)
            ]
            self.groups.append(nn.Sequential(*blocks))
        last = groups[-1][1]
        self.pre_gru = nn.Sequential(nn.BatchNorm1d(last), nn.SELU())
        self.gru = nn.GRU(last, gru_hidden, num_layers=gru_layers, batch_first=True)
        self.fc = nn.Linear(gru_hidden, fc_hidden) if fc_hidden > 0 else nn.Identity()
        self.out = nn.Linear(fc_hidden if fc_hidden > 0 else gru_hidden, 2)
        self.min_frames = min_frames

    @staticmethod
    def _check_filts(filts: Sequence[int | Sequence[int]]) -> tuple[int, list[tuple[int, int]]]:
        try:
            stem_ch = int(filts[0])
            groups = [(int(a), int(b)) for a, b in filts[1:]]
        except (TypeError, ValueError, IndexError):
            raise ValueError(
                f"model.filts={filts!r} must look like [stem, [in, out], [in, out], ...]"
            ) from None
        if not groups:
            raise ValueError("model.filts needs at least one [in, out] group after the stem")
        widths = [stem_ch] + [out for _, out in groups]  # what each group receives, then gives
        for i, ((g_in, _), given) in enumerate(zip(groups, widths, strict=False)):
            if g_in != given:
                raise ValueError(
                    f"model.filts={filts!r}: group {i + 1} expects {g_in} input channels "
                    f"but receives {given}"
                )
        return stem_ch, groups

    def forward(self, x: Tensor) -> ModelOutput:
        if x.dim() != 3:
            raise ValueError(
                f"{type(self).__name__} expects features [B, C, T'], got {tuple(x.shape)}"
            )
        x = _pool(self.stem(x).abs(), self.min_frames)
        x = self.stem_norm(x)
        stages = []
        for group in self.groups:
            x = group(x)
            stages.append(x)
        seq, _ = self.gru(self.pre_gru(x).transpose(1, 2))  # [B, T'', H]
        stages.append(seq.transpose(1, 2))
        embedding = seq[:, -1]
        logits = self.out(self.fc(embedding))
        return ModelOutput(logits=logits, embedding=embedding, stage_features=stages)
