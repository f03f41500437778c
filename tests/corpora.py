"""Tiny corpora written in each official layout, for tests and benchmarks: ASVspoof 2019,
2021 and 5 (track 1 and the track 2 trial and score files), HAD and In-the-Wild.

The audio is synthetic (tones in noise, a fraction of a second long); only the
directory layout, protocol formats and columns are the released ones. Nothing here is real data.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from spoof_lightning.data.corpora.asvspoof2019 import official_paths


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
    number = 1000000
    for split, (n_bona, n_spoof) in counts.items():
        protocol, flac = official_paths(root / track, track, split)
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
            write_audio(flac / f"{utt}.flac", wav, sr)
        protocol.parent.mkdir(parents=True, exist_ok=True)
        protocol.write_text("\n".join(lines) + "\n")
    return root


def _asv21_row(track: str, utt: str, bona: bool, phase: str, i: int) -> str:
    key = "bonafide" if bona else "spoof"
    if track == "LA":
        attack = "bonafide" if bona else f"A{7 + i % 13:02d}"
        codec = ["none", "alaw", "pstn", "g722", "ulaw", "gsm", "opus"][i % 7]
        return f"LA_{i:04d} {utt} {codec} ita_tx {attack} {key} notrim {phase}"
    if track == "DF":
        attack = "bonafide" if bona else f"A{7 + i % 13:02d}"
        vocoder = "bonafide" if bona else "traditional_vocoder"
        return f"LA_{i:04d} {utt} low_mp3 asvspoof {attack} {key} notrim {phase} {vocoder} - - - -"
    attack = "- - - -" if bona else "r1 m2 s3 c4"
    return f"PA_{i:04d} {utt} R3 M3 D4 {attack} {key} notrim {phase}"


def make_asvspoof2021(
    root: Path,
    track: str = "LA",
    per_phase: tuple[int, int] = (2, 3),
    phases: tuple[str, ...] = ("eval", "progress", "hidden"),
    sr: int = 16000,
    seed: int = 0,
) -> Path:
    """Write an ASVspoof 2021 LA/DF/PA evaluation set and its keys under ``root``.

    ``ASVspoof2021_<track>_eval/flac/<utt>.flac`` plus ``keys/<track>/CM/trial_metadata.txt``
    with ``per_phase = (bona fide, spoof)`` lines for each phase. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p, phase in enumerate(phases):
        for i in range(sum(per_phase)):
            number = 1000000 + 100 * p + i
            utt = f"{track}_E_{number}"
            rows.append(_asv21_row(track, utt, i < per_phase[0], phase, i))
            wav = synth(int(rng.integers(3000, 9000)), sr, seed=number)
            write_audio(root / f"ASVspoof2021_{track}_eval" / "flac" / f"{utt}.flac", wav, sr)
    keys = root / "keys" / track / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text("\n".join(rows) + "\n")
    return root


def make_asvspoof5(
    root: Path,
    counts: dict[str, tuple[int, int]] | None = None,
    sr: int = 16000,
    seed: int = 0,
) -> Path:
    """Write an ASVspoof 5 track-1 corpus under ``root``; ``counts``: split -> (bona, spoof).

    Splits are ``train``, ``dev`` and ``eval`` (``flac_T``, ``flac_D``, ``flac_E_eval``), with
    the 10 protocol columns of the release (see ``ASV5_COLUMNS``): train and dev uncoded,
    eval cycling through no codec and codecs C01, C05, C08 (levels, source utterance).
    """
    counts = counts or {"train": (2, 3), "dev": (1, 2), "eval": (1, 2)}
    names = {
        "train": ("ASVspoof5.train.tsv", "flac_T", "T"),
        "dev": ("ASVspoof5.dev.track_1.tsv", "flac_D", "D"),
        "eval": ("ASVspoof5.eval.track_1.tsv", "flac_E_eval", "E"),
    }
    rng = np.random.default_rng(seed)
    (root / "ASVspoof5_protocols").mkdir(parents=True, exist_ok=True)
    for split, (n_bona, n_spoof) in counts.items():
        protocol, folder, letter = names[split]
        lines = []
        for i in range(n_bona + n_spoof):
            utt = f"{letter}_{i:010d}"
            bona = i < n_bona
            tag, attack, key = ("-", "bonafide", "bonafide") if bona else (
                f"AC{1 + i % 3}", f"A{1 + i % 8:02d}", "spoof"
            )  # fmt: skip
            codec = "- - -"
            if split == "eval" and i % 4:
                codec = f"{['C01', 'C05', 'C08'][i % 4 - 1]} {1 + i % 2} {letter}_{9000000000 + i}"
            lines.append(f"{letter}_{i % 7:04d} {utt} F {codec} {tag} {attack} {key} -")
            wav = synth(int(rng.integers(3000, 9000)), sr, seed=i)
            write_audio(root / folder / f"{utt}.flac", wav, sr)
        (root / "ASVspoof5_protocols" / protocol).write_text("\n".join(lines) + "\n")
    return root


