"""Teacher-student distillation from a frozen, separately trained countermeasure.

Knowledge distillation (Hinton et al., 2015) with a hint on the embedding (FitNets,
Romero et al., 2015), the way the self-distillation paper's terms (Xue et al., ICASSP
2023) read with an external teacher, e.g. AASIST -> AASIST-L or SE-Res2Net50 -> CNN-GRU::

    (1 - alpha) * CE(z_s, y)                                   hard
    + alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))    soft
    + lambda_feature * ||A(e_s) - e_t||^2                       feature

with z the logits, e the embeddings and A a linear adapter (trained with the student).

The teacher is rebuilt from any spoof-lightning checkpoint or exported model (its own
front-end and model, from the stored hyper-parameters, read with ``weights_only=True``;
its training-only parts are ignored), runs in eval
mode without gradients on the same raw waveform batch (its front-end may differ from the
student's), and is held outside the module tree: it is never trained, never in the
student's checkpoint, and only loaded for training. A student checkpoint therefore
rebuilds (e.g. in eval.py) without the teacher file: the adapter takes its shape from the
stored weights.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from torch import Tensor, nn

from spoof_lightning.checkpoint import load_countermeasure
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.ce import class_weight_buffer
from spoof_lightning.losses.distill_terms import (
    Frozen,
    Projection,
    check_temperature,
    check_weight,
    feature_loss,
    hard_loss,
    probe,
    soft_loss,
)


def load_teacher(path: str | Path) -> Frozen:
    """The frozen front-end + model of a checkpoint or exported model (``loss.teacher``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"loss.teacher: teacher checkpoint not found: {path}")
    net = load_countermeasure(path).net
    return Frozen(net.frontend, net.model)


class TeacherStudent(nn.Module):
    """Distil a frozen teacher checkpoint into the model being trained.

    Returns ``{"total", "hard", "soft", "feature"}``. Called as
    ``loss(output, labels, waveform=...)``: the teacher sees the same waveforms.

    Args:
        teacher: path of the teacher's checkpoint (``best.ckpt`` of any train.py run).
        alpha: weight of the soft term against the hard term.
        lambda_feature: weight of the embedding term.
        temperature: softening temperature T of the soft term.
        class_weights: CE weights (spoof, bona fide) of the hard term, or None.
        probe_samples: length of the dummy waveform that sizes the adapter.
    """

    needs_waveform: ClassVar[bool] = True

    def __init__(
        self,
        teacher: str,
        alpha: float = 0.5,
        lambda_feature: float = 0.1,
        temperature: float = 3.0,
        class_weights: Sequence[float] | None = None,
        probe_samples: int = 16000,
    ) -> None:
        super().__init__()
        if not teacher:
            raise ValueError("loss.teacher: give the teacher's checkpoint path")
        self.teacher_path = str(teacher)
        self.alpha = check_weight("alpha", alpha, upper=1.0)
        self.lambda_feature = check_weight("lambda_feature", lambda_feature)
        self.temperature = check_temperature(temperature)
        self.register_buffer("class_weights", class_weight_buffer(class_weights), persistent=False)
        self.probe_samples = int(probe_samples)
        self.adapter = Projection()
        self.teacher: Frozen | None = None  # a plain attribute: not a submodule

    def prepare_fit(self, frontend: nn.Module, model: nn.Module) -> None:
        """Load the teacher and size the adapter (student -> teacher embedding).

        The Detector calls this when fitting starts, before the optimizer is built.
        """
        if self.teacher is None:
            self.teacher = load_teacher(self.teacher_path)
        if not self.adapter.is_sized:
            key = "loss.probe_samples"
            student = probe(frontend, model, self.probe_samples, key)
            teacher = probe(self.teacher.frontend, self.teacher.model, self.probe_samples, key)
            self.adapter.resize(student.embedding.shape[-1], teacher.embedding.shape[-1])

    def forward(self, output: ModelOutput, labels: Tensor, waveform: Tensor) -> dict[str, Tensor]:
        if self.teacher is None or not self.adapter.is_sized:
            raise RuntimeError("TeacherStudent.prepare_fit(frontend, model) has not been called")
        teacher = self.teacher(waveform)
        hard = hard_loss(output.logits, labels, self.class_weights)
        soft = soft_loss(output.logits, teacher.logits, self.temperature)
        feature = feature_loss(self.adapter(output.embedding), teacher.embedding)
        total = (1 - self.alpha) * hard + self.alpha * soft + self.lambda_feature * feature
        return {"total": total, "hard": hard, "soft": soft, "feature": feature}


__all__ = ["TeacherStudent", "load_teacher"]
