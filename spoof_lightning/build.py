"""Build a front-end and a model from their (plain) configs, refusing bad pairs early, and the
data module that feeds them waveforms they accept."""

import inspect
import itertools
from collections.abc import Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from torch import nn

from spoof_lightning.contracts import check_pair
from spoof_lightning.errors import ConfigError


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


PROBE_LIMIT = 1 << 22  # samples (4.4 min at 16 kHz): longer than any minimum of a sane config


def min_input_samples(frontend: nn.Module, model: nn.Module, limit: int = PROBE_LIMIT) -> int:
    """The shortest waveform (in samples) that ``model(frontend(x))`` accepts, found by probing.

    Front-ends and models refuse inputs shorter than their windows, kernels, pools or frame
    counts need, by their own checks (ValueError) or torch's (RuntimeError); probing finds
    the bound for any pair, without each having to declare it. The accepted lengths are
    taken to be all lengths from a minimum on (true of convolution and pooling stacks):
    doubling finds one that works, bisection the first: about 20 forward passes of one
    seeded noise waveform near the minimum length (0.1 s for LFCC + CNN-GRU, 1 s for
    sinc + AASIST on a busy 2-core CPU). Eval mode, no gradients, one thread (much faster
    on a shared CPU); the global RNG is not used, the thread count and modes are restored.
    Raises :class:`ConfigError` when nothing up to ``limit`` samples works.
    """
    modes = [(m, m.training) for m in (frontend, model)]
    threads = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)
    tensors = itertools.chain(model.parameters(), frontend.parameters(), frontend.buffers())
    device = next((t.device for t in tensors), torch.device("cpu"))
    last_error: Exception | None = None

    def works(n: int) -> bool:
        nonlocal last_error
        x = 0.1 * torch.randn(1, n, generator=generator).to(device)
        try:
            model(frontend(x))
        except (ValueError, RuntimeError, IndexError) as err:
            last_error = err
            return False
        return True

    frontend.eval()
    model.eval()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            low, high = 0, 1  # low fails (0: nothing to try), high is tried
            while not works(high):
                if high >= limit:
                    raise ConfigError(
                        f"frontend {type(frontend).__name__} + model {type(model).__name__} "
                        f"fail on every waveform up to {limit} samples: {last_error}"
                    )
                low, high = high, min(2 * high, limit)
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (low, middle) if works(middle) else (middle, high)
    finally:
        torch.set_num_threads(threads)
        for module, training in modes:
            module.train(training)
    return high


def instantiate_data(config: Any, min_samples: int) -> Any:
    """The data module of ``config`` (a ``_target_`` config), told the shortest waveform the
    front-end and model accept (``min_samples``) when it takes that argument."""
    takes = "min_samples" in inspect.signature(resolve_class(config, "data")).parameters
    return instantiate(config, _convert_="all", **({"min_samples": min_samples} if takes else {}))
