"""In-the-Wild (Müller et al., "Does audio deepfake detection generalize?", Interspeech 2022),
``in_the_wild``: ``meta.csv`` (``file,speaker,label``) beside the wav files, in ``root`` or
``root/release_in_the_wild``; evaluation only (test split). The speaker is always a condition.
"""

from __future__ import annotations

import csv
from pathlib import Path

from spoof_lightning.data.protocols import (
    BONAFIDE,
    SPOOF,
    MissingDataError,
    Problem,
    ProtocolError,
    SplitUnavailableError,
    Utterance,
    corpus,
    dedupe,
    require,
    settle,
)

ITW_LABELS = {"bona-fide": BONAFIDE, "spoof": SPOOF}
ITW_ATTACK = "unknown"  # the corpus does not say which system made a spoof


def parse_in_the_wild(
    meta: Path, audio_dir: Path, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Parse In-the-Wild ``meta.csv``: header ``file,speaker,label``, label ``bona-fide`` or
    ``spoof``, e.g. ``0.wav,Alec Guinness,spoof``. The utterance id is the file name; the
    speaker (a public figure) is kept, as per-speaker results are a condition."""
    found: list[Problem] = []
    out: list[Utterance] = []
    with open(meta, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if not {"file", "speaker", "label"} <= set(header):
            raise ProtocolError(f"{meta}:1: header must be 'file,speaker,label', got {header}")
        for number, row in enumerate(reader, start=2):
            where = f"{meta}:{number}"
            name, label = (row["file"] or "").strip(), (row["label"] or "").strip()
            if not name:
                found.append(Problem("malformed", where, f"empty file name in {row}"))
                continue
            if label not in ITW_LABELS:
                found.append(
                    Problem("unknown_key", where, f"label {label!r} is not 'bona-fide' or 'spoof'")
                )
                continue
            bona = ITW_LABELS[label] == BONAFIDE
            out.append(
                Utterance(
                    name,
                    audio_dir / name,
                    ITW_LABELS[label],
                    speaker=(row["speaker"] or "").strip() or "-",
                    attack="-" if bona else ITW_ATTACK,
                )
            )
    return settle(dedupe(out, meta, found), found, problems, meta)


@corpus("in_the_wild", conditions=("speaker",))
def load_in_the_wild(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """In-the-Wild: ``root`` (or ``root/release_in_the_wild``) holds meta.csv and the wavs."""
    if split != "test":
        raise SplitUnavailableError(
            f"In-the-Wild is an evaluation-only corpus (split 'test'), it has no {split!r} "
            "split: train on another corpus (e.g. data=asvspoof2019_la), then score with "
            "python eval.py ckpt=... data=in_the_wild data.root=...; or keep data=in_the_wild "
            "and set data.train_corpus=asvspoof2019_la data.train_root=/path/to/LA19"
        )
    if not root.is_dir():
        raise MissingDataError("In-the-Wild root", root, key)
    places = [root / "meta.csv", root / "release_in_the_wild" / "meta.csv"]
    meta = require(places, "In-the-Wild meta.csv", key)
    return parse_in_the_wild(meta, meta.parent, problems)
