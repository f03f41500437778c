"""Utterance + frame-level cross-entropy, for models with a frame head (HAD localisation).

``total = CE(logits, label) + lambda_frame * CE(frame_logits, frame_labels)``, the frame term
averaged over labelled frames (``frame_labels != -1``), as the multi-resolution training of
partial spoof countermeasures (Zhang et al., IEEE/ACM TASLP 2023) at a single resolution.
"""

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.ce import class_weight_buffer

IGNORE = -1


class FrameCrossEntropy(nn.Module):
    """Returns ``{"total", "utt", "frame"}``.

    Args:
        lambda_frame: weight of the frame term.
        class_weights: utterance CE weights (spoof, bona fide), or None.
        frame_class_weights: frame CE weights (fake, genuine), or None.

    The Detector passes ``frame_labels`` from the batch (``batch_keys``); they exist when
    ``data.frame_hop`` is set.
    """

    batch_keys: ClassVar[tuple[str, ...]] = ("frame_labels",)

    def __init__(
        self,
        lambda_frame: float = 1.0,
        class_weights: Sequence[float] | None = None,
        frame_class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.lambda_frame = lambda_frame
        self.register_buffer("class_weights", class_weight_buffer(class_weights), persistent=False)
        self.register_buffer(
            "frame_class_weights", class_weight_buffer(frame_class_weights), persistent=False
        )

    def forward(
        self, output: ModelOutput, labels: Tensor, frame_labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        if output.frame_logits is None:
            raise ValueError(
                "loss=frame_ce needs a model with a frame head (model=frame_localizer)"
            )
        if frame_labels is None:
            raise ValueError("loss=frame_ce needs batch['frame_labels']: set data.frame_hop")
        frame_logits = output.frame_logits.float()
        if frame_logits.shape[:2] != frame_labels.shape:
            raise ValueError(
                f"frame_logits {list(frame_logits.shape)} do not match frame_labels "
                f"{list(frame_labels.shape)}: the model's frame grid (model.frame_hop, "
                "model.frontend_hop) must be the data's (data.frame_hop)"
            )
        utt = nn.functional.cross_entropy(output.logits.float(), labels, weight=self.class_weights)
        frame = nn.functional.cross_entropy(
            frame_logits.reshape(-1, 2),
            frame_labels.reshape(-1),
            weight=self.frame_class_weights,
            ignore_index=IGNORE,
        )
        return {"total": utt + self.lambda_frame * frame, "utt": utt, "frame": frame}


__all__ = ["FrameCrossEntropy"]