def make_had(
    root: Path,
    counts: dict[str, tuple[int, int]] | None = None,
    sr: int = 16000,
    seed: int = 0,
) -> Path:
    """Write a HAD corpus under ``root/HAD``; ``counts``: split -> (real, fake). Returns ``root``.

    Train and dev keep the upstream folders ``real/`` and ``conbine/`` (sic); test files
    are in ``test/``. Fake files are genuine-fake-genuine with a fake middle third.
    """
    counts = counts or {"train": (2, 3), "dev": (1, 2), "test": (1, 2)}
    rng = np.random.default_rng(seed)
    for split, (n_real, n_fake) in counts.items():
        split_dir = root / "HAD" / f"HAD_{split}"
        lines = []
        for i in range(n_real + n_fake):
            real = i < n_real
            utt = f"HAD_{split}_{'real' if real else 'fake'}_{i:08d}"
            n = int(rng.integers(8000, 16000))
            dur = n / sr
            if real:
                segments = f"0.00-{dur:.2f}-T"
            else:
                a, b = dur / 3, 2 * dur / 3
                segments = f"0.00-{a:.2f}-T/{a:.2f}-{b:.2f}-F/{b:.2f}-{dur:.2f}-T"
            lines.append(f"{utt} {segments} {int(real)}")
            folder = "test" if split == "test" else ("real" if real else "conbine")
            write_audio(split_dir / folder / f"{utt}.wav", synth(n, sr, seed=i), sr)
        (split_dir / f"HAD_{split}_label.txt").write_text("\n".join(lines) + "\n")
    return root


ITW_SPEAKERS = ("Alec Guinness", "Barack Obama", "Ayn Rand")


def make_in_the_wild(
    root: Path,
    per_speaker: tuple[int, int] = (2, 2),
    speakers: Sequence[str] = ITW_SPEAKERS,
    release_folder: bool = True,
    loud_spoofs: bool = False,
) -> Path:
    """Write ``release_in_the_wild/`` (``meta.csv`` + ``<n>.wav``) under ``root``; returns the
    folder holding meta.csv. ``per_speaker`` = (bona fide, spoof) clips per speaker, of
    0.3 to 1.2 s. With ``loud_spoofs`` the spoofs are 4x louder (an energy model separates
    the classes)."""
    base = root / "release_in_the_wild" if release_folder else root
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, number = [], 0
    for speaker in speakers:
        for bona in [True] * per_speaker[0] + [False] * per_speaker[1]:
            x = synth(int(rng.integers(4800, 19200)), seed=number)
            write_audio(base / f"{number}.wav", x if bona or not loud_spoofs else 4 * x)
            rows.append({"file": f"{number}.wav", "speaker": speaker,
                         "label": "bona-fide" if bona else "spoof"})  # fmt: skip
            number += 1
    with open(base / "meta.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "speaker", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return base


def write_asv5_trials(path: Path, trials: Sequence[Mapping[str, str]]) -> Path:
    """``ASVspoof5.<split>.track_2.trial.tsv``: ``speaker utt gender attack key`` lines."""
    lines = [f"{t['speaker']} {t['utt_id']} F {t['attack']} {t['key']}" for t in trials]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_asv5_scores(
    path: Path, trials: Sequence[Mapping[str, str]], asv: Sequence[float], sasv: bool = False
) -> Path:
    """The evaluation package's score file: tab separated, header ``spk filename cm-score
    asv-score sasv-score``, ``-`` for the scores a system does not give."""
    lines = ["spk\tfilename\tcm-score\tasv-score\tsasv-score"]
    for trial, score in zip(trials, asv, strict=True):
        fused = repr(2 * score) if sasv else "-"
        lines.append(f"{trial['speaker']}\t{trial['utt_id']}\t-\t{score!r}\t{fused}")
    path.write_text("\n".join(lines) + "\n")
    return path


def asv5_trials(utterances: Sequence[Mapping[str, object]], seed: int = 0) -> list[dict]:
    """Track 2 trials over CM utterances (``utt_id``, ``label``, ``attack``): each bona fide
    utterance once as a target and once as a non-target trial, each spoof once."""
    rng = np.random.default_rng(seed)
    trials = []
    for utt in utterances:
        keys = ("target", "nontarget") if utt["label"] == 1 else ("spoof",)
        for key in keys:
            speaker = f"E_{int(rng.integers(0, 9999)):04d}"
            attack = str(utt["attack"]) if key == "spoof" else "bonafide"
            trials.append({"speaker": speaker, "utt_id": str(utt["utt_id"]), "attack": attack,
                           "key": key})  # fmt: skip
    return trials
