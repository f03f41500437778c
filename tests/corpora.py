"""Test fixtures in the real file formats of In-the-Wild and ASVspoof 5 Track 2 (tiny
generated audio; the layouts and columns are the released ones, the content is synthetic)."""

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spoof_lightning.data.fixtures import synth, write_audio

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
