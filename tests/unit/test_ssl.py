"""wav2vec2 front-end + SSL-AASIST with a tiny random wav2vec2 built from the real config."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.frontends.wav2vec2 import Wav2Vec2FrontEnd
from spoof_lightning.models.ssl_aasist import SSLAASIST
from tests.tiny_configs import TINY_WAV2VEC2 as TINY

CONF = Path(__file__).resolve().parents[2] / "conf"
SAMPLES, FRAMES = 2400, 119


def frontend(**overrides: object) -> Wav2Vec2FrontEnd:
    """The configured front-end with TINY + ``overrides`` (errors come unwrapped by Hydra)."""
    cfg = OmegaConf.create(
        {"sample_rate": 16000, "f": OmegaConf.load(CONF / "frontend/wav2vec2.yaml")}
    )
    return instantiate(cfg.f, _partial_=True)(**{**TINY, **overrides})


def backend(in_channels: int) -> SSLAASIST:
    return instantiate(OmegaConf.load(CONF / "model/ssl_aasist.yaml"), in_channels=in_channels)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_shapes_and_learning() -> None:
    fe, model = frontend(), backend(32)
    wave = torch.randn(2, SAMPLES)
    feats = fe(wave)
    assert fe.out_channels == 32 and feats.shape == (2, 32, FRAMES)
    out = model(feats)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 2) and out.embedding.shape == (2, 160)
    # 128 projected rows -> 42 after the 3x3 stem pool; no time pooling in the encoder
    assert [tuple(f.shape[1:]) for f in out.stage_features] == [
        (32, 42, 39),
        (32, 42, 39),
        (64, 42, 39),
        (64, 42, 39),
    ]
    labels = torch.tensor([0, 1])
    params = list(fe.parameters()) + list(model.parameters())
    optimizer = torch.optim.Adam([p for p in params if p.requires_grad], lr=1e-3)
    torch.manual_seed(1)
    loss = F.cross_entropy(model(fe(wave)).logits, labels)
    optimizer.zero_grad()
    loss.backward()
    assert all(p.grad is not None for p in fe.ssl.encoder.parameters())  # fine-tuned
    optimizer.step()
    torch.manual_seed(1)
    with torch.no_grad():
        assert F.cross_entropy(model(fe(wave)).logits, labels) < loss


def test_freeze_stops_gradients_and_keeps_eval_mode() -> None:
    fe, model = frontend(freeze=True, encoder_dropout=0.5), backend(32)
    fe.train()
    model.train()
    assert not fe.ssl.training
    wave = torch.randn(2, SAMPLES)
    torch.testing.assert_close(fe(wave), fe(wave))  # no dropout inside the frozen model
    model(fe(wave)).logits.sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in fe.ssl.parameters())
    assert all(p.grad is not None for p in model.proj.parameters())


def test_layer_selection() -> None:
    fe = frontend(layer=1).eval()
    wave = torch.randn(2, SAMPLES)
    with torch.no_grad():
        feats, _ = fe.ssl.feature_extractor(wave, None)
        layers = fe.ssl.encoder.extract_features(feats, None)
        torch.testing.assert_close(fe(wave), layers[0].transpose(1, 2))
        last = frontend(layer="last").eval()
        last.load_state_dict(fe.state_dict())
        torch.testing.assert_close(last(wave), fe.ssl.encoder(feats).transpose(1, 2))
        assert not torch.allclose(last(wave), fe(wave))

    weighted = frontend(layer="weighted")
    weighted.load_state_dict(fe.state_dict(), strict=False)
    weighted.eval()
    out = weighted(wave)
    torch.testing.assert_close(out, (layers[0] + layers[1]).transpose(1, 2) / 2)  # uniform start
    out.sum().backward()
    assert weighted.layer_weights.grad is not None and weighted.layer_weights.grad.abs().sum() > 0

    with pytest.raises(ValueError, match="frontend.layer=3"):
        frontend(layer=3)


def _to_huggingface(key: str) -> str:
    key = key.replace("encoder.feature_projection.", "feature_projection.")
    key = key.replace("encoder.transformer.", "encoder.")
    key = key.replace("conv.parametrizations.weight.original0", "conv.weight_g")
    return "wav2vec2." + key.replace("conv.parametrizations.weight.original1", "conv.weight_v")


_FAIRSEQ = [  # torchaudio -> fairseq names (layer_norm extractor, pre-LN transformer)
    (r"conv_layers\.(\d+)\.conv\.", r"conv_layers.\1.0."),
    (r"conv_layers\.(\d+)\.layer_norm\.", r"conv_layers.\1.2.1."),
    (r"^encoder\.feature_projection\.projection\.", "post_extract_proj."),
    (r"^encoder\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"pos_conv_embed\.conv\.parametrizations\.weight\.original0", "pos_conv.0.weight_g"),
    (r"pos_conv_embed\.conv\.parametrizations\.weight\.original1", "pos_conv.0.weight_v"),
    (r"pos_conv_embed\.conv\.bias", "pos_conv.0.bias"),
    (r"^encoder\.transformer\.", "encoder."),
    (r"\.attention\.", ".self_attn."),
    (r"(layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
    (r"feed_forward\.intermediate_dense", "fc1"),
    (r"feed_forward\.output_dense", "fc2"),
]


def _to_fairseq(key: str) -> str:
    for pattern, repl in _FAIRSEQ:
        key = re.sub(pattern, repl, key)
    return key


@pytest.mark.parametrize("layout", ["torchaudio", "huggingface", "fairseq"])
def test_checkpoint_round_trip(tmp_path: Path, layout: str) -> None:
    source = frontend().eval()
    state = source.ssl.state_dict()
    if layout == "huggingface":
        state = {_to_huggingface(k): v for k, v in state.items()}
        state["wav2vec2.masked_spec_embed"] = torch.zeros(32)  # pre-training only: dropped
    elif layout == "fairseq":
        state = {_to_fairseq(k): v for k, v in state.items()}
        state = {"model": {**state, "mask_emb": torch.zeros(32)}, "cfg": {"normalize": False}}
    path = tmp_path / f"{layout}.pt"
    torch.save(state, path)

    torch.manual_seed(123)  # different random init, overwritten by the checkpoint
    loaded = frontend(checkpoint=str(path)).eval()
    wave = torch.randn(2, SAMPLES)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wave), source(wave))


def test_bad_checkpoints(tmp_path: Path) -> None:
    missing = tmp_path / "xlsr2_300m.pt"
    with pytest.raises(FileNotFoundError, match=r"frontend\.checkpoint=.*xlsr2_300m\.pt"):
        frontend(checkpoint=str(missing))

    wrong = tmp_path / "wrong.pt"
    torch.save(frontend(encoder_num_layers=1).ssl.state_dict(), wrong)
    with pytest.raises(ValueError, match=r"wrong\.pt.*does not fit.*layers\.1\."):
        frontend(checkpoint=str(wrong))

    junk = tmp_path / "junk.pt"
    torch.save({"something.else": torch.zeros(1)}, junk)
    with pytest.raises(ValueError, match=r"junk\.pt.*not a wav2vec2 state dict"):
        frontend(checkpoint=str(junk))

    with pytest.raises(ValueError, match="16 kHz"):
        frontend(sample_rate=8000)


def test_backend_refuses_wrong_features() -> None:
    with pytest.raises(ValueError, match=r"SSL features \[B, 32, T\]"):
        backend(32)(torch.randn(2, 64, 50))


@pytest.mark.parametrize(
    ("layer", "layer_norm_first", "frozen"),
    [
        ("last", True, []),
        (1, True, ["encoder.transformer.layers.1.", "encoder.transformer.layer_norm."]),
        ("weighted", True, ["encoder.transformer.layer_norm."]),
        (1, False, ["encoder.transformer.layers.1."]),  # post-LN: the norm runs first
    ],
)
def test_fine_tuning_trains_exactly_the_parameters_it_runs(
    layer: int | str, layer_norm_first: bool, frozen: list[str]
) -> None:
    """Every trainable SSL parameter gets a gradient (DDP needs that); unused ones are frozen."""
    fe = frontend(layer=layer, encoder_layer_norm_first=layer_norm_first)
    fe(torch.randn(2, SAMPLES)).sum().backward()
    for name, p in fe.ssl.named_parameters():
        unused = name.startswith(tuple(frozen))
        assert p.requires_grad != unused, name
        assert (p.grad is not None) == p.requires_grad, name


def test_too_short_waveform_is_refused_clearly() -> None:
    assert frontend().min_samples == 30  # TINY CNN (kernel, stride): (10, 5), (3, 2), (2, 2)
    fe = frontend().eval()
    assert fe(torch.randn(1, 30)).shape == (1, 32, 1)
    with pytest.raises(ValueError, match="Wav2Vec2FrontEnd needs at least 30 samples"):
        fe(torch.randn(1, 29))
    assert Wav2Vec2FrontEnd(encoder_num_layers=1).min_samples == 400  # the standard CNN
