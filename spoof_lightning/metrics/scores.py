"""Score files in the official ASVspoof formats, and joining scores to a protocol by id.

Formats (one trial per line, single spaces):

* ASVspoof 2019 CM score file, as the official 2019 t-DCF script and AASIST read it:
  ``utt source key score``, e.g. ``LA_E_2834763 A11 spoof -3.2`` and
  ``LA_E_1000147 - bonafide 2.7``. ``source`` is the attack id of the protocol (``-`` for
  bona fide, as in the CM protocols); ``key`` is ``bonafide`` or ``spoof``. The official
  scorer splits trials by ``key``; per-attack results use ``source``.
* ASVspoof 2021 submission (CodaLab and the 2021 evaluation package): ``utt score``.
* CSV: a header and every metadata column of the protocol plus ``score``.
* ASVspoof 2019 ASV score files of the organisers (``ASVspoof2019.LA.asv.{dev,eval}.gi.trl
  .scores.txt``): ``source key score`` with key ``target``/``nontarget``/``spoof`` and
  source ``bonafide`` or the attack id; the copies in the t-DCF package prefix
  ``speaker utt -``. Both are read by taking the last three fields.
* ASVspoof 2021 ASV keys (``keys/{LA,PA}/ASV/trial_metadata.txt``, columns as the 2021
  package's ``config.py``) and organisers' scores (``ASVTorch_Kaldi/score.txt``:
  ``asv_speaker trial score``), joined by trial id.

Scores are written with ``repr`` (shortest exact round trip), each file atomically (a
temporary file renamed into place, :mod:`spoof_lightning.atomic`). Every reader error names
the file and the line.
"""

import csv
import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spoof_lightning.atomic import atomic_open
from spoof_lightning.errors import listed
from spoof_lightning.metrics.tdcf import AsvScores

KEY_TO_LABEL = {"bonafide": 1, "spoof": 0}
LABEL_TO_KEY = {1: "bonafide", 0: "spoof"}
ASV_KEYS = ("target", "nontarget", "spoof")


class ScoreFileError(ValueError):
    """A malformed score file; the message names ``file:line``."""


