"""AASIST / AASIST-L: parity with the official checkpoints, parameter counts, shapes, learning."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.checkpoint import Countermeasure, load_released_weights
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.frontends.sinc import SincFrontEnd
from spoof_lightning.models.aasist import AASIST
from spoof_lightning.models.released_weights import official_to_ours, ours_to_official

CONF = Path(__file__).resolve().parents[2] / "conf"
SHARED = Path(os.environ.get("SPOOF_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = SHARED / "reference" / "aasist"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "official_outputs.npz").is_file(),
    reason=f"official AASIST reference data not found in {REFERENCE} (set SPOOF_SHARED)",
)
VARIANTS = {"AASIST": ("aasist", 297_866), "AASIST-L": ("aasist_l", 85_306)}


def build(model: str, **overrides: object) -> tuple[SincFrontEnd, AASIST]:
    cfg = OmegaConf.create({"sample_rate": 16000, "f": OmegaConf.load(CONF / "frontend/sinc.yaml")})
    frontend = instantiate(cfg.f)
    overrides = {"in_channels": frontend.out_channels, **overrides}
    backend = instantiate(OmegaConf.load(CONF / f"model/{model}.yaml"), **overrides)
    return frontend, backend


def official_outputs(name: str, rows: slice) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    ref = np.load(REFERENCE / "official_outputs.npz")
    wave = torch.from_numpy(ref["waveforms"][rows])
    return wave, ref[f"{name}_logits"][rows], ref[f"{name}_embedding"][rows]


def check_parity(name: str, rows: slice) -> None:
    frontend, backend = build(VARIANTS[name][0])
    load_released_weights(Countermeasure(frontend, backend), REFERENCE / f"{name}.pth")
    frontend.eval()
    backend.eval()
    wave, logits, embedding = official_outputs(name, rows)
    with torch.no_grad():
        out = backend(frontend(wave))
    np.testing.assert_allclose(out.logits.numpy(), logits, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out.embedding.numpy(), embedding, rtol=0, atol=1e-4)


@needs_reference
@pytest.mark.parametrize("name", list(VARIANTS))
def test_official_checkpoint_parity(name: str) -> None:
    """Two of the four reference waveforms (64,600 samples each) keep this test short."""
    check_parity(name, slice(0, 2))


@pytest.mark.slow
@needs_reference
@pytest.mark.parametrize("name", list(VARIANTS))
def test_official_checkpoint_parity_all_waveforms(name: str) -> None:
    check_parity(name, slice(None))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_parameter_count(name: str) -> None:
    model, expected = VARIANTS[name]
    frontend, backend = build(model)
    assert sum(p.numel() for p in frontend.parameters()) == 0  # fixed filters
    assert sum(p.numel() for p in backend.parameters()) == expected


def test_key_mapping_round_trips() -> None:
    _, backend = build("aasist")
    for key in backend.state_dict():
        official = ours_to_official(key)
        assert official is not None and official_to_ours(official) == key
    assert official_to_ours("encoder.4.0.bn1.weight") == "stages.3.1.input_norm.weight"
    assert (
        official_to_ours("HtrgGAT_layer_ST22.att_weightM")
        == "head.branches.1.layer2.att_vec_master"
    )


def test_shapes_and_one_optimizer_step() -> None:
    torch.manual_seed(0)
    frontend, backend = build("aasist_l")
    wave = torch.randn(2, 8000)  # 0.5 s: 2,624 frames after the stem, 3 temporal nodes
    labels = torch.tensor([0, 1])
    feats = frontend(wave)
    assert feats.shape == (2, 70, 8000 - 128) and (feats >= 0).all()
    out = backend(feats)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 2) and out.embedding.shape == (2, 160)
    assert [f.shape[1:3] for f in out.stage_features] == [(32, 23), (32, 23), (24, 23), (24, 23)]
    assert [f.shape[3] for f in out.stage_features] == [874, 291, 97, 3]

    optimizer = torch.optim.Adam(backend.parameters(), lr=1e-3)
    torch.manual_seed(1)  # same dropout masks before and after the step
    loss = F.cross_entropy(backend(feats).logits, labels)
    optimizer.zero_grad()
    loss.backward()
    frozen = [p for p in backend.parameters() if not p.requires_grad]
    assert sum(p.numel() for p in frozen) == 2 * (32 + 32 + 24 + 24 + 24)  # unused input BNs
    assert all(p.grad is not None for p in backend.parameters() if p.requires_grad)
    optimizer.step()
    torch.manual_seed(1)
    with torch.no_grad():
        assert F.cross_entropy(backend(feats).logits, labels) < loss


def test_preactivation_trains_the_input_norm() -> None:
    _, backend = build("aasist_l", preactivation=True)
    assert all(p.requires_grad for p in backend.parameters())


def test_float32_under_autocast() -> None:
    frontend, _ = build("aasist")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert frontend(torch.randn(1, 1000)).dtype == torch.float32


def test_learnable_sinc_starts_at_the_fixed_filters() -> None:
    fixed = SincFrontEnd(n_filters=20, kernel_size=1024)
    learnable = SincFrontEnd(n_filters=20, kernel_size=1024, learnable=True)
    assert fixed.taps == 1025 and sum(p.numel() for p in learnable.parameters()) == 40
    torch.testing.assert_close(learnable.filters(), fixed.filters(), atol=1e-6, rtol=0)


def test_short_input_is_refused() -> None:
    frontend, backend = build("aasist")
    with pytest.raises(ValueError, match="at least 2187 frames"):
        backend(frontend(torch.randn(1, 2000)))
    with pytest.raises(ValueError, match="model.time_pool=1"):
        build("aasist", in_channels=60)[1](torch.randn(1, 60, 400))
    with pytest.raises(ValueError, match=r"features \[B, 70, T\]"):
        backend(torch.randn(1, 60, 3000))


def test_frame_rate_features_with_time_pool_1() -> None:
    """LFCC-like input (60 rows, 400 frames) works once the blocks stop pooling time."""
    _, backend = build("aasist_l", in_channels=60, time_pool=1)
    out = backend.eval()(torch.randn(2, 60, 400))
    assert out.logits.shape == (2, 2)
    assert out.stage_features[-1].shape[2:] == (20, 133)
