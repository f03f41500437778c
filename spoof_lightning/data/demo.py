"""A tiny procedural corpus in the ASVspoof 2019 LA layout, for smoke tests and ``make train``.

This is a smoke corpus, not speech. "Bona fide" files are speech-like source-filter signals
(a glottal pulse train with a pitch contour, jitter and shimmer, voiced / fricative / pause
segments, moving formants, aspiration and breath noise). "Spoofed" files are fresh signals of
the same kind passed through one artificial degradation that mimics a real spoofing artifact:

====  ============================  ===================================================
A01   Griffin-Lim phase             STFT magnitude raised to a power of 1.1-1.5,
                                    phase from 0-8 Griffin-Lim iterations on random phase
A02   pulse/noise vocoder           cepstrally liftered, time-smoothed envelope driven
                                    by a jitter-free impulse train or noise (zero phase)
A03   band-limit + resample         down to 8 / 10.7 / 12 kHz and back up
A04   unit splicing                 40-200 ms pieces of a rendition taken out of order,
                                    joined without cross-fade (pitch, phase, level jumps)
A05   companding (eval only)        mu-law companding, 5-7 bit quantization
A06   vocoder + Griffin-Lim (eval)  smoothed envelope on a pulse excitation, phase by
                                    Griffin-Lim
====  ============================  ===================================================

Train and dev use A01-A04; eval uses A02, A04 (seen) and A05, A06 (unseen), the way the
ASVspoof 2019 eval set reuses two training attacks (A16 = A04, A19 = A06) among new ones.
Every file then goes through the same "recording channel" whatever its class (spectral tilt,
background noise at 35-60 dB SNR, level of -35 to -18 dBFS RMS), and durations (1-4 s) and
levels are drawn by stratified sampling per class, so neither length nor level tells the
classes apart. Speakers are disjoint between splits; bona fide : spoof is 1 : 4.

:func:`ensure_demo_corpus` is deterministic (same arguments, same bytes) and idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft as sfft
import soundfile as sf
from scipy.ndimage import uniform_filter1d
from scipy.signal import lfilter, resample_poly

from spoof_lightning.cli import CommandParser

SAMPLE_RATE = 16_000
VERSION = 2
MARKER = ".demo_corpus.json"
BONAFIDE_FRACTION = 0.2
SPLITS = {  # split -> (protocol file suffix, utterance prefix, attacks)
    "train": ("train.trn", "LA_T_", ("A01", "A02", "A03", "A04")),
    "dev": ("dev.trl", "LA_D_", ("A01", "A02", "A03", "A04")),
    "eval": ("eval.trl", "LA_E_", ("A02", "A04", "A05", "A06")),
}

N_FFT = 512
HOP = N_FFT // 4
_PAD = N_FFT - HOP  # left padding so that every sample is covered by 4 frames
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
_OLA_GAIN = 1.5  # sum of squared periodic Hann windows at hop N_FFT / 4

# Peterson & Barney style adult-male formants F1-F4 (Hz) for a few vowels.
_VOWELS = np.array(
    [
        [270, 2290, 3010, 3500],
        [530, 1840, 2480, 3550],
        [730, 1090, 2440, 3450],
        [570, 840, 2410, 3400],
        [300, 870, 2240, 3350],
        [500, 1500, 2500, 3500],
        [660, 1720, 2410, 3500],
    ],
    dtype=np.float64,
)
_NASAL = np.array([250, 1100, 2200, 3300], dtype=np.float64)


# --------------------------------------------------------------------------- STFT helpers


def _n_frames(n: int) -> int:
    return (_PAD + n - 1) // HOP + 1


def _stft(x: np.ndarray) -> np.ndarray:
    """Complex64 STFT [frames, N_FFT // 2 + 1] with periodic Hann, hop N_FFT / 4."""
    frames = _n_frames(len(x))
    padded = np.zeros((frames - 1) * HOP + N_FFT, dtype=np.float32)
    padded[_PAD : _PAD + len(x)] = x
    view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return sfft.rfft(view * _WINDOW, axis=-1)


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft` (exact for an unmodified STFT)."""
    frames = sfft.irfft(spec.astype(np.complex64), n=N_FFT, axis=-1) * _WINDOW
    count = frames.shape[0]
    chunks = frames.reshape(count, 4, HOP)
    out = np.zeros((count + 3) * HOP, dtype=np.float32)
    for k in range(4):  # frame i, chunk k lands at hop i + k: each k is one contiguous slice
        out[k * HOP : (k + count) * HOP] += chunks[:, k, :].reshape(-1)
    return out[_PAD : _PAD + n] / _OLA_GAIN


def _resonators(freq: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Complex response [frames, bins] of a cascade of unit-DC-gain two-pole resonators.

    ``freq`` and ``bw`` are [frames, K] in Hz; one all-pole filter per STFT frame makes the
    cascade time-varying (the formants move) while keeping its minimum-phase response.
    """
    r = np.exp(-np.pi * bw / SAMPLE_RATE)
    c1 = 2 * r * np.cos(2 * np.pi * freq / SAMPLE_RATE)
    c2 = r**2
    poly = np.zeros((freq.shape[0], 2 * freq.shape[1] + 1))
    poly[:, 0] = 1.0
    for k in range(freq.shape[1]):  # multiply by (1 - c1 z^-1 + c2 z^-2)
        prev = poly.copy()
        poly[:, 1:] -= c1[:, k : k + 1] * prev[:, :-1]
        poly[:, 2:] += c2[:, k : k + 1] * prev[:, :-2]
    gain = np.prod(1 - c1 + c2, axis=1, keepdims=True).astype(np.float32)
    return (gain / sfft.rfft(poly.astype(np.float32), n=N_FFT, axis=-1)).astype(np.complex64)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 with edge padding (same length)."""
    return uniform_filter1d(x, width, axis=0, mode="nearest") if width > 1 else x


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


# --------------------------------------------------------------------------- speech-like source


@dataclass(frozen=True)
class _Speaker:
    f0: float  # Hz
    formant_scale: float  # vocal tract length factor
    jitter: float
    shimmer: float
    breathiness: float
    open_quotient: float
    rate: float  # speaking-rate factor


def _speaker(rng: np.random.Generator) -> _Speaker:
    female = rng.random() < 0.5
    return _Speaker(
        f0=rng.uniform(165, 250) if female else rng.uniform(85, 140),
        formant_scale=rng.uniform(1.05, 1.18) if female else rng.uniform(0.9, 1.02),
        jitter=rng.uniform(0.005, 0.02),
        shimmer=rng.uniform(0.03, 0.1),
        breathiness=rng.uniform(0.02, 0.12),
        open_quotient=rng.uniform(0.5, 0.75),
        rate=rng.uniform(0.8, 1.25),
    )


@dataclass
class _Speech:
    wave: np.ndarray  # [n] float64, unit RMS
    f0: np.ndarray  # [n] Hz, defined everywhere (also in unvoiced parts)
    voiced: np.ndarray  # [n] voicing gate in [0, 1]


def _segments(rng: np.random.Generator, frames: int, spk: _Speaker) -> dict[str, np.ndarray]:
    """Frame-level control tracks: formants, voiced / unvoiced amplitudes, fricative centre."""
    formants = np.empty((frames, 4))
    amp_v = np.zeros(frames)
    amp_u = np.zeros(frames)
    fric = np.full(frames, 4000.0)
    vowel = _VOWELS[rng.integers(len(_VOWELS))]
    pos = int(rng.integers(0, 30))  # leading silence up to ~0.24 s
    formants[:pos] = vowel
    while pos < frames:
        length = max(3, int(rng.uniform(8, 30) / spk.rate))
        end = min(frames, pos + length)
        kind = rng.choice(4, p=[0.55, 0.15, 0.2, 0.1])  # vowel, nasal, fricative, pause
        if kind == 0:
            vowel = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.92, 1.08, 4)
            formants[pos:end] = vowel
            amp_v[pos:end] = rng.uniform(0.5, 1.0)
        elif kind == 1:
            formants[pos:end] = _NASAL * rng.uniform(0.92, 1.08, 4)
            amp_v[pos:end] = rng.uniform(0.15, 0.35)
        elif kind == 2:
            formants[pos:end] = vowel
            amp_u[pos:end] = rng.uniform(0.05, 0.25)
            fric[pos:end] = rng.uniform(2500, 7000)
        else:
            formants[pos:end] = vowel
            if rng.random() < 0.4:  # an audible breath in the pause
                amp_u[pos:end] = rng.uniform(0.01, 0.04)
                fric[pos:end] = rng.uniform(1200, 2500)
        pos = end
    tail = int(rng.integers(0, 30))  # trailing silence
    if tail:
        amp_v[-tail:] = 0
        amp_u[-tail:] = 0
    return {
        "formants": _smooth(formants * spk.formant_scale, 7),  # coarticulation
        "amp_v": _smooth(amp_v, 3),
        "amp_u": _smooth(amp_u, 3),
        "fric": _smooth(fric, 5),
    }


def _f0_track(rng: np.random.Generator, frames: int, spk: _Speaker) -> np.ndarray:
    """Frame-level pitch: declination, slow wander and a few accents (Hz)."""
    t = np.linspace(0, 1, frames)
    declination = 1 + rng.uniform(0.05, 0.15) * (0.5 - t)
    wander = _smooth(rng.standard_normal(frames), 25) * rng.uniform(0.1, 0.3)
    accents = np.zeros(frames)
    for centre in rng.integers(0, frames, size=max(1, frames // 120)):
        accents += rng.uniform(0.05, 0.2) * np.exp(-0.5 * ((np.arange(frames) - centre) / 8) ** 2)
    return spk.f0 * declination * (1 + wander + accents)


def _glottal(rng: np.random.Generator, f0: np.ndarray, spk: _Speaker) -> np.ndarray:
    """Derivative of a Rosenberg glottal flow pulse train with jitter and shimmer."""
    n = len(f0)
    period_index = (np.arange(n) * (spk.f0 / SAMPLE_RATE)).astype(np.int64)
    jitter = rng.standard_normal(period_index[-1] + 2)[period_index] * spk.jitter
    phase = np.cumsum(f0 * (1 + jitter) / SAMPLE_RATE) + rng.random()
    cycles = phase.astype(np.int64)
    # One Rosenberg pulse tabulated over a period: cosine opening, quarter-cosine closing.
    frac = np.arange(1024) / 1024
    opening, closing = 0.6 * spk.open_quotient, 0.4 * spk.open_quotient
    shape = np.where(frac < opening, 0.5 * (1 - np.cos(np.pi * frac / opening)), 0.0)
    closing_part = (frac >= opening) & (frac < spk.open_quotient)
    shape[closing_part] = np.cos(0.5 * np.pi * (frac[closing_part] - opening) / closing)
    flow = shape[((phase - cycles) * 1024).astype(np.int64)]
    shimmer = 1 + spk.shimmer * rng.standard_normal(cycles[-1] + 1)[cycles]
    return np.diff(flow, prepend=flow[0]) * shimmer * np.sqrt(100.0 / f0)


def _speech(rng: np.random.Generator, n: int, spk: _Speaker) -> _Speech:
    """One speech-like utterance of ``n`` samples (see the module docstring)."""
    frames = _n_frames(n)
    ctrl = _segments(rng, frames, spk)
    f0_frames = _f0_track(rng, frames, spk)
    centres = np.arange(frames) * HOP - (_PAD - N_FFT // 2)  # frame centres in samples
    samples = np.arange(n)
    f0 = np.interp(samples, centres, f0_frames)
    amp_v = np.interp(samples, centres, ctrl["amp_v"])
    amp_u = np.interp(samples, centres, ctrl["amp_u"])

    pulses = _glottal(rng, f0, spk)
    pulses /= np.sqrt(np.mean(pulses**2)) + 1e-12
    noise = rng.standard_normal(n, dtype=np.float32)  # aspiration and frication share it
    voiced_src = (pulses + spk.breathiness * noise) * amp_v
    unvoiced_src = noise * amp_u

    bandwidths = np.array([60.0, 90.0, 130.0, 180.0]) * rng.uniform(0.8, 1.5, 4)
    bw = bandwidths * (1 + 0.2 * _smooth(rng.standard_normal((frames, 1)), 15))
    h_voiced = _resonators(ctrl["formants"], bw)
    h_fric = _resonators(ctrl["fric"][:, None], 0.4 * ctrl["fric"][:, None])
    h_fric /= np.abs(h_fric).max(axis=1, keepdims=True)
    spec = _stft(voiced_src) * h_voiced + _stft(unvoiced_src) * h_fric
    wave = _istft(spec, n)
    voiced = np.clip(amp_v / (amp_v.max() + 1e-12) * 4, 0, 1)
    return _Speech(wave=_normalize(wave), f0=f0, voiced=voiced)


# --------------------------------------------------------------------------- attacks


def _griffin_lim(magnitude: np.ndarray, n: int, iters: int, rng: np.random.Generator):
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape, dtype=np.float32))
    for _ in range(iters):
        wave = _istft(magnitude * phase, n)
        spec = _stft(wave)
        phase = spec / (np.abs(spec) + 1e-12)
    return _istft(magnitude * phase, n)


def _smooth_envelope(wave: np.ndarray, order: int, width: int) -> np.ndarray:
    """Over-smoothed magnitude envelope [frames, bins]: cepstral liftering + time smoothing."""
    log_mag = np.log(np.abs(_stft(wave)) + 1e-6)
    cepstrum = sfft.irfft(log_mag, n=N_FFT, axis=-1)
    cepstrum[:, order + 1 : N_FFT - order] = 0
    smoothed = sfft.rfft(cepstrum, axis=-1).real
    return np.exp(_smooth(smoothed, width))


def _pulse_noise_excitation(rng: np.random.Generator, speech: _Speech) -> np.ndarray:
    """Vocoder excitation: a jitter-free unit impulse train in voiced parts, noise elsewhere."""
    phase = np.cumsum(speech.f0 / SAMPLE_RATE) + rng.random()
    impulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])) * np.sqrt(
        SAMPLE_RATE / speech.f0
    )
    noise = rng.standard_normal(len(phase), dtype=np.float32)
    return speech.voiced * impulses + (1 - speech.voiced) * noise + 0.03 * noise


def _a01_griffin_lim(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    wave = _speech(rng, n, spk).wave
    magnitude = np.abs(_stft(wave)) ** rng.uniform(1.1, 1.5)  # Tacotron-style sharpening
    return _griffin_lim(magnitude, n, int(rng.integers(0, 9)), rng)


def _a02_vocoder(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    speech = _speech(rng, n, spk)
    envelope = _smooth_envelope(speech.wave, int(rng.integers(8, 21)), int(rng.integers(3, 10)))
    excitation = _stft(_pulse_noise_excitation(rng, speech))
    return _istft(excitation * envelope, n)


def _a03_band_limit(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    wave = _speech(rng, n, spk).wave
    up, down = [(1, 2), (2, 3), (3, 4)][rng.integers(3)]
    low = resample_poly(wave, up, down)
    return resample_poly(low, down, up)[:n]


def _a04_splice(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    source = _speech(rng, n, spk).wave  # the "unit database", read out of order
    out = np.empty(n)
    pos = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(0.04, 0.2) * SAMPLE_RATE))
        start = int(rng.integers(0, n - length + 1))
        out[pos : pos + length] = source[start : start + length] * 10 ** (rng.uniform(-4, 4) / 20)
        pos += length
    return out


def _a05_companding(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    wave = _speech(rng, n, spk).wave
    wave = wave / np.abs(wave).max()
    mu = 255.0
    compressed = np.sign(wave) * np.log1p(mu * np.abs(wave)) / np.log1p(mu)
    levels = 2 ** (int(rng.integers(5, 8)) - 1)
    quantized = np.round(compressed * levels) / levels
    return np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(mu)) / mu


def _a06_vocoder_griffin_lim(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    speech = _speech(rng, n, spk)
    envelope = _smooth_envelope(speech.wave, int(rng.integers(10, 25)), int(rng.integers(1, 6)))
    excitation = np.abs(_stft(_pulse_noise_excitation(rng, speech)))
    return _griffin_lim(excitation * envelope, n, int(rng.integers(2, 9)), rng)


ATTACKS: dict[str, Callable[[np.random.Generator, int, _Speaker], np.ndarray]] = {
    "A01": _a01_griffin_lim,
    "A02": _a02_vocoder,
    "A03": _a03_band_limit,
    "A04": _a04_splice,
    "A05": _a05_companding,
    "A06": _a06_vocoder_griffin_lim,
}


def _bonafide(rng: np.random.Generator, n: int, spk: _Speaker) -> np.ndarray:
    return _speech(rng, n, spk).wave


def _channel(rng: np.random.Generator, wave: np.ndarray, level_db: float) -> np.ndarray:
    """The same recording channel for every class: tilt, background noise, level, clipping guard."""
    wave = lfilter([1.0, -rng.uniform(-0.2, 0.4)], [1.0], _normalize(wave))
    noise = lfilter([1.0], [1.0, -rng.uniform(0.0, 0.95)], rng.standard_normal(len(wave)))
    wave = wave + _normalize(noise) * 10 ** (-rng.uniform(35, 60) / 20)
    wave = _normalize(wave) * 10 ** (level_db / 20)
    peak = np.abs(wave).max()
    return wave * (0.99 / peak) if peak > 0.99 else wave


# --------------------------------------------------------------------------- corpus


def _stratified(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """``count`` draws from U(low, high), one per equal-width stratum, in random order."""
    return low + (high - low) * (rng.permutation(count) + rng.random(count)) / max(count, 1)


def _plan_split(
    rng: np.random.Generator, split: str, n: int, speakers: list[str]
) -> list[tuple[str, str, str, float, float]]:
    """Rows (speaker, utt_id, attack, duration_s, level_db) of one split, shuffled."""
    _, prefix, attacks = SPLITS[split]
    n_bona = max(1, round(n * BONAFIDE_FRACTION))
    groups = ["-"] + list(attacks)
    counts = [n_bona] + [
        (n - n_bona) // len(attacks) + (i < (n - n_bona) % len(attacks))
        for i in range(len(attacks))
    ]
    rows_attack: list[str] = []
    durations: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for group, count in zip(groups, counts, strict=True):
        rows_attack += [group] * count
        durations.append(_stratified(rng, count, 1.0, 4.0))
        levels.append(_stratified(rng, count, -35.0, -18.0))
    ids = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    order = rng.permutation(n)
    dur, lev = np.concatenate(durations), np.concatenate(levels)
    return [
        (
            speakers[k % len(speakers)],
            f"{prefix}{ids[k]}",
            rows_attack[i],
            float(dur[i]),
            float(lev[i]),
        )
        for k, i in enumerate(order)
    ]


def _speaker_ids(rng: np.random.Generator, sizes: dict[str, int]) -> dict[str, list[str]]:
    """Disjoint speaker ids per split (about 30 utterances per speaker, 2-20 speakers)."""
    counts = {split: int(np.clip(n // 30, 2, 20)) for split, n in sizes.items()}
    numbers = rng.choice(np.arange(1, 1000), size=sum(counts.values()), replace=False)
    out, start = {}, 0
    for split, count in counts.items():
        out[split] = [f"LA_{num:04d}" for num in sorted(numbers[start : start + count])]
        start += count
    return out


def _marker_params(seed: int, sizes: dict[str, int]) -> dict[str, int]:
    return {"version": VERSION, "seed": seed, **{f"n_{k}": v for k, v in sizes.items()}}


def _is_complete(la_dir: Path, params: dict[str, int]) -> bool:
    try:
        if json.loads((la_dir / MARKER).read_text()) != params:
            return False
    except (OSError, ValueError):
        return False
    for split, (suffix, _, _) in SPLITS.items():
        protocol = la_dir / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{suffix}.txt"
        flac_dir = la_dir / f"ASVspoof2019_LA_{split}" / "flac"
        if not protocol.is_file() or not flac_dir.is_dir():
            return False
        if sum(1 for _ in os.scandir(flac_dir)) != params[f"n_{split}"]:
            return False
    return True


def _build(la_dir: Path, seed: int, sizes: dict[str, int]) -> None:
    rng = np.random.default_rng([seed, VERSION])
    speakers = _speaker_ids(rng, sizes)
    voices = {
        spk: _speaker(np.random.default_rng([seed, VERSION, int(spk[3:])]))
        for spk_list in speakers.values()
        for spk in spk_list
    }
    protocols = la_dir / "ASVspoof2019_LA_cm_protocols"
    protocols.mkdir(parents=True)
    for split_index, (split, (suffix, _, _)) in enumerate(SPLITS.items()):
        flac_dir = la_dir / f"ASVspoof2019_LA_{split}" / "flac"
        flac_dir.mkdir(parents=True)
        lines = []
        for i, (spk, utt, attack, duration, level) in enumerate(
            _plan_split(rng, split, sizes[split], speakers[split])
        ):
            utt_rng = np.random.default_rng([seed, VERSION, split_index, i])
            n = int(duration * SAMPLE_RATE)
            make = _bonafide if attack == "-" else ATTACKS[attack]
            wave = _channel(utt_rng, make(utt_rng, n, voices[spk]), level)
            sf.write(
                flac_dir / f"{utt}.flac",
                wave.astype(np.float32),
                SAMPLE_RATE,
                "PCM_16",
                compression_level=0.0,
            )
            key = "bonafide" if attack == "-" else "spoof"
            lines.append(f"{spk} {utt} - {attack} {key}\n")
        (protocols / f"ASVspoof2019.LA.cm.{suffix}.txt").write_text("".join(lines))
    (la_dir / MARKER).write_text(json.dumps(_marker_params(seed, sizes), indent=1) + "\n")


def ensure_demo_corpus(
    root: str | Path, seed: int = 0, n_train: int = 600, n_dev: int = 300, n_eval: int = 600
) -> Path:
    """Build the demo corpus under ``root/LA`` unless an identical one is already there.

    The corpus is written to a temporary sibling directory and renamed into place, so an
    interrupted build never looks complete; a demo corpus built with other arguments is
    replaced. A ``root/LA`` that is not a demo corpus is never touched (FileExistsError).
    Returns ``root``.
    """
    root = Path(root)
    sizes = {"train": n_train, "dev": n_dev, "eval": n_eval}
    for split, n in sizes.items():
        if n < 5:
            raise ValueError(f"ensure_demo_corpus: n_{split}={n}, need at least 5 utterances")
    params = _marker_params(seed, sizes)
    la_dir = root / "LA"
    if _is_complete(la_dir, params):
        return root
    if la_dir.exists() and not (la_dir / MARKER).is_file():
        raise FileExistsError(
            f"{la_dir} exists and is not a demo corpus (no {MARKER}); not touched"
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".LA.partial-", dir=root))
    try:
        _build(tmp / "LA", seed, sizes)
        if la_dir.exists():
            if _is_complete(la_dir, params):  # another process finished first
                return root
            shutil.rmtree(la_dir)  # a demo corpus with other parameters, or damaged
        try:
            os.rename(tmp / "LA", la_dir)
        except OSError:
            if not _is_complete(la_dir, params):  # lost a race against a different build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def main(argv: list[str] | None = None) -> None:
    """``spoof-lightning demo ROOT [--seed S]``: build the demo corpus."""
    parser = CommandParser("demo", main.__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-dev", type=int, default=300)
    parser.add_argument("--n-eval", type=int, default=600)
    args = parser.parse_args(argv)
    path = ensure_demo_corpus(args.root, args.seed, args.n_train, args.n_dev, args.n_eval)
    print(path / "LA")


if __name__ == "__main__":
    main()
