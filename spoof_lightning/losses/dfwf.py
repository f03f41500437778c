"""DFWF ("Detecting Fake Without Forgetting") continual-learning loss.

Ma, Yi, Tao, Bai, Tian and Wang, "Continual learning for fake audio detection",
Interspeech 2021. While the model learns a new experience (new attacks or a new corpus),
a frozen copy of the model from the previous experience constrains it::

    CE(z_new, y)                                                    ce
    + lambda_kd * T^2 * KL(softmax(z_old / T) || softmax(z_new / T))  kd  (learning without
                                                                         forgetting)
    + lambda_psa * mean over bona fide x of (1 - cos(e_new(x), e_old(x)))  psa (positive
                                                                         sample alignment)

Genuine speech is what the experiences share, so only bona fide embeddings are aligned;
spoofed ones are free to move towards the new attacks. With no old model (the first
experience), or ``lambda_kd = lambda_psa = 0`` (plain fine-tuning), it is the CE alone.
The continual loop (``spoof_lightning.continual_training``) calls :meth:`remember` after each
experience. The old model is held outside the module tree (not trained, not in
checkpoints).
"""

import copy
from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn
from torch.nn import functional as F

from spoof_lightning.contracts import BONAFIDE, ModelOutput
from spoof_lightning.losses.ce import class_weight_buffer
from spoof_lightning.losses.distill_terms import (
    Frozen,
    check_temperature,
    check_weight,
    hard_loss,
    soft_loss,
)


def alignment_loss(new: Tensor, old: Tensor, labels: Tensor) -> Tensor:
    """Mean ``1 - cos(new, old)`` over the bona fide rows (0 when the batch has none)."""
    bonafide = labels == BONAFIDE
    if not bool(bonafide.any()):
        return new.sum() * 0.0
    cosine = F.cosine_similarity(new[bonafide].float(), old[bonafide].detach().float(), dim=-1)
    return (1.0 - cosine).mean()


class DFWF(nn.Module):
    """CE + knowledge distillation + positive sample alignment against the previous model.

    Returns ``{"total", "ce"}``, plus ``"kd"`` and ``"psa"`` once an old model is
    remembered and their weight is not 0. Called as ``loss(output, labels, waveform=...)``.

    Args:
        lambda_kd: weight of the distillation term (0 = none).
        lambda_psa: weight of the positive sample alignment term (0 = none).
        temperature: softening temperature T of the distillation term.
        class_weights: CE weights (spoof, bona fide), or None.
    """

    needs_waveform: ClassVar[bool] = True

    def __init__(
        self,
        lambda_kd: float = 1.0,
        lambda_psa: float = 1.0,
        temperature: float = 2.0,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.lambda_kd = check_weight("lambda_kd", lambda_kd)
        self.lambda_psa = check_weight("lambda_psa", lambda_psa)
        self.temperature = check_temperature(temperature)
        self.register_buffer("class_weights", class_weight_buffer(class_weights), persistent=False)
        self.old: Frozen | None = None  # a plain attribute: not a submodule

    def remember(self, frontend: nn.Module, model: nn.Module) -> None:
        """Freeze a copy of ``frontend`` + ``model`` as the old model of the next experience."""
        self.old = Frozen(copy.deepcopy(frontend), copy.deepcopy(model))

    def forward(self, output: ModelOutput, labels: Tensor, waveform: Tensor) -> dict[str, Tensor]:
        ce = hard_loss(output.logits, labels, self.class_weights)
        terms = {"total": ce, "ce": ce}
        if self.old is None or (self.lambda_kd == 0 and self.lambda_psa == 0):
            return terms
        old = self.old(waveform)
        if self.lambda_kd > 0:
            terms["kd"] = soft_loss(output.logits, old.logits, self.temperature)
            terms["total"] = terms["total"] + self.lambda_kd * terms["kd"]
        if self.lambda_psa > 0:
            terms["psa"] = alignment_loss(output.embedding, old.embedding, labels)
            terms["total"] = terms["total"] + self.lambda_psa * terms["psa"]
        return terms


__all__ = ["DFWF", "alignment_loss"]
