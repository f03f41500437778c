"""Audio decoding (soundfile), resampling, mono mix-down and crop/pad policies.

AASIST and RawNet2 train on 64,600-sample (~4 s) excerpts: a random crop of long
utterances, repeat-padding of short ones; evaluation takes the first 64,600 samples,
repeat-padded (Jung et al., "AASIST", ICASSP 2022). Repeat-padding tiles the waveform
instead of appending silence, which would be a trivially learnable cue.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

CropPolicy = Literal["first", "random"]
PadPolicy = Literal["repeat", "zero"]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(RuntimeError):
    """An audio file that is missing, unreadable, truncated or empty (message names the file)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``) along the last axis; float32 out."""
    if orig_sr == target_sr:
        return x
    g = gcd(orig_sr, target_sr)
    return resample_poly(x, target_sr // g, orig_sr // g, axis=-1).astype(np.float32)


def load_audio(path: str | Path, target_sr: int | None = 16000) -> np.ndarray:
    """Read ``path`` as float32 mono ``[T]`` at ``target_sr`` (None keeps the file's rate).

    Multi-channel audio is averaged to mono; a file at another rate (e.g. 8 kHz
    telephone audio) is resampled. Raises :class:`AudioError` for a missing, corrupt,
    truncated or empty file, or one containing non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile reports corrupt/truncated files in many ways
        raise AudioError(path, f"cannot decode audio ({type(err).__name__}: {err})") from err
    if data.shape[0] == 0:
        raise AudioError(path, "empty audio (0 samples)")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(x).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    if target_sr is not None and sr != target_sr:
        x = resample(x, sr, target_sr)
    return np.ascontiguousarray(x, dtype=np.float32)


def audio_info(path: str | Path) -> tuple[int, int]:
    """``(frames, sample_rate)`` of a file from its header, without decoding it."""
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioError(path, f"cannot read header ({type(err).__name__}: {err})") from err
    return info.frames, info.samplerate


def repeat_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Tile ``x`` until it has ``n`` samples (truncate when longer)."""
    if len(x) == 0:
        raise ValueError("cannot repeat-pad an empty waveform")
    if len(x) >= n:
        return x[:n]
    return np.tile(x, -(-n // len(x)))[:n]


def zero_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Append zeros until ``x`` has ``n`` samples (truncate when longer)."""
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def first_n(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples (fewer when ``x`` is shorter)."""
    return x[:n]


def random_crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A window of ``n`` samples at a uniformly drawn offset (all of ``x`` when shorter)."""
    if len(x) <= n:
        return x
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start : start + n]


def fix_length(
    x: np.ndarray,
    n: int,
    crop: CropPolicy = "first",
    pad: PadPolicy = "repeat",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop (``first`` or ``random``) then pad (``repeat`` or ``zero``) ``x`` to ``n`` samples."""
    if crop == "random":
        if rng is None:
            raise ValueError("crop='random' needs an rng")
        x = random_crop(x, n, rng)
    elif crop == "first":
        x = first_n(x, n)
    else:
        raise ValueError(f"unknown crop policy {crop!r}; choose 'first' or 'random'")
    if pad == "repeat":
        return repeat_pad(x, n)
    if pad == "zero":
        return zero_pad(x, n)
    raise ValueError(f"unknown pad policy {pad!r}; choose 'repeat' or 'zero'")


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "CropPolicy",
    "PadPolicy",
    "audio_info",
    "first_n",
    "fix_length",
    "load_audio",
    "random_crop",
    "repeat_pad",
    "resample",
    "zero_pad",
]
