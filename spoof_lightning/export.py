"""Export a trained countermeasure for inference, front-end included.

    spoof-lightning export ckpt=<checkpoint> format=onnx|torchscript|pt [out=<file>]
        [calibration=<eval.py metrics.json>] [model=<name> frontend=<name> ...]

Hydra overrides of conf/export.yaml, as for train and eval (``--help`` prints the usage).

``ckpt`` is a train.py checkpoint, an exported ``.pt`` or released weights (then
``model=aasist`` etc. say what they are, as for eval.py). ``out`` defaults to the checkpoint's
path with the format's suffix (``.pt``, ``.onnx``, ``.ts``); an existing file is never
overwritten, and the file appears only once complete (written beside it, then renamed).

* ``pt``: tensors and plain data (``torch.load(weights_only=True)``), read by
  :func:`spoof_lightning.checkpoint.load_countermeasure`, ``eval.py ckpt=model.pt`` and
  ``spoof-lightning infer``. Keys: ``format``, ``version``, ``frontend``, ``model``
  (``_target_`` configs), ``names``, ``sample_rate``, ``eer_threshold`` (dev EER threshold
  or None), ``calibration`` (or None), ``config`` (the data config and sample rate of the
  run, for eval.py), ``source`` and ``state_dict``.
* ``onnx`` / ``torchscript``: a graph ``waveform [batch, time] -> logits [batch, 2]``, both
  axes dynamic (:mod:`spoof_lightning.graph_export`), checked against the checkpoint at
  three input lengths before it is written. What inference needs is stored with it
  (:func:`deployment_info`): ONNX ``metadata_props``, a JSON extra file in TorchScript.

``calibration``: the ``metrics.json`` of ``eval.py ckpt=<same> calibrate=true``; its
logistic map ``llr = scale * score + offset`` (fitted on the dev split) is stored, and
:mod:`spoof_lightning.infer` then prints the probability of bona fide.
"""

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from spoof_lightning.atomic import atomic_new_file
from spoof_lightning.build import ConfigError
from spoof_lightning.checkpoint import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    LoadedModel,
    load_countermeasure,
)
from spoof_lightning.cli import compose_config, user_errors_reported
from spoof_lightning.graph_export import (
    ExportError,
    check_lengths,
    load_onnx,
    load_torchscript,
    to_onnx,
    to_torchscript,
    verify,
)
from spoof_lightning.metrics.calibration import stored_calibration
from spoof_lightning.models.released_weights import requested_configs

# Parts of the run config an inference user can need; everything else is training-only.
KEPT_CONFIG = ("sample_rate", "data")
TRAIN_ONLY_DATA = ("augment", "report_dir")
FORMATS = {"pt": ".pt", "onnx": ".onnx", "torchscript": ".ts"}
GRAPH_FORMAT = "spoof-lightning-graph"
TRACE_SECONDS = 4.0  # traced length when the checkpoint scores whole utterances


def read_calibration(path: str | Path) -> dict[str, float]:
    """``{scale, offset, prior}`` from the ``metrics.json`` of ``eval.py calibrate=true``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration={path}: not found (an eval.py metrics.json)")
    try:
        calibration = stored_calibration(json.loads(path.read_text()).get("calibration"))
    except (ValueError, AttributeError):  # not JSON, or not a JSON object
        calibration = None
    if calibration is None:
        raise ConfigError(
            f"calibration={path} holds no calibration (finite scale and offset, a prior in "
            "(0, 1)): give the <split>_metrics.json of `spoof-lightning eval "
            "ckpt=<the same checkpoint> calibrate=true`"
        )
    return calibration


def scoring_setup(loaded: LoadedModel) -> tuple[int | None, str]:
    """``(eval_crop, pad)`` of the checkpoint's data config: how eval.py feeds the model."""
    data = loaded.config.get("data") or {}
    return data.get("eval_crop", None), str(data.get("pad", "repeat"))


def deployment_info(loaded: LoadedModel, calibration: Mapping[str, float] | None) -> dict[str, str]:
    """What a graph export stores beside the weights (strings, as ONNX metadata_props)."""
    crop, pad = scoring_setup(loaded)
    info = {
        "format": GRAPH_FORMAT,
        "version": "1",
        "model": loaded.describe(),
        "source": str(loaded.path),
        "sample_rate": str(loaded.sample_rate),
        "eval_crop": "" if crop is None else str(int(crop)),
        "pad": pad,
        "min_samples": str(int(getattr(loaded.net.frontend, "min_samples", 1))),
        "output": "logits [batch, 2] (spoof, bona fide); score = logits[:, 1] - logits[:, 0]",
        "eer_threshold": "" if loaded.eer_threshold is None else repr(loaded.eer_threshold),
    }
    for key, value in (calibration or {}).items():
        info[f"calibration_{key}"] = repr(float(value))
    return info


