"""Released weights scored and fine-tuned without training: official AASIST files, and a
synthetic SSL_Anti-spoofing (wav2vec 2.0 + AASIST) state dict with the real key names."""

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from spoof_lightning.build import build_components
from spoof_lightning.callbacks.init_weights import InitFromReleasedWeights
from spoof_lightning.checkpoint import (
    CheckpointError,
    Countermeasure,
    load_countermeasure,
    load_released_weights,
)
from spoof_lightning.lit.detector import Detector
from spoof_lightning.models.released_weights import RELEASES, ours_to_official, released_layout
from tests.tiny_configs import TINY_WAV2VEC2
from tests.unit.test_init_weights import fit
from tests.unit.test_ssl import _to_fairseq

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
SHARED = Path(os.environ.get("SPOOF_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference" / "aasist"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "official_outputs.npz").is_file(),
    reason=f"official AASIST reference data not found in {REFERENCE} (set SPOOF_SHARED)",
)


def component(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    root = OmegaConf.create(
        {"sample_rate": 16000, "c": OmegaConf.load(CONF / group / f"{name}.yaml")}
    )
    return OmegaConf.to_container(root, resolve=True)["c"] | overrides


SSL_FRONTEND = component("frontend", "wav2vec2", **TINY_WAV2VEC2)
SSL_MODEL = component("model", "ssl_aasist", proj_dim=16)


def test_the_release_front_end_is_the_sinc_config() -> None:
    assert RELEASES["aasist"]["frontend"] == component("frontend", "sinc")


@needs_reference
@pytest.mark.parametrize(("name", "model"), [("AASIST", "aasist"), ("AASIST-L", "aasist_l")])
def test_official_files_score_like_the_official_model(name: str, model: str) -> None:
    loaded = load_countermeasure(
        REFERENCE / f"{name}.pth", {"model": component("model", model)}, {"model": model}
    )
    assert loaded.describe() == f"frontend=sinc model={model}"
    assert loaded.eer_threshold is None and loaded.sample_rate == 16000
    reference = np.load(REFERENCE / "official_outputs.npz")
    logits = reference[f"{name}_logits"][:2]
    with torch.no_grad():
        scores = loaded.net.score(torch.from_numpy(reference["waveforms"][:2]))
    np.testing.assert_allclose(scores.numpy(), logits[:, 1] - logits[:, 0], atol=1e-4)


@needs_reference
def test_official_files_need_a_fitting_model_and_front_end() -> None:
    path = REFERENCE / "AASIST.pth"
    with pytest.raises(CheckpointError, match=r"AASIST\.pth.*model=aasist or model=aasist_l"):
        load_countermeasure(path)
    with pytest.raises(CheckpointError, match=r"weights of another shape.*model=aasist_l"):
        load_countermeasure(path, {"model": component("model", "aasist_l")})
    with pytest.raises(CheckpointError, match=r"frontend\.kernel_size=256 \(the release: 128\)"):
        load_countermeasure(
            path,
            {
                "model": component("model", "aasist"),
                "frontend": component("frontend", "sinc", kernel_size=256),
            },
        )
    with pytest.raises(CheckpointError, match="got model spoof_lightning.models.cnn_gru.CNNGRU"):
        load_countermeasure(path, {"model": component("model", "cnn_gru")})


@needs_reference
def test_released_weights_that_do_not_fit_are_refused_by_name(tmp_path: Path) -> None:
    """load_released_weights (what InitFromReleasedWeights runs): a damaged file, the other
    variant, a missing or foreign file, a front-end that learns its filters."""
    configs = {"frontend": component("frontend", "sinc"), "model": component("model", "aasist")}
    net = Countermeasure(*build_components(configs["frontend"], configs["model"]))
    state = torch.load(REFERENCE / "AASIST.pth", map_location="cpu", weights_only=True)
    del state["pos_S"]
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(
        CheckpointError,
        match=r"bad\.pth does not fit .*1 weights missing \(model\.head\.spectral_pos\); "
        r"1 unexpected weights \(model\.extra\.weight\)",
    ):
        load_released_weights(net, bad, configs)
    with pytest.raises(  # AASIST-L weights into the AASIST config
        CheckpointError,
        match=r"AASIST-L\.pth does not fit .*weights of another shape.*model=aasist_l",
    ):
        load_released_weights(net, REFERENCE / "AASIST-L.pth", configs)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_released_weights(net, tmp_path / "nowhere.pth", configs)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"noise\.pth is not a PyTorch checkpoint"):
        load_released_weights(net, noise, configs)

    learnable = configs | {"frontend": component("frontend", "sinc", learnable=True)}
    net = Countermeasure(*build_components(learnable["frontend"], learnable["model"]))
    with pytest.raises(CheckpointError, match=r"frontend\.learnable=True \(the release: False\)"):
        load_released_weights(net, REFERENCE / "AASIST.pth", learnable)
    with pytest.raises(CheckpointError, match=r"2 weights missing \(frontend\."):  # no configs
        load_released_weights(net, REFERENCE / "AASIST.pth")


