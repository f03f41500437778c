"""A tiny procedural corpus in the ASVspoof 2019 LA layout, for smoke tests and ``make train``.

This is a smoke corpus, not speech: speech-like source-filter signals, "spoofed" by one
artificial degradation each (:mod:`spoof_lightning.data.demo_signals`, attacks A01-A06).
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
from pathlib import Path

import numpy as np
import soundfile as sf

from spoof_lightning.cli import CommandParser
from spoof_lightning.data.corpora.asvspoof2019 import official_paths
from spoof_lightning.data.demo_signals import (
    ATTACKS,
    SAMPLE_RATE,
    bonafide,
    channel,
    random_speaker,
)

VERSION = 2
MARKER = ".demo_corpus.json"
BONAFIDE_FRACTION = 0.2
SPLIT_ATTACKS = {  # official split name -> attacks (utterance ids: LA_<T|D|E>_<7 digits>)
    "train": ("A01", "A02", "A03", "A04"),
    "dev": ("A01", "A02", "A03", "A04"),
    "eval": ("A02", "A04", "A05", "A06"),
}


# --------------------------------------------------------------------------- corpus


def _stratified(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """``count`` draws from U(low, high), one per equal-width stratum, in random order."""
    return low + (high - low) * (rng.permutation(count) + rng.random(count)) / max(count, 1)


def _plan_split(
    rng: np.random.Generator, split: str, n: int, speakers: list[str]
) -> list[tuple[str, str, str, float, float]]:
    """Rows (speaker, utt_id, attack, duration_s, level_db) of one split, shuffled."""
    attacks = SPLIT_ATTACKS[split]
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
            f"LA_{split[0].upper()}_{ids[k]}",
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
    for split in SPLIT_ATTACKS:
        protocol, flac_dir = official_paths(la_dir, "LA", split)
        if not protocol.is_file() or not flac_dir.is_dir():
            return False
        if sum(1 for _ in os.scandir(flac_dir)) != params[f"n_{split}"]:
            return False
    return True


def _build(la_dir: Path, seed: int, sizes: dict[str, int]) -> None:
    rng = np.random.default_rng([seed, VERSION])
    speakers = _speaker_ids(rng, sizes)
    voices = {
        spk: random_speaker(np.random.default_rng([seed, VERSION, int(spk[3:])]))
        for spk_list in speakers.values()
        for spk in spk_list
    }
    for split_index, split in enumerate(SPLIT_ATTACKS):
        protocol, flac_dir = official_paths(la_dir, "LA", split)
        protocol.parent.mkdir(parents=True, exist_ok=True)
        flac_dir.mkdir(parents=True)
        lines = []
        for i, (spk, utt, attack, duration, level) in enumerate(
            _plan_split(rng, split, sizes[split], speakers[split])
        ):
            utt_rng = np.random.default_rng([seed, VERSION, split_index, i])
            n = int(duration * SAMPLE_RATE)
            make = bonafide if attack == "-" else ATTACKS[attack]
            wave = channel(utt_rng, make(utt_rng, n, voices[spk]), level)
            sf.write(
                flac_dir / f"{utt}.flac",
                wave.astype(np.float32),
                SAMPLE_RATE,
                "PCM_16",
                compression_level=0.0,
            )
            key = "bonafide" if attack == "-" else "spoof"
            lines.append(f"{spk} {utt} - {attack} {key}\n")
        protocol.write_text("".join(lines))
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
