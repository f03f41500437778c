"""Self-supervised front-ends from torchaudio's builders: wav2vec 2.0 / XLS-R, HuBERT, WavLM.

Baevski et al., "wav2vec 2.0", NeurIPS 2020; Babu et al., "XLS-R", Interspeech 2022; Hsu et
al., "HuBERT", TASLP 2021; Chen et al., "WavLM", JSTSP 2022. Used for anti-spoofing by Tak
et al., "Automatic speaker verification spoofing and deepfake detection using wav2vec 2.0
and data augmentation", Odyssey 2022, and with a learned summary of all layers by Zhang et
al., "Audio deepfake detection with XLS-R and SLS classifier", ACM MM 2024.

``family`` picks torchaudio's builder (``wav2vec2_model`` for wav2vec 2.0, XLS-R and
HuBERT, which share the architecture; ``wavlm_model`` for WavLM); the defaults build XLS-R
300M, conf/frontend/{hubert,wavlm}_*.yaml the other released sizes, and every architecture
argument can be overridden (the tests use tiny ones). Weights come only from a local file
in the torchaudio, Hugging Face or fairseq layout (:mod:`.ssl_weights`); nothing is
downloaded. A checkpoint of a fine-tuned model holds every SSL weight, so it is rebuilt
without that file (``pretrained_key``: :func:`spoof_lightning.build.without_pretrained`).
"""

import logging
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.models import Wav2Vec2Model, wav2vec2_model, wavlm_model

from spoof_lightning.frontends.common import check_waveform
from spoof_lightning.frontends.ssl_weights import load_ssl_state_dict

log = logging.getLogger(__name__)

FAMILIES = ("wav2vec2", "hubert", "wavlm")
LAYERS = ("last", "weighted", "sls")


class Wav2Vec2FrontEnd(nn.Module):
    """Waveform [B, T] at 16 kHz -> SSL features [B, D, T'] (T' ~ T / 320, D = embed dim).

    Args:
        sample_rate: must be 16000 (the SSL models are trained at 16 kHz).
        checkpoint: local path of the pretrained weights; None = random init (tests, or a
            model whose weights all come from a spoof-lightning checkpoint next).
        family: ``wav2vec2`` (also XLS-R), ``hubert`` or ``wavlm``: the torchaudio builder.
        freeze: keep the SSL model fixed (no gradients, eval mode); False fine-tunes it, as
            Tak et al. do (the parts that ``layer`` never runs stay frozen).
        layer: ``"last"`` = the transformer output (with the final layer norm of pre-LN
            models, as fairseq returns it); an int k = the output of transformer layer k
            (1-based; later layers are not run); ``"weighted"`` = a sum of all transformer
            layers' outputs with learned softmax weights (one per layer); ``"sls"`` = the
            sensitive-layer-selection sum of Zhang et al. (2024): layer l is weighted per
            utterance by ``sigmoid(w . mean_t h_l + b)``, ``w, b`` learned and shared.
        normalize_waveform: standardise each waveform (fairseq ``normalize=True`` models).
        extractor_mode ... encoder_layer_drop: ``torchaudio.models.wav2vec2_model`` /
            ``wavlm_model`` arguments (``encoder_num_buckets``, ``encoder_max_distance``:
            WavLM's relative position buckets); the defaults are XLS-R 300M.
    """

    domain: ClassVar[str] = "ssl"
    pretrained_key: ClassVar[str] = "checkpoint"  # rebuilt from a state dict without it

    def __init__(
        self,
        sample_rate: int = 16000,
        checkpoint: str | None = None,
        family: str = "wav2vec2",
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
        encoder_num_buckets: int = 320,
        encoder_max_distance: int = 800,
        encoder_attention_dropout: float = 0.0,
        encoder_ff_interm_features: int = 4096,
        encoder_ff_interm_dropout: float = 0.0,
        encoder_dropout: float = 0.0,
        encoder_layer_norm_first: bool = True,
        encoder_layer_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ValueError(f"SSL front-ends need 16 kHz audio; sample_rate is {sample_rate}")
        if family not in FAMILIES:
            raise ValueError(f"frontend.family={family!r} must be one of {FAMILIES}")
        if not (layer in LAYERS or (isinstance(layer, int) and 1 <= layer <= encoder_num_layers)):
            raise ValueError(
                f"frontend.layer={layer!r} must be one of {LAYERS} or an int in "
                f"[1, {encoder_num_layers}]"
            )
        conv_config = (
            None
            if extractor_conv_layer_config is None
            else [tuple(int(v) for v in c) for c in extractor_conv_layer_config]
        )
        arguments = {
            "extractor_mode": extractor_mode,
            "extractor_conv_layer_config": conv_config,
            "extractor_conv_bias": extractor_conv_bias,
            "encoder_embed_dim": encoder_embed_dim,
            "encoder_projection_dropout": encoder_projection_dropout,
            "encoder_pos_conv_kernel": encoder_pos_conv_kernel,
            "encoder_pos_conv_groups": encoder_pos_conv_groups,
            "encoder_num_layers": encoder_num_layers,
            "encoder_num_heads": encoder_num_heads,
            "encoder_attention_dropout": encoder_attention_dropout,
            "encoder_ff_interm_features": encoder_ff_interm_features,
            "encoder_ff_interm_dropout": encoder_ff_interm_dropout,
            "encoder_dropout": encoder_dropout,
            "encoder_layer_norm_first": encoder_layer_norm_first,
            "encoder_layer_drop": encoder_layer_drop,
            "aux_num_out": None,
        }
        if family == "wavlm":
            arguments |= {
                "encoder_num_buckets": encoder_num_buckets,
                "encoder_max_distance": encoder_max_distance,
            }
            self.ssl: Wav2Vec2Model = wavlm_model(**arguments)
        else:
            self.ssl = wav2vec2_model(**arguments)
        self.family = family
        if checkpoint is None:
            log.info("frontend.checkpoint is null: %s weights start random", family)
        else:
            self._load(checkpoint)
        self.layer = layer
        self.layer_weights = (
            nn.Parameter(torch.zeros(encoder_num_layers)) if layer == "weighted" else None
        )
        self.layer_gate = nn.Linear(encoder_embed_dim, 1) if layer == "sls" else None
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
        state = load_ssl_state_dict(checkpoint, wavlm=self.family == "wavlm")
        result = self.ssl.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"frontend.checkpoint={checkpoint!r} does not fit this {self.family} "
                f"architecture: missing keys {result.missing_keys[:8]}, unexpected keys "
                f"{result.unexpected_keys[:8]} (check frontend.family and frontend.encoder_*)"
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
                return self.ssl.encoder(feats).transpose(1, 2)
            num_layers = self.layer if isinstance(self.layer, int) else None
            layers = self.ssl.encoder.extract_features(feats, None, num_layers)
        if isinstance(self.layer, int):
            return layers[-1].transpose(1, 2)
        hidden = torch.stack(layers)  # [L, B, T, D]
        if self.layer_weights is not None:
            weights = F.softmax(self.layer_weights, dim=0).to(hidden.dtype)[:, None, None]
        else:  # SLS: one gate per layer and utterance, from the layer's mean over time
            weights = torch.sigmoid(self.layer_gate(hidden.mean(dim=2)))  # [L, B, 1]
        return (weights[..., None] * hidden).sum(dim=0).transpose(1, 2)


__all__ = ["FAMILIES", "LAYERS", "Wav2Vec2FrontEnd"]
