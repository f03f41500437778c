"""Released weights of published countermeasures, renamed to a front-end + model state dict.

A released file is a bare ``state_dict`` of the authors' single module. Two layouts:

* ``aasist``: AASIST / AASIST-L (Jung et al., ICASSP 2022; clovaai/aasist, ``AASIST.pth``,
  ``AASIST-L.pth``): the fixed sinc front-end (no weights) and the back-end, whose keys
  :mod:`spoof_lightning.models.official_checkpoints` renames. Use ``model=aasist`` or
  ``model=aasist_l`` with ``frontend=sinc``.
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
from spoof_lightning.models.official_checkpoints import official_to_ours

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
    if {"pos_S", "master1", "out_layer.weight"} <= keys:
        return "aasist"
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
    "release_configs",
    "release_hint",
    "requested_configs",
    "released_layout",
    "released_state",
]
