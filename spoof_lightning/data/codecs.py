"""Codec and channel augmentation: libsndfile codecs in memory, telephone band, packet loss.

The transforms keep the contract of :mod:`spoof_lightning.data.augment` (``t(x, rng)`` on
a 1-D float waveform, same length, float32, peak-normalised, applied with probability
``p``, every random choice drawn from the ``rng`` passed in, i.e. per item, worker and
epoch). Countermeasures trained without them fail on compressed and telephone speech
(the ASVspoof 2021 LA and DF conditions); these simulate what a transmission does:

* :class:`Codec`: encode and decode through one of libsndfile's codecs (``soundfile``, no
  temporary file): MP3, Ogg Vorbis and Opus at a random compression level (the bit rate),
  G.711 mu-law and A-law, GSM 6.10, G.721 and G.723 ADPCM. The narrow-band telephone
  codecs (GSM, G.72x) run at 8 kHz, as they only exist there: the audio is resampled to
  8 kHz and back. Encoder delay (MP3 without a gapless header) is measured by
  cross-correlation and removed; padding is cropped.
* :class:`Telephone`: a telephone line: band-pass (300-3400 Hz), 8 kHz sampling, then
  optionally one of the narrow-band codecs, back to the original rate.
* :class:`PacketLoss`: VoIP packets of ``frame_ms`` lost at a random rate, alone or in
  bursts (a two-state Gilbert model), replaced by silence or by the last packet received.

Random gain is :class:`~spoof_lightning.data.augment.Gain`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import butter, correlate, firwin, resample_poly, sosfiltfilt

from spoof_lightning.data.augment import Transform

__all__ = ["CODECS", "NARROWBAND_RATE", "Codec", "PacketLoss", "Telephone", "encode_decode"]

NARROWBAND_RATE = 8000


# name: (container, libsndfile subtype, rate it runs at (None: the input's), compressed)
CODECS: dict[str, tuple[str, str, int | None, bool]] = {
    "mp3": ("MP3", "MPEG_LAYER_III", None, True),
    "vorbis": ("OGG", "VORBIS", None, True),
    "opus": ("OGG", "OPUS", None, True),
    "ulaw": ("WAV", "ULAW", None, False),
    "alaw": ("WAV", "ALAW", None, False),
    "gsm": ("WAV", "GSM610", NARROWBAND_RATE, False),
    "g721": ("WAV", "G721_32", NARROWBAND_RATE, False),
    "g723_24": ("AU", "G723_24", NARROWBAND_RATE, False),
    "g723_40": ("AU", "G723_40", NARROWBAND_RATE, False),
}
# Sample rates the encoders accept (libopus; MPEG-1/2/2.5 layer III).
RATES = {
    "opus": {8000, 12000, 16000, 24000, 48000},
    "mp3": {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000},
}
MAX_DELAY = 4096  # samples of encoder delay searched for when a decoder returns extra samples


def check_codecs(codecs: Sequence[str], sample_rate: int, key: str) -> list[str]:
    """The codec names, refused unless libsndfile here has them at ``sample_rate``."""
    names = [str(c) for c in codecs]
    unknown = [c for c in names if c not in CODECS]
    if not names or unknown:
        raise ValueError(f"{key}: {unknown or 'empty'}; choose among {sorted(CODECS)}")
    available = sf.available_subtypes()
    for name in names:
        container, subtype, rate, _ = CODECS[name]
        if subtype not in available or container not in sf.available_formats():
            raise ValueError(
                f"{key}: {name} needs libsndfile with {container}/{subtype}; this one "
                f"({sf.__libsndfile_version__}) lacks it"
            )
        if rate is None and name in RATES and sample_rate not in RATES[name]:
            raise ValueError(
                f"{key}: {name} does not encode {sample_rate} Hz audio "
                f"(rates: {sorted(RATES[name])})"
            )
    return names


@lru_cache(maxsize=16)
def _resampling_filter(up: int, down: int) -> np.ndarray:
    """Low-pass at 0.9 x the lower Nyquist rate, 128 taps per phase, Kaiser beta 8.6:
    aliases and images above about 0.95 x that rate are 80 dB down (scipy's default
    filter, 20 taps per phase with beta 5, leaves them 45 dB down near Nyquist)."""
    rate = max(up, down)
    return firwin(128 * rate + 1, 0.9 / rate, window=("kaiser", 8.6))


def resample(x: np.ndarray, source: int, target: int) -> np.ndarray:
    """Polyphase resampling from ``source`` to ``target`` Hz, zero delay."""
    if source == target:
        return x
    g = gcd(source, target)
    up, down = target // g, source // g
    return resample_poly(x, up, down, window=_resampling_filter(up, down))


def _fit(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``decoded`` aligned to ``reference`` and cut or zero-padded to its length.

    A decoder that returns extra samples has added a delay (e.g. MP3's 1,105 samples when
    there is no gapless header) and/or end padding: the delay in ``[0, extra]`` that best
    correlates with the reference is removed.
    """
    n, extra = len(reference), len(decoded) - len(reference)
    if extra > 0:
        lags = correlate(decoded[: n + min(extra, MAX_DELAY)], reference, "valid", "fft")
        start = int(np.argmax(lags))
        return decoded[start : start + n]
    return np.pad(decoded, (0, n - len(decoded)))


