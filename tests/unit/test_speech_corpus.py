"""The real-speech corpus builder's pieces, on a tiny generated fixture (no Debian package,
no corpus build): vocoders, the shared channel, split and channel planning, sanity AUCs."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

from bench.speech_corpus import build, dsp, sanity, sources
from spoof_lightning.data.protocols import load_split

SR = dsp.SR
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (apt-get install)")


def vowel(f0: float = 150.0, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A glottal-pulse train at ``f0`` through two formant resonators, with a little noise."""
    n = int(seconds * SR)
    pulses = np.zeros(n)
    pulses[:: int(SR / f0)] = 1.0
    x = pulses
    for freq, bw in ((700, 80), (1200, 100)):
        r = np.exp(-np.pi * bw / SR)
        x = lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * freq / SR), r * r], x)
    x += 1e-3 * np.random.default_rng(seed).standard_normal(n)
    return x / np.abs(x).max() * 0.5


def log_spectrum(x: np.ndarray) -> np.ndarray:
    return np.log(np.mean(np.abs(dsp.spectrogram(x)) ** 2, axis=1) + 1e-10)


def test_pitch_tracker_finds_f0() -> None:
    f0 = dsp.track_pitch(vowel(f0=160.0))
    voiced = f0[10:-10]
    assert (voiced > 0).mean() > 0.9
    assert abs(np.median(voiced[voiced > 0]) - 160.0) < 4.0


@pytest.mark.parametrize(
    "vocoder", [dsp.mel_griffin_lim, dsp.lpc_vocoder, dsp.harmonic_noise_vocoder]
)
def test_vocoders_keep_the_spectral_envelope_but_not_the_waveform(vocoder) -> None:
    x = vowel()
    y = vocoder(x, np.random.default_rng(0))
    assert y.shape == x.shape and np.isfinite(y).all()
    # The long-term log spectrum (formants) survives re-synthesis...
    band = slice(5, 200)  # 150 Hz - 6 kHz
    corr = np.corrcoef(log_spectrum(x)[band], log_spectrum(y)[band])[0, 1]
    assert corr > 0.7, corr
    # ... but the samples are new (different phase / excitation).
    assert np.corrcoef(x, y)[0, 1] < 0.9


