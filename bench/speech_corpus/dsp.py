"""Signal processing for the corpus: copy-synthesis attacks and the shared recording channel.

Every attack re-synthesises real speech (16 kHz float arrays) the way a class of vocoders
does, so that the spoof keeps the words, speaker and prosody of its source:

- :func:`mel_griffin_lim`: an 80-band mel spectrogram inverted by a pseudo-inverse and
  Griffin-Lim phase (Griffin & Lim, IEEE TASSP 1984), the vocoder of early Tacotron systems.
- :func:`lpc_vocoder`: linear prediction (order 18) driven by an impulse train at the tracked
  F0 or by noise: the classic pulse/noise source-filter vocoder (Atal & Hanauer, JASA 1971).
- :func:`harmonic_noise_vocoder`: a WORLD-like analysis/synthesis (Morise et al., IEICE 2016):
  cepstrally smoothed envelope, sinusoids at every harmonic of F0 plus envelope-shaped noise.
- :func:`codec_griffin_lim`: a lossy codec round trip, then the decoded magnitude re-phased by
  a few Griffin-Lim iterations (a codec-then-vocoder chain).

:func:`channel` is applied to every utterance of every class alike (silence, noise floor,
telephone band, level), so that none of these trivial properties tells the classes apart.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.linalg import solve_toeplitz
from scipy.signal import istft, lfilter, resample_poly, stft

SR = 16_000
N_FFT = 512
HOP = 128
FRAME = 400  # 25 ms analysis frames for pitch and LPC
STEP = 80  # 5 ms


def spectrogram(x: np.ndarray) -> np.ndarray:
    """Complex STFT [bins, frames] (Hann 512, hop 128)."""
    return stft(x, SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")[2]


def inverse(spec: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`spectrogram`, cut or zero-padded to ``n`` samples."""
    x = istft(spec, SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)[1]
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def griffin_lim(magnitude: np.ndarray, n: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """Waveform whose STFT magnitude approximates ``magnitude``, from random phase."""
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    for _ in range(iters):
        spec = spectrogram(inverse(magnitude * phase, n))
        phase = spec / (np.abs(spec) + 1e-9)
    return inverse(magnitude * phase, n)


def mel_matrix(n_mels: int = 80, fmax: float = 8000.0) -> np.ndarray:
    """Triangular mel filterbank [n_mels, bins] (HTK mel scale)."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, mel(fmax), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    low, mid, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - low) / (mid - low)
    down = (high - freqs) / (high - mid)
    return np.maximum(0, np.minimum(up, down))


def mel_griffin_lim(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """80-band mel magnitude -> pseudo-inverse -> Griffin-Lim (24-40 iterations)."""
    mel = mel_matrix()
    magnitude = np.abs(spectrogram(x))
    approx = np.maximum(np.linalg.pinv(mel) @ (mel @ magnitude), 0)
    return griffin_lim(approx, len(x), int(rng.integers(24, 41)), rng)


def frames(x: np.ndarray, length: int = FRAME, step: int = STEP) -> np.ndarray:
    """Overlapping frames [count, length] (the signal zero-padded to cover the end)."""
    count = max(1, int(np.ceil(len(x) / step)))
    padded = np.pad(x, (length // 2, count * step + length))
    idx = np.arange(count)[:, None] * step + np.arange(length)[None]
    return padded[idx]


def track_pitch(x: np.ndarray, fmin: float = 60.0, fmax: float = 400.0) -> np.ndarray:
    """F0 per 5 ms frame by normalised autocorrelation (0 = unvoiced)."""
    fr = frames(x) * np.hanning(FRAME)
    fr = fr - fr.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(fr, 2 * FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :FRAME]
    ac /= ac[:, :1] + 1e-12
    lo, hi = int(SR / fmax), int(SR / fmin)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    strength = ac[np.arange(len(ac)), lag]
    energy = np.sqrt(np.mean(fr**2, axis=1))
    loud = energy > 0.03 * np.percentile(energy, 95)
    f0 = np.where((strength > 0.45) & loud, SR / lag, 0.0)
    # A 3-frame median removes isolated octave jumps and voicing flickers.
    padded = np.pad(f0, 1, mode="edge")
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def _pulses(f0: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(impulse train with unit power in voiced parts, voicing per sample) from frame F0."""
    f0_s = np.repeat(f0, STEP)[:n]
    f0_s = np.pad(f0_s, (0, n - len(f0_s)), mode="edge")
    voiced = f0_s > 0
    phase = np.cumsum(np.where(voiced, f0_s, 100.0) / SR) + rng.random()
    impulses = np.diff(np.floor(phase), prepend=np.floor(phase[0]))
    return impulses * np.sqrt(SR / np.where(voiced, f0_s, 100.0)), voiced.astype(float)


def lpc_vocoder(x: np.ndarray, rng: np.random.Generator, order: int = 18) -> np.ndarray:
    """Pulse/noise excited all-pole re-synthesis, 25 ms frames every 5 ms, overlap-added."""
    n = len(x)
    emphasised = lfilter([1, -0.97], [1], x)
    fr = frames(emphasised) * np.hamming(FRAME)
    f0 = track_pitch(x)
    pulses, voiced = _pulses(f0, n, rng)
    excitation = np.where(voiced > 0, pulses, rng.standard_normal(n))
    exc_frames = frames(excitation)
    window = np.hanning(FRAME)
    out = np.zeros(len(fr) * STEP + 2 * FRAME)
    for i, frame in enumerate(fr):
        ac = np.correlate(frame, frame, "full")[FRAME - 1 : FRAME + order]
        if ac[0] <= 1e-10:
            continue
        ac[0] *= 1.0001  # white-noise correction keeps the system well conditioned
        a = solve_toeplitz(ac[:order], ac[1 : order + 1])
        gain = np.sqrt(max(ac[0] - a @ ac[1 : order + 1], 1e-12) / FRAME)
        synth = lfilter([gain], np.concatenate([[1.0], -a]), exc_frames[i]) * window
        out[i * STEP : i * STEP + FRAME] += synth
    y = out[FRAME // 2 : FRAME // 2 + n]
    return lfilter([1], [1, -0.97], y) / 2.0  # de-emphasis; Hann at 5 ms hop sums to 2.5


def envelope(x: np.ndarray, lifter: int) -> np.ndarray:
    """Cepstrally smoothed magnitude envelope [bins, frames] of :func:`spectrogram`."""
    log_mag = np.log(np.abs(spectrogram(x)) + 1e-7)
    cep = np.fft.irfft(log_mag, axis=0)
    cep[lifter + 1 : -lifter] = 0
    return np.exp(np.fft.rfft(cep, axis=0).real)


def harmonic_noise_vocoder(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics of the tracked F0 weighted by the smoothed envelope, plus noise
    shaped by the same envelope in unvoiced parts (and weakly above 4 kHz when voiced)."""
    n = len(x)
    env = envelope(x, int(rng.integers(24, 40)))  # [bins, stft frames]
    f0 = track_pitch(x)
    f0_s = np.interp(np.arange(n), np.arange(len(f0)) * STEP, f0)
    voiced = np.interp(np.arange(n), np.arange(len(f0)) * STEP, (f0 > 0).astype(float))
    f0_s = np.where(f0_s > 40, f0_s, 100.0)
    phase = 2 * np.pi * np.cumsum(f0_s) / SR
    frame_of_sample = np.minimum(np.arange(n) // HOP, env.shape[1] - 1)
    voiced_part = np.zeros(n)
    bin_hz = SR / N_FFT
    for k in range(1, int(SR / 2 / 60)):
        freq = k * f0_s
        active = freq < SR / 2 - 200
        if not active.any():
            break
        bins = np.minimum(np.round(freq / bin_hz).astype(int), env.shape[0] - 1)
        amp = env[bins, frame_of_sample] * active
        voiced_part += amp * np.cos(k * phase + rng.uniform(0, 2 * np.pi))
    voiced_part *= np.sqrt(2 * f0_s / SR) * voiced  # harmonic power ~ envelope power density
    noise_spec = spectrogram(rng.standard_normal(n)) * env
    freqs = np.linspace(0, SR / 2, env.shape[0])[:, None]
    v_frames = voiced[np.minimum(np.arange(env.shape[1]) * HOP, n - 1)][None]
    aperiodic = np.where(freqs > 4000, 0.3, 0.05) * v_frames + (1 - v_frames)
    return voiced_part + inverse(noise_spec * aperiodic, n)


def sox(x: np.ndarray, out_args: list[str], in_rate: int = SR) -> np.ndarray:
    """``x`` written at ``in_rate``, passed through ``sox in <out_args> out.wav``, read back."""
    tmp = Path(tempfile.mkdtemp(prefix="speech_corpus_"))
    try:
        src = tmp / "in.wav"
        sf.write(src, np.clip(x, -1, 1), in_rate, "PCM_16")
        coded = tmp / f"coded.{out_args[-1]}"
        subprocess.run(["sox", str(src), *out_args[:-1], str(coded)], check=True)
        back = tmp / "back.wav"
        subprocess.run(["sox", str(coded), "-r", str(SR), "-c", "1", str(back)], check=True)
        y, _ = sf.read(back, dtype="float64")
        return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def codec_griffin_lim(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vorbis at its lowest quality, then the decoded magnitude sharpened (power 1.1-1.3)
    and re-phased by 4-12 Griffin-Lim iterations."""
    peak = np.abs(x).max() + 1e-9
    coded = sox(0.5 * x / peak, ["-C", "-1", "ogg"]) * peak / 0.5
    magnitude = np.abs(spectrogram(coded)) ** rng.uniform(1.1, 1.3)
    return griffin_lim(magnitude, len(x), int(rng.integers(4, 13)), rng)


# --------------------------------------------------------------------------- channel


def active_rms(x: np.ndarray) -> float:
    """RMS over the 10 ms frames within 30 dB of the loudest (a speech level)."""
    fr = frames(x, 160, 160)
    energy = np.mean(fr**2, axis=1)
    active = energy > energy.max() * 1e-3
    return float(np.sqrt(energy[active].mean() + 1e-20))


def trim(x: np.ndarray, floor_db: float = 35.0) -> np.ndarray:
    """Cut leading/trailing 10 ms frames quieter than ``floor_db`` below the loudest."""
    fr = frames(x, 160, 160)[:, :160]
    energy = np.mean(fr**2, axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-floor_db / 10))
    if not loud.size:
        return x
    start = max(0, loud[0] * 160 - 80)
    return x[start : min(len(x), (loud[-1] + 1) * 160)]


TELEPHONE_CODECS = (
    ["-r", "8000", "-e", "gsm-full-rate", "gsm"],
    ["-r", "8000", "-e", "u-law", "wav"],
    ["-r", "8000", "-e", "a-law", "wav"],
    ["-r", "8000", "wav"],
)


def telephone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """300-3400 Hz band, 8 kHz sampling and one of GSM / mu-law / A-law / linear PCM."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
    band = sosfilt(sos, x)
    peak = np.abs(band).max() + 1e-9
    args = TELEPHONE_CODECS[int(rng.integers(len(TELEPHONE_CODECS)))]
    return sox(0.5 * band / peak, args) * peak / 0.5


def channel(
    x: np.ndarray,
    rng: np.random.Generator,
    narrow: bool,
    lead: float,
    trail: float,
    level_db: float,
    snr_db: float,
) -> np.ndarray:
    """The recording chain of every utterance: trimmed speech with ``lead``/``trail`` seconds
    of silence, a pink-ish noise floor ``snr_db`` below the speech level, the telephone band
    when ``narrow``, and an RMS level of ``level_db`` dBFS."""
    x = trim(x)
    x = x / active_rms(x)
    x = np.concatenate([np.zeros(int(lead * SR)), x, np.zeros(int(trail * SR))])
    noise = lfilter([1.0], [1.0, -rng.uniform(0.5, 0.95)], rng.standard_normal(len(x)))
    x = x + noise / np.sqrt(np.mean(noise**2)) * 10 ** (-snr_db / 20)
    if narrow:
        x = telephone(x, rng)
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)
    peak = np.abs(x).max()
    return x * (0.98 / peak) if peak > 0.98 else x


def resample(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` at ``rate`` Hz resampled to 16 kHz."""
    if rate == SR:
        return x
    g = np.gcd(rate, SR)
    return resample_poly(x, SR // g, rate // g)