def encode_decode(
    x: np.ndarray, codec: str, sample_rate: int, compression: float | None = None
) -> np.ndarray:
    """``x`` encoded with ``codec`` and decoded, in memory, same length.

    ``compression`` in [0, 1] is libsndfile's compression level of MP3 (constant bit rate),
    Vorbis and Opus: 0 is the highest bit rate; the other codecs have a fixed rate. A
    waveform louder than full scale is coded at full scale and given its level back.
    """
    container, subtype, rate, compressed = CODECS[codec]
    rate = rate or sample_rate
    peak = max(1.0, float(np.abs(x).max(initial=0.0)))
    signal = resample(x / peak, sample_rate, rate)
    options: dict[str, object] = {}
    if compressed and compression is not None:
        options["compression_level"] = float(compression)
        if codec == "mp3":
            options["bitrate_mode"] = "CONSTANT"
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format=container, subtype=subtype, **options)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float64")
    return peak * _fit(resample(_fit(decoded, signal), rate, sample_rate), x)


class Codec(Transform):
    """Encode and decode with a codec drawn uniformly from ``codecs``.

    The compression level of MP3 / Vorbis / Opus is drawn uniformly in [min_compression,
    max_compression] (0 = highest bit rate). Measured at 16 kHz with libsndfile 1.2: MP3
    (CBR) about 170 kbit/s at 0, 85 at 0.5, 25 at 0.9; Vorbis 80 / 54 / 41 at 0 / 0.5 / 1;
    Opus 260 / 140 / 9. mu-law and A-law keep 8 bits per sample at the input rate; GSM
    6.10 (13 kbit/s) and G.721 (32) / G.723 (24, 40) ADPCM run at 8 kHz.
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        codecs: Sequence[str] = tuple(CODECS),
        min_compression: float = 0.0,
        max_compression: float = 1.0,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0.0 <= min_compression <= max_compression <= 1.0:
            raise ValueError(
                f"Codec: need 0 <= min_compression <= max_compression <= 1, got "
                f"{min_compression}, {max_compression}"
            )
        self.sample_rate = sample_rate
        self.codecs = check_codecs(codecs, sample_rate, "Codec.codecs")
        self.min_compression, self.max_compression = min_compression, max_compression

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        level = rng.uniform(self.min_compression, self.max_compression)
        return encode_decode(x, codec, self.sample_rate, level)


class Telephone(Transform):
    """A telephone line: band-pass [low_hz, high_hz], 8 kHz, optional codec, original rate.

    The band-pass is a Butterworth of ``order`` run forwards and backwards (zero phase: the
    speech keeps its timing, so frame labels stay aligned). With probability ``codec_p`` the
    8 kHz signal is also coded with one of ``codecs`` (default: the G.711, GSM and G.72x
    telephone codecs) and band-passed again, as the receiving end does. Nothing above 4 kHz
    survives (more than 80 dB down).
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        low_hz: float = 300.0,
        high_hz: float = 3_400.0,
        order: int = 4,
        codecs: Sequence[str] = ("ulaw", "alaw", "gsm", "g721", "g723_24", "g723_40"),
        codec_p: float = 0.5,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0 < low_hz < high_hz < NARROWBAND_RATE / 2 or sample_rate < NARROWBAND_RATE:
            raise ValueError(
                f"Telephone: need 0 < low_hz < high_hz < 4000 and sample_rate >= 8000, got "
                f"{low_hz}, {high_hz}, {sample_rate}"
            )
        if not 0.0 <= codec_p <= 1.0:
            raise ValueError(f"Telephone: codec_p={codec_p} must lie in [0, 1]")
        self.sample_rate, self.low_hz, self.high_hz = sample_rate, low_hz, high_hz
        self.codecs = check_codecs(codecs, NARROWBAND_RATE, "Telephone.codecs")
        self.codec_p = codec_p
        self.sos = butter(order, [low_hz, high_hz], "bandpass", fs=NARROWBAND_RATE, output="sos")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        narrow = sosfiltfilt(self.sos, resample(x, self.sample_rate, NARROWBAND_RATE))
        if rng.random() < self.codec_p:
            codec = self.codecs[int(rng.integers(len(self.codecs)))]
            # the receiving end band-limits the decoded signal again (ITU-T G.712)
            narrow = sosfiltfilt(self.sos, encode_decode(narrow, codec, NARROWBAND_RATE))
        return _fit(resample(narrow, NARROWBAND_RATE, self.sample_rate), x)


