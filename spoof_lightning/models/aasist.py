"""AASIST back-end: residual encoder + spectro-temporal graph attention.

Jung et al., "AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal Graph
Attention Networks", ICASSP 2022. The sinc front-end (``frontends/sinc.py``) supplies the
filterbank magnitude [B, C, T]; this module is the rest of the official model:

1. the map is treated as a 1-channel image: 3x3 max-pool, BatchNorm, SELU;
2. a RawNet2-style residual encoder (6 blocks; each pools time by 3);
3. spectral nodes = max |.| over time (+ a learned positional embedding), temporal nodes =
   max |.| over frequency; each set goes through a graph attention layer (GAT) and a
   graph pooling layer;
4. two parallel branches of two heterogeneous stacking graph attention layers (HS-GAL)
   with a learnable master node; element-wise max of the branches;
5. readout [max |T|, mean T, max |S|, mean S, master] (the embedding) -> 2 logits.

``stage_features`` are the encoder outputs grouped by the ``filts`` entries: blocks
1, 2, 3 and 4-6 (the last pair of ``filts`` is used by three blocks), shallow to deep.

Faithfulness notes (needed to reproduce the released checkpoints):

- The official residual block normalises its input (BN + SELU) and then convolves the
  *unnormalised* input, so that BN never touches the output; the released checkpoints
  hold it at weight 1 / bias 0. We keep the layer (so the checkpoints load one to one and
  the published parameter counts hold) but leave it out of the computation and frozen,
  unless ``preactivation=True`` applies it as a pre-activation residual block intends.
- All four HS-GAL layers use ``temperatures[2]`` and all four of their graph pools use
  ``pool_ratios[2]``; ``temperatures[3]`` and ``pool_ratios[3]`` are unused, as in the
  official code (its configs list four values).
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput


class ResidualBlock(nn.Module):
    """RawNet2 residual block on a [B, C, F, T] map; (2, 3) convolutions, time max-pool.

    ``first`` blocks have no input normalisation (they follow the stem's BN + SELU).
    ``time_pool`` = 1 disables the pooling (SSL-AASIST).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        first: bool = False,
        time_pool: int = 3,
        preactivation: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = None if first else nn.BatchNorm2d(in_channels)
        self.preactivation = preactivation and not first
        if self.input_norm is not None and not self.preactivation:
            self.input_norm.requires_grad_(False)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1))
            if in_channels != out_channels
            else nn.Identity()
        )
        self.time_pool = time_pool

    def forward(self, x: Tensor) -> Tensor:
        out = F.selu(self.input_norm(x)) if self.preactivation else x
        out = self.conv2(F.selu(self.norm1(self.conv1(out))))
        out = out + self.shortcut(x)
        return F.max_pool2d(out, (1, self.time_pool)) if self.time_pool > 1 else out


def residual_stages(
    filts: Sequence[Sequence[int]], time_pool: int, preactivation: bool
) -> nn.ModuleList:
    """Four stages of the AASIST encoder: one block per ``filts`` pair, three for the last."""
    if len(filts) != 4 or any(len(pair) != 2 for pair in filts):
        raise ValueError(f"model.filts must be four [in, out] pairs, got {filts}")
    if filts[0][0] != 1 or any(filts[i][0] != filts[i - 1][1] for i in range(1, 4)):
        raise ValueError(
            f"model.filts {filts}: the first pair must start at 1 (the image channel) and "
            "each pair must start where the previous one ends"
        )
    stages = nn.ModuleList()
    for i, (c_in, c_out) in enumerate(filts):
        blocks = [ResidualBlock(c_in, c_out, i == 0, time_pool, preactivation)]
        if i == 3:
            blocks += [
                ResidualBlock(c_out, c_out, False, time_pool, preactivation) for _ in range(2)
            ]
        stages.append(nn.Sequential(*blocks))
    return stages


