"""Tiny corpora written in each official layout, for tests, benchmarks and examples.

The audio is synthetic (tones in noise, a fraction of a second long); only the
directory layout and protocol formats are faithful. Nothing here is real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def synth(n: int, sr: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """``n`` samples of a random tone in noise, float32, ``[n]`` or ``[n, channels]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.05 * rng.standard_normal(n)
    x = x.astype(np.float32)
    return np.stack([x, -x], axis=1) if channels == 2 else x


def write_audio(path: Path, x: np.ndarray, sr: int = 16000) -> Path:
    """Write ``x`` with soundfile, format from the suffix; parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr)
    return path


def make_asvspoof2019(
    root: Path,
    track: str = "LA",
    counts: dict[str, tuple[int, int]] | None = None,
    sr: int = 16000,
    min_len: int = 3000,
    max_len: int = 9000,
    seed: int = 0,
) -> Path:
    """Write an ASVspoof 2019 LA/PA corpus under ``root/<track>``; returns ``root``.

    ``counts`` maps split (train/dev/eval) to ``(bona fide, spoof)`` numbers.
    Utterance ids follow ``<track>_<T|D|E>_<7 digits>``; attacks cycle A01-A06 (train,
    dev) and A07-A19 (eval) for LA, AA..CC replay configurations for PA.
    """
    counts = counts or {"train": (3, 5), "dev": (2, 3), "eval": (2, 4)}
    rng = np.random.default_rng(seed)
    base = root / track
    proto_dir = base / f"ASVspoof2019_{track}_cm_protocols"
    proto_dir.mkdir(parents=True, exist_ok=True)
    suffix = {"train": "trn", "dev": "trl", "eval": "trl"}
    number = 1000000
    for split, (n_bona, n_spoof) in counts.items():
        lines = []
        first_attack = 7 if split == "eval" else 1
        n_attacks = 13 if split == "eval" else 6
        for i in range(n_bona + n_spoof):
            number += 1
            utt = f"{track}_{split[0].upper()}_{number}"
            speaker = f"{track}_{rng.integers(0, 100):04d}"
            bona = i < n_bona
            if track == "LA":
                third, attack = "-", "-" if bona else f"A{first_attack + i % n_attacks:02d}"
            else:
                third = "abc"[i % 3] * 3
                attack = "-" if bona else ["AA", "AB", "BA", "BB", "CC"][i % 5]
            key = "bonafide" if bona else "spoof"
            lines.append(f"{speaker} {utt} {third} {attack} {key}")
            n = int(rng.integers(min_len, max_len))
            wav = synth(n, sr, seed=number)
            write_audio(base / f"ASVspoof2019_{track}_{split}" / "flac" / f"{utt}.flac", wav, sr)
        name = f"ASVspoof2019.{track}.cm.{split}.{suffix[split]}.txt"
        (proto_dir / name).write_text("\n".join(lines) + "\n")
    return root


__all__ = ["make_asvspoof2019", "synth", "write_audio"]