def test_vocoders_are_deterministic_given_the_generator() -> None:
    x = vowel()
    a = dsp.lpc_vocoder(x, np.random.default_rng(3))
    b = dsp.lpc_vocoder(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@needs_sox
def test_channel_sets_level_silences_and_band() -> None:
    rng = np.random.default_rng(0)
    fricative = 0.2 * rng.standard_normal(4000)  # broadband, like an /s/
    x = np.concatenate([np.zeros(4000), vowel(seconds=1.25), fricative, np.zeros(8000)])
    out = dsp.channel(x, rng, narrow=True, lead=0.3, trail=0.2, level_db=-26.0, snr_db=45.0)
    assert abs(10 * np.log10(np.mean(out**2)) + 26.0) < 0.1
    feats = sanity.features(out)
    assert feats["energy_above_4khz"] < 1e-3  # telephone band
    assert abs(feats["lead_silence_s"] - 0.3) < 0.05 and abs(feats["trail_silence_s"] - 0.2) < 0.05
    wide = dsp.channel(x, rng, narrow=False, lead=0.1, trail=0.1, level_db=-26.0, snr_db=45.0)
    assert sanity.features(wide)["energy_above_4khz"] > 0.05
    assert len(wide) == pytest.approx(1.7 * SR, abs=0.02 * SR)


def test_auc_and_the_sanity_report() -> None:
    assert sanity.auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert sanity.auc(np.array([1.0]), np.array([1.0])) == 0.5
    rows = [{"attack": "-", **dict.fromkeys(sanity.FEATURES, float(i))} for i in range(10)]
    rows += [{"attack": "A01", **dict.fromkeys(sanity.FEATURES, float(i))} for i in range(10)]
    rows += [{"attack": "A02", **dict.fromkeys(sanity.FEATURES, i - 100.0)} for i in range(10)]
    table = sanity.report(rows)
    assert all(v == 0.5 for v in table["A01"].values())
    assert all(v == 1.0 for v in table["A02"].values())
    assert {a for a, _, _ in sanity.worst(table)} == {"A02"}
    assert "| A02 | 1.00" in sanity.markdown(table)


def fake_clips(tmp_path: Path) -> tuple[list[sources.Clip], dict]:
    """Four word-level speakers and the two telephone speakers, a few 0.5-1 s clips each."""
    clips, durations = [], {}
    speakers = [f"ktuberling-data:{lang}" for lang in ("de", "fr", "ru", "uk")]
    speakers += ["asterisk-prompt-es-co:es", "asterisk-prompt-fr-armelle:fr"]
    for s, speaker in enumerate(speakers):
        for k in range(12):
            path = tmp_path / f"{s}_{k}.wav"
            seconds = 0.5 + 0.05 * k
            sf.write(path, vowel(120 + 10 * s, seconds), SR)
            clip = sources.Clip(speaker, speaker.split(":")[1], f"w{k}", path)
            clips.append(clip)
            durations[path] = seconds
    return clips, durations


def test_speakers_are_disjoint_and_utterances_stay_in_bounds(tmp_path: Path) -> None:
    clips, durations = fake_clips(tmp_path)
    by_split = build.assign_speakers(clips, durations)
    speakers = {s: {c.speaker for c in cs} for s, cs in by_split.items()}
    assert speakers["eval"] & (speakers["train"] | speakers["dev"]) == set()
    # The Spanish telephone speaker is shared by train and dev, never by the same prompt.
    assert speakers["train"] & speakers["dev"] == {"asterisk-prompt-es-co:es"}
    texts = {s: {c.path for c in cs} for s, cs in by_split.items()}
    assert not texts["train"] & texts["dev"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        chosen, pauses = build.compose(rng, by_split["train"], durations)
        assert len({c.speaker for c in chosen}) == 1 and len(pauses) == len(chosen) - 1
        assert sum(durations[c.path] for c in chosen) + sum(pauses) <= build.MAX_S


def test_every_group_gets_the_same_telephone_share_and_channel_draws() -> None:
    items = [build.Item("train", "-", "s", narrow=i < 3) for i in range(10)]
    items += [build.Item("train", "A01", "t") for _ in range(10)]
    items += [build.Item("train", "A04", "s", narrow=True) for _ in range(10)]
    build.assign_channel(items, seed=0)
    share = {a: sum(it.narrow for it in items if it.attack == a) for a in ("-", "A01", "A04")}
    assert share == {"-": 5, "A01": 5, "A04": 10}  # inherently narrow-band items stay so
    levels = sorted(it.level_db for it in items if it.attack == "-")
    assert levels[0] >= -32 and levels[-1] <= -20 and np.ptp(levels) > 8  # stratified draws


def test_the_written_corpus_is_what_data_asvspoof2019_la_reads(tmp_path: Path) -> None:
    """The files go where the corpus loader looks (``official_paths``: one layout)."""
    items, audio = [], []
    for split, (_, attacks) in build.SPLITS.items():
        for attack in ("-", attacks[-1]):
            items.append(build.Item(split, attack, f"s-{split}", tts=len(audio), seed=len(audio)))
            audio.append(vowel(f0=120.0 + 10 * len(audio), seconds=0.5))
    rows, _ = build.write(tmp_path / "LA", items, audio, workers=1, seed=0)
    for split, name in (("train", "train"), ("val", "dev"), ("test", "eval")):
        entries = load_split("asvspoof2019_la", tmp_path, split)
        assert sorted(u.attack for u in entries) == sorted(
            it.attack for it in items if it.split == name
        )
        assert all(u.path.is_file() for u in entries)
        assert {u.utt_id for u in entries} == {r["utt"] for r in rows if r["split"] == name}


def test_packages_of_the_held_out_measurement_are_refused(tmp_path: Path) -> None:
    for package in ("asterisk-core-sounds-en", "asterisk-prompt-it-menardi"):
        with pytest.raises(ValueError, match="held-out"):
            sources.fetch(tmp_path, (package,))
