"""Trivial-feature check: can one simple property of the audio tell bona fide from spoof?

For every utterance: duration, overall RMS level, leading and trailing silence, and the
share of energy below 300 Hz, above 4 kHz and above 6 kHz. The AUC of each feature
(bona fide vs one attack, every split pooled) is 0.5 when the feature says nothing; a
value near 0 or 1 would let a detector cheat. :func:`report` lists them per attack.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from bench.speech_corpus.dsp import SR, spectrogram

FEATURES = (
    "duration_s",
    "rms_db",
    "lead_silence_s",
    "trail_silence_s",
    "energy_below_300hz",
    "energy_above_4khz",
    "energy_above_6khz",
)


def silence_edges(x: np.ndarray, floor_db: float = 30.0) -> tuple[float, float]:
    """(leading, trailing) seconds of 10 ms frames quieter than ``floor_db`` below the peak."""
    n = len(x) // 160
    if n == 0:
        return 0.0, 0.0
    energy = np.mean(x[: n * 160].reshape(n, 160) ** 2, axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-floor_db / 10))
    return loud[0] * 0.01, (n - 1 - loud[-1]) * 0.01


def features(x: np.ndarray) -> dict[str, float]:
    """The trivial features of one utterance (16 kHz)."""
    power = np.abs(spectrogram(x)) ** 2
    freqs = np.linspace(0, SR / 2, power.shape[0])
    total = power.sum() + 1e-20
    lead, trail = silence_edges(x)
    return {
        "duration_s": len(x) / SR,
        "rms_db": float(10 * np.log10(np.mean(x**2) + 1e-20)),
        "lead_silence_s": lead,
        "trail_silence_s": trail,
        "energy_below_300hz": float(power[freqs < 300].sum() / total),
        "energy_above_4khz": float(power[freqs > 4000].sum() / total),
        "energy_above_6khz": float(power[freqs > 6000].sum() / total),
    }


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(feature of a positive > feature of a negative), ties counted half (Mann-Whitney)."""
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def report(rows: list[dict]) -> dict[str, dict[str, float]]:
    """``{attack: {feature: AUC}}`` of bona fide (positive) against each attack.

    ``rows`` hold ``attack`` ('-' for bona fide) and every feature of :data:`FEATURES`.
    """
    bona = [r for r in rows if r["attack"] == "-"]
    out = {}
    for attack in sorted({r["attack"] for r in rows} - {"-"}):
        spoof = [r for r in rows if r["attack"] == attack]
        out[attack] = {
            f: auc(np.array([r[f] for r in bona]), np.array([r[f] for r in spoof]))
            for f in FEATURES
        }
    return out


def worst(table: dict[str, dict[str, float]]) -> list[tuple[str, str, float]]:
    """(attack, feature, AUC) outside [0.35, 0.65], most separating first."""
    bad = [(a, f, v) for a, feats in table.items() for f, v in feats.items() if abs(v - 0.5) > 0.15]
    return sorted(bad, key=lambda t: -abs(t[2] - 0.5))


def markdown(table: dict[str, dict[str, float]]) -> str:
    """The AUC table as markdown, one row per attack."""
    lines = ["| attack | " + " | ".join(FEATURES) + " |", "|---|" + "---|" * len(FEATURES)]
    for attack, feats in table.items():
        lines.append(f"| {attack} | " + " | ".join(f"{feats[f]:.2f}" for f in FEATURES) + " |")
    return "\n".join(lines) + "\n"
