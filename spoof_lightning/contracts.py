"""The contracts between front-ends, models and losses (see DESIGN.md).

Label 1 = bona fide, 0 = spoof. Logits are ``[B, 2]`` in that index order, so the
score ``logits[:, 1] - logits[:, 0]`` is higher for bona fide speech.

A front-end is an ``nn.Module`` mapping a waveform ``[B, T]`` to features
``[B, C, T']``; it has an ``out_channels`` attribute (C) and a class attribute
``domain`` naming what it produces. A model is an ``nn.Module`` built with
``in_channels=C`` that maps features to a :class:`ModelOutput`; its class
attribute ``accepts`` lists the domains it can consume. :func:`check_pair` refuses
an incompatible pair before anything is built.
"""

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor

Domain = Literal["waveform", "timefreq", "ssl"]
DOMAIN_MEANING: dict[str, str] = {
    "waveform": "a raw waveform [B, 1, T] at the sample rate",
    "timefreq": "a time-frequency map [B, C, T'] (filterbank, spectrogram, cepstra)",
    "ssl": "a sequence of self-supervised embeddings [B, D, T']",
}
BONAFIDE = 1
SPOOF = 0


@dataclass
class ModelOutput:
    """What every model returns.

    ``stage_features`` holds one feature map per backbone stage, shallow to deep
    (4 stages where the architecture allows); self-distillation attaches its heads
    and adapters to them. ``stage_logits`` is filled by losses/heads that add
    per-stage classifiers, never by the model itself. ``frame_logits``, from models
    with a frame head (HAD localisation), is ``[B, F, 2]`` (spoof, bona fide) on the
    ``data.frame_hop`` grid: frame ``f`` covers samples ``[f * hop, (f + 1) * hop)``.
    """

    logits: Tensor
    embedding: Tensor
    stage_features: list[Tensor] = field(default_factory=list)
    stage_logits: list[Tensor] = field(default_factory=list)
    frame_logits: Tensor | None = None


def scores_from_logits(logits: Tensor) -> Tensor:
    """Detection score: log-odds of bona fide vs spoof, higher = more bona fide."""
    return (logits[:, BONAFIDE] - logits[:, SPOOF]).float()


class IncompatiblePairError(ValueError):
    """A front-end × model pair that cannot work together."""


def check_pair(frontend_name: str, frontend_cls: type, model_name: str, model_cls: type) -> None:
    """Raise :class:`IncompatiblePairError` naming both choices when the pair can't work."""
    domain = getattr(frontend_cls, "domain", None)
    accepts = getattr(model_cls, "accepts", None)
    if domain is None or accepts is None:
        missing = "frontend" if domain is None else "model"
        raise IncompatiblePairError(
            f"{missing} class {frontend_cls if domain is None else model_cls} does not declare "
            f"{'`domain`' if domain is None else '`accepts`'}; see spoof_lightning/contracts.py"
        )
    if domain not in accepts:
        wanted = " or ".join(DOMAIN_MEANING[d] for d in sorted(accepts))
        raise IncompatiblePairError(
            f"frontend={frontend_name} gives {DOMAIN_MEANING[domain]}, but model={model_name} "
            f"takes {wanted}. Choose a front-end whose domain is one of {sorted(accepts)}."
        )


__all__ = [
    "BONAFIDE",
    "SPOOF",
    "Domain",
    "IncompatiblePairError",
    "ModelOutput",
    "check_pair",
    "scores_from_logits",
]
