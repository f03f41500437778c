"""wav2vec2 front-end + SSL-AASIST with a tiny random wav2vec2 built from the real config."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchaudio.models.wav2vec2.model as ssl_builders
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spoof_lightning.build import build_components
from spoof_lightning.checkpoint import Countermeasure, load_countermeasure
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.export import export_model
from spoof_lightning.frontends.wav2vec2 import Wav2Vec2FrontEnd
from spoof_lightning.models.ssl_aasist import SSLAASIST
from tests.tiny_configs import TINY_WAV2VEC2 as TINY
from tests.tiny_configs import TINY_WAVLM

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


def _to_huggingface(key: str, model: str = "wav2vec2") -> str:
    key = key.replace("encoder.feature_projection.", "feature_projection.")
    key = key.replace("encoder.transformer.", "encoder.")
    key = key.replace("conv.parametrizations.weight.original0", "conv.weight_g")
    return f"{model}." + key.replace("conv.parametrizations.weight.original1", "conv.weight_v")


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
    # WavLM's gated relative position bias, as the original (unilm) checkpoints name it
    (r"self_attn\.rel_attn_embed\.", "self_attn.relative_attention_bias."),
    (r"self_attn\.gru_rel_pos_linear\.", "self_attn.grep_linear."),
    (r"self_attn\.gru_rel_pos_const$", "self_attn.grep_a"),
]


def _to_fairseq(key: str) -> str:
    for pattern, repl in _FAIRSEQ:
        key = re.sub(pattern, repl, key)
    return key


def _split_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchaudio's WavLM ``nn.MultiheadAttention`` -> the q/k/v/out projections of the
    Hugging Face and fairseq checkpoints."""
    split = {}
    for key, value in state.items():
        if ".attention.attention.in_proj_" in key:
            prefix, kind = key.split(".attention.attention.in_proj_")
            for name, part in zip("qkv", value.chunk(3), strict=True):
                split[f"{prefix}.attention.{name}_proj.{kind}"] = part
        else:
            split[key.replace(".attention.attention.out_proj.", ".attention.out_proj.")] = value
    return split


FAMILIES = {"wav2vec2": TINY, "hubert": TINY | {"family": "hubert"}, "wavlm": TINY_WAVLM}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("layout", ["torchaudio", "huggingface", "fairseq"])
def test_checkpoint_round_trip(tmp_path: Path, layout: str, family: str) -> None:
    """Synthetic checkpoints with the real key names of each layout load exactly."""
    source = frontend(**FAMILIES[family]).eval()
    state = source.ssl.state_dict()
    if family == "wavlm" and layout != "torchaudio":
        state = _split_qkv(state)
    if layout == "huggingface":
        state = {_to_huggingface(k, family): v for k, v in state.items()}
        state[f"{family}.masked_spec_embed"] = torch.zeros(32)  # pre-training only: dropped
    elif layout == "fairseq":
        state = {_to_fairseq(k): v for k, v in state.items()}
        pretraining = {"mask_emb": torch.zeros(32), "final_proj.weight": torch.zeros(8, 32)}
        if family == "hubert":
            pretraining["label_embs_concat"] = torch.zeros(504, 8)
        state = {"model": state | pretraining, "cfg": {"normalize": False}}
    path = tmp_path / f"{layout}.pt"
    torch.save(state, path)
    if family == "wavlm" and layout == "fairseq":
        assert "encoder.layers.0.self_attn.relative_attention_bias.weight" in state["model"]
        assert "encoder.layers.1.self_attn.grep_a" in state["model"]

    torch.manual_seed(123)  # different random init, overwritten by the checkpoint
    loaded = frontend(**FAMILIES[family], checkpoint=str(path)).eval()
    wave = torch.randn(2, SAMPLES)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wave), source(wave))


