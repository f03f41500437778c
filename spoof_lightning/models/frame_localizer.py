"""Frame-level localisation head on any backbone, for partially fake audio (HAD).

HAD (Yi et al., "Half-Truth: A Partially Fake Audio Detection Dataset", Interspeech 2021)
labels which segments of an utterance are fake. Following the frame-level heads of partial
spoof localisation (Zhang et al., "The PartialSpoof Database and Countermeasures for the
Detection of Short Fake Speech Segments Embedded in an Utterance", IEEE/ACM TASLP 2023),
a light 1-D convolution classifies every time step of one backbone stage, and the result is
linearly interpolated to the data's ``frame_hop`` grid; the backbone's utterance logits are
kept as they are.

The grid has ``F = ceil(samples / hop)`` frames (``hop = round(frame_hop * sample_rate)``),
as the data's ``frame_labels``. The model sees features, not the waveform, so it takes
``samples = T' * frontend_hop``: exact for front-ends that keep one feature per
``frontend_hop`` samples (``raw``: 1). STFT front-ends (``T // hop + 1`` frames) give the
right ``F`` unless the length is a multiple of the grid hop; ``sinc`` (``T - taps + 1``)
and SSL front-ends do not fit the assumption. A mismatch is never hidden: the loss and the
evaluation compare ``F`` with the labelled frames and name the utterance.
"""

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from torch import Tensor, nn

from spoof_lightning.contracts import ModelOutput


class FrameLocalizer(nn.Module):
    """A backbone model plus a frame head: ``ModelOutput.frame_logits`` ``[B, F, 2]``.

    Args:
        in_channels: channels of the front-end output (passed on to the backbone).
        backbone: a model config (``_target_`` + hyper-parameters, without ``in_channels``),
            built here; the FrameLocalizer config sets ``_recursive_: false`` for that.
        frame_hop: seconds per output frame (``data.frame_hop``).
        sample_rate: Hz.
        frontend_hop: waveform samples per feature frame of the front-end (see the module
            docstring): 1 for ``raw``, ``hop_length`` for STFT front-ends.
        stage: which ``stage_features`` map feeds the head (default: the deepest). It must
            keep a time axis last: ``[B, C, T'']``, or ``[B, C, H, T'']`` (H is averaged).
        head_kernel: kernel size of the head's convolution over time (odd).
        probe_frames: feature frames of the dummy input that sizes the head at build time.

    ``accepts`` lists every domain: the class cannot know its backbone's; an instance has
    the backbone class's ``accepts``, and the backbone refuses inputs it cannot take.
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"waveform", "timefreq", "ssl"})

    def __init__(
        self,
        in_channels: int,
        backbone: Mapping[str, Any],
        frame_hop: float | None,
        sample_rate: int = 16000,
        frontend_hop: int = 1,
        stage: int = -1,
        head_kernel: int = 3,
        probe_frames: int = 4000,
    ) -> None:
        super().__init__()
        if frame_hop is None or frame_hop <= 0:
            raise ValueError(
                f"model.frame_hop={frame_hop} must be a positive number of seconds: "
                "set data.frame_hop (e.g. 0.02) for frame-level localisation"
            )
        if frontend_hop < 1 or head_kernel < 1 or head_kernel % 2 == 0:
            raise ValueError(
                f"model.frontend_hop={frontend_hop} must be >= 1 and model.head_kernel="
                f"{head_kernel} a positive odd number"
            )
        if not isinstance(backbone, Mapping) or "_target_" not in backbone:
            raise ValueError(f"model.backbone must be a model config with _target_: {backbone}")
        self.accepts = frozenset(get_class(backbone["_target_"]).accepts)
        self.backbone = instantiate(dict(backbone), in_channels=in_channels, _convert_="all")
        self.hop = max(1, round(frame_hop * sample_rate))  # as the data's frame_labels
        self.frontend_hop = frontend_hop
        self.stage = stage
        self.head = nn.Conv1d(
            self._stage_channels(in_channels, probe_frames), 2, head_kernel, padding="same"
        )

    def _stage_channels(self, in_channels: int, probe_frames: int) -> int:
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            probe = self.backbone(torch.zeros(1, in_channels, probe_frames))
        self.backbone.train(was_training)
        return self._stage_map(probe).shape[1]

    def _stage_map(self, output: ModelOutput) -> Tensor:
        """The chosen stage as ``[B, C, T'']`` (a 4-D map averaged over its frequency axis)."""
        stages = output.stage_features
        if not -len(stages) <= self.stage < len(stages):
            raise ValueError(
                f"model.stage={self.stage}: the backbone gives {len(stages)} stage_features"
            )
        x = stages[self.stage]
        if x.ndim == 4:
            x = x.mean(dim=2)
        if x.ndim != 3:
            raise ValueError(
                f"model.stage={self.stage}: stage map {list(x.shape)} has no time axis "
                "[B, C, T''] or [B, C, H, T'']; choose another stage"
            )
        return x

    def n_frames(self, feature_frames: int) -> int:
        """Grid frames for ``feature_frames`` front-end frames (see the module docstring)."""
        return math.ceil(feature_frames * self.frontend_hop / self.hop)

    def forward(self, features: Tensor) -> ModelOutput:
        output = self.backbone(features)
        frames = self.head(self._stage_map(output))  # [B, 2, T'']
        frames = F.interpolate(
            frames, size=self.n_frames(features.shape[-1]), mode="linear", align_corners=False
        )
        return dataclasses.replace(output, frame_logits=frames.transpose(1, 2))


__all__ = ["FrameLocalizer"]