class PacketLoss(Transform):
    """Lose packets of ``frame_ms``: a loss rate drawn in [min_rate, max_rate], losses in
    bursts of ``mean_burst`` packets on average (Gilbert model; 1 = independent losses).

    ``conceal``: ``zero`` leaves silence, ``repeat`` replays the last packet received (the
    simplest packet-loss concealment; silence when the first packets are lost).
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        frame_ms: float = 20.0,
        min_rate: float = 0.02,
        max_rate: float = 0.2,
        mean_burst: float = 2.0,
        conceal: str = "zero",
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0.0 <= min_rate <= max_rate < 1.0:
            raise ValueError(
                f"PacketLoss: need 0 <= min_rate <= max_rate < 1, got {min_rate}, {max_rate}"
            )
        if mean_burst < 1.0 or frame_ms <= 0:
            raise ValueError("PacketLoss: need mean_burst >= 1 and frame_ms > 0")
        if conceal not in ("zero", "repeat"):
            raise ValueError(f"PacketLoss: conceal={conceal!r} must be 'zero' or 'repeat'")
        self.sample_rate, self.frame_ms = sample_rate, frame_ms
        self.min_rate, self.max_rate = min_rate, max_rate
        self.mean_burst, self.conceal = mean_burst, conceal

    def lost_packets(self, n_packets: int, rng: np.random.Generator) -> np.ndarray:
        """Boolean loss pattern: a Markov chain whose stationary loss rate is the drawn rate."""
        rate = rng.uniform(self.min_rate, self.max_rate)
        stay_lost = 1.0 - 1.0 / self.mean_burst
        start_loss = rate * (1.0 - stay_lost) / (1.0 - rate)  # P(loss | previous received)
        draws = rng.random(n_packets)
        lost = np.zeros(n_packets, dtype=bool)
        previous = rng.random() < rate
        for i, u in enumerate(draws):
            previous = u < (stay_lost if previous else start_loss)
            lost[i] = previous
        return lost

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        hop = max(1, round(self.frame_ms * self.sample_rate / 1000))
        n_packets = -(-len(x) // hop)
        lost = self.lost_packets(n_packets, rng)
        y = x.copy()
        last_received = np.zeros(hop)
        for i in range(n_packets):
            start, end = i * hop, min((i + 1) * hop, len(x))
            if not lost[i]:
                last_received[: end - start] = x[start:end]
            else:
                y[start:end] = 0.0 if self.conceal == "zero" else last_received[: end - start]
        return y
