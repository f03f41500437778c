"""``folder``: any directory of wav/flac/ogg/mp3, unlabeled or labeled by a CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from spoof_lightning.data.audio import AUDIO_EXTENSIONS
from spoof_lightning.data.protocols import (
    BONAFIDE,
    SPOOF,
    UNKNOWN,
    MissingDataError,
    Problem,
    ProtocolError,
    Utterance,
    corpus,
    dedupe,
    require,
    settle,
)

_FOLDER_SPLITS = {"train": ("train",), "val": ("val", "dev"), "test": ("test", "eval")}
_SPLIT_NAMES = {name for names in _FOLDER_SPLITS.values() for name in names}
_LABELS = {"1": BONAFIDE, "0": SPOOF, "bonafide": BONAFIDE, "spoof": SPOOF, "bona-fide": BONAFIDE}


def scan_audio(directory: Path) -> list[Path]:
    """Audio files (wav, flac, ogg, mp3) below ``directory``, recursively, sorted."""
    return sorted(
        p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )


def parse_label_csv(
    csv_path: Path, root: Path, split: str | None, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Rows ``path,label[,split][,attack][,speaker]`` (header required) of a label CSV.

    ``path`` is relative to ``root`` (or absolute) and is the utterance id; ``label``
    is bonafide/spoof, 1/0, or empty/-1 for unknown. With a ``split`` column only the
    rows of ``split`` are kept (val also matches dev, test also matches eval); a row
    whose split is none of these is a problem, never silently left out.
    """
    found: list[Problem] = []
    out: list[Utterance] = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "path" not in header or "label" not in header:
            raise ProtocolError(f"{csv_path}:1: header must contain 'path,label', got {header}")
        if split is not None and "split" not in header and split != "test":
            raise ProtocolError(
                f"{csv_path}: no 'split' column, so its rows form the test split only; add a "
                f"column split (train/val/test) to use it for {split!r}"
            )
        for number, row in enumerate(reader, start=2):
            where = f"{csv_path}:{number}"
            if not row.get("path"):
                found.append(Problem("malformed", where, f"empty path in {row}"))
                continue
            if split is not None and "split" in row:
                row_split = (row["split"] or "").strip().lower()
                if row_split not in _SPLIT_NAMES:
                    names = ", ".join(sorted(_SPLIT_NAMES))
                    found.append(Problem("malformed", where, f"split {row_split!r} not in {names}"))
                    continue
                if row_split not in _FOLDER_SPLITS[split]:
                    continue
            raw_label = (row.get("label") or "").strip().lower()
            if raw_label in ("", "-1", "-", "unknown"):
                label = UNKNOWN
            elif raw_label in _LABELS:
                label = _LABELS[raw_label]
            else:
                found.append(Problem("unknown_key", where, f"label {raw_label!r} in {row}"))
                continue
            rel = row["path"].strip()
            attack = (row.get("attack") or "").strip() or "-"
            out.append(
                Utterance(
                    rel,
                    Path(rel) if Path(rel).is_absolute() else root / rel,
                    label,
                    speaker=(row.get("speaker") or "").strip() or "-",
                    attack="-" if label == BONAFIDE else attack,
                )
            )
    return settle(dedupe(out, csv_path, found), found, problems, csv_path)


@corpus("folder")
def load_folder(
    root: Path,
    split: str,
    problems: list[Problem],
    key: str = "data.root",
    labels: str | Path | None = None,
) -> list[Utterance]:
    """Any directory of audio, recursively, as the split.

    Without ``labels`` the files are unlabeled (label -1); a split reads ``root/<split>``
    (``val`` also ``dev``; ``test`` also ``eval``) when it exists, else ``root`` itself for
    the test split. With ``labels`` (a CSV, see :func:`parse_label_csv`) its rows are
    the entries. The utterance id is the path relative to ``root``.
    """
    if not root.is_dir():
        raise MissingDataError("audio folder", root, key)
    if labels is not None:
        csv_path = Path(labels) if Path(labels).is_absolute() else root / labels
        require(csv_path, "label CSV", "data.corpus_options.labels")
        return parse_label_csv(csv_path, root, split, problems)
    directory = next((root / d for d in _FOLDER_SPLITS[split] if (root / d).is_dir()), None)
    if directory is None:
        if split != "test":
            raise MissingDataError(f"folder {split!r} split", root / split, key)
        directory = root
    files = scan_audio(directory)
    if not files:
        raise MissingDataError(f"audio files ({', '.join(AUDIO_EXTENSIONS)})", directory, key)
    return [Utterance(p.relative_to(root).as_posix(), p, UNKNOWN) for p in files]
