"""Model zoo: output contract, front-end pairs, parameter counts of the paper presets, learning."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.models.cnn_gru import CNNGRU

ROOT = Path(__file__).resolve().parents[2] / "conf"
SR = 16000


def frontend(name: str) -> torch.nn.Module:
    cfg = OmegaConf.create(
        {"sample_rate": SR, "f": OmegaConf.load(ROOT / "frontend" / f"{name}.yaml")}
    )
    return instantiate(cfg.f)


def model(name: str, in_channels: int, **overrides: object) -> torch.nn.Module:
    return instantiate(
        OmegaConf.load(ROOT / "model" / f"{name}.yaml"), in_channels=in_channels, **overrides
    )


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def check_output(out: ModelOutput, batch: int, n_stages: int = 4) -> None:
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (batch, 2) and out.logits.dtype == torch.float32
    assert out.embedding.dim() == 2 and out.embedding.shape[0] == batch
    assert len(out.stage_features) == n_stages
    assert all(f.shape[0] == batch for f in out.stage_features)
    assert torch.isfinite(out.logits).all()


def one_step_lowers_loss(net: torch.nn.Module, x: torch.Tensor, lr: float = 1e-3) -> None:
    """One Adam step on a fixed batch lowers its cross-entropy (train mode both times)."""
    torch.manual_seed(0)
    y = torch.tensor([0, 1] * (x.shape[0] // 2))
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss = F.cross_entropy(net(x).logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(net(x).logits, y)
    assert after < loss.detach()


# ---------------------------------------------------------------- CNN-GRU / RawNet2


def test_cnn_gru_raw_waveform_64600() -> None:
    torch.manual_seed(0)
    fe, net = frontend("raw"), model("cnn_gru", in_channels=1)
    out = net(fe(torch.randn(2, 64600)))
    check_output(out, 2)
    assert out.embedding.shape == (2, 64)
    assert [f.shape[1] for f in out.stage_features] == [16, 32, 32, 64]
    assert out.stage_features[-1].shape[-1] >= 8  # time is never pooled below min_frames


def test_cnn_gru_lfcc_short_input_keeps_min_frames() -> None:
    torch.manual_seed(0)
    fe = frontend("lfcc")
    net = model("cnn_gru", in_channels=fe.out_channels)
    out = net(fe(torch.randn(2, 64600)))  # 404 frames: only 3 of the 7 pools fit
    check_output(out, 2)
    assert out.stage_features[-1].shape[-1] == 14


def test_rawnet2_preset_parameter_count() -> None:
    """RawNet2 behind a fixed 20-filter sinc layer: counted layer by layer, 17,621,410."""
    net = model("rawnet2", in_channels=20)
    assert isinstance(net.stem, torch.nn.Identity)
    gru = 3 * (128 * 1024 + 1024 * 1024 + 2 * 1024) + 2 * 3 * (2 * 1024 * 1024 + 2 * 1024)
    assert n_params(net.gru) == gru == 16_140_288
    assert n_params(net) == 17_621_410


def test_rawnet2_preset_runs_on_sinc_like_input() -> None:
    torch.manual_seed(0)
    net = model("rawnet2", in_channels=20).eval()
    out = net(torch.randn(2, 20, 6000))
    check_output(out, 2)
    assert out.embedding.shape == (2, 1024)
    assert [f.shape[1] for f in out.stage_features] == [20, 128, 128, 1024]


def test_cnn_gru_learns_one_step() -> None:
    torch.manual_seed(0)
    one_step_lowers_loss(model("cnn_gru", in_channels=1), torch.randn(4, 1, 16000))


@pytest.mark.parametrize(
    ("filts", "match"),
    [([16, [20, 32]], "group 1 expects 20"), ([16], "at least one"), ([16, 32], "model.filts")],
)
def test_cnn_gru_bad_filts(filts: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CNNGRU(in_channels=1, filts=filts)


def test_cnn_gru_rejects_2d_input() -> None:
    with pytest.raises(ValueError, match=r"CNNGRU expects features \[B, C, T'\]"):
        CNNGRU(in_channels=1)(torch.zeros(2, 100))