def _parse_score(text: str, path: Path, number: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScoreFileError(f"{path}:{number}: score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ScoreFileError(f"{path}:{number}: score {text!r} is not finite")
    return value


def _lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                yield number, fields


def _check_new(utt: str, seen: set[str], path: Path, number: int) -> None:
    if utt in seen:
        raise ScoreFileError(f"{path}:{number}: utterance {utt!r} is scored twice")
    seen.add(utt)


def protocol_row(entry: Any) -> dict[str, Any]:
    """A protocol entry as a flat dict: a mapping, or a dataclass such as ``Utterance``.

    A nested ``meta`` mapping (e.g. the 2021 codec/transmission columns) is flattened into
    the row; paths become strings.
    """
    if isinstance(entry, Mapping):
        row = dict(entry)
    elif dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        row = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    else:
        raise TypeError(f"protocol entries must be mappings or dataclasses, got {type(entry)}")
    meta = row.pop("meta", None) or {}
    row.update({key: value for key, value in meta.items() if key not in row})
    return {key: str(value) if isinstance(value, Path) else value for key, value in row.items()}


def join_scores(scores: Mapping[str, float], protocol: Iterable[Any]) -> list[dict[str, Any]]:
    """Attach ``score`` to every protocol row by utterance id (never by order).

    Returns the protocol rows (see :func:`protocol_row`) in protocol order. Raises
    ValueError when ids are missing on either side or repeated in the protocol.
    """
    rows = [protocol_row(entry) for entry in protocol]
    no_id = sum("utt_id" not in row for row in rows)
    if no_id:
        raise ValueError(f"{no_id} protocol entries have no `utt_id` field")
    ids = [row["utt_id"] for row in rows]
    repeated = [utt for utt, count in Counter(ids).items() if count > 1]
    if repeated:
        raise ValueError(
            f"{len(repeated)} utterance ids repeat in the protocol: {listed(sorted(repeated))}"
        )
    unscored = set(ids) - scores.keys()
    unknown = scores.keys() - set(ids)
    problems = []
    if unscored:
        problems.append(
            f"{len(unscored)} protocol utterances have no score ({listed(sorted(unscored))})"
        )
    if unknown:
        problems.append(
            f"{len(unknown)} scored utterances are not in the protocol ({listed(sorted(unknown))})"
        )
    if problems:
        raise ValueError("scores and protocol disagree: " + "; ".join(problems))
    return [row | {"score": float(scores[row["utt_id"]])} for row in rows]


def write_cm_scores_2019(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``utt source key score``; rows need ``utt_id``, ``label``, ``attack``, ``score``."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            label = int(row["label"])
            if label not in LABEL_TO_KEY:
                raise ValueError(
                    f"utterance {row['utt_id']} has label {label}: the 2019 CM score file needs "
                    "labelled trials (1 bona fide, 0 spoof); use write_scores_2021 otherwise"
                )
            source = "-" if label == 1 else str(row.get("attack", "-"))
            handle.write(
                f"{row['utt_id']} {source} {LABEL_TO_KEY[label]} {float(row['score'])!r}\n"
            )
    return path


def read_cm_scores_2019(path: str | Path) -> list[dict[str, Any]]:
    """Read a 2019 CM score file into rows ``utt_id, attack, label, score`` (file order)."""
    path, rows, seen = Path(path), [], set()
    for number, fields in _lines(path):
        if len(fields) != 4:
            raise ScoreFileError(
                f"{path}:{number}: expected 4 fields 'utt source key score', got {len(fields)}"
            )
        utt, source, key, score = fields
        if key not in KEY_TO_LABEL:
            raise ScoreFileError(f"{path}:{number}: key {key!r} is not 'bonafide' or 'spoof'")
        _check_new(utt, seen, path, number)
        rows.append(
            {
                "utt_id": utt,
                "attack": source,
                "label": KEY_TO_LABEL[key],
                "score": _parse_score(score, path, number),
            }
        )
    return rows


def write_scores_2021(path: str | Path, scores: Mapping[str, float]) -> Path:
    """Write an ASVspoof 2021 submission: ``utt score`` per line."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for utt, score in scores.items():
            handle.write(f"{utt} {float(score)!r}\n")
    return path


def read_scores_2021(path: str | Path) -> dict[str, float]:
    """Read ``utt score`` lines (2021 submission) into ``{utt: score}``."""
    path, scores, seen = Path(path), {}, set()
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise ScoreFileError(
                f"{path}:{number}: expected 2 fields 'utt score', got {len(fields)}"
            )
        _check_new(fields[0], seen, path, number)
        scores[fields[0]] = _parse_score(fields[1], path, number)
    return scores


def write_scores_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows to CSV with every column any row has (``utt_id`` first, ``score`` last)."""
    rows = [dict(row) for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    columns = ["utt_id"] + [c for c in columns if c not in ("utt_id", "score")] + ["score"]
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row | {"score": repr(float(row["score"]))})
    return path


def read_scores_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_scores_csv`; ``score`` -> float, ``label`` -> int."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"score file not found: {path}")
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for column in ("utt_id", "score"):
            if column not in (reader.fieldnames or []):
                raise ScoreFileError(f"{path}: no `{column}` column in header {reader.fieldnames}")
        for number, row in enumerate(reader, start=2):
            row["score"] = _parse_score(row["score"], path, number)
            if row.get("label", "") != "":
                row["label"] = int(row["label"])
            rows.append(row)
    return rows


def read_asv_scores_2019(path: str | Path) -> AsvScores:
    """Read an organisers' 2019 ASV score file into target / non-target / spoof arrays."""
    path, rows = Path(path), []
    for number, fields in _lines(path):
        if len(fields) < 3:
            raise ScoreFileError(
                f"{path}:{number}: expected '... source key score', got {len(fields)} fields"
            )
        source, key, score = fields[-3:]
        if key not in ASV_KEYS:
            raise ScoreFileError(f"{path}:{number}: ASV key {key!r} is not one of {ASV_KEYS}")
        rows.append({"key": key, "attack": source, "score": _parse_score(score, path, number)})
    return asv_scores_from_rows(rows)


# named as the CM metadata of spoof_lightning.data.corpora.asvspoof2021, so condition columns match
ASV_METADATA_COLUMNS_2021 = {
    "LA": ("speaker", "utt_id", "codec", "transmission", "attack", "key", "trim", "phase"),
    "PA": (
        "speaker", "utt_id", "asv_room", "asv_mic", "asv_distance", "attack_room", "attack_mic",
        "attack_distance", "attacker_to_speaker", "key", "trim", "phase",
    ),
}  # fmt: skip
PA_ATTACK_COLUMNS_2021 = ("attack_room", "attack_mic", "attack_distance", "attacker_to_speaker")


def read_asv_trials_2021(
    score_path: str | Path, metadata_path: str | Path, track: str = "LA", phase: str = "eval"
) -> list[dict[str, Any]]:
    """ASV trials of one 2021 phase: metadata columns plus ``score``, joined by trial id.

    PA spoof trials get ``attack`` = the four attacker fields joined by ``_`` (as the CM
    protocol parser names PA attacks).
    """
    if track not in ASV_METADATA_COLUMNS_2021:
        raise ValueError(
            f"2021 ASV keys exist for {sorted(ASV_METADATA_COLUMNS_2021)}, not {track!r}"
        )
    columns = ASV_METADATA_COLUMNS_2021[track]
    metadata_path, rows = Path(metadata_path), []
    for number, fields in _lines(metadata_path):
        if len(fields) != len(columns):
            raise ScoreFileError(
                f"{metadata_path}:{number}: expected {len(columns)} {track} columns {columns}, "
                f"got {len(fields)}"
            )
        row = dict(zip(columns, fields, strict=True))
        if row["key"] not in ASV_KEYS:
            raise ScoreFileError(
                f"{metadata_path}:{number}: ASV key {row['key']!r} not in {ASV_KEYS}"
            )
        if track == "PA":
            joined = "_".join(row[c] for c in PA_ATTACK_COLUMNS_2021)
            row["attack"] = joined if row["key"] == "spoof" else "-"
        if row["phase"] == phase:
            rows.append(row)
    score_path, scores, seen = Path(score_path), {}, set()
    for number, fields in _lines(score_path):
        if len(fields) != 3:
            raise ScoreFileError(
                f"{score_path}:{number}: expected 3 fields 'asv_speaker trial score', "
                f"got {len(fields)}"
            )
        _check_new(fields[1], seen, score_path, number)
        scores[fields[1]] = _parse_score(fields[2], score_path, number)
    missing = [row["utt_id"] for row in rows if row["utt_id"] not in scores]
    if missing:
        raise ValueError(
            f"{score_path}: {len(missing)} {phase} ASV trials of {metadata_path} have no score "
            f"({listed(sorted(missing))})"
        )
    return [row | {"score": scores[row["utt_id"]]} for row in rows]


def asv_scores_from_rows(
    rows: Iterable[Mapping[str, Any]], where: Mapping[str, str] | None = None
) -> AsvScores:
    """:class:`AsvScores` of the rows (``key``, ``score``, ``attack``) matching ``where``."""
    selected = [r for r in rows if all(r[c] == v for c, v in (where or {}).items())]
    by_key = {key: [float(r["score"]) for r in selected if r["key"] == key] for key in ASV_KEYS}
    return AsvScores(
        target=np.asarray(by_key["target"]),
        nontarget=np.asarray(by_key["nontarget"]),
        spoof=np.asarray(by_key["spoof"]),
        spoof_attacks=tuple(str(r.get("attack", "-")) for r in selected if r["key"] == "spoof"),
    )


__all__ = [
    "ASV_METADATA_COLUMNS_2021",
    "ScoreFileError",
    "asv_scores_from_rows",
    "join_scores",
    "protocol_row",
    "read_asv_scores_2019",
    "read_asv_trials_2021",
    "read_cm_scores_2019",
    "read_scores_2021",
    "read_scores_csv",
    "write_cm_scores_2019",
    "write_scores_2021",
    "write_scores_csv",
]
