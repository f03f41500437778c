"""On-the-fly waveform augmentation for the training split (run inside dataset workers).

Every transform is a callable ``augment(waveform, rng) -> waveform`` on a 1-D float waveform
``[T]`` with a ``numpy.random.Generator`` passed in, so a seeded worker reproduces its
augmentations exactly. The output is float32, the same length, finite, and divided by its
peak when the peak exceeds 1 (never hard-clipped). Each transform takes ``p``, the
probability of being applied to a given waveform; :class:`Compose` chains transforms.

RawBoost follows Tak et al., "RawBoost: A Raw Data Boosting and Augmentation Method applied
to Automatic Speaker Verification Anti-Spoofing", ICASSP 2022: (1) linear and non-linear
convolutive noise, (2) impulsive signal-dependent additive noise, (3) stationary
signal-independent additive coloured noise, and their combinations. wav2vec2 XLS-R + AASIST
(Tak et al., Odyssey 2022) trains 2019/2021 LA with series 1+2 (``algo=5``) and DF with
``algo=3``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import butter, sosfilt

__all__ = [
    "AddNoise",
    "BandLimit",
    "Compose",
    "Gain",
    "RawBoost",
    "Transform",
    "colored_noise",
    "mu_law",
]


def _check(waveform: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(waveform)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"{name}: expected a 1-D float waveform [T], got shape {x.shape} dtype {x.dtype}"
        )
    return x


def _finish(y: np.ndarray) -> np.ndarray:
    """float32, finite, peak-normalized when it would overflow [-1, 1]."""
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    peak = np.abs(y).max(initial=0.0)
    if peak > 1.0:
        y = y / peak
    return y.astype(np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


PEAK_GRID = 8192  # frequency points where a RawBoost filter's peak response is measured


def bandstop_taps(n: int, low: float, high: float) -> np.ndarray:
    """Hamming-windowed band-stop FIR of odd length ``n``, edges as fractions of Nyquist.

    The taps of ``scipy.signal.firwin(n, [low, high], fs=2)`` (unit gain at DC), written
    out because firwin's argument checks cost more than the filter in RawBoost's inner loop.
    """
    m = np.arange(n) - (n - 1) / 2
    h = np.sinc(m) - high * np.sinc(high * m) + low * np.sinc(low * m)
    h *= np.hamming(n)
    return h / h.sum()


def zero_phase_response(taps: np.ndarray, nfft: int) -> np.ndarray:
    """The real ``nfft``-point frequency response of odd-length linear-phase ``taps`` centred
    on sample 0: filtering with it delays nothing (the taps' group delay is removed)."""
    centre = len(taps) // 2
    kernel = np.zeros(nfft, dtype=np.float32)
    kernel[: centre + 1] = taps[centre:]
    if centre:
        kernel[-centre:] = taps[:centre]
    return rfft(kernel).real


class Transform:
    """Base class: applies :meth:`apply` with probability ``p``, then :func:`_finish`."""

    def __init__(self, p: float = 1.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p={p} must lie in [0, 1]")
        self.p = p

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = _check(waveform, type(self).__name__)
        if self.p < 1.0 and rng.random() >= self.p:
            return _finish(x)
        y = self.apply(x.astype(np.float64), rng)
        if y.shape != x.shape:
            raise RuntimeError(f"{type(self).__name__} changed the length {x.shape} -> {y.shape}")
        return _finish(y)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order (each with its own ``p``); ``[]`` is the identity.

    ``transforms`` is a list, or a mapping of named transforms applied in its order (what
    ``conf/augment/chain.yaml`` composes: ``{rawboost: ..., codec: ...}``).
    """

    def __init__(
        self, transforms: Sequence[Transform] | Mapping[str, Transform] = (), p: float = 1.0
    ) -> None:
        super().__init__(p)
        named = transforms.items() if isinstance(transforms, Mapping) else enumerate(transforms)
        self.transforms = []
        for name, t in named:
            if not callable(t):
                raise TypeError(f"Compose: transforms[{name}] is {t!r}, not a callable transform")
            self.transforms.append(t)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng)
        return x


class Gain(Transform):
    """Multiply by a gain drawn uniformly in [min_db, max_db] dB."""

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0, p: float = 1.0) -> None:
        super().__init__(p)
        if min_db > max_db:
            raise ValueError(f"Gain: min_db={min_db} > max_db={max_db}")
        self.min_db, self.max_db = min_db, max_db

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return x * 10 ** (rng.uniform(self.min_db, self.max_db) / 20)


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectral density ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0  # keep DC finite
    return np.fft.irfft(spectrum * freqs ** (-exponent / 2), n=n)


class AddNoise(Transform):
    """Additive coloured Gaussian noise at an SNR drawn uniformly in [min_snr_db, max_snr_db].

    The spectral exponent is drawn uniformly in [min_exponent, max_exponent] (0 = white,
    1 = pink, 2 = brown). The noise is scaled so the SNR is exactly the drawn value.
    """

    def __init__(
        self,
        min_snr_db: float = 10.0,
        max_snr_db: float = 40.0,
        min_exponent: float = 0.0,
        max_exponent: float = 2.0,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if min_snr_db > max_snr_db or min_exponent > max_exponent:
            raise ValueError("AddNoise: each min_* must not exceed its max_*")
        self.min_snr_db, self.max_snr_db = min_snr_db, max_snr_db
        self.min_exponent, self.max_exponent = min_exponent, max_exponent

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        snr_db = rng.uniform(self.min_snr_db, self.max_snr_db)
        noise = colored_noise(rng, len(x), rng.uniform(self.min_exponent, self.max_exponent))
        scale = np.sqrt(_power(x) / (_power(noise) * 10 ** (snr_db / 10) + 1e-30))
        return x + scale * noise


def mu_law(x: np.ndarray, bits: int) -> np.ndarray:
    """Mu-law compand to ``bits`` bits and expand back (G.711-like with bits=8, mu=255)."""
    mu = 2.0**bits - 1
    x = np.clip(x, -1.0, 1.0)
    compressed = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = 2.0 ** (bits - 1)
    quantized = np.clip(np.round(compressed * levels), -levels, levels - 1) / levels
    return np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(mu)) / mu


class BandLimit(Transform):
    """Codec-like channel: Butterworth low-pass at a random cutoff, optional mu-law.

    The cutoff is drawn uniformly in [min_cutoff_hz, max_cutoff_hz] (3.4 kHz is telephone
    band, 7-8 kHz wide-band); with probability ``mu_law_p`` the result is also mu-law
    companded and quantized to ``mu_law_bits`` bits.
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        min_cutoff_hz: float = 3_400.0,
        max_cutoff_hz: float = 7_500.0,
        order: int = 8,
        mu_law_p: float = 0.0,
        mu_law_bits: int = 8,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0 < min_cutoff_hz <= max_cutoff_hz < sample_rate / 2:
            raise ValueError(
                f"BandLimit: need 0 < min_cutoff_hz <= max_cutoff_hz < sample_rate / 2, got "
                f"{min_cutoff_hz}, {max_cutoff_hz}, sample_rate={sample_rate}"
            )
        if not 0.0 <= mu_law_p <= 1.0 or not 2 <= mu_law_bits <= 16:
            raise ValueError("BandLimit: mu_law_p must lie in [0, 1] and mu_law_bits in [2, 16]")
        self.sample_rate, self.order = sample_rate, order
        self.min_cutoff_hz, self.max_cutoff_hz = min_cutoff_hz, max_cutoff_hz
        self.mu_law_p, self.mu_law_bits = mu_law_p, mu_law_bits

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cutoff = rng.uniform(self.min_cutoff_hz, self.max_cutoff_hz)
        sos = butter(self.order, cutoff, fs=self.sample_rate, output="sos")
        y = sosfilt(sos, x)
        if self.mu_law_p > 0 and rng.random() < self.mu_law_p:
            peak = np.abs(y).max(initial=0.0)
            if peak > 0:
                y = mu_law(y / peak, self.mu_law_bits) * peak
        return y


class RawBoost(Transform):
    """RawBoost (Tak et al., ICASSP 2022); defaults are the paper's.

    ``algo`` (numbering of the RawBoost and SSL_Anti-spoofing recipes):

    ==  ===================================================================
    1   LnL: linear and non-linear convolutive noise
    2   ISD: impulsive signal-dependent additive noise
    3   SSI: stationary signal-independent additive coloured noise
    4   series 1 -> 2 -> 3
    5   series 1 -> 2   (used for LA with wav2vec2 + AASIST)
    6   series 1 -> 3
    7   series 2 -> 3
    8   parallel 1, 2: LnL(x) + ISD(x)
    ==  ===================================================================

    LnL sums ``n_f`` terms: term j filters ``x**j`` with its own random multi-band filter, a
    cascade of ``n_bands`` FIR notch (band-stop) filters with centre in [min_freq_hz,
    max_freq_hz], bandwidth in [min_bandwidth_hz, max_bandwidth_hz] and
    [min_taps, max_taps] taps (made odd), normalized to unit peak response and scaled by a
    gain in [min_gain_db, max_gain_db] for the linear term, lowered by a further
    [min_bias_db, max_bias_db] for the non-linear terms. ISD picks up to ``p_max`` percent of
    the samples and adds ``g_sd * x[n] * u1 * u2`` (u ~ U(-1, 1)) to them. SSI adds white
    noise through a random multi-band filter at an SNR in [min_snr_db, max_snr_db].

    The filters are linear-phase FIRs applied with their group delay removed (zero phase:
    no time shift, as the original ``filterFIR`` crops the delay), in the frequency domain:
    one FFT per LnL term, which keeps RawBoost cheap enough for the data loader.
    """

    ALGOS = {
        1: ("lnl",),
        2: ("isd",),
        3: ("ssi",),
        4: ("lnl", "isd", "ssi"),
        5: ("lnl", "isd"),
        6: ("lnl", "ssi"),
        7: ("isd", "ssi"),
    }

    def __init__(
        self,
        algo: int = 5,
        sample_rate: int = 16_000,
        n_bands: int = 5,
        min_freq_hz: float = 20.0,
        max_freq_hz: float = 8_000.0,
        min_bandwidth_hz: float = 100.0,
        max_bandwidth_hz: float = 1_000.0,
        min_taps: int = 10,
        max_taps: int = 100,
        min_gain_db: float = 0.0,
        max_gain_db: float = 0.0,
        min_bias_db: float = 5.0,
        max_bias_db: float = 20.0,
        n_f: int = 5,
        p_max: float = 10.0,
        g_sd: float = 2.0,
        min_snr_db: float = 10.0,
        max_snr_db: float = 40.0,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if algo not in self.ALGOS and algo != 8:
            raise ValueError(f"RawBoost: algo={algo} must be one of 1-8 (see the docstring)")
        if n_bands < 1 or n_f < 1 or not 1 <= min_taps <= max_taps:
            raise ValueError("RawBoost: need n_bands >= 1, n_f >= 1, 1 <= min_taps <= max_taps")
        if not 0.0 <= p_max <= 100.0:
            raise ValueError(f"RawBoost: p_max={p_max} is a percentage, must lie in [0, 100]")
        self.algo, self.sample_rate = algo, sample_rate
        self.n_bands, self.n_f = n_bands, n_f
        self.min_freq_hz, self.max_freq_hz = min_freq_hz, max_freq_hz
        self.min_bandwidth_hz, self.max_bandwidth_hz = min_bandwidth_hz, max_bandwidth_hz
        self.min_taps, self.max_taps = min_taps, max_taps
        self.min_gain_db, self.max_gain_db = min_gain_db, max_gain_db
        self.min_bias_db, self.max_bias_db = min_bias_db, max_bias_db
        self.p_max, self.g_sd = p_max, g_sd
        self.min_snr_db, self.max_snr_db = min_snr_db, max_snr_db

    def multiband_filter(self, rng: np.random.Generator, gain_db: float) -> np.ndarray:
        """FIR taps of a cascade of random notch filters, unit peak response times gain."""
        nyquist = self.sample_rate / 2
        taps = np.ones(1)
        for _ in range(self.n_bands):
            centre = rng.uniform(self.min_freq_hz, self.max_freq_hz)
            width = rng.uniform(self.min_bandwidth_hz, self.max_bandwidth_hz)
            n = int(rng.integers(self.min_taps, self.max_taps + 1)) | 1  # band-stop: odd
            low = min(max(centre - width / 2, 1e-3), nyquist - 2e-3)
            high = min(centre + width / 2, nyquist - 1e-3)
            taps = np.convolve(taps, bandstop_taps(n, low / nyquist, high / nyquist))
        peak = np.abs(rfft(taps, PEAK_GRID)).max()
        return taps * 10 ** (gain_db / 20) / peak

    def _filtered_sum(
        self, signals: Sequence[np.ndarray], gains_db: Sequence[float], rng: np.random.Generator
    ) -> np.ndarray:
        """``sum_j signals[j] * h_j`` for new random multi-band filters ``h_j``, zero phase."""
        n = len(signals[0])
        nfft = next_fast_len(n + self.n_bands * self.max_taps, real=True)
        spectrum = np.zeros(nfft // 2 + 1, dtype=np.complex64)  # float32 FFTs: 4x faster
        for signal, gain_db in zip(signals, gains_db, strict=True):
            response = zero_phase_response(self.multiband_filter(rng, gain_db), nfft)
            spectrum += rfft(signal.astype(np.float32), nfft) * response
        return irfft(spectrum, nfft)[:n].astype(np.float64)

    def lnl(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Algorithm 1: linear and non-linear convolutive noise (Hammerstein-like)."""
        powers, gains = [x], []
        for j in range(1, self.n_f + 1):
            if j > 1:
                powers.append(powers[-1] * x)  # x**j
            gain_db = rng.uniform(self.min_gain_db, self.max_gain_db)
            if j > 1:
                gain_db -= rng.uniform(self.min_bias_db, self.max_bias_db)
            gains.append(gain_db)
        y = self._filtered_sum(powers, gains, rng)
        y -= y.mean()
        return self._normalize(y)

    def isd(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Algorithm 2: impulsive signal-dependent additive noise on up to p_max % of samples."""
        count = int(len(x) * rng.uniform(0.0, self.p_max) / 100)
        where = rng.choice(len(x), size=count, replace=False)
        shape = rng.uniform(-1, 1, count) * rng.uniform(-1, 1, count)
        y = x.copy()
        y[where] += self.g_sd * x[where] * shape
        return self._normalize(y)

    def ssi(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Algorithm 3: stationary signal-independent coloured noise at a random SNR."""
        gain_db = rng.uniform(self.min_gain_db, self.max_gain_db)
        noise = self._filtered_sum([rng.standard_normal(len(x))], [gain_db], rng)
        snr_db = rng.uniform(self.min_snr_db, self.max_snr_db)
        scale = np.sqrt(_power(x) / (_power(noise) * 10 ** (snr_db / 10) + 1e-30))
        return x + scale * noise

    @staticmethod
    def _normalize(y: np.ndarray) -> np.ndarray:
        peak = np.abs(y).max(initial=0.0)
        return y / peak if peak > 1.0 else y

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.algo == 8:
            return self._normalize(self.lnl(x, rng) + self.isd(x, rng))
        for step in self.ALGOS[self.algo]:
            x = getattr(self, step)(x, rng)
        return x