def _pt_content(loaded: LoadedModel, calibration: Mapping[str, float] | None) -> dict[str, Any]:
    config: dict[str, Any] = {k: loaded.config[k] for k in KEPT_CONFIG if k in loaded.config}
    if isinstance(config.get("data"), dict):
        config["data"] = {k: v for k, v in config["data"].items() if k not in TRAIN_ONLY_DATA}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "frontend": loaded.frontend,
        "model": loaded.model,
        "names": loaded.names,
        "sample_rate": loaded.sample_rate,
        "eer_threshold": loaded.eer_threshold,
        "calibration": dict(calibration) if calibration else None,
        "config": config,
        "source": str(loaded.path),
        "state_dict": {k: v.detach().clone() for k, v in loaded.net.state_dict().items()},
    }


def _write_graph(loaded: LoadedModel, temp: Path, form: str, info: dict[str, str]) -> float:
    crop, _ = scoring_setup(loaded)
    length = int(crop or TRACE_SECONDS * loaded.sample_rate)
    min_samples = int(getattr(loaded.net.frontend, "min_samples", 1))
    writer, reader, what = {
        "onnx": (to_onnx, load_onnx, "ONNX"),
        "torchscript": (to_torchscript, load_torchscript, "TorchScript"),
    }[form]
    try:
        writer(loaded.net, temp, length, info)
    except Exception as err:  # tracing and symbolic conversion fail in many ways
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(
            f"{loaded.describe()} ({loaded.path}) cannot be exported to {what} by torch: "
            f"{reason}. Use format=pt (spoof-lightning eval and infer read it)."
        ) from err
    try:
        return verify(reader(temp)[0], loaded.net, check_lengths(length, min_samples), what)
    except ExportError as err:
        raise ExportError(f"{loaded.describe()} ({loaded.path}): {err}") from None


def export_loaded(
    loaded: LoadedModel,
    out: str | Path | None = None,
    format: str | None = None,
    calibration: Mapping[str, float] | None = None,
) -> Path:
    """Write ``loaded`` to ``out`` in ``format`` (default: from the suffix of ``out``, else
    ``pt``; ``out`` defaults to the checkpoint's path with the format's suffix)."""
    suffixes = {suffix: name for name, suffix in FORMATS.items()}
    form = format or (suffixes.get(Path(out).suffix, "pt") if out else "pt")
    if form not in FORMATS:
        raise ConfigError(f"format={form!r}: choose one of {sorted(FORMATS)}")
    out = Path(out) if out else loaded.path.with_suffix(FORMATS[form])
    if out.exists():
        raise ConfigError(f"out={out} exists; exports never overwrite a file: choose another out=")
    calibration = calibration or loaded.calibration
    try:
        with atomic_new_file(out) as temp:
            if form == "pt":
                torch.save(_pt_content(loaded, calibration), temp)
            else:
                _write_graph(loaded, temp, form, deployment_info(loaded, calibration))
    except FileExistsError:
        raise ConfigError(f"out={out} appeared while exporting; it is left as it is") from None
    return out


def export_model(
    ckpt: str | Path,
    out: str | Path | None = None,
    format: str | None = None,
    calibration: Mapping[str, float] | None = None,
    requested: Mapping[str, Mapping[str, Any]] | None = None,
    names: Mapping[str, str] | None = None,
) -> Path:
    """:func:`export_loaded` of the checkpoint ``ckpt``; ``requested``/``names``: the
    configs released weights load into (:func:`~spoof_lightning.checkpoint.load_countermeasure`)."""
    return export_loaded(load_countermeasure(ckpt, requested, names), out, format, calibration)


USAGE = (
    "usage: spoof-lightning export ckpt=<checkpoint> format=onnx|torchscript|pt "
    "[out=<file>] [calibration=<eval metrics.json>] [model=<name> frontend=<name> ...]"
)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(f"{USAGE}\n(conf/export.yaml)")
        return
    with user_errors_reported():
        cfg = compose_config("export", args)
        if "ckpt" not in cfg or not (cfg.out or cfg.format):
            raise ConfigError(f"give ckpt= and format= or out= ({USAGE})")
        calibration = read_calibration(cfg.calibration) if cfg.calibration else None
        requested = requested_configs(cfg, cfg.hydra.runtime.choices)
        loaded = load_countermeasure(cfg.ckpt, *requested)
        out = export_loaded(loaded, cfg.out, cfg.format, calibration)
    n_params = sum(p.numel() for p in loaded.net.parameters())
    print(f"exported {loaded.describe()} ({n_params:,} parameters) to {out}")


if __name__ == "__main__":
    main()
