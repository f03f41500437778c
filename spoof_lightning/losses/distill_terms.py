"""Building blocks shared by the distillation losses (self-distillation, teacher-student, DFWF).

- :func:`hard_loss`: (class-weighted) cross-entropy to the labels;
- :func:`soft_loss`: ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, the
  temperature-softened knowledge-distillation term of Hinton et al. (2015); the ``T^2``
  keeps its gradients on the scale of the hard loss;
- :func:`feature_loss`: mean squared distance to a detached target feature;
- :class:`Frozen`: a frozen front-end + model held *outside* the module tree, so it is
  neither trained, nor in ``state_dict()`` (checkpoints), nor moved by ``.to()``;
- :class:`Projection`: a linear map whose shape is set when first used or by the
  checkpoint it loads (the teacher's embedding size need not be known to rebuild a student);
- :func:`probe`: one forward pass of a dummy batch, to size heads from a model's outputs.
"""

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from spoof_lightning.contracts import ModelOutput


def check_weight(key: str, value: float, upper: float | None = None) -> float:
    """A term weight ``loss.<key>`` as a float, checked to lie in [0, upper]."""
    if value < 0 or (upper is not None and value > upper):
        bound = f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"loss.{key} must be {bound}, got {value}")
    return float(value)


def check_temperature(temperature: float) -> float:
    if temperature <= 0:
        raise ValueError(f"loss.temperature must be > 0, got {temperature}")
    return float(temperature)


def hard_loss(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy to the labels, in float32 (weighted mean when ``weight`` is given)."""
    return F.cross_entropy(logits.float(), labels, weight=weight)


def soft_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(p_teacher || p_student)`` on softened outputs, averaged over the batch.

    The teacher side is detached: only the student learns from this term.
    """
    t = temperature
    log_p_student = F.log_softmax(student.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher.detach().float() / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return t * t * kl


def feature_loss(student: Tensor, target: Tensor) -> Tensor:
    """Mean squared distance from ``student`` to the detached ``target`` (same shape)."""
    if student.shape != target.shape:
        raise ValueError(
            f"feature loss: shapes differ, {tuple(student.shape)} vs {tuple(target.shape)}"
        )
    return F.mse_loss(student.float(), target.detach().float())


def probe(frontend: nn.Module, model: nn.Module, samples: int, key: str) -> ModelOutput:
    """The model's output for a dummy batch of 2 waveforms of ``samples`` samples.

    Runs in eval mode without gradients (batch-norm statistics are untouched) and with its
    own random generator (the global RNG, hence model initialisation, is untouched).
    ``key`` names the config key that sets ``samples`` in the error message.
    """
    generator = torch.Generator().manual_seed(0)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    waveform = 0.1 * torch.randn(2, samples, generator=generator).to(device)
    modes = [(m, m.training) for m in (frontend, model)]
    try:
        frontend.eval()
        model.eval()
        with torch.no_grad():
            return model(frontend(waveform))
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"a dummy forward pass of {samples} samples, used to size the distillation heads, "
            f"failed: {err}. Set a longer `{key}`."
        ) from err
    finally:
        for module, training in modes:
            module.train(training)


@dataclass
class Frozen:
    """A frozen front-end + model (eval mode, no gradients), outside any module tree.

    Being a plain object rather than an ``nn.Module`` attribute, it is not part of the
    owner's parameters (hence never in an optimizer), nor of its ``state_dict`` (hence not
    in checkpoints), nor moved by ``owner.to()``: :meth:`__call__` moves it to the input's
    device on first use.
    """

    frontend: nn.Module
    model: nn.Module

    def __post_init__(self) -> None:
        for module in (self.frontend, self.model):
            module.eval()
            module.requires_grad_(False)

    def __call__(self, waveform: Tensor) -> ModelOutput:
        first = next(self.model.parameters(), None)
        if first is not None and first.device != waveform.device:
            self.frontend.to(waveform.device)
            self.model.to(waveform.device)
        with torch.no_grad():
            return self.model(self.frontend(waveform))


class Projection(nn.Module):
    """``y = W x + b`` whose shape is set by :meth:`resize` or by the state dict it loads.

    A student checkpoint then rebuilds without its teacher: the adapter takes its shape
    from the stored weights.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(0, 0))
        self.bias = nn.Parameter(torch.empty(0))

    @property
    def is_sized(self) -> bool:
        return self.weight.numel() > 0

    def resize(self, in_features: int, out_features: int) -> None:
        """(Re)initialise as ``nn.Linear(in_features, out_features)`` unless already that shape."""
        if tuple(self.weight.shape) == (out_features, in_features):
            return
        linear = nn.Linear(in_features, out_features, device=self.weight.device)
        self.weight = nn.Parameter(linear.weight.detach())
        self.bias = nn.Parameter(linear.bias.detach())

    def forward(self, x: Tensor) -> Tensor:
        if not self.is_sized:
            raise RuntimeError("Projection used before resize() or load_state_dict()")
        return F.linear(x, self.weight, self.bias)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        weight = state_dict.get(prefix + "weight")
        if weight is not None and weight.dim() == 2 and weight.numel() > 0:
            self.resize(weight.shape[1], weight.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


__all__ = [
    "Frozen",
    "Projection",
    "check_temperature",
    "check_weight",
    "feature_loss",
    "hard_loss",
    "probe",
    "soft_loss",
]
