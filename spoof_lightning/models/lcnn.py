"""LCNN: light CNN with max-feature-map activations, the LFCC-LCNN baseline of ASVspoof 2021.

Wang & Yamagishi, "A comparative study on recent neural spoofing countermeasures for
synthetic speech detection", Interspeech 2021 (baseline B3 of ASVspoof 2021, after Lavrentyeva
et al., "STC antispoofing systems for the ASVspoof2019 challenge", Interspeech 2019). The
feature map [B, C, T'] (LFCC: 60 coefficients) is read as a one-channel image [B, 1, T', C]:

    conv 5x5 (64) MFM | maxpool 2
    conv 1x1 (64) MFM BN | conv 3x3 (96) MFM | maxpool 2 | BN
    conv 1x1 (96) MFM BN | conv 3x3 (128) MFM | maxpool 2
    conv 1x1 (128) MFM BN | conv 3x3 (64) MFM BN
    conv 1x1 (64) MFM BN | conv 3x3 (64) MFM | maxpool 2 | dropout 0.7

MFM (max-feature-map, Wu et al., IEEE TIFS 2018) keeps the element-wise maximum of the two
halves of the channels. With ``lstm=True`` (the "LCNN-LSTM-sum" of the paper) the map is
flattened per frame and goes through two bidirectional LSTM layers with a skip connection;
the utterance embedding is the average over frames, then a linear output. Here the output
is two logits for cross-entropy (the paper: one logit with a sigmoid / P2SGrad variants).
``stage_features``: the output of each of the four pooled blocks, then the frame sequence.
"""

from typing import ClassVar

import torch
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput


class MaxFeatureMap(nn.Module):
    """Element-wise max of the two channel halves: [B, 2C, ...] -> [B, C, ...]."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def _conv_mfm(in_ch: int, out_ch: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2), MaxFeatureMap()]


class LCNN(nn.Module):
    """LCNN(-LSTM-sum) on a time-frequency map [B, C, T'].

    Args:
        in_channels: feature dimension C (60 for the baseline LFCC).
        widths: output channels of the five conv stages before MFM halves them
            (the paper: 64, 96, 128, 64, 64).
        dropout: before the pooling / LSTM (0.7 in the paper).
        lstm: add the two BLSTM layers with skip connection (LCNN-LSTM-sum).
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"timefreq"})

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, int, int, int, int] = (64, 96, 128, 64, 64),
        dropout: float = 0.7,
        lstm: bool = True,
    ) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = (int(w) for w in widths)
        if any(w % 2 for w in (w1, w2, w3, w4, w5)):
            raise ValueError(f"model.widths={list(widths)} must all be even (MFM halves them)")
        if in_channels < 16:
            raise ValueError(
                f"LCNN pools the feature axis by 16; in_channels={in_channels} is too small"
            )
        pool = nn.MaxPool2d(2, 2)
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(*_conv_mfm(1, w1, 5), pool),
                nn.Sequential(
                    *_conv_mfm(w1 // 2, w1, 1),
                    nn.BatchNorm2d(w1 // 2, affine=False),
                    *_conv_mfm(w1 // 2, w2, 3),
                    pool,
                    nn.BatchNorm2d(w2 // 2, affine=False),
                ),
                nn.Sequential(
                    *_conv_mfm(w2 // 2, w2, 1),
                    nn.BatchNorm2d(w2 // 2, affine=False),
                    *_conv_mfm(w2 // 2, w3, 3),
                    pool,
                ),
                nn.Sequential(
                    *_conv_mfm(w3 // 2, w3, 1),
                    nn.BatchNorm2d(w3 // 2, affine=False),
                    *_conv_mfm(w3 // 2, w4, 3),
                    nn.BatchNorm2d(w4 // 2, affine=False),
                    *_conv_mfm(w4 // 2, w4, 1),
                    nn.BatchNorm2d(w4 // 2, affine=False),
                    *_conv_mfm(w4 // 2, w5, 3),
                    pool,
                ),
            ]
        )
        self.dropout = nn.Dropout(dropout)
        dim = (w5 // 2) * (in_channels // 16)
        self.lstm = (
            nn.LSTM(dim, dim // 2, num_layers=2, batch_first=True, bidirectional=True)
            if lstm
            else None
        )
        self.out = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> ModelOutput:
        if x.dim() != 3:
            raise ValueError(f"LCNN expects features [B, C, T'], got {tuple(x.shape)}")
        if x.shape[2] < 16:
            raise ValueError(f"LCNN needs at least 16 frames, got {x.shape[2]}")
        h = x.transpose(1, 2).unsqueeze(1)  # [B, 1, T', C]
        stages = []
        for block in self.blocks:
            h = block(h)
            stages.append(h)
        h = self.dropout(h)
        seq = h.permute(0, 2, 1, 3).flatten(2)  # [B, T'/16, channels * C/16]
        if self.lstm is not None:
            seq = seq + self.lstm(seq)[0]
        stages.append(seq.transpose(1, 2))
        embedding = seq.mean(dim=1)
        return ModelOutput(logits=self.out(embedding), embedding=embedding, stage_features=stages)
