"""Load a trained countermeasure safely, from a training checkpoint or an exported model file.

Both files are read with ``torch.load(weights_only=True)``: tensors and plain data only,
never pickled code. Two formats are accepted:

* a Lightning checkpoint written by ``train.py``: ``state_dict`` (keys ``frontend.*``,
  ``model.*``, the ``eer_threshold`` buffer, and training-only parts such as the loss),
  ``hyper_parameters`` (plain ``_target_`` configs of ``frontend`` and ``model``, and the
  config-group ``names``) and the resolved run config under ``spoof_lightning_config``;
* a model exported by ``spoof-lightning export`` (``format`` =
  :data:`EXPORT_FORMAT`): the same configs and the front-end + model weights only;
* released weights of a published model (a bare state dict, e.g. the official
  ``AASIST.pth``; :mod:`spoof_lightning.models.released_weights`), given the ``model``
  config to load them into (eval.py's ``model=aasist``).

Only the front-end and the model are rebuilt: whatever else a LightningModule kept in its
state dict (loss weights, teacher copies, extra heads) is ignored, but every front-end and
model weight must be present, expected and of the right shape, or the file is refused
with a message that names it and lists what differs.
"""

import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spoof_lightning.build import build_components, without_pretrained
from spoof_lightning.callbacks.config_in_checkpoint import CONFIG_KEY
from spoof_lightning.contracts import ModelOutput, scores_from_logits
from spoof_lightning.errors import listed
from spoof_lightning.metrics.calibration import stored_calibration
from spoof_lightning.models.released_weights import (
    PARTS,  # the state-dict prefixes an inference model is made of
    RELEASES,
    SAMPLE_RATE,
    release_configs,
    release_hint,
    released_layout,
    released_state,
)

EXPORT_FORMAT = "spoof-lightning-model"
EXPORT_VERSION = 1
DEFAULT_SAMPLE_RATE = 16000
ZIP_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"\x80"  # torch.save's zip format; legacy pickles


class CheckpointError(ValueError):
    """A file that is not a usable countermeasure; the message names the file."""


class Countermeasure(nn.Module):
    """Front-end + model for inference: waveform ``[B, T]`` -> :class:`ModelOutput`."""

    def __init__(self, frontend: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.frontend, self.model = frontend, model

    def forward(self, waveform: Tensor) -> ModelOutput:
        return self.model(self.frontend(waveform))

    def score(self, waveform: Tensor) -> Tensor:
        """Bona fide score per utterance (logit_bona - logit_spoof; higher = more bona fide)."""
        return scores_from_logits(self(waveform).logits)


@dataclass
class LoadedModel:
    """A countermeasure rebuilt from a file, with the plain data stored beside its weights.

    ``eer_threshold``: the dev-set EER threshold of these weights (from the validation
    that preceded the save; None when the run never validated); ``config``: the resolved
    training config (``{}`` when absent); ``calibration``: ``{scale, offset, prior}`` of
    the score-to-LLR map an export was given (``llr = scale * score + offset``), else None.
    """

    net: Countermeasure
    path: Path
    frontend: dict[str, Any]
    model: dict[str, Any]
    names: dict[str, str]
    sample_rate: int
    eer_threshold: float | None
    config: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, float] | None = None

    def describe(self) -> str:
        """``frontend=lfcc model=cnn_gru`` (config-group names, else class names)."""
        return describe(self.frontend, self.model, self.names)

    def name(self, part: str) -> str:
        return _part_name(part, getattr(self, part), self.names)


def _part_name(part: str, config: Mapping[str, Any], names: Mapping[str, str]) -> str:
    return names.get(part) or str(config["_target_"]).rsplit(".", 1)[-1]


def describe(
    frontend: Mapping[str, Any], model: Mapping[str, Any], names: Mapping[str, str]
) -> str:
    """``frontend=<name> model=<name>`` of two configs."""
    configs = {"frontend": frontend, "model": model}
    return " ".join(f"{p}={_part_name(p, configs[p], names)}" for p in PARTS)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw content of a checkpoint or exported model, read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise FileNotFoundError(f"checkpoint {path} {what} (set `ckpt=`)")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head.startswith(ZIP_MAGIC) and not head.startswith(PICKLE_MAGIC):
        start = f"starts with {head!r}" if head else "is empty"
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: it {start} (checkpoints are zip archives)"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        holds = f"a pickled `{found.group(1)}`" if found else "pickled Python objects"
        raise CheckpointError(
            f"refusing to load {path}: it holds {holds}, not only tensors and plain data "
            "(torch.load with weights_only=True). spoof-lightning checkpoints never hold "
            "pickled code; load such a file by hand only if you trust its source."
        ) from None
    except Exception as err:  # zip/format errors of truncated files come in many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint (truncated or corrupt?): {reason}"
        ) from None
    if not isinstance(content, dict):
        raise CheckpointError(
            f"{path} holds a {type(content).__name__}, not a spoof-lightning checkpoint (a dict)"
        )
    return content


