"""Export a trained countermeasure for inference: front-end + model weights and plain config.

    python -m spoof_lightning.export ckpt=logs/runs/<run>/v1/checkpoints/best.ckpt out=model.pt

The file keeps what scoring needs and drops what only training needs (optimizer and
scheduler states, loop state, loss weights, callbacks, logger/trainer config). It holds
tensors and plain data only, loads with ``torch.load(weights_only=True)``, and is read by
:func:`spoof_lightning.checkpoint.load_countermeasure` and by ``eval.py ckpt=model.pt``.
Keys: ``format``, ``version``, ``frontend``, ``model`` (``_target_`` configs), ``names``,
``sample_rate``, ``eer_threshold`` (dev EER threshold or None), ``config`` (the data
config and sample rate of the run, for eval.py), ``source`` and ``state_dict``.
"""

import sys
from pathlib import Path
from typing import Any

import torch

from spoof_lightning.atomic import atomic_open
from spoof_lightning.checkpoint import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    CheckpointError,
    load_countermeasure,
)

# Parts of the run config an inference user can need; everything else is training-only.
KEPT_CONFIG = ("sample_rate", "data")
TRAIN_ONLY_DATA = ("augment", "report_dir")


def export_model(ckpt: str | Path, out: str | Path) -> Path:
    """Write the inference part of ``ckpt`` to ``out``; returns ``out``."""
    loaded = load_countermeasure(ckpt)
    config: dict[str, Any] = {k: loaded.config[k] for k in KEPT_CONFIG if k in loaded.config}
    if isinstance(config.get("data"), dict):
        config["data"] = {k: v for k, v in config["data"].items() if k not in TRAIN_ONLY_DATA}
    content = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "frontend": loaded.frontend,
        "model": loaded.model,
        "names": loaded.names,
        "sample_rate": loaded.sample_rate,
        "eer_threshold": loaded.eer_threshold,
        "config": config,
        "source": str(loaded.path),
        "state_dict": {k: v.detach().clone() for k, v in loaded.net.state_dict().items()},
    }
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        torch.save(content, handle)
    return out


USAGE = "usage: python -m spoof_lightning.export ckpt=<checkpoint> out=<model.pt>"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return
    options = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = [a for a in args if "=" not in a] + sorted(set(options) - {"ckpt", "out"})
    if unknown or not {"ckpt", "out"} <= options.keys():
        raise SystemExit(f"{USAGE}\n(got {' '.join(args) or 'no arguments'})")
    try:
        out = export_model(options["ckpt"], options["out"])
        loaded = load_countermeasure(out)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    n_params = sum(p.numel() for p in loaded.net.parameters())
    print(f"exported {loaded.describe()} ({n_params:,} parameters) to {out}")


if __name__ == "__main__":
    main()