ARCHITECTURE = (
    "extractor_mode",
    "extractor_conv_layer_config",
    "extractor_conv_bias",
    "encoder_embed_dim",
    "encoder_pos_conv_kernel",
    "encoder_pos_conv_groups",
    "encoder_num_layers",
    "encoder_num_heads",
    "encoder_ff_interm_features",
    "encoder_layer_norm_first",
)
PRESETS = {
    "wav2vec2": ("wav2vec2_xlsr_300m", "wav2vec2"),
    "hubert_base": ("hubert_base", "hubert"),
    "hubert_large": ("hubert_large", "hubert"),
    "wavlm_base_plus": ("wavlm_base", "wavlm"),  # Base+ = Base architecture, more data
    "wavlm_large": ("wavlm_large", "wavlm"),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_the_released_architectures(name: str, monkeypatch) -> None:
    """conf/frontend/<name>.yaml builds what torchaudio's builder of that model builds."""
    builder, family = PRESETS[name]
    recorded: dict = {}
    for function in ("wav2vec2_model", "wavlm_model"):  # record the builders' arguments
        monkeypatch.setattr(ssl_builders, function, lambda **kw: recorded.update(kw))
    getattr(ssl_builders, builder)()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"frontend={name}"]).frontend
    assert cfg.family == family
    keys = ARCHITECTURE + (
        ("encoder_num_buckets", "encoder_max_distance") if family == "wavlm" else ()
    )
    assert {k: cfg[k] for k in keys} == {k: recorded[k] for k in keys}


@pytest.mark.parametrize("family", ["wav2vec2", "wavlm"])
def test_sls_layer_gates_depend_on_the_input_and_learn(family: str) -> None:
    """layer=sls: sum over layers of sigmoid(w . mean_t h_l + b) * h_l (Zhang et al. 2024)."""
    fe = frontend(**FAMILIES[family], layer="sls").eval()
    wave = torch.randn(2, SAMPLES)
    with torch.no_grad():
        feats, _ = fe.ssl.feature_extractor(wave, None)
        layers = fe.ssl.encoder.extract_features(feats, None)
        gates = [torch.sigmoid(fe.layer_gate(h.mean(dim=1))) for h in layers]  # [B, 1] each
        expected = sum(g[:, :, None] * h for g, h in zip(gates, layers, strict=True))
        torch.testing.assert_close(fe(wave), expected.transpose(1, 2))
        assert not torch.allclose(gates[0][0], gates[0][1])  # per utterance
    out = fe(wave)
    out.sum().backward()
    assert fe.layer_gate.weight.grad is not None and fe.layer_gate.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="frontend.family='data2vec'"):
        frontend(family="data2vec")


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


def test_a_fine_tuned_checkpoint_needs_no_pretrained_file(tmp_path: Path) -> None:
    """Issue 10.7: the checkpoint holds every SSL weight; the pretrained file may be gone."""
    pretrained = tmp_path / "xlsr2_300m.pt"
    torch.save(frontend().ssl.state_dict(), pretrained)
    fe_config = OmegaConf.to_container(
        OmegaConf.merge(
            {"sample_rate": 16000},
            {"f": OmegaConf.load(CONF / "frontend/wav2vec2.yaml")},
            {"f": {**TINY, "checkpoint": str(pretrained)}},
        ),
        resolve=True,
    )["f"]
    model_config = OmegaConf.to_container(OmegaConf.load(CONF / "model/ssl_aasist.yaml"))
    model_config["proj_dim"] = 16
    net = Countermeasure(*build_components(fe_config, model_config)).eval()
    with torch.no_grad():  # fine-tuned: the weights are no longer the pretrained ones
        for p in net.frontend.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ckpt = tmp_path / "best.ckpt"
    hparams = {"frontend": fe_config, "model": model_config, "names": {"model": "ssl_aasist"}}
    torch.save({"state_dict": net.state_dict(), "hyper_parameters": hparams}, ckpt)
    exported = export_model(ckpt, tmp_path / "model.pt")
    pretrained.unlink()

    wave = torch.randn(2, SAMPLES)
    with torch.no_grad():
        expected = net.score(wave)
        for path in (ckpt, exported):
            loaded = load_countermeasure(path)
            torch.testing.assert_close(loaded.net.score(wave), expected, rtol=0, atol=0)
    assert loaded.frontend["checkpoint"] == str(pretrained)  # provenance kept in the config
