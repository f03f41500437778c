"""Gaussian mixture models per class: the LFCC-GMM / CQCC-GMM baselines of ASVspoof.

Todisco et al., "ASVspoof 2019: Future horizons in spoofed and fake audio detection",
Interspeech 2019 (baselines B1 CQCC-GMM and B2 LFCC-GMM; ASVspoof 2021 keeps them): one
GMM for bona fide frames and one for spoofed frames, 512 components with diagonal
covariances, trained by expectation-maximisation (Dempster, Laird & Rubin, JRSS-B 1977);
the score of an utterance is the average over its frames of the log-likelihood ratio
``log p(x | bona fide) - log p(x | spoof)``.

:class:`GMMPair` holds the fitted parameters as buffers and scores; :func:`fit_gmm` fits
one mixture to an in-memory sample of frames (:class:`~spoof_lightning.lit.em_detector.EMDetector`
collects it from the training set): k-means++ seeding (Arthur & Vassilvitskii, SODA 2007)
and Lloyd iterations on a subsample, then EM until the average frame log-likelihood gains
less than ``tol`` per iteration (scikit-learn's criterion, tol 1e-3) or ``max_iterations``.

Numerics: everything runs in float32 on frames centred on their mean (the Gaussian's
quadratic form is expanded into matrix products, which loses precision far from the
origin), in chunks of frames; the sufficient statistics are summed across chunks in
float64 and the M-step is float64.
"""

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from spoof_lightning.contracts import BONAFIDE, SPOOF, ModelOutput

LOG_2PI = math.log(2 * math.pi)
CHUNK_FRAMES = 8192  # frames per E-step chunk: [chunk, K] float32 responsibilities


def component_log_densities(x: Tensor, weights: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """``log w_k + log N(x | mu_k, diag(var_k))`` for frames ``x`` [N, D]: [N, K].

    Computed around the mixture's mean (a shift of both ``x`` and the means leaves the
    densities unchanged) so that the expanded quadratic form stays accurate in float32."""
    centre = weights @ means  # [D]
    x, means = x - centre, means - centre
    precision = 1.0 / variances  # [K, D]
    const = torch.log(weights) - 0.5 * (
        x.shape[1] * LOG_2PI + torch.log(variances).sum(1) + (means * means * precision).sum(1)
    )
    # -0.5 * sum_d (x^2 p - 2 x mu p) in one product: [x^2, x] @ [p, -2 mu p]^T
    quadratic = torch.cat([x * x, x], 1) @ torch.cat([precision, -2 * means * precision], 1).T
    return quadratic.mul_(-0.5).add_(const)


def log_likelihood(x: Tensor, weights: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """Per-frame log-likelihood of a diagonal GMM: [N]."""
    parts = [
        torch.logsumexp(component_log_densities(chunk, weights, means, variances), dim=1)
        for chunk in x.split(CHUNK_FRAMES)
    ]
    return torch.cat(parts) if parts else x.new_zeros(0)


def sufficient_statistics(
    x: Tensor, weights: Tensor, means: Tensor, variances: Tensor
) -> dict[str, Tensor]:
    """E-step over frames ``x`` [N, D]: occupancy ``n`` [K], first and second moments ``s1``,
    ``s2`` [K, D], the total log-likelihood and the frame count (float64 sums over chunks)."""
    k, d = means.shape
    moments = torch.zeros(k, 1 + 2 * d, dtype=torch.float64)
    loglik = torch.zeros((), dtype=torch.float64)
    for chunk in x.split(CHUNK_FRAMES):
        log_p = component_log_densities(chunk, weights, means, variances)
        total = torch.logsumexp(log_p, dim=1)
        resp = log_p.sub_(total[:, None]).exp_()  # [n, K], in place
        ones = chunk.new_ones(chunk.shape[0], 1)
        moments += (resp.T @ torch.cat([ones, chunk, chunk * chunk], 1)).double()
        loglik += total.double().sum()
    return {
        "n": moments[:, 0],
        "s1": moments[:, 1 : 1 + d],
        "s2": moments[:, 1 + d :],
        "loglik": loglik,
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


def fit_gmm(
    x: Tensor,
    n_components: int,
    floor: Tensor,
    generator: torch.Generator,
    init_frames: int,
    kmeans_iterations: int,
    max_iterations: int,
    tol: float,
) -> tuple[tuple[Tensor, Tensor, Tensor], list[float]]:
    """Fit a diagonal GMM to frames ``x`` [N, D]: k-means on ``init_frames`` of them drawn
    at random, then EM on all of them. Returns (weights, means, variances) and the average
    frame log-likelihood before each M-step (never decreasing, up to rounding)."""
    shift = x.mean(0)
    x = (x - shift).float()
    subset = torch.randperm(x.shape[0], generator=generator)[:init_frames]
    weights, means, variances = kmeans_init(x[subset], n_components, generator, kmeans_iterations)
    params = (weights, means, torch.maximum(variances, floor))
    history: list[float] = []
    for _ in range(max_iterations):
        stats = sufficient_statistics(x, *params)
        history.append(float(stats["loglik"] / stats["frames"]))
        params = maximisation(stats, floor, params)
        if len(history) > 1 and history[-1] - history[-2] < tol:
            break
    weights, means, variances = params
    return (weights, means + shift, variances), history


class GMMPair(nn.Module):
    """A bona fide GMM and a spoof GMM over the frames of a time-frequency map [B, C, T'].

    Args:
        in_channels: feature dimension D (the front-end's ``out_channels``).
        n_components: mixture components per class (512 in the ASVspoof baselines).
        var_floor: variances are floored at this fraction of the training data's
            per-dimension variance (set when fitting starts).
        max_frames: training frames per class kept for EM (a uniform random sample of
            the training set's frames when it has more: consecutive 10 ms frames are
            strongly correlated, and the E-step costs frames x components).
        init_frames: of those, frames drawn for the k-means initialisation.
        kmeans_iterations: Lloyd iterations after the k-means++ seeding.
        max_iterations, tol: EM stops after ``max_iterations`` or once an iteration gains
            less than ``tol`` in average frame log-likelihood.

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
        max_frames: int = 100_000,
        init_frames: int = 20_000,
        kmeans_iterations: int = 10,
        max_iterations: int = 100,
        tol: float = 1e-3,
    ) -> None:
        super().__init__()
        if n_components < 1:
            raise ValueError(f"model.n_components={n_components} must be >= 1")
        if not n_components <= init_frames <= max_frames:
            raise ValueError(
                f"model.n_components={n_components} <= model.init_frames={init_frames} <= "
                f"model.max_frames={max_frames} must hold"
            )
        if var_floor <= 0:
            raise ValueError(f"model.var_floor={var_floor} must be > 0")
        if max_iterations < 1 or tol < 0:
            raise ValueError(
                f"model.max_iterations={max_iterations} must be >= 1 and model.tol={tol} >= 0"
            )
        self.n_components = n_components
        self.var_floor = var_floor
        self.max_frames = max_frames
        self.init_frames = init_frames
        self.kmeans_iterations = kmeans_iterations
        self.max_iterations = max_iterations
        self.tol = tol
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
