"""wav2vec 2.0 / XLS-R self-supervised front-end (torchaudio implementation).

Baevski et al., "wav2vec 2.0", NeurIPS 2020; Babu et al., "XLS-R", Interspeech 2022; used
for anti-spoofing by Tak et al., "Automatic speaker verification spoofing and deepfake
detection using wav2vec 2.0 and data augmentation", Odyssey 2022. The defaults build the
XLS-R 300M architecture with ``torchaudio.models.wav2vec2_model``; every architecture
argument can be overridden (the tests use a tiny one). Weights come only from a local
file; nothing is downloaded. Accepted files: a torchaudio ``Wav2Vec2Model`` state dict, a
fairseq checkpoint (e.g. ``xlsr2_300m.pt``) or state dict, or a Hugging Face ``Wav2Vec2``
state dict (``pytorch_model.bin`` / a ``torch.save`` of ``model.state_dict()``).
"""

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.models import Wav2Vec2Model, wav2vec2_model
from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

from spoof_lightning.frontends.common import check_waveform

log = logging.getLogger(__name__)

# Hugging Face names -> torchaudio names (the modules inside are named alike).
_HF_PREFIXES = (
    ("feature_extractor.", "feature_extractor."),
    ("feature_projection.", "encoder.feature_projection."),
    ("encoder.", "encoder.transformer."),
)
# Pre-training / CTC heads that a front-end does not use.
_DROPPED = re.compile(r"^(aux\.|lm_head\.|quantizer\.|project_q\.|project_hid\.|masked_spec_embed)")


