"""Model zoo: output contract, front-end pairs, parameter counts of the paper presets, learning."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.contracts import IncompatiblePairError, ModelOutput, check_pair
from spoof_lightning.models.cnn_gru import CNNGRU
from spoof_lightning.models.rawnet2 import RawNet2
from spoof_lightning.models.se_res2net import SERes2Net
from spoof_lightning.models.tssdnet import IncTSSDNet, ResTSSDNet

ROOT = Path(__file__).resolve().parents[2] / "conf"
SR = 16000
FRONTENDS = ["raw", "lfcc", "spectrogram", "mel", "cqt"]
MODELS = ["cnn_gru", "se_res2net50", "res_tssdnet", "inc_tssdnet"]
VALID = {
    ("raw", "cnn_gru"), ("raw", "res_tssdnet"), ("raw", "inc_tssdnet"),
    *((fe, m) for fe in FRONTENDS[1:] for m in ("cnn_gru", "se_res2net50")),
}  # fmt: skip


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


def test_rawnet2_official_block_feeds_its_input_to_the_first_conv() -> None:
    """The official RawNet2 block computes BN + LeakyReLU and discards it: changing that BN
    changes nothing (and it is frozen); the paper's block (preactivation=True) uses it."""
    x = torch.randn(2, 20, 3000, generator=torch.Generator().manual_seed(0))
    small = {"filts": [20, [20, 20], [20, 32]], "gru_hidden": 16, "gru_layers": 1}
    for preactivation in (False, True):
        torch.manual_seed(0)
        net = RawNet2(20, preactivation=preactivation, **small).eval()
        pre_norm = net.groups[0][1].pre[0]  # the second block of the first group
        assert pre_norm.weight.requires_grad == preactivation
        before = net(x).logits
        with torch.no_grad():
            pre_norm.weight.mul_(3.0)
            pre_norm.bias.add_(1.0)
        changed = not torch.equal(before, net(x).logits)
        assert changed == preactivation
    assert isinstance(model("rawnet2", in_channels=20), RawNet2)
    assert not model("rawnet2", in_channels=20).groups[1][0].pre[0].weight.requires_grad


def test_cnn_gru_learns_one_step() -> None:
    torch.manual_seed(0)
    one_step_lowers_loss(model("cnn_gru", in_channels=1), torch.randn(4, 1, 8000))


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


# ---------------------------------------------------------------- every front-end x model pair


def _target_class(group: str, name: str) -> type:
    module, cls = OmegaConf.load(ROOT / group / f"{name}.yaml")._target_.rsplit(".", 1)
    return getattr(__import__(module, fromlist=[cls]), cls)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("fe_name", FRONTENDS)
def test_pair(fe_name: str, model_name: str) -> None:
    """Valid pairs run on 0.5 s of audio; the others are refused before anything is built."""
    fe_cls, model_cls = _target_class("frontend", fe_name), _target_class("model", model_name)
    if (fe_name, model_name) not in VALID:
        with pytest.raises(IncompatiblePairError, match=f"model={model_name}"):
            check_pair(fe_name, fe_cls, model_name, model_cls)
        return
    check_pair(fe_name, fe_cls, model_name, model_cls)
    torch.manual_seed(0)
    fe = frontend(fe_name)
    net = model(model_name, in_channels=fe.out_channels).eval()
    with torch.no_grad():
        check_output(net(fe(torch.randn(2, SR // 2))), 2)


# ---------------------------------------------------------------- SE-Res2Net50


@pytest.mark.parametrize(
    ("name", "count"),
    [("se_res2net50", 923_102), ("se_res2net50_14w8s", 846_737), ("se_res2net50_26w8s", 1_870_622)],
)
def test_se_res2net_parameter_counts(name: str, count: int) -> None:
    """26w4s gives the paper's 0.92M (expansion 2, as in the authors' code)."""
    net = model(name, in_channels=432)
    assert isinstance(net, SERes2Net)
    assert n_params(net) == count


def test_se_res2net_stages_and_any_input_size() -> None:
    torch.manual_seed(0)
    net = model("se_res2net50", in_channels=60).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 60, 37))
    check_output(out, 2)
    assert out.embedding.shape == (2, 256)
    shapes = [tuple(f.shape) for f in out.stage_features]
    assert shapes == [(2, 32, 60, 37), (2, 64, 30, 19), (2, 128, 15, 10), (2, 256, 8, 5)]


def test_se_res2net_learns_one_step() -> None:
    torch.manual_seed(0)
    one_step_lowers_loss(SERes2Net(in_channels=24), torch.randn(4, 24, 24))


def test_se_res2net_bad_config() -> None:
    with pytest.raises(ValueError, match="model.base_width"):
        SERes2Net(in_channels=20, base_width=2)
    with pytest.raises(ValueError, match="model.layers"):
        SERes2Net(in_channels=20, layers=[3, 0, 6, 3])


# ---------------------------------------------------------------- TSSDNet


@pytest.mark.parametrize(
    ("name", "cls", "count"),
    [("res_tssdnet", ResTSSDNet, 348_530), ("inc_tssdnet", IncTSSDNet, 92_658)],
)
def test_tssdnet_parameter_counts(name: str, cls: type, count: int) -> None:
    """The paper's 0.35M (Res) and 0.09M (Inc), exactly as its reference layout counts."""
    net = model(name, in_channels=1)
    assert isinstance(net, cls)
    assert n_params(net) == count


@pytest.mark.parametrize("name", ["res_tssdnet", "inc_tssdnet"])
def test_tssdnet_stages_and_learning(name: str) -> None:
    torch.manual_seed(0)
    net = model(name, in_channels=1)
    out = net.eval()(torch.randn(2, 1, 6400))
    check_output(out, 2)
    assert out.embedding.shape == (2, 32)
    assert [tuple(f.shape[1:]) for f in out.stage_features] == [
        (32, 1600), (64, 400), (128, 100), (128, 25),
    ]  # fmt: skip
    one_step_lowers_loss(net, torch.randn(4, 1, 4000))


def test_inc_tssdnet_rejects_channels_not_divisible_by_4() -> None:
    with pytest.raises(ValueError, match="model.channels"):
        IncTSSDNet(in_channels=1, channels=[16, 30, 64])
