"""Released weights of published countermeasures, renamed to a front-end + model state dict.

A released file is a bare ``state_dict`` of the authors' single module. Two layouts:

* ``aasist``: AASIST / AASIST-L (Jung et al., ICASSP 2022; clovaai/aasist, ``AASIST.pth``,
  ``AASIST-L.pth``): the fixed sinc front-end (no weights) and the back-end, whose keys
  :func:`official_to_ours` renames to those of :class:`~spoof_lightning.models.aasist.AASIST`.
  Use ``model=aasist`` or ``model=aasist_l`` with ``frontend=sinc``.
* ``ssl_aasist``: wav2vec 2.0 XLS-R + AASIST (Tak et al., Odyssey 2022;
  TakHemlata/SSL_Anti-spoofing, e.g. ``LA_model.pth``, ``Best_LA_model_for_DF.pth``,
  often saved through ``nn.DataParallel``: a ``module.`` prefix): ``ssl_model.model.*`` is
  the fairseq wav2vec 2.0 (renamed by :mod:`spoof_lightning.frontends.ssl_weights`),
  ``LL`` the projection, ``first_bn`` / ``first_bn1`` the norms before and after the
  encoder, ``attention`` the attention pooling, the rest AASIST's names. Use
  ``model=ssl_aasist`` with ``frontend=wav2vec2`` (XLS-R 300M).

:func:`released_state` returns ``{"frontend.<key>": ..., "model.<key>": ...}``, the keys of
:class:`spoof_lightning.checkpoint.Countermeasure`; the checkpoint loader then checks every
key and shape against the model the config builds.
"""

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from spoof_lightning.frontends.ssl_weights import to_torchaudio

SAMPLE_RATE = 16000
PARTS = ("frontend", "model")  # the configs a release is loaded into
# layout: what it is, the model configs it fits, the front-end it was trained with, the
# front-end settings the weights depend on, and how the authors' code feeds it at test time.
RELEASES: dict[str, dict[str, Any]] = {
    "aasist": {
        "source": "AASIST / AASIST-L (clovaai/aasist)",
        "models": ("aasist", "aasist_l"),
        "model_target": "spoof_lightning.models.aasist.AASIST",
        "frontend_name": "sinc",
        "fixed": ("sample_rate", "n_filters", "kernel_size", "learnable"),
        "scoring": {"eval_crop": 64600, "pad": "repeat"},  # the official evaluation
        "frontend": {  # conf/frontend/sinc.yaml: 70 fixed mel-spaced filters, 129 taps
            "_target_": "spoof_lightning.frontends.sinc.SincFrontEnd",
            "sample_rate": SAMPLE_RATE,
            "n_filters": 70,
            "kernel_size": 128,
            "learnable": False,
            "max_masked_filters": 0,
        },
    },
    "ssl_aasist": {
        "source": "wav2vec 2.0 XLS-R + AASIST (TakHemlata/SSL_Anti-spoofing)",
        "models": ("ssl_aasist",),
        "model_target": "spoof_lightning.models.ssl_aasist.SSLAASIST",
        "frontend_name": "wav2vec2",
        "fixed": ("sample_rate", "family"),
        "scoring": {"eval_crop": 64600, "pad": "repeat"},
        "frontend": {  # the class defaults: XLS-R 300M; weights from the released file
            "_target_": "spoof_lightning.frontends.wav2vec2.Wav2Vec2FrontEnd",
            "sample_rate": SAMPLE_RATE,
            "checkpoint": None,
            "family": "wav2vec2",
            "layer": "last",
        },
    },
}

# AASIST: the official module names (clovaai/aasist models/AASIST.py) -> ours.
_BLOCK = {"bn1": "input_norm", "bn2": "norm1", "conv_downsample": "shortcut"}
_GAT = {
    "att_weight": "att_vec",
    "proj_with_att": "proj_att",
    "proj_without_att": "proj_self",
    "bn": "norm",
}
_HSGAL = {
    "proj_type1": "in_proj1",
    "proj_type2": "in_proj2",
    "att_weight11": "att_vec11",
    "att_weight22": "att_vec22",
    "att_weight12": "att_vec12",
    "att_weightM": "att_vec_master",
    "att_projM": "att_proj_master",
    "proj_with_att": "proj_att",
    "proj_without_att": "proj_self",
    "proj_with_attM": "proj_att_master",
    "proj_without_attM": "proj_self_master",
    "bn": "norm",
}
_POOL = {"proj": "score"}


def _module_pairs() -> list[tuple[str, str, dict[str, str]]]:
    """(official prefix, our prefix, renames of the next name component) for each module."""
    pairs: list[tuple[str, str, dict[str, str]]] = [
        ("first_bn.", "stem_norm.", {}),
        ("GAT_layer_S.", "head.gat_spectral.", _GAT),
        ("GAT_layer_T.", "head.gat_temporal.", _GAT),
        ("pool_S.", "head.pool_spectral.", _POOL),
        ("pool_T.", "head.pool_temporal.", _POOL),
        ("out_layer.", "head.classifier.", {}),
        ("pos_S", "head.spectral_pos", {}),
    ]
    for i in range(6):  # official encoder.0-5 = our stages 0, 1, 2 and 3 (three blocks)
        stage, block = (i, 0) if i < 3 else (3, i - 3)
        pairs.append((f"encoder.{i}.0.", f"stages.{stage}.{block}.", _BLOCK))
    for b in (1, 2):
        ours = f"head.branches.{b - 1}."
        pairs += [
            (f"master{b}", f"{ours}master", {}),
            (f"HtrgGAT_layer_ST{b}1.", f"{ours}layer1.", _HSGAL),
            (f"HtrgGAT_layer_ST{b}2.", f"{ours}layer2.", _HSGAL),
            (f"pool_hS{b}.", f"{ours}pool_s.", _POOL),
            (f"pool_hT{b}.", f"{ours}pool_t.", _POOL),
        ]
    return pairs


