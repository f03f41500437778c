"""Load the released AASIST / AASIST-L checkpoints (clovaai/aasist, MIT) into our modules.

The official model is one module; here it is the fixed sinc front-end
(:class:`~spoof_lightning.frontends.sinc.SincFrontEnd`, which has no weights: its filters
are rebuilt from the config) plus the :class:`~spoof_lightning.models.aasist.AASIST`
back-end. :func:`load_official_aasist` renames the official keys to ours, checks that every
key and shape fits, and loads them; anything that does not fit is reported by name.
"""

from pathlib import Path

import torch
from torch import Tensor, nn

from spoof_lightning.frontends.sinc import SincFrontEnd
from spoof_lightning.models.aasist import AASIST

_BLOCK = {"bn1": "input_norm", "bn2": "norm1", "conv_downsample": "shortcut"}
_GAT = {
    "att_weight": "att_vec",
    "proj_with_att": "proj_att",
    "proj_without_att": "proj_self",
    "bn": "norm",
}
_HSGAL = {
    "proj_type1": "in_proj1",
    "proj_type2": "in_proj2",
    "att_weight11": "att_vec11",
    "att_weight22": "att_vec22",
    "att_weight12": "att_vec12",
    "att_weightM": "att_vec_master",
    "att_projM": "att_proj_master",
    "proj_with_att": "proj_att",
    "proj_without_att": "proj_self",
    "proj_with_attM": "proj_att_master",
    "proj_without_attM": "proj_self_master",
    "bn": "norm",
}
_POOL = {"proj": "score"}


def _module_pairs() -> list[tuple[str, str, dict[str, str]]]:
    """(official prefix, our prefix, renames of the next name component) for each module."""
    pairs: list[tuple[str, str, dict[str, str]]] = [
        ("first_bn.", "stem_norm.", {}),
        ("GAT_layer_S.", "head.gat_spectral.", _GAT),
        ("GAT_layer_T.", "head.gat_temporal.", _GAT),
        ("pool_S.", "head.pool_spectral.", _POOL),
        ("pool_T.", "head.pool_temporal.", _POOL),
        ("out_layer.", "head.classifier.", {}),
        ("pos_S", "head.spectral_pos", {}),
    ]
    for i in range(6):  # official encoder.0-5 = our stages 0, 1, 2 and 3 (three blocks)
        stage, block = (i, 0) if i < 3 else (3, i - 3)
        pairs.append((f"encoder.{i}.0.", f"stages.{stage}.{block}.", _BLOCK))
    for b in (1, 2):
        ours = f"head.branches.{b - 1}."
        pairs += [
            (f"master{b}", f"{ours}master", {}),
            (f"HtrgGAT_layer_ST{b}1.", f"{ours}layer1.", _HSGAL),
            (f"HtrgGAT_layer_ST{b}2.", f"{ours}layer2.", _HSGAL),
            (f"pool_hS{b}.", f"{ours}pool_s.", _POOL),
            (f"pool_hT{b}.", f"{ours}pool_t.", _POOL),
        ]
    return pairs


def _rename(key: str, to_ours: bool) -> str | None:
    for official, ours, renames in _module_pairs():
        src, dst = (official, ours) if to_ours else (ours, official)
        table = renames if to_ours else {v: k for k, v in renames.items()}
        if key == src:
            return dst
        if src.endswith(".") and key.startswith(src):
            first, dot, tail = key[len(src) :].partition(".")
            return dst + table.get(first, first) + dot + tail
    return None


def official_to_ours(key: str) -> str | None:
    """Our back-end key for an official AASIST key (None when it has no counterpart)."""
    return _rename(key, to_ours=True)


def ours_to_official(key: str) -> str | None:
    """The official AASIST key for one of our back-end keys (None when it has none)."""
    return _rename(key, to_ours=False)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"official AASIST checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"{path} is not a readable PyTorch state dict ({err})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def load_official_aasist(path: str | Path, frontend: nn.Module, backend: AASIST) -> None:
    """Load an official AASIST or AASIST-L checkpoint into ``frontend`` + ``backend``.

    ``frontend`` must be the fixed sinc front-end the checkpoints were trained with
    (70 filters, 129 taps, 16 kHz; ``conf/frontend/sinc.yaml``); ``backend`` an
    :class:`AASIST` built with the matching ``conf/model/aasist.yaml`` or ``aasist_l.yaml``.
    Raises ``ValueError`` naming the file and the missing / unexpected / mis-shaped keys.
    """
    path = Path(path)
    if not (
        isinstance(frontend, SincFrontEnd)
        and not frontend.learnable
        and frontend.taps == 129
        and frontend.sample_rate == 16000
        and frontend.out_channels == backend.in_channels
    ):
        raise ValueError(
            f"{path}: the official AASIST models use the fixed sinc front-end (frontend=sinc: "
            f"129 taps, 16 kHz, learnable=false, n_filters = the back-end's in_channels "
            f"{backend.in_channels}); got {frontend!r}"
        )
    state = _read_state_dict(path)
    mapped: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        ours = official_to_ours(key)
        if ours is None:
            unexpected.append(key)
        else:
            mapped[ours] = value
    own = backend.state_dict()
    unexpected += [ours_to_official(k) or k for k in mapped if k not in own]
    missing = [ours_to_official(k) or k for k in own if k not in mapped]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the AASIST back-end: missing keys {missing or 'none'}; "
            f"unexpected keys {unexpected or 'none'}"
        )
    shapes = [
        f"{ours_to_official(k)}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if v.shape != own[k].shape
    ]
    if shapes:
        raise ValueError(
            f"{path} does not fit this AASIST configuration (AASIST-L needs model=aasist_l, "
            f"AASIST model=aasist); mismatched shapes: {shapes}"
        )
    backend.load_state_dict(mapped)


__all__ = ["load_official_aasist", "official_to_ours", "ours_to_official"]
