"""Refuse a checkpoint that is not the one a command asks for, before anything uses it.

``resume`` continues a ``last.ckpt`` only when it is a train.py checkpoint with its training
state and the run's own front-end and model (:func:`check_resumable`); eval.py's optional
``frontend=`` / ``model=`` choices assert what the checkpoint holds and never change it
(:func:`check_request`). Differences are listed key by key (``model.hidden: checkpoint 8,
requested 16``).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spoof_lightning.checkpoint import (
    EXPORT_FORMAT,
    PARTS,
    CheckpointError,
    LoadedModel,
    read_checkpoint,
    unpack_checkpoint,
)
from spoof_lightning.errors import listed

# What Lightning stores to continue a fit (a resumed run needs them all).
TRAINING_STATE = ("epoch", "global_step", "loops", "optimizer_states")


def check_resumable(path: str | Path, expected: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Refuse a ``last.ckpt`` that ``resume`` cannot continue, before a Trainer touches it.

    It must read as plain data (``weights_only``: truncated, foreign or pickled-code files
    are refused with :func:`read_checkpoint`'s messages), be a train.py checkpoint with its
    training state, and hold the ``frontend`` and ``model`` configs of ``expected`` (the
    run's). Returns its ``epoch`` and ``global_step``.
    """
    path = Path(path)
    content = read_checkpoint(path)
    parts = unpack_checkpoint(content, path)
    missing = [key for key in TRAINING_STATE if key not in content]
    if missing:
        what = "an exported model" if content.get("format") == EXPORT_FORMAT else "a checkpoint"
        raise CheckpointError(
            f"{path} cannot be resumed: it is {what} without training state (no "
            f"{', '.join(missing)}); resume continues the last.ckpt that train.py writes"
        )
    differences = [
        line for part in PARTS for line in _differences(parts[part], expected[part], part)
    ]
    if differences:
        raise CheckpointError(
            f"{path} cannot be resumed by this run: it was trained with another front-end or "
            f"model ({listed(differences, 8, '; ')}). Resume with the run's own config, or "
            "start a new run."
        )
    return {"epoch": int(content["epoch"]), "global_step": int(content["global_step"])}


def check_request(
    loaded: LoadedModel, part: str, requested: Mapping[str, Any], name: str | None = None
) -> None:
    """Refuse ``loaded`` unless its ``part`` (frontend/model) config equals ``requested``.

    Used by eval.py's optional ``frontend=`` / ``model=`` choices (``name``): they assert
    what the checkpoint must be, they do not change it.
    """
    stored, requested = getattr(loaded, part), dict(requested)
    asked = f"{part}={name}" if name else f"{part} {requested.get('_target_')}"
    if stored["_target_"] != requested.get("_target_"):
        raise CheckpointError(
            f"{loaded.path} holds {part}={loaded.name(part)} ({stored['_target_']}), not the "
            f"requested {asked} ({requested.get('_target_')}). Leave out `{part}=` to use "
            "the checkpoint's own config."
        )
    differences = _differences(stored, requested, part)
    if differences:
        raise CheckpointError(
            f"{loaded.path} holds {part}={loaded.name(part)} with other hyper-parameters than "
            f"the requested {asked}: {listed(differences, 8, '; ')}. Leave out `{part}=` to "
            "use the checkpoint's own config."
        )


def _differences(stored: Any, requested: Any, key: str) -> list[str]:
    """``<key>.<name>: checkpoint <value>, requested <value>`` for each differing leaf."""
    if isinstance(stored, Mapping) and isinstance(requested, Mapping):
        return [
            line
            for name in sorted(set(stored) | set(requested), key=str)
            for line in _differences(stored.get(name), requested.get(name), f"{key}.{name}")
        ]
    return [] if stored == requested else [f"{key}: checkpoint {stored!r}, requested {requested!r}"]


__all__ = ["TRAINING_STATE", "check_request", "check_resumable"]
