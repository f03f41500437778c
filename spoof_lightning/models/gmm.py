"""Gaussian mixture models per class: the LFCC-GMM / CQCC-GMM baselines of ASVspoof.

Todisco et al., "ASVspoof 2019: Future horizons in spoofed and fake audio detection",
Interspeech 2019 (baselines B1 CQCC-GMM and B2 LFCC-GMM; ASVspoof 2021 keeps them): one
GMM for bona fide frames and one for spoofed frames, 512 components with diagonal
covariances, trained by expectation-maximisation (Dempster, Laird & Rubin, JRSS-B 1977);
the score of an utterance is the average over its frames of the log-likelihood ratio
``log p(x | bona fide) - log p(x | spoof)``.

:class:`GMMPair` holds the fitted parameters as buffers and scores; the EM itself lives in
the functions below, driven batch by batch by :class:`~spoof_lightning.lit.em_detector.EMDetector`
(one EM iteration per epoch). Initialisation: k-means++ seeding (Arthur & Vassilvitskii,
SODA 2007) on a random sample of frames, then a few Lloyd iterations.
"""

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from spoof_lightning.contracts import BONAFIDE, SPOOF, ModelOutput

LOG_2PI = math.log(2 * math.pi)


def component_log_densities(x: Tensor, weights: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """``log w_k + log N(x | mu_k, diag(var_k))`` for frames ``x`` [N, D]: [N, K]."""
    precision = 1.0 / variances  # [K, D]
    quadratic = (
        (x * x) @ precision.T - 2 * x @ (means * precision).T + (means * means * precision).sum(1)
    )
    log_det = torch.log(variances).sum(1)  # [K]
    dim = x.shape[1]
    return torch.log(weights) - 0.5 * (dim * LOG_2PI + log_det + quadratic)


def log_likelihood(x: Tensor, weights: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """Per-frame log-likelihood of a diagonal GMM: [N]."""
    return torch.logsumexp(component_log_densities(x, weights, means, variances), dim=1)


def sufficient_statistics(
    x: Tensor, weights: Tensor, means: Tensor, variances: Tensor
) -> dict[str, Tensor]:
    """E-step over frames ``x`` [N, D] (float64 sums): occupancy ``n`` [K], first and
    second moments ``s1``, ``s2`` [K, D], the total log-likelihood and the frame count."""
    log_p = component_log_densities(x, weights, means, variances)
    total = torch.logsumexp(log_p, dim=1)
    resp = torch.exp(log_p - total[:, None]).double()  # [N, K]
    xd = x.double()
    return {
        "n": resp.sum(0),
        "s1": resp.T @ xd,
        "s2": resp.T @ (xd * xd),
        "loglik": total.double().sum(),
        "frames": torch.tensor(float(x.shape[0]), dtype=torch.float64),
    }


def maximisation(
    stats: dict[str, Tensor], floor: Tensor, old: tuple[Tensor, Tensor, Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """M-step: (weights, means, variances) from summed statistics; variances floored at
    ``floor`` [D]. A component that lost (almost) all its frames keeps its old parameters."""
    n = stats["n"]
    alive = n > 1e-3
    safe_n = n.clamp_min(1e-3)[:, None]
    means = stats["s1"] / safe_n
    variances = torch.maximum(stats["s2"] / safe_n - means * means, floor.double())
    weights = (n / n.sum()).clamp_min(1e-8)
    old_w, old_m, old_v = (t.double() for t in old)
    means = torch.where(alive[:, None], means, old_m)
    variances = torch.where(alive[:, None], variances, old_v)
    weights = torch.where(alive, weights, old_w)
    return (weights / weights.sum()).float(), means.float(), variances.float()


def kmeans_init(
    x: Tensor, n_components: int, generator: torch.Generator, iterations: int = 10
) -> tuple[Tensor, Tensor, Tensor]:
    """(weights, means, variances) from k-means++ seeding and Lloyd iterations on ``x``."""
    n = x.shape[0]
    if n < n_components:
        raise ValueError(
            f"model.n_components={n_components} but only {n} frames to initialise from"
        )
    centres = [x[torch.randint(n, (1,), generator=generator)].squeeze(0)]
    closest = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, n_components):
        index = torch.multinomial(closest / closest.sum(), 1, generator=generator)
        centres.append(x[index].squeeze(0))
        closest = torch.minimum(closest, ((x - centres[-1]) ** 2).sum(1))
    means = torch.stack(centres)
    for _ in range(iterations):
        dist = (x * x).sum(1, keepdim=True) - 2 * x @ means.T + (means * means).sum(1)
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=n_components).float()
        sums = torch.zeros_like(means).index_add_(0, assign, x)
        means = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], means)
    dist = (x * x).sum(1, keepdim=True) - 2 * x @ means.T + (means * means).sum(1)
    assign = dist.argmin(1)
    counts = torch.bincount(assign, minlength=n_components).float()
    sq = torch.zeros_like(means).index_add_(0, assign, (x - means[assign]) ** 2)
    global_var = x.var(0)
    variances = torch.where(counts[:, None] > 1, sq / counts.clamp_min(1)[:, None], global_var)
    weights = (counts + 1) / (counts + 1).sum()
    return weights, means, variances


