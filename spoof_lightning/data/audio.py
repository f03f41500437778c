"""Audio decoding (soundfile), resampling, mono mix-down and crop/pad policies.

AASIST and RawNet2 train on 64,600-sample (~4 s) excerpts: a random crop of long
utterances, repeat-padding of short ones; evaluation takes the first 64,600 samples,
repeat-padded (Jung et al., "AASIST", ICASSP 2022). Repeat-padding tiles the waveform
instead of appending silence, which would be a trivially learnable cue.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

CropPolicy = Literal["first", "random"]
PadPolicy = Literal["repeat", "zero"]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
# AudioError reasons that the preflight reports as their own kinds of problem.
TRUNCATED = "truncated file (fewer samples than its header declares)"
EMPTY = "empty audio (0 samples)"
NON_FINITE = "audio contains NaN or infinite samples"


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
    return decode_audio(path, target_sr, path)


def decode_audio(
    source: str | Path | BinaryIO, target_sr: int | None = 16000, name: str | Path = "<bytes>"
) -> np.ndarray:
    """Decode a file or file-like object (e.g. a tar member) like :func:`load_audio`.

    ``name`` identifies the source in :class:`AudioError` messages.
    """
    try:
        with sf.SoundFile(source) as fh:
            sr, declared = fh.samplerate, fh.frames
            data = fh.read(dtype="float32", always_2d=True)
            short = _riff_shortfall(source) if fh.format in ("WAV", "WAVEX", "RF64") else 0
            exact = fh.format not in ("MPEG", "OGG")  # their frame counts are estimates
    except Exception as err:  # libsndfile reports corrupt/truncated files in many ways
        raise AudioError(name, f"cannot decode audio ({type(err).__name__}: {err})") from err
    if short > 0 or (exact and 0 < len(data) < declared):
        raise AudioError(name, TRUNCATED)
    if data.shape[0] == 0:
        raise AudioError(name, EMPTY)
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(x).all():
        raise AudioError(name, NON_FINITE)
    if target_sr is not None and sr != target_sr:
        x = resample(x, sr, target_sr)
    return np.ascontiguousarray(x, dtype=np.float32)


def _riff_shortfall(source: str | Path | BinaryIO) -> int:
    """Bytes missing from a RIFF/WAVE ``data`` chunk (libsndfile silently reads what is there)."""
    fh = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    try:
        fh.seek(0, 2)
        total = fh.tell()
        fh.seek(12)
        while (header := fh.read(8)) and len(header) == 8:
            chunk, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"data":
                return max(0, fh.tell() + size - total) if size != 0xFFFFFFFF else 0
            fh.seek(size + size % 2, 1)
        return 0
    finally:
        if isinstance(source, str | Path):
            fh.close()
        else:
            fh.seek(0)


FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # the only sample formats that can hold NaN or inf


def check_audio(path: str | Path) -> int:
    """Frames of ``path`` after the checks of ``preflight=header``; raises :class:`AudioError`.

    Cheaper than a decode, it still catches what would fail mid-epoch: an unreadable
    header, a truncated file (a WAV whose ``data`` chunk runs past the end; for the other
    formats with exact frame counts, e.g. FLAC, the last frame is read, which fails when
    the end is missing) and non-finite samples (float WAV/AIFF files are decoded in
    full: NaN and inf exist in no other sample format). MP3 and Ogg frame counts are
    estimates, so their truncation is only found by a decode.
    """
    try:
        fh = sf.SoundFile(str(path))
    except Exception as err:
        raise AudioError(path, f"cannot read header ({type(err).__name__}: {err})") from err
    with fh:
        frames, fmt = fh.frames, fh.format
        try:
            if frames > 0 and fh.subtype in FLOAT_SUBTYPES:
                if not np.isfinite(fh.read(dtype="float32")).all():
                    raise AudioError(path, NON_FINITE)
            elif frames > 0 and fmt not in ("MPEG", "OGG"):
                fh.seek(frames - 1)
                if len(fh.read(1, dtype="float32")) != 1:
                    raise AudioError(path, TRUNCATED)
        except AudioError:
            raise
        except Exception as err:  # libsndfile reports a missing end in many ways
            raise AudioError(path, f"{TRUNCATED}: {type(err).__name__}: {err}") from err
    if fmt in ("WAV", "WAVEX", "RF64") and _riff_shortfall(path) > 0:
        raise AudioError(path, TRUNCATED)
    if frames == 0:
        raise AudioError(path, EMPTY)
    return frames


def repeat_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Tile ``x`` along its last axis until it has ``n`` samples (truncate when longer)."""
    length = x.shape[-1]
    if length == 0:
        raise ValueError("cannot repeat-pad an empty waveform")
    if length >= n:
        return x[..., :n]
    reps = (1,) * (x.ndim - 1) + (-(-n // length),)
    return np.tile(x, reps)[..., :n]


def zero_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Append zeros along the last axis until ``x`` has ``n`` samples (truncate when longer)."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])])


def random_crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A window of ``n`` samples at a uniform offset along the last axis (all when shorter)."""
    length = x.shape[-1]
    if length <= n:
        return x
    start = int(rng.integers(0, length - n + 1))
    return x[..., start : start + n]


def crop_to(
    x: np.ndarray, n: int, policy: CropPolicy = "first", rng: np.random.Generator | None = None
) -> np.ndarray:
    """At most ``n`` samples of ``x`` along the last axis: the ``first`` or a ``random`` window."""
    if policy == "random":
        if rng is None:
            raise ValueError("crop='random' needs an rng")
        return random_crop(x, n, rng)
    if policy == "first":
        return x[..., :n]
    raise ValueError(f"unknown crop policy {policy!r}; choose 'first' or 'random'")


def pad_to(x: np.ndarray, n: int, policy: PadPolicy = "repeat") -> np.ndarray:
    """``x`` padded (``repeat`` or ``zero``) or cut to ``n`` samples along the last axis."""
    if policy == "repeat":
        return repeat_pad(x, n)
    if policy == "zero":
        return zero_pad(x, n)
    raise ValueError(f"unknown pad policy {policy!r}; choose 'repeat' or 'zero'")


def fix_length(
    x: np.ndarray,
    n: int,
    crop: CropPolicy = "first",
    pad: PadPolicy = "repeat",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop (``first`` or ``random``) then pad (``repeat`` or ``zero``) ``x`` to ``n`` samples.

    Works on the last axis, so stacking a waveform with per-sample targets crops both alike.
    """
    return pad_to(crop_to(x, n, crop, rng), n, pad)


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "CropPolicy",
    "PadPolicy",
    "check_audio",
    "crop_to",
    "decode_audio",
    "fix_length",
    "load_audio",
    "pad_to",
    "random_crop",
    "repeat_pad",
    "resample",
    "zero_pad",
]
