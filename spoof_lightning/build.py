"""Build a front-end and a model from their (plain) configs, refusing bad pairs early."""

from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from torch import nn

from spoof_lightning.contracts import check_pair


class ConfigError(ValueError):
    """A config value that cannot work; the message names the config key."""


def resolve_class(config: Mapping[str, Any], key: str) -> type:
    """The class named by ``config['_target_']``, with an error that names ``key``."""
    target = config.get("_target_") if isinstance(config, Mapping) else None
    if not target:
        raise ConfigError(f"config `{key}` has no `_target_`: got {dict(config or {})}")
    try:
        return get_class(target)
    except (ImportError, ValueError, InstantiationException) as err:
        raise ConfigError(f"config `{key}._target_`: cannot import `{target}` ({err})") from err


def check_components(
    frontend: Mapping[str, Any], model: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> None:
    """Refuse an incompatible front-end × model pair before anything is built.

    A model that wraps a ``backbone`` config (e.g. the frame localizer) is checked against
    what its backbone accepts.
    """
    names = names or {}
    frontend_cls = resolve_class(frontend, "frontend")
    model_cls, model_name = resolve_class(model, "model"), names.get("model", "")
    backbone = model.get("backbone")
    if isinstance(backbone, Mapping) and "_target_" in backbone:
        model_cls = resolve_class(backbone, "model.backbone")
        model_name = f"{model_name or 'model'} (backbone {model_cls.__name__})"
    check_pair(
        names.get("frontend", frontend_cls.__name__),
        frontend_cls,
        model_name or model_cls.__name__,
        model_cls,
    )


def without_pretrained(config: Mapping[str, Any], key: str = "frontend") -> dict[str, Any]:
    """``config`` with its pretrained-weights path unset, for a model whose weights all come
    from a state dict next (a checkpoint or an exported model): the path names the key
    that its class declares as ``pretrained_key`` (e.g. the SSL front-ends' ``checkpoint``),
    a file that may be gone since training."""
    field = getattr(resolve_class(config, key), "pretrained_key", None)
    return {**config, field: None} if field and config.get(field) else dict(config)


def build_components(
    frontend: Mapping[str, Any], model: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> tuple[nn.Module, nn.Module]:
    """Instantiate the front-end, then the model with ``in_channels`` = its ``out_channels``."""
    check_components(frontend, model, names)
    frontend_module = instantiate(frontend, _convert_="all")
    model_module = instantiate(model, in_channels=frontend_module.out_channels, _convert_="all")
    return frontend_module, model_module