class GMMPair(nn.Module):
    """A bona fide GMM and a spoof GMM over the frames of a time-frequency map [B, C, T'].

    Args:
        in_channels: feature dimension D (the front-end's ``out_channels``).
        n_components: mixture components per class (512 in the ASVspoof baselines).
        var_floor: variances are floored at this fraction of the training data's
            per-dimension variance (set when fitting starts).
        init_frames: frames per class sampled to initialise each GMM (k-means++).
        kmeans_iterations: Lloyd iterations after the k-means++ seeding.

    ``logits[:, 1]`` / ``logits[:, 0]`` are the mean frame log-likelihoods under the bona
    fide / spoof GMM, so the score ``logits[:, 1] - logits[:, 0]`` is the average LLR.
    The parameters are buffers, fitted by EM (``training_method = "em"``), not by gradients.
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"timefreq"})
    training_method: ClassVar[str] = "em"

    def __init__(
        self,
        in_channels: int,
        n_components: int = 512,
        var_floor: float = 1e-3,
        init_frames: int = 100_000,
        kmeans_iterations: int = 10,
    ) -> None:
        super().__init__()
        if init_frames < n_components:
            raise ValueError(
                f"model.init_frames={init_frames} must be >= model.n_components={n_components}"
            )
        if n_components < 1:
            raise ValueError(f"model.n_components={n_components} must be >= 1")
        if var_floor <= 0:
            raise ValueError(f"model.var_floor={var_floor} must be > 0")
        self.n_components = n_components
        self.var_floor = var_floor
        self.init_frames = init_frames
        self.kmeans_iterations = kmeans_iterations
        shape = (2, n_components, in_channels)
        self.register_buffer("weights", torch.full((2, n_components), 1.0 / n_components))
        self.register_buffer("means", torch.zeros(shape))
        self.register_buffer("variances", torch.ones(shape))
        self.register_buffer("floor", torch.full((in_channels,), 1e-6))

    def params(self, label: int) -> tuple[Tensor, Tensor, Tensor]:
        """(weights, means, variances) of the GMM of class ``label`` (1 bona fide, 0 spoof)."""
        return self.weights[label], self.means[label], self.variances[label]

    def set_params(self, label: int, params: tuple[Tensor, Tensor, Tensor]) -> None:
        for buffer, value in zip((self.weights, self.means, self.variances), params, strict=True):
            buffer[label] = value.to(buffer)

    def frame_log_likelihoods(self, x: Tensor) -> Tensor:
        """[B, 2, T'] log-likelihood of every frame under the spoof (0) / bona fide (1) GMM."""
        frames = x.transpose(1, 2).reshape(-1, x.shape[1]).float()
        per_class = [log_likelihood(frames, *self.params(label)) for label in (SPOOF, BONAFIDE)]
        return torch.stack(per_class, 1).reshape(x.shape[0], x.shape[2], 2).transpose(1, 2)

    def forward(self, x: Tensor) -> ModelOutput:
        if x.dim() != 3:
            raise ValueError(f"GMMPair expects features [B, C, T'], got {tuple(x.shape)}")
        logits = self.frame_log_likelihoods(x).mean(dim=2)  # [B, 2]
        return ModelOutput(logits=logits, embedding=logits)