def ssl_anti_spoofing_state(net: Countermeasure) -> dict[str, torch.Tensor]:
    """``net``'s weights as TakHemlata/SSL_Anti-spoofing names them, saved through
    ``nn.DataParallel``: fairseq wav2vec 2.0 under ``ssl_model.model.``, ``LL``,
    ``first_bn``, ``first_bn1``, ``attention`` and the AASIST names."""
    theirs = {"proj.": "LL.", "stem_norm.": "first_bn.", "post_norm.": "first_bn1."}
    state = {}
    for key, value in net.state_dict().items():
        part, key = key.split(".", 1)
        if part == "frontend":
            name = "ssl_model.model." + _to_fairseq(key.removeprefix("ssl."))
        elif key.startswith(tuple(theirs)):
            prefix = next(p for p in theirs if key.startswith(p))
            name = theirs[prefix] + key[len(prefix) :]
        elif key.startswith("attention."):
            name = key
        else:
            name = ours_to_official(key)
        state[f"module.{name}"] = value
    extra = {"mask_emb": (32,), "quantizer.vars": (1, 8, 4), "project_q.weight": (4, 4)}
    for name, shape in extra.items():  # pre-training parts of the fairseq model: unused
        state[f"module.ssl_model.model.{name}"] = torch.zeros(shape)
    return state


@pytest.fixture(scope="module")
def ssl_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Countermeasure, Path]:
    torch.manual_seed(0)
    net = Countermeasure(*build_components(SSL_FRONTEND, SSL_MODEL)).eval()
    state = ssl_anti_spoofing_state(net)
    for real_name in (  # names of the released LA_model.pth / Best_LA_model_for_DF.pth
        "module.ssl_model.model.feature_extractor.conv_layers.0.0.weight",
        "module.ssl_model.model.encoder.layers.1.self_attn.k_proj.weight",
        "module.ssl_model.model.encoder.pos_conv.0.weight_g",
        "module.ssl_model.model.post_extract_proj.weight",
        "module.LL.weight",
        "module.first_bn.running_mean",
        "module.first_bn1.num_batches_tracked",
        "module.encoder.1.0.bn1.weight",
        "module.attention.3.bias",
        "module.pos_S",
        "module.master2",
        "module.HtrgGAT_layer_ST22.att_weightM",
        "module.pool_hT2.proj.weight",
        "module.out_layer.weight",
    ):
        assert real_name in state, real_name
    path = tmp_path_factory.mktemp("release") / "LA_model.pth"
    torch.save(state, path)
    return net, path


def test_ssl_anti_spoofing_weights_score_like_the_source(ssl_release) -> None:
    net, path = ssl_release
    assert released_layout(torch.load(path, weights_only=True)) == "ssl_aasist"
    loaded = load_countermeasure(
        path, {"frontend": SSL_FRONTEND, "model": SSL_MODEL}, {"model": "ssl_aasist"}
    )
    assert loaded.describe() == "frontend=wav2vec2 model=ssl_aasist"
    wave = torch.randn(3, 4000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net.score(wave), net.score(wave), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match=r"model=ssl_aasist \(frontend=wav2vec2"):
        load_countermeasure(path, {"model": component("model", "aasist")})


def test_released_weights_initialise_a_fine_tuning_run(ssl_release) -> None:
    net, path = ssl_release
    torch.manual_seed(1)  # another random init, replaced by the release
    module = Detector(
        frontend=SSL_FRONTEND,
        model=SSL_MODEL,
        loss=component("loss", "ce"),
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.0},
    )
    callback = InitFromReleasedWeights(path)
    fit(module, callback, steps=1)  # one optimizer step at lr 0: the weights stay loaded
    assert callback.loaded
    released = dict(net.named_parameters())
    for prefix, part in (("frontend.", module.frontend), ("model.", module.model)):
        for key, value in part.named_parameters(prefix=prefix[:-1]):
            torch.testing.assert_close(value, released[key], rtol=0, atol=0)
