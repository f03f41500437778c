"""(Weighted) cross-entropy, the standard countermeasure loss.

ASVspoof 2019 LA train is about 1 bona fide : 9 spoof, so the common recipe (RawNet2,
AASIST) weights the classes [0.1, 0.9] in label order (spoof, bona fide).
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput


def class_weight_buffer(class_weights: Sequence[float] | None) -> Tensor | None:
    """``loss.class_weights`` (spoof, bona fide) as a float tensor, or None; checked."""
    if class_weights is None:
        return None
    if len(class_weights) != 2:
        raise ValueError(
            f"loss.class_weights must have 2 entries (spoof, bona fide), got {class_weights}"
        )
    return torch.tensor(class_weights, dtype=torch.float)


class CrossEntropy(nn.Module):
    """Cross-entropy on ``output.logits``; returns ``{"total", "ce"}``.

    Args:
        class_weights: weights per label (index 0 = spoof, 1 = bona fide), or None.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`.
    """

    def __init__(
        self, class_weights: Sequence[float] | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weight_buffer(class_weights), persistent=False)
        self.label_smoothing = label_smoothing

    def forward(self, output: ModelOutput, labels: Tensor) -> dict[str, Tensor]:
        ce = nn.functional.cross_entropy(
            output.logits.float(),
            labels,
            weight=self.class_weights,
            label_smoothing=self.label_smoothing,
        )
        return {"total": ce, "ce": ce}
