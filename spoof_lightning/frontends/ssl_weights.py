"""Read pretrained wav2vec 2.0 / XLS-R, HuBERT and WavLM weights as torchaudio state dicts.

Three layouts are accepted, whatever the model family:

* torchaudio: ``Wav2Vec2Model.state_dict()`` (``feature_extractor.*``, ``encoder.transformer.*``);
* Hugging Face: ``pytorch_model.bin`` of ``Wav2Vec2Model`` / ``HubertModel`` / ``WavLMModel``,
  bare or under ``wav2vec2.`` / ``hubert.`` / ``wavlm.`` (the ``...For*`` heads);
* fairseq: ``xlsr2_300m.pt``, ``hubert_large_ll60k.pt``, ``WavLM-Large.pt`` (or their
  ``["model"]``), renamed with torchaudio's own fairseq key map; WavLM's attention
  (``relative_attention_bias``, ``grep_linear``, ``grep_a``) is renamed here first.

WavLM's separate query/key/value projections (Hugging Face and fairseq) are concatenated
into the ``in_proj`` of torchaudio's ``nn.MultiheadAttention``, as torchaudio's
``import_huggingface_model`` does. Pre-training heads (quantizer, ``final_proj``, label
embeddings, masking vector) and CTC heads are dropped.
"""

import re
from pathlib import Path

import torch
from torch import Tensor
from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

_HF_MODELS = ("wav2vec2.", "hubert.", "wavlm.")
# Hugging Face names -> torchaudio names (the modules inside are named alike).
_HF_PREFIXES = (
    ("feature_extractor.", "feature_extractor."),
    ("feature_projection.", "encoder.feature_projection."),
    ("encoder.", "encoder.transformer."),
)
# fairseq WavLM attention -> the Hugging Face names that torchaudio also uses.
_FAIRSEQ_WAVLM = (
    (re.compile(r"\.self_attn\.relative_attention_bias\."), ".attention.rel_attn_embed."),
    (re.compile(r"\.self_attn\.grep_linear\."), ".attention.gru_rel_pos_linear."),
    (re.compile(r"\.self_attn\.grep_a$"), ".attention.gru_rel_pos_const"),
)
# Pre-training / CTC heads that a front-end does not use.
_DROPPED = re.compile(
    r"^(aux\.|lm_head\.|quantizer\.|project_q\.|project_hid\.|final_proj\.|masked_spec_embed"
    r"|mask_emb|label_embs_concat)"
)
# Old weight-norm names (fairseq, Hugging Face) -> the parametrization torchaudio now uses.
_WEIGHT_NORM = {
    ".conv.weight_g": ".conv.parametrizations.weight.original0",
    ".conv.weight_v": ".conv.parametrizations.weight.original1",
}
_QKV = re.compile(r"^(encoder\.transformer\.layers\.\d+\.attention)\.q_proj\.(weight|bias)$")


def _from_huggingface(state: dict[str, Tensor]) -> dict[str, Tensor]:
    converted = {}
    for key, value in state.items():
        for model in _HF_MODELS:
            key = key.removeprefix(model)
        for hf, ta in _HF_PREFIXES:
            if key.startswith(hf):
                key = ta + key[len(hf) :]
                break
        converted[key] = value
    return converted


def _from_fairseq(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchaudio's fairseq map; WavLM-only attention keys go around it (it rejects them)."""
    wavlm, rest = {}, {}
    for key, value in state.items():
        for pattern, name in _FAIRSEQ_WAVLM:
            if pattern.search(key):
                wavlm[pattern.sub(name, key).replace("encoder.", "encoder.transformer.", 1)] = value
                break
        else:
            rest[key] = value
    return _convert_state_dict(rest) | wavlm


def _merge_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """WavLM: separate q/k/v/out projections -> ``nn.MultiheadAttention`` parameters."""
    merged = dict(state)
    for key in state:
        match = _QKV.match(key)
        if not match:
            continue
        prefix, kind = match.groups()
        parts = [merged.pop(f"{prefix}.{p}_proj.{kind}") for p in ("q", "k", "v")]
        merged[f"{prefix}.attention.in_proj_{kind}"] = torch.cat(parts)
        merged[f"{prefix}.attention.out_proj.{kind}"] = merged.pop(f"{prefix}.out_proj.{kind}")
    return merged


def to_torchaudio(state: dict[str, Tensor], wavlm: bool = False) -> dict[str, Tensor]:
    """Convert a torchaudio, fairseq or Hugging Face state dict to torchaudio names.

    ``wavlm``: the model is a WavLM (its attention is torchaudio's ``WavLMSelfAttention``).
    """
    if any(k.startswith(("encoder.transformer.", "encoder.feature_projection.")) for k in state):
        converted = dict(state)
    elif any(k.startswith((*_HF_MODELS, "feature_projection.")) for k in state):
        converted = _from_huggingface(state)
    else:
        converted = _from_fairseq(state)
    converted = {_weight_norm(k): v for k, v in converted.items() if not _DROPPED.match(k)}
    return _merge_qkv(converted) if wavlm else converted


def _weight_norm(key: str) -> str:
    for old, new in _WEIGHT_NORM.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def load_ssl_state_dict(path: str | Path, wavlm: bool = False) -> dict[str, Tensor]:
    """Read a local pretrained checkpoint of any accepted layout as a torchaudio state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"frontend.checkpoint={str(path)!r} does not exist; set it to a local pretrained "
            "SSL checkpoint (nothing is downloaded) or to null for random weights"
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
        return to_torchaudio(state, wavlm)
    except (ValueError, KeyError) as err:  # torchaudio's fairseq map rejects unknown keys
        raise ValueError(
            f"frontend.checkpoint={str(path)!r} is not a wav2vec2 state dict (wav2vec 2.0, XLS-R, "
            f"HuBERT or WavLM) "
            f"({err})"
        ) from err


__all__ = ["load_ssl_state_dict", "to_torchaudio"]
