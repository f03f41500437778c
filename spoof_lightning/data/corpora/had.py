"""Half-truth Audio Detection (Yi et al., Interspeech 2021), ``had``: partially fake speech.

Layout under ``root`` (or ``root/HAD``): ``HAD_{train,dev,test}/HAD_<split>_label.txt`` and
wav files anywhere below ``HAD_<split>/`` (upstream folders include the misspelling
``conbine``). The segment lists are also the localisation targets (:func:`parse_segments`).
"""

from __future__ import annotations

from pathlib import Path

from spoof_lightning.data.protocols import (
    BONAFIDE,
    MissingDataError,
    Problem,
    Utterance,
    corpus,
    dedupe,
    read_lines,
    require,
    settle,
)


def parse_segments(text: str) -> list[tuple[float, float, bool]]:
    """``0.00-1.27-T/1.27-1.75-F`` -> ``[(0.0, 1.27, True), (1.27, 1.75, False)]``.

    True marks a genuine segment (T), False a fake one (F). Raises ValueError.
    """
    segments = []
    for part in text.split("/"):
        start, end, flag = part.split("-")
        if flag not in ("T", "F"):
            raise ValueError(f"segment flag {flag!r} is not T or F")
        a, b = float(start), float(end)
        if b < a:
            raise ValueError(f"segment {part!r} ends before it starts")
        segments.append((a, b, flag == "T"))
    return segments


def parse_had(
    labels: Path, audio_dir: Path, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Parse a HAD label file: ``<utt> <start>-<end>-<T|F>/... <label>`` (1 real, 0 fake).

    The segment string is kept in ``meta['segments']`` (see :func:`parse_segments`);
    the audio is the first ``<utt>.wav`` found anywhere below ``audio_dir``. The
    attack id is ``partial`` for fake files, ``-`` for real ones.
    """
    found: list[Problem] = []
    files: dict[str, Path] = {}
    for wav in sorted(audio_dir.rglob("*.wav")):
        files.setdefault(wav.stem, wav)
    out: list[Utterance] = []
    for number, f, raw in read_lines(labels):
        where = f"{labels}:{number}"
        if len(f) != 3 or f[2] not in ("0", "1"):
            found.append(Problem("malformed", where, f"expected 'utt segments 0|1', got {raw!r}"))
            continue
        utt, segments, flag = f
        try:
            parsed = parse_segments(segments)
        except ValueError as err:
            found.append(Problem("malformed", where, f"bad segment list ({err}): {raw!r}"))
            continue
        label = int(flag)
        if label == BONAFIDE and not all(genuine for _, _, genuine in parsed):
            found.append(Problem("malformed", where, f"real file with fake segments: {raw!r}"))
            continue
        path = files.get(utt, audio_dir / f"{utt}.wav")
        out.append(
            Utterance(
                utt,
                path,
                label,
                attack="-" if label == BONAFIDE else "partial",
                meta={"segments": segments},
            )
        )
    return settle(dedupe(out, labels, found), found, problems, labels)


_HAD_SPLITS = {"train": "train", "val": "dev", "test": "test"}


@corpus("had")
def load_had(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """HAD: ``root`` holds ``HAD_{train,dev,test}/`` (or a ``HAD/`` folder that does)."""
    name = _HAD_SPLITS[split]
    base = root / "HAD" if (root / "HAD").is_dir() and not (root / f"HAD_{name}").exists() else root
    if not base.is_dir():
        raise MissingDataError("HAD root", root, key)
    split_dir = require(base / f"HAD_{name}", f"HAD {name} directory", key, is_dir=True)
    places = [split_dir / f"HAD_{name}_label.txt", base / f"HAD_{name}_label.txt"]
    labels = require(places, f"HAD {name} label file", key)
    return parse_had(labels, split_dir, problems)