def _rename(key: str, to_ours: bool) -> str | None:
    for official, ours, renames in _module_pairs():
        src, dst = (official, ours) if to_ours else (ours, official)
        table = renames if to_ours else {v: k for k, v in renames.items()}
        if key == src:
            return dst
        if src.endswith(".") and key.startswith(src):
            first, dot, tail = key[len(src) :].partition(".")
            return dst + table.get(first, first) + dot + tail
    return None


def official_to_ours(key: str) -> str | None:
    """Our back-end key for an official AASIST key (None when it has no counterpart)."""
    return _rename(key, to_ours=True)


def ours_to_official(key: str) -> str | None:
    """The official AASIST key for one of our back-end keys (None when it has none)."""
    return _rename(key, to_ours=False)


_SSL_PREFIX = "ssl_model.model."
_SSL_MODEL = {"LL.": "proj.", "first_bn1.": "post_norm.", "attention.": "attention."}


def _unwrapped(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict without ``nn.DataParallel``'s ``module.`` prefix."""
    if state and all(str(k).startswith("module.") for k in state):
        return {str(k).removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def released_layout(content: Mapping[str, Any]) -> str | None:
    """``aasist`` / ``ssl_aasist`` when ``content`` is a released state dict, else None."""
    if not content or not all(isinstance(v, Tensor) for v in content.values()):
        return None
    keys = set(_unwrapped(content))
    if any(k.startswith(_SSL_PREFIX) for k in keys) and "LL.weight" in keys:
        return "ssl_aasist"
    if 2 * sum(official_to_ours(k) is not None for k in keys) > len(keys):
        return "aasist"  # mostly official AASIST names: what does not fit is reported by name
    return None


def _model_key(key: str, layout: str) -> str:
    for theirs, ours in _SSL_MODEL.items() if layout == "ssl_aasist" else ():
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return official_to_ours(key) or key  # unknown keys are reported by the loader


def released_state(content: Mapping[str, Tensor], layout: str) -> dict[str, Tensor]:
    """``content`` renamed to ``frontend.*`` / ``model.*`` keys (unknown keys kept as
    ``model.<key>``, for the loader to report)."""
    state = _unwrapped(content)
    if layout == "aasist":
        return {f"model.{_model_key(k, layout)}": v for k, v in state.items()}
    ssl = {k[len(_SSL_PREFIX) :]: v for k, v in state.items() if k.startswith(_SSL_PREFIX)}
    renamed = {f"frontend.ssl.{k}": v for k, v in to_torchaudio(ssl).items()}
    for key, value in state.items():
        if not key.startswith(_SSL_PREFIX):
            renamed[f"model.{_model_key(key, layout)}"] = value
    return renamed


def requested_configs(
    cfg: DictConfig, choices: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The resolved ``frontend`` / ``model`` configs that a command's ``cfg`` names (eval's
    optional ``model=aasist``) and their config-group names: what released weights, which
    store no config, are loaded into. While ``sample_rate`` is unset they resolve at 16 kHz,
    the rate of the released models."""
    rate = cfg.get("sample_rate")
    with open_dict(cfg):
        cfg.sample_rate = rate or SAMPLE_RATE
        requested = {
            part: OmegaConf.to_container(cfg[part], resolve=True) for part in PARTS if cfg.get(part)
        }
        cfg.sample_rate = rate
    return requested, {part: str(choices[part]) for part in PARTS if choices.get(part)}


def release_hint(layout: str) -> str:
    """How to name the configs of a release, for error messages."""
    release = RELEASES[layout]
    models = " or ".join(f"model={m}" for m in release["models"])
    return (
        f"the released {release['source']} weights: load them with {models} "
        f"(frontend={release['frontend_name']}, the default)"
    )


def release_configs(
    layout: str, requested: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(frontend, model)`` configs for a release: the requested ones (``model`` is
    required, ``frontend`` defaults to the release's); ValueError when they cannot fit."""
    release = RELEASES[layout]
    model = requested.get("model")
    if not model:
        raise ValueError(f"it holds {release_hint(layout)}")
    frontend = dict(requested.get("frontend") or release["frontend"])
    if model.get("_target_") != release["model_target"]:
        raise ValueError(f"it holds {release_hint(layout)}; got model {model.get('_target_')}")
    expected = release["frontend"]
    wrong = [
        f"frontend.{k}={frontend.get(k)!r} (the release: {expected[k]!r})"
        for k in ("_target_", *release["fixed"])
        if frontend.get(k) != expected[k]
    ]
    if wrong:
        raise ValueError(f"it holds {release_hint(layout)}; got {', '.join(wrong)}")
    return frontend, dict(model)


__all__ = [
    "RELEASES",
    "SAMPLE_RATE",
    "official_to_ours",
    "ours_to_official",
    "release_configs",
    "release_hint",
    "requested_configs",
    "released_layout",
    "released_state",
]