def _xavier(*size: int) -> nn.Parameter:
    weight = nn.Parameter(torch.empty(*size))
    nn.init.xavier_normal_(weight)
    return weight


def _batchnorm_nodes(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm over the feature dim of node sets [B, N, D]."""
    return norm(x.reshape(-1, x.shape[-1])).view(x.shape)


def _pairwise(x: Tensor) -> Tensor:
    """Element-wise products of all node pairs: [B, N, D] -> [B, N, N, D]."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttention(nn.Module):
    """Graph attention over a fully connected node set [B, N, in_dim] -> [B, N, out_dim].

    Attention logits ``w . tanh(W (x_i * x_j)) / temperature`` are normalised over the
    neighbours j; the output is ``P_att (A x) + P_self x``, BatchNorm, SELU.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.input_drop = nn.Dropout(0.2)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_vec = _xavier(out_dim, 1)
        self.proj_att = nn.Linear(in_dim, out_dim)
        self.proj_self = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_drop(x)
        logits = torch.tanh(self.att_proj(_pairwise(x))) @ self.att_vec  # [B, N, N, 1]
        att = F.softmax(logits.squeeze(-1) / self.temperature, dim=-1)
        out = self.proj_att(att @ x) + self.proj_self(x)
        return F.selu(_batchnorm_nodes(self.norm, out))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous stacking graph attention layer (HS-GAL) with a master node.

    Two node types ``x1`` [B, N1, in_dim] and ``x2`` [B, N2, in_dim] are projected to a
    common space and attended jointly, with separate attention vectors for type1-type1,
    type2-type2 and cross-type edges. The master node [B or 1, 1, in_dim] attends to all
    nodes. Returns the updated ``x1``, ``x2`` ([B, N*, out_dim]) and master ([B, 1, out_dim]).
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.in_proj1 = nn.Linear(in_dim, in_dim)
        self.in_proj2 = nn.Linear(in_dim, in_dim)
        self.input_drop = nn.Dropout(0.2)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_vec11 = _xavier(out_dim, 1)
        self.att_vec22 = _xavier(out_dim, 1)
        self.att_vec12 = _xavier(out_dim, 1)
        self.proj_att = nn.Linear(in_dim, out_dim)
        self.proj_self = nn.Linear(in_dim, out_dim)
        self.att_proj_master = nn.Linear(in_dim, out_dim)
        self.att_vec_master = _xavier(out_dim, 1)
        self.proj_att_master = nn.Linear(in_dim, out_dim)
        self.proj_self_master = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n1 = x1.shape[1]
        x = torch.cat([self.in_proj1(x1), self.in_proj2(x2)], dim=1)
        x = self.input_drop(x)

        hidden = torch.tanh(self.att_proj(_pairwise(x)))  # [B, N, N, out]
        is1 = torch.arange(x.shape[1], device=x.device) < n1
        same1 = (is1.unsqueeze(1) & is1.unsqueeze(0)).unsqueeze(-1)
        same2 = (~is1.unsqueeze(1) & ~is1.unsqueeze(0)).unsqueeze(-1)
        logits = torch.where(
            same1,
            hidden @ self.att_vec11,
            torch.where(same2, hidden @ self.att_vec22, hidden @ self.att_vec12),
        )
        att = F.softmax(logits.squeeze(-1) / self.temperature, dim=-1)

        master_hidden = torch.tanh(self.att_proj_master(x * master))  # [B, N, out]
        master_att = F.softmax((master_hidden @ self.att_vec_master) / self.temperature, dim=1)
        master = self.proj_att_master(master_att.transpose(1, 2) @ x) + self.proj_self_master(
            master
        )

        out = self.proj_att(att @ x) + self.proj_self(x)
        out = F.selu(_batchnorm_nodes(self.norm, out))
        return out[:, :n1], out[:, n1:], master


@torch.jit.script_if_tracing  # exports keep the number of nodes dynamic
def _top_nodes(h: Tensor, scores: Tensor, ratio: float) -> Tensor:
    """The rows of ``h`` [B, N, D] with the ``max(int(N * ratio), 1)`` highest ``scores``."""
    keep = max(int(h.shape[1] * ratio), 1)
    idx = torch.topk(scores, keep, dim=1).indices.expand(-1, -1, h.shape[-1])
    return torch.gather(h, 1, idx)


class GraphPool(nn.Module):
    """Keep the ``ratio`` highest-scoring nodes, scaled by their sigmoid score (gPool)."""

    def __init__(self, ratio: float, dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.ratio = ratio
        self.drop = nn.Dropout(dropout)
        self.score = nn.Linear(dim, 1)

    def forward(self, h: Tensor) -> Tensor:
        scores = torch.sigmoid(self.score(self.drop(h)))  # [B, N, 1]
        return _top_nodes(h * scores, scores, self.ratio)


class HSGALBranch(nn.Module):
    """One inference branch: master node, HS-GAL, graph pools, a second (residual) HS-GAL."""

    def __init__(self, gat_dims: Sequence[int], pool_ratio: float, temperature: float) -> None:
        super().__init__()
        self.master = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.layer1 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperature)
        self.pool_s = GraphPool(pool_ratio, gat_dims[1])
        self.pool_t = GraphPool(pool_ratio, gat_dims[1])
        self.layer2 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperature)

    def forward(self, nodes_t: Tensor, nodes_s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        t, s, master = self.layer1(nodes_t, nodes_s, self.master)
        s, t = self.pool_s(s), self.pool_t(t)
        t_aug, s_aug, master_aug = self.layer2(t, s, master)
        return t + t_aug, s + s_aug, master + master_aug


class GraphHead(nn.Module):
    """Everything after node extraction: GAT-S, GAT-T, two HS-GAL branches, readout.

    Input: spectral nodes [B, n_spectral_nodes, node_dim], temporal nodes [B, N_t, node_dim].
    Output: (logits [B, 2], embedding [B, 5 * gat_dims[1]]).
    """

    def __init__(
        self,
        node_dim: int,
        n_spectral_nodes: int,
        gat_dims: Sequence[int],
        pool_ratios: Sequence[float],
        temperatures: Sequence[float],
    ) -> None:
        super().__init__()
        if len(gat_dims) != 2 or len(pool_ratios) < 3 or len(temperatures) < 3:
            raise ValueError(
                "model.gat_dims needs 2 values, model.pool_ratios and model.temperatures at "
                f"least 3 (got {list(gat_dims)}, {list(pool_ratios)}, {list(temperatures)})"
            )
        self.spectral_pos = nn.Parameter(torch.randn(1, n_spectral_nodes, node_dim))
        self.gat_spectral = GraphAttention(node_dim, gat_dims[0], temperatures[0])
        self.gat_temporal = GraphAttention(node_dim, gat_dims[0], temperatures[1])
        self.pool_spectral = GraphPool(pool_ratios[0], gat_dims[0])
        self.pool_temporal = GraphPool(pool_ratios[1], gat_dims[0])
        self.branches = nn.ModuleList(
            HSGALBranch(gat_dims, pool_ratios[2], temperatures[2]) for _ in range(2)
        )
        self.branch_drop = nn.Dropout(0.2)
        self.readout_drop = nn.Dropout(0.5)
        self.classifier = nn.Linear(5 * gat_dims[1], 2)

    def forward(self, nodes_s: Tensor, nodes_t: Tensor) -> tuple[Tensor, Tensor]:
        if nodes_s.shape[1] != self.spectral_pos.shape[1]:
            raise ValueError(
                f"AASIST graph head was built for {self.spectral_pos.shape[1]} spectral nodes "
                f"but got {nodes_s.shape[1]}: the feature height does not match in_channels"
            )
        s = self.pool_spectral(self.gat_spectral(nodes_s + self.spectral_pos))
        t = self.pool_temporal(self.gat_temporal(nodes_t))
        outs = [[self.branch_drop(y) for y in branch(t, s)] for branch in self.branches]
        t, s, master = (torch.maximum(a, b) for a, b in zip(*outs, strict=True))
        embedding = torch.cat(
            [t.abs().amax(dim=1), t.mean(dim=1), s.abs().amax(dim=1), s.mean(dim=1), master[:, 0]],
            dim=1,
        )
        return self.classifier(self.readout_drop(embedding)), embedding


class AASIST(nn.Module):
    """AASIST back-end on a time-frequency map [B, in_channels, T] (sinc magnitude for AASIST).

    Args:
        in_channels: feature height C (70 sinc filters officially); it sets the number of
            spectral graph nodes, ``C // 3``.
        filts: the residual encoder's four ``[in, out]`` channel pairs (the official config's
            ``filts[1:]``; its leading 70 is the sinc front-end's ``n_filters``).
        gat_dims: node dims of the GAT layers and of the HS-GAL layers.
        pool_ratios: graph pooling ratios (spectral, temporal, HS-GAL, unused).
        temperatures: attention temperatures (GAT-S, GAT-T, HS-GAL, unused).
        preactivation: apply the residual blocks' input BN + SELU (see the module notes);
            False reproduces the official model and its checkpoints.
        time_pool: time max-pool of each residual block (3 officially, for sinc features at
            the sample rate). Frame-rate features (LFCC, spectrograms: ~100 frames/s) need
            1 or 2, since the stem and the six blocks divide time by ``3 * time_pool**6``.
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"timefreq"})

    def __init__(
        self,
        in_channels: int,
        filts: Sequence[Sequence[int]] = ((1, 32), (32, 32), (32, 64), (64, 64)),
        gat_dims: Sequence[int] = (64, 32),
        pool_ratios: Sequence[float] = (0.5, 0.7, 0.5, 0.5),
        temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0),
        preactivation: bool = False,
        time_pool: int = 3,
    ) -> None:
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"AASIST needs a feature height of at least 3, got {in_channels}")
        self.in_channels = in_channels
        self.stem_norm = nn.BatchNorm2d(1)
        if time_pool < 1:
            raise ValueError(f"model.time_pool must be >= 1, got {time_pool}")
        self.stages = residual_stages(filts, time_pool=time_pool, preactivation=preactivation)
        self.head = GraphHead(filts[-1][-1], in_channels // 3, gat_dims, pool_ratios, temperatures)
        self.min_frames = 3 * time_pool**6  # stem max-pool 3, six blocks pooling time_pool

    def forward(self, features: Tensor) -> ModelOutput:
        if features.dim() != 3 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"AASIST expects features [B, {self.in_channels}, T], got {tuple(features.shape)}"
            )
        if features.shape[2] < self.min_frames:
            raise ValueError(
                f"AASIST needs at least {self.min_frames} frames (its stem and encoder pool "
                f"time by 3 * model.time_pool**6), got {features.shape[2]}: use a longer crop, "
                "or model.time_pool=1 or 2 for frame-rate features (LFCC, spectrograms)"
            )
        x = F.max_pool2d(features.unsqueeze(1), (3, 3))
        x = F.selu(self.stem_norm(x))
        stage_features = []
        for stage in self.stages:
            x = stage(x)
            stage_features.append(x)
        x = x.abs()
        logits, embedding = self.head(x.amax(dim=3).transpose(1, 2), x.amax(dim=2).transpose(1, 2))
        return ModelOutput(logits=logits, embedding=embedding, stage_features=stage_features)


__all__ = [
    "AASIST",
    "GraphAttention",
    "GraphHead",
    "GraphPool",
    "HSGALBranch",
    "HeteroGraphAttention",
    "ResidualBlock",
    "residual_stages",
]