def _plain_config(value: Any, path: Path, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("_target_"), str):
        raise CheckpointError(
            f"{path}: `{key}` is not a `_target_` config (got {type(value).__name__}); "
            "the file was not written by spoof-lightning's train.py or export"
        )
    return dict(value)


def stored_threshold(value: Any) -> float | None:
    """The stored dev EER threshold; None when absent or NaN (the run never validated)."""
    try:
        number = float(value.item() if isinstance(value, Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


def _released(
    content: dict[str, Any],
    layout: str,
    path: Path,
    requested: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
) -> dict[str, Any]:
    """The parts of a released state dict, with the requested configs."""
    try:
        frontend, model = release_configs(layout, requested)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return {
        "frontend": frontend,
        "model": model,
        "names": {"frontend": RELEASES[layout]["frontend_name"], **names},
        "state": released_state(content, layout),
        "threshold": None,
        "config": {"sample_rate": SAMPLE_RATE, "data": dict(RELEASES[layout]["scoring"])},
        "sample_rate": SAMPLE_RATE,
        "release": layout,
    }


def unpack_checkpoint(
    content: dict[str, Any],
    path: Path,
    requested: Mapping[str, Mapping[str, Any]] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Normalise the formats to configs, names, weights, threshold and run config."""
    layout = released_layout(content)
    if layout is not None:
        return _released(content, layout, path, requested or {}, names or {})
    if content.get("format") == EXPORT_FORMAT:
        if content.get("version") != EXPORT_VERSION:
            raise CheckpointError(
                f"{path}: exported model version {content.get('version')!r}; this code reads "
                f"version {EXPORT_VERSION}"
            )
        hparams, state = content, content.get("state_dict")
        threshold, config = content.get("eer_threshold"), content.get("config") or {}
    elif "state_dict" in content and "hyper_parameters" in content:
        hparams, state = content["hyper_parameters"], content["state_dict"]
        threshold, config = state.get("eer_threshold"), content.get(CONFIG_KEY) or {}
    else:
        if content and all(isinstance(v, Tensor) for v in content.values()):
            what = f"a bare state dict of {len(content)} tensors without the config to rebuild it"
        else:
            what = f"a dict with keys {sorted(map(str, content))[:8]}"
        raise CheckpointError(
            f"{path} is not a spoof-lightning checkpoint: it holds {what}. Expected a "
            "train.py checkpoint (state_dict + hyper_parameters), a model exported with "
            "`spoof-lightning export`, or released AASIST / SSL_Anti-spoofing "
            "weights (with model=<name>)."
        )
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: `state_dict` is a {type(state).__name__}, not a dict")
    if not isinstance(hparams, Mapping):
        raise CheckpointError(f"{path}: `hyper_parameters` is not a dict")
    names = hparams.get("names") or {}
    return {
        "frontend": _plain_config(hparams.get("frontend"), path, "frontend"),
        "model": _plain_config(hparams.get("model"), path, "model"),
        "names": {str(k): str(v) for k, v in dict(names).items()},
        "state": dict(state),
        "threshold": stored_threshold(threshold),
        "config": dict(config) if isinstance(config, Mapping) else {},
        "sample_rate": content.get("sample_rate") if content.get("format") else None,
        "calibration": content.get("calibration") if content.get("format") else None,
    }


def _sample_rate(parts: dict[str, Any]) -> int:
    for candidate in (
        parts["sample_rate"],
        parts["config"].get("sample_rate"),
        parts["frontend"].get("sample_rate"),
    ):
        if isinstance(candidate, int | float) and candidate > 0:
            return int(candidate)
    return DEFAULT_SAMPLE_RATE


def check_weights(
    net: nn.Module, state: Mapping[str, Any], path: Path, described: str
) -> dict[str, Tensor]:
    """The ``frontend.*``/``model.*`` weights of ``state``, refused unless they fit ``net``."""
    own = net.state_dict()
    stored = {k: v for k, v in state.items() if k.split(".", 1)[0] in PARTS}
    missing = sorted(own.keys() - stored.keys())
    unexpected = sorted(stored.keys() - own.keys())
    not_tensors = sorted(k for k in stored.keys() & own.keys() if not isinstance(stored[k], Tensor))
    reshaped = sorted(
        f"{k}: file {list(stored[k].shape)}, model {list(own[k].shape)}"
        for k in stored.keys() & own.keys()
        if k not in not_tensors and stored[k].shape != own[k].shape
    )
    problems = [
        f"{len(keys)} {what} ({listed(keys)})"
        for keys, what in (
            (missing, "weights missing"),
            (unexpected, "unexpected weights"),
            (reshaped, "weights of another shape"),
            (not_tensors, "entries that are not tensors"),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(f"{path} does not fit {described}: " + "; ".join(problems))
    bad = sorted(
        k for k, v in stored.items() if v.is_floating_point() and not torch.isfinite(v).all()
    )
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} weights hold NaN or inf ({listed(bad)}): a diverged or "
            "corrupt checkpoint"
        )
    return stored


def _load_weights(
    net: nn.Module, state: Mapping[str, Any], path: Path, described: str, release: str | None
) -> None:
    """Copy ``state`` into ``net`` once :func:`check_weights` accepts it (the error of a
    ``release`` layout names the configs it needs)."""
    try:
        net.load_state_dict(check_weights(net, state, path, described))
    except CheckpointError as err:
        if release is None:
            raise
        raise CheckpointError(f"{err}. The file holds {release_hint(release)}") from None


def load_released_weights(
    net: Countermeasure,
    path: str | Path,
    configs: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> None:
    """Copy released weights (:mod:`spoof_lightning.models.released_weights`, e.g. the
    official ``AASIST.pth``) into ``net``, in place: to fine-tune them, or to check them.

    ``configs``, ``net``'s ``frontend`` / ``model`` configs, must be the release's (checked
    when ``model`` is given) and every weight must fit ``net``; each refusal is a
    :class:`CheckpointError` naming the file and what differs.
    """
    path = Path(path)
    content = read_checkpoint(path)
    layout = released_layout(content)
    if layout is None:
        raise CheckpointError(f"{path} is not a released AASIST or SSL_Anti-spoofing state dict")
    if configs and configs.get("model"):
        try:
            release_configs(layout, configs)
        except ValueError as err:
            raise CheckpointError(f"{path}: {err}") from None
    state = released_state(content, layout)
    _load_weights(net, state, path, "this run's front-end + model", layout)


def load_countermeasure(
    path: str | Path,
    requested: Mapping[str, Mapping[str, Any]] | None = None,
    names: Mapping[str, str] | None = None,
) -> LoadedModel:
    """Rebuild the front-end + model a checkpoint (or exported model) describes, in eval mode.

    ``requested`` (``{"model": config, "frontend": config}``) and their config-group
    ``names`` are used only by released weights, which store no config.
    """
    path = Path(path)
    parts = unpack_checkpoint(read_checkpoint(path), path, requested, names)
    names = parts["names"]
    described = describe(parts["frontend"], parts["model"], names)
    source = "as requested" if "release" in parts else "as its stored config describes"
    try:  # every weight comes from the file: no pretrained SSL file is read
        frontend, model = build_components(
            without_pretrained(parts["frontend"]),
            without_pretrained(parts["model"], "model"),
            names,
        )
    except Exception as err:  # bad stored hyper-parameters surface as many error types
        raise CheckpointError(f"{path}: cannot rebuild {described} {source}: {err}") from err
    net = Countermeasure(frontend, model)
    _load_weights(net, parts["state"], path, f"{described} {source}", parts.get("release"))
    return LoadedModel(
        net=net.eval(),
        path=path,
        frontend=parts["frontend"],
        model=parts["model"],
        names=names,
        sample_rate=_sample_rate(parts),
        eer_threshold=parts["threshold"],
        config=parts["config"],
        calibration=stored_calibration(parts.get("calibration")),
    )


__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "CheckpointError",
    "Countermeasure",
    "LoadedModel",
    "check_weights",
    "load_released_weights",
    "describe",
    "load_countermeasure",
    "read_checkpoint",
    "stored_threshold",
    "unpack_checkpoint",
]