def _to_torchaudio(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Convert a torchaudio, fairseq or Hugging Face wav2vec2 state dict to torchaudio names."""
    if any(k.startswith(("encoder.transformer.", "encoder.feature_projection.")) for k in state):
        converted = state
    elif any(k.startswith(("wav2vec2.", "feature_projection.")) for k in state):
        converted = {}
        for key, value in state.items():
            key = key.removeprefix("wav2vec2.")
            for hf, ta in _HF_PREFIXES:
                if key.startswith(hf):
                    converted[ta + key[len(hf) :]] = value
                    break
            else:
                converted[key] = value
    else:  # fairseq: torchaudio's own key map (pre-training-only keys are dropped by it)
        converted = _convert_state_dict(state)
    return {k: v for k, v in converted.items() if not _DROPPED.match(k)}


def load_wav2vec2_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a local wav2vec2 checkpoint of any accepted layout as a torchaudio state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"frontend.checkpoint={str(path)!r} does not exist; set it to a local wav2vec2 / "
            "XLS-R checkpoint (nothing is downloaded) or to null for random weights"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(
            f"frontend.checkpoint={str(path)!r} cannot be read as plain tensors ({err}). If it "
            "is a fairseq checkpoint that pickles other objects and you trust it, save its "
            "weights once: torch.save(torch.load(p, weights_only=False)['model'], 'w.pt')"
        ) from err
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"frontend.checkpoint={str(path)!r} does not hold a state dict")
    try:
        return _to_torchaudio(state)
    except ValueError as err:  # torchaudio's fairseq map rejects unknown keys
        raise ValueError(
            f"frontend.checkpoint={str(path)!r} is not a wav2vec2 state dict ({err})"
        ) from err


class Wav2Vec2FrontEnd(nn.Module):
    """Waveform [B, T] at 16 kHz -> SSL features [B, D, T'] (T' ~ T / 320, D = embed dim).

    Args:
        sample_rate: must be 16000 (wav2vec2 is trained at 16 kHz).
        checkpoint: local path of the pretrained weights; None = random init (tests only).
        freeze: keep the SSL model fixed (no gradients, eval mode); False fine-tunes it, as
            Tak et al. do (the parts that ``layer`` never runs stay frozen).
        layer: ``"last"`` = the transformer output (with the final layer norm of pre-LN
            models, as fairseq returns it); an int k = the output of transformer layer k
            (1-based; later layers are not run); ``"weighted"`` = a learned softmax-weighted
            sum of all transformer layers' outputs.
        normalize_waveform: standardise each waveform (fairseq ``normalize=True`` models).
        extractor_mode ... encoder_layer_drop: ``torchaudio.models.wav2vec2_model``
            arguments; the defaults are XLS-R 300M (24 layers, 1024 dims).
    """

    domain: ClassVar[str] = "ssl"

    def __init__(
        self,
        sample_rate: int = 16000,
        checkpoint: str | None = None,
        freeze: bool = False,
        layer: int | str = "last",
        normalize_waveform: bool = False,
        extractor_mode: str = "layer_norm",
        extractor_conv_layer_config: Sequence[Sequence[int]] | None = None,
        extractor_conv_bias: bool = True,
        encoder_embed_dim: int = 1024,
        encoder_projection_dropout: float = 0.0,
        encoder_pos_conv_kernel: int = 128,
        encoder_pos_conv_groups: int = 16,
        encoder_num_layers: int = 24,
        encoder_num_heads: int = 16,
        encoder_attention_dropout: float = 0.0,
        encoder_ff_interm_features: int = 4096,
        encoder_ff_interm_dropout: float = 0.0,
        encoder_dropout: float = 0.0,
        encoder_layer_norm_first: bool = True,
        encoder_layer_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ValueError(f"wav2vec2 needs 16 kHz audio; sample_rate is {sample_rate}")
        if not (
            layer in ("last", "weighted")
            or (isinstance(layer, int) and 1 <= layer <= encoder_num_layers)
        ):
            raise ValueError(
                f"frontend.layer={layer!r} must be 'last', 'weighted' or an int in "
                f"[1, {encoder_num_layers}]"
            )
        conv_config = (
            None
            if extractor_conv_layer_config is None
            else [tuple(int(v) for v in c) for c in extractor_conv_layer_config]
        )
        self.ssl: Wav2Vec2Model = wav2vec2_model(
            extractor_mode=extractor_mode,
            extractor_conv_layer_config=conv_config,
            extractor_conv_bias=extractor_conv_bias,
            encoder_embed_dim=encoder_embed_dim,
            encoder_projection_dropout=encoder_projection_dropout,
            encoder_pos_conv_kernel=encoder_pos_conv_kernel,
            encoder_pos_conv_groups=encoder_pos_conv_groups,
            encoder_num_layers=encoder_num_layers,
            encoder_num_heads=encoder_num_heads,
            encoder_attention_dropout=encoder_attention_dropout,
            encoder_ff_interm_features=encoder_ff_interm_features,
            encoder_ff_interm_dropout=encoder_ff_interm_dropout,
            encoder_dropout=encoder_dropout,
            encoder_layer_norm_first=encoder_layer_norm_first,
            encoder_layer_drop=encoder_layer_drop,
            aux_num_out=None,
        )
        if checkpoint is None:
            log.warning("frontend.checkpoint is null: wav2vec2 weights are random")
        else:
            self._load(checkpoint)
        self.layer = layer
        self.layer_weights = (
            nn.Parameter(torch.zeros(encoder_num_layers)) if layer == "weighted" else None
        )
        self.normalize_waveform = normalize_waveform
        self.freeze = freeze
        if freeze:
            self.ssl.requires_grad_(False)
            self.ssl.eval()
        for module in self._unused_modules():
            module.requires_grad_(False)
        self.out_channels = encoder_embed_dim
        self.min_samples = 1  # the CNN's receptive field: what one output frame needs
        for block in reversed(self.ssl.feature_extractor.conv_layers):
            conv = block.conv
            self.min_samples = (self.min_samples - 1) * conv.stride[0] + conv.kernel_size[0]

    def _unused_modules(self) -> list[nn.Module]:
        """Parts of the SSL model that ``layer`` never runs.

        They stay in the state dict (checkpoints load unchanged) but are frozen, so that
        fine-tuning leaves them out of the optimizer and DDP does not wait for their
        gradients: the layers after ``layer`` k, and the final layer norm of pre-LN models
        (torchaudio applies it only to the last layer's output, i.e. for ``"last"``).
        """
        transformer = self.ssl.encoder.transformer
        unused: list[nn.Module] = []
        if isinstance(self.layer, int):
            unused += list(transformer.layers[self.layer :])
        if self.layer != "last" and not transformer.layer_norm_first:
            unused.append(transformer.layer_norm)
        return unused

    def _load(self, checkpoint: str) -> None:
        state = load_wav2vec2_state_dict(checkpoint)
        result = self.ssl.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"frontend.checkpoint={checkpoint!r} does not fit this wav2vec2 architecture: "
                f"missing keys {result.missing_keys[:8]}, unexpected keys "
                f"{result.unexpected_keys[:8]} (check the frontend.encoder_* settings)"
            )

    def train(self, mode: bool = True) -> "Wav2Vec2FrontEnd":
        super().train(mode)
        if self.freeze:
            self.ssl.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        x = check_waveform(x, type(self).__name__, self.min_samples)
        if self.normalize_waveform:
            x = F.layer_norm(x, x.shape[1:])
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            feats, _ = self.ssl.feature_extractor(x, None)
            if self.layer == "last":
                hidden = self.ssl.encoder(feats)
            else:
                num_layers = self.layer if isinstance(self.layer, int) else None
                layers = self.ssl.encoder.extract_features(feats, None, num_layers)
                hidden = layers[-1] if self.layer_weights is None else torch.stack(layers)
        if self.layer_weights is not None:
            weights = F.softmax(self.layer_weights, dim=0).to(hidden.dtype)
            hidden = torch.einsum("l,lbtd->btd", weights, hidden)
        return hidden.transpose(1, 2)


__all__ = ["Wav2Vec2FrontEnd", "load_wav2vec2_state_dict"]
