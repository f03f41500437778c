"""GMM baselines: EM on known mixtures, the GMM pair's scores, CQCC and LCNN shapes."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from spoof_lightning.frontends.cqcc import CQCCFrontEnd, cqcc_matrix
from spoof_lightning.models.gmm import (
    GMMPair,
    fit_gmm,
    kmeans_init,
    log_likelihood,
    sufficient_statistics,
)
from spoof_lightning.models.lcnn import LCNN

TRUE_WEIGHTS = torch.tensor([0.5, 0.3, 0.2])
TRUE_MEANS = torch.tensor([[0.0, 0.0], [6.0, 1.0], [-3.0, 7.0]])
TRUE_STD = torch.tensor([[1.0, 0.5], [0.7, 1.5], [1.2, 0.8]])


def mixture_sample(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    comp = torch.multinomial(TRUE_WEIGHTS, n, replacement=True, generator=gen)
    noise = torch.randn(n, 2, generator=gen)
    return TRUE_MEANS[comp] + noise * TRUE_STD[comp]


def fit(x: torch.Tensor, k: int, iterations: int, tol: float = -math.inf) -> tuple[list, tuple]:
    floor = torch.full((x.shape[1],), 1e-4)
    generator = torch.Generator().manual_seed(1)
    params, history = fit_gmm(x, k, floor, generator, 1000, 2, iterations, tol)
    return history, params


def test_em_never_decreases_the_likelihood_and_recovers_a_known_mixture() -> None:
    x = mixture_sample(6000) + 100.0  # far from the origin: the float32 E-step must centre
    history, (weights, means, variances) = fit(x, 3, 12)
    assert len(history) == 12
    assert all(b >= a - 1e-5 for a, b in zip(history, history[1:], strict=False)), history  # fp32
    assert history[-1] > history[0]
    order = [int(torch.cdist(m[None], means).argmin()) for m in TRUE_MEANS + 100.0]
    assert sorted(order) == [0, 1, 2]
    torch.testing.assert_close(means[order], TRUE_MEANS + 100.0, atol=0.1, rtol=0)
    torch.testing.assert_close(variances[order].sqrt(), TRUE_STD, atol=0.08, rtol=0)
    torch.testing.assert_close(weights[order], TRUE_WEIGHTS, atol=0.02, rtol=0)


def test_em_stops_at_convergence_and_is_deterministic() -> None:
    x = mixture_sample(6000)
    history, params = fit(x, 3, 200, tol=1e-3)
    assert 2 <= len(history) < 200 and history[-1] - history[-2] < 1e-3
    assert all(b - a >= 1e-3 for a, b in zip(history[:-2], history[1:-1], strict=True))
    again, params_again = fit(x, 3, 200, tol=1e-3)
    assert again == history
    for u, v in zip(params, params_again, strict=True):
        assert torch.equal(u, v)


def test_statistics_add_up_over_chunks_as_in_one_piece() -> None:
    x = mixture_sample(20_000, seed=2)  # more than one E-step chunk
    params = (TRUE_WEIGHTS, TRUE_MEANS, TRUE_STD**2)
    whole = sufficient_statistics(x, *params)
    halves = [sufficient_statistics(part, *params) for part in x.split(7000)]
    for key, value in whole.items():
        torch.testing.assert_close(sum(h[key] for h in halves), value, rtol=1e-5, atol=1e-6)
    assert whole["n"].sum().item() == pytest.approx(20_000, rel=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1000.0])  # float32 far from the origin too
def test_log_likelihood_matches_scipy(offset: float) -> None:
    x, means = mixture_sample(20, seed=3) + offset, TRUE_MEANS + offset
    variances = TRUE_STD**2
    ours = log_likelihood(x, TRUE_WEIGHTS, means, variances)
    density = sum(
        float(w) * multivariate_normal(m.double().numpy(), np.diag(v.numpy())).pdf(x.numpy())
        for w, m, v in zip(TRUE_WEIGHTS, means, variances, strict=True)
    )
    np.testing.assert_allclose(ours.numpy(), np.log(density), rtol=1e-4)


def test_kmeans_init_is_deterministic_and_needs_enough_frames() -> None:
    x = mixture_sample(500)
    a = kmeans_init(x, 4, torch.Generator().manual_seed(5))
    b = kmeans_init(x, 4, torch.Generator().manual_seed(5))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    with pytest.raises(ValueError, match="n_components=8"):
        kmeans_init(x[:5], 8, torch.Generator())


def test_gmm_pair_scores_the_average_frame_llr() -> None:
    model = GMMPair(in_channels=2, n_components=3, max_frames=10, init_frames=10)
    model.set_params(1, (TRUE_WEIGHTS, TRUE_MEANS, TRUE_STD**2))
    model.set_params(0, (TRUE_WEIGHTS, TRUE_MEANS + 2.0, TRUE_STD**2))
    feats = mixture_sample(40).reshape(2, 20, 2).transpose(1, 2)  # [B=2, C=2, T=20]
    out = model(feats)
    frames = feats.transpose(1, 2)
    for b in range(2):
        bona = log_likelihood(frames[b], *model.params(1)).mean()
        spoof = log_likelihood(frames[b], *model.params(0)).mean()
        torch.testing.assert_close(out.logits[b], torch.stack([spoof, bona]))
    assert (out.logits[:, 1] > out.logits[:, 0]).all()  # drawn from the bona fide mixture
    with pytest.raises(ValueError, match="init_frames"):
        GMMPair(in_channels=2, n_components=16, init_frames=8)
    with pytest.raises(ValueError, match="max_frames"):
        GMMPair(in_channels=2, n_components=4, init_frames=100, max_frames=50)


def test_cqcc_shape_and_gain_moves_only_c0() -> None:
    assert CQCCFrontEnd().out_channels == 60  # the baseline: 20 static + deltas + delta-deltas
    front = CQCCFrontEnd(octaves=6, bins_per_octave=24, hop_length=64, n_ceps=12)
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats, louder = front(x), front(4 * x)
    assert feats.shape == (2, 36, 16000 // 64 + 1) and front.out_channels == 36
    # A gain adds 2 log(4) to every log-power bin: interpolation keeps a constant, and the
    # orthonormal DCT puts all of it in c0 (times sqrt of the number of uniform samples).
    diff = louder - feats
    expected = 2 * math.log(4) * math.sqrt(front.n_uniform)
    torch.testing.assert_close(diff[:, 0], torch.full_like(diff[:, 0], expected), rtol=1e-4, atol=0)
    assert diff[:, 1:12].abs().max() < 1e-2 and diff[:, 12:].abs().max() < 1e-2


def test_cqcc_matrix_maps_constants_to_c0_only() -> None:
    matrix = cqcc_matrix(n_bins=96, bins_per_octave=24, resample_d=8, n_ceps=10)
    coeffs = np.ones(96) @ matrix
    assert coeffs[0] > 0 and np.abs(coeffs[1:]).max() < 1e-9


def test_lcnn_shapes_and_input_checks() -> None:
    model = LCNN(in_channels=60)
    out = model(torch.randn(3, 60, 64))
    assert out.logits.shape == (3, 2) and out.embedding.shape == (3, 96)
    assert len(out.stage_features) == 5
    assert sum(p.numel() for p in model.parameters()) == 269_826
    no_lstm = LCNN(in_channels=60, lstm=False)
    assert no_lstm(torch.randn(2, 60, 32)).logits.shape == (2, 2)
    with pytest.raises(ValueError, match="even"):
        LCNN(in_channels=60, widths=(64, 96, 127, 64, 64))
