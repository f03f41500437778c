"""Self-distillation: the deepest stage of a network teaches its shallow stages.

Xue, Fan, Yi, Wang, Wen, Zhang and Lv, "Learning from yourself: a self-distillation
method for fake speech detection", ICASSP 2023 (after Zhang et al., "Be your own
teacher", ICCV 2019). The backbone is cut into segments (the model's ``stage_features``,
shallow to deep). Each shallow segment i gets a bottleneck adapter and a classifier; the
deepest segment's classifier is the model's own output. Per shallow segment::

    (1 - alpha) * CE(z_i, y)                                   hard
    + alpha * T^2 * KL(softmax(z_deep / T) || softmax(z_i / T))  soft (z_deep detached)
    + lambda_feature * ||adapter_i(F_i) - F_deep||^2             feature (F_deep detached)

plus CE(z_deep, y) for the deepest classifier. The logged ``hard``, ``soft`` and
``feature`` are the sums over the shallow segments (unweighted), ``deep`` is the deepest CE.

Choices the paper leaves open, made here: the adapter first average-pools F_i to the
spatial size of F_deep (1-D [B, C, T] or 2-D [B, C, F, T] maps, any input length), then
applies a 1x1 conv bottleneck (C_i -> ``bottleneck`` -> C_deep); the shallow classifier
is a linear layer on the globally pooled adapter output, as in "Be your own teacher".
The feature distance is a mean (MSE), so its scale does not depend on the map size.
The heads exist only for training: scoring uses the model's logits alone, and an
exported model is the front-end + model without ``loss_fn.*``.
"""

from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.ce import class_weight_buffer
from spoof_lightning.losses.distill_terms import (
    check_temperature,
    check_weight,
    feature_loss,
    hard_loss,
    probe,
    soft_loss,
)


class StageHead(nn.Module):
    """Bottleneck adapter + classifier of one shallow stage.

    ``forward(feature, size)`` -> (the adapted feature of shape [B, C_deep, *size],
    logits [B, 2]).
    """

    def __init__(self, in_channels: int, out_channels: int, bottleneck: int, dims: int) -> None:
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.dims = dims
        self.adapter = nn.Sequential(
            conv(in_channels, bottleneck, 1, bias=False),
            norm(bottleneck),
            nn.ReLU(inplace=True),
            conv(bottleneck, out_channels, 1),
        )
        self.classifier = nn.Linear(out_channels, 2)

    def forward(self, feature: Tensor, size: Sequence[int]) -> tuple[Tensor, Tensor]:
        pool = F.adaptive_avg_pool1d if self.dims == 1 else F.adaptive_avg_pool2d
        adapted = self.adapter(pool(feature, tuple(size)))
        logits = self.classifier(adapted.mean(dim=tuple(range(2, adapted.dim()))))
        return adapted, logits


class SelfDistillation(nn.Module):
    """Self-distillation loss with its shallow heads; returns ``{"total", "deep", "hard",
    "soft", "feature"}`` and fills ``output.stage_logits`` (shallow heads, then the model's).

    The heads are sized from the model's stage outputs by :meth:`build`, which the
    Detector calls once at construction (before the optimizer exists).

    Args:
        alpha: weight of the soft term against the hard term of each shallow segment.
        lambda_feature: weight of the feature term.
        temperature: softening temperature T of the soft term.
        class_weights: CE weights (spoof, bona fide) for the hard and deep terms, or None.
        bottleneck: channels in the middle of each adapter.
        probe_samples: length of the dummy waveform used to size the heads.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        lambda_feature: float = 0.03,
        temperature: float = 3.0,
        class_weights: Sequence[float] | None = None,
        bottleneck: int = 64,
        probe_samples: int = 16000,
    ) -> None:
        super().__init__()
        self.alpha = check_weight("alpha", alpha, upper=1.0)
        self.lambda_feature = check_weight("lambda_feature", lambda_feature)
        self.temperature = check_temperature(temperature)
        self.register_buffer("class_weights", class_weight_buffer(class_weights), persistent=False)
        self.bottleneck, self.probe_samples = int(bottleneck), int(probe_samples)
        self.heads = nn.ModuleList()

    def build(self, frontend: nn.Module, model: nn.Module) -> None:
        """Create one head per shallow stage, sized from a dummy forward pass."""
        stages = probe(frontend, model, self.probe_samples, "loss.probe_samples").stage_features
        if len(stages) < 2:
            raise ValueError(
                f"loss=self_distill needs a model with at least 2 stage_features, "
                f"{type(model).__name__} gives {len(stages)}"
            )
        dims = {s.dim() for s in stages}
        if dims - {3, 4} or len(dims) != 1:
            shapes = [tuple(s.shape) for s in stages]
            raise ValueError(
                f"loss=self_distill needs stage_features that are all [B, C, T] or all "
                f"[B, C, F, T]; {type(model).__name__} gives {shapes}"
            )
        deep_channels = stages[-1].shape[1]
        self.heads = nn.ModuleList(
            StageHead(s.shape[1], deep_channels, self.bottleneck, s.dim() - 2) for s in stages[:-1]
        )

    def shallow_outputs(self, output: ModelOutput) -> list[tuple[Tensor, Tensor]]:
        """(adapted feature, logits) of every shallow head, shallow to deep."""
        if not self.heads:
            raise RuntimeError("SelfDistillation.build(frontend, model) has not been called")
        stages = output.stage_features
        if len(stages) != len(self.heads) + 1:
            raise ValueError(
                f"self_distill heads were built for {len(self.heads) + 1} stages, "
                f"the model gave {len(stages)}"
            )
        size = stages[-1].shape[2:]
        return [head(feature, size) for head, feature in zip(self.heads, stages, strict=False)]

    def forward(self, output: ModelOutput, labels: Tensor) -> dict[str, Tensor]:
        deep_feature = output.stage_features[-1]
        deep = hard_loss(output.logits, labels, self.class_weights)
        hard = soft = feature = deep.new_zeros(())
        shallow_logits = []
        for adapted, logits in self.shallow_outputs(output):
            shallow_logits.append(logits)
            hard = hard + hard_loss(logits, labels, self.class_weights)
            soft = soft + soft_loss(logits, output.logits, self.temperature)
            feature = feature + feature_loss(adapted, deep_feature)
        output.stage_logits = [*shallow_logits, output.logits]
        alpha = self.alpha
        total = deep + (1 - alpha) * hard + alpha * soft + self.lambda_feature * feature
        return {"total": total, "deep": deep, "hard": hard, "soft": soft, "feature": feature}


__all__ = ["SelfDistillation", "StageHead"]
