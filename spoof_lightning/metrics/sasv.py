"""ASVspoof 5 Track 2 (SASV) scoring in eval.py: ASV trials and scores joined with CM scores.

Files (ASVspoof 5 database, ``ASVspoof5_protocols/``, and the official evaluation package):

* ASV trial list ``ASVspoof5.{dev,eval}.track_2.trial.tsv`` (``asv_keys``): whitespace
  separated, no header, ``enrolled_speaker utt gender attack key`` with key ``target``,
  ``nontarget`` or ``spoof``, e.g. ``E_4413 E_0008170907 F A25 spoof``.
* ASV scores (``asv_scores``): the evaluation package's score file, tab separated with a
  header ``spk filename cm-score asv-score sasv-score`` (``-`` where a system gives no such
  score; the package also reads the names ``tar_spk_anon`` / ``trial_anon``), as the
  organisers distribute their ASV scores; or plain ``enrolled_speaker utt score`` lines.
  Trials are joined by ``(speaker, utt)``, never by order.

The CM score of a trial is eval.py's score of its utterance. The SASV score is the score
file's ``sasv-score`` when every trial has one, else the score-sum fusion ``asv + cm`` of the
SASV 2022 baseline (Jung et al., "SASV 2022: the first spoofing-aware speaker verification
challenge", Interspeech 2022). Breakdowns follow the package's ``evaluation_full.py``:
per attack, every target and non-target trial with that attack's spoof trials; per condition
(e.g. ``codec`` of the trial's utterance), the trials of that condition only.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spoof_lightning.metrics.asvspoof5 import sasv_metrics
from spoof_lightning.metrics.scores import ASV_KEYS, ScoreFileError, _lines, _parse_score

SPEAKER_COLUMNS = ("spk", "tar_spk_anon")
FILE_COLUMNS = ("filename", "trial_anon")
TrialKey = tuple[str, str]
FUSED_BY_FILE, SUM_FUSION = "sasv-score of the score file", "score sum: asv + cm"


def read_asv5_trials(path: str | Path) -> list[dict[str, str]]:
    """Rows ``speaker, utt_id, gender, attack, key`` of an ASVspoof 5 track-2 trial list."""
    path, rows, seen = Path(path), [], set()
    for number, fields in _lines(path):
        if len(fields) != 5:
            raise ScoreFileError(
                f"{path}:{number}: expected 5 fields 'speaker utt gender attack key' "
                f"(ASVspoof5.*.track_2.trial.tsv), got {len(fields)}"
            )
        speaker, utt, gender, attack, key = fields
        if key not in ASV_KEYS:
            raise ScoreFileError(f"{path}:{number}: ASV key {key!r} is not one of {ASV_KEYS}")
        if (speaker, utt) in seen:
            raise ScoreFileError(f"{path}:{number}: trial {speaker} {utt} is listed twice")
        seen.add((speaker, utt))
        attack = attack if key == "spoof" else "-"
        rows.append(
            {"speaker": speaker, "utt_id": utt, "gender": gender, "attack": attack, "key": key}
        )
    return rows


def _column(header: list[str], names: Sequence[str], path: Path) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise ScoreFileError(f"{path}:1: no column {' or '.join(names)} in header {header}")


def read_asv5_scores(path: str | Path) -> dict[TrialKey, tuple[float, float | None]]:
    """``{(speaker, utt): (asv score, sasv score or None)}`` of an ASV score file."""
    path, scores = Path(path), {}
    lines = list(_lines(path))
    header = lines[0][1] if lines and "asv-score" in lines[0][1] else None
    if header is not None:
        spk, utt = _column(header, SPEAKER_COLUMNS, path), _column(header, FILE_COLUMNS, path)
        asv = header.index("asv-score")
        sasv = header.index("sasv-score") if "sasv-score" in header else None
        lines = lines[1:]
    else:
        spk, utt, asv, sasv = 0, 1, 2, None
    width = len(header) if header is not None else 3
    for number, fields in lines:
        if len(fields) != width:
            expected = " ".join(header) if header is not None else "speaker utt score"
            raise ScoreFileError(f"{path}:{number}: expected {width} fields ({expected})")
        key = (fields[spk], fields[utt])
        if key in scores:
            raise ScoreFileError(f"{path}:{number}: trial {key[0]} {key[1]} is scored twice")
        fused = None
        if sasv is not None and fields[sasv] != "-":
            fused = _parse_score(fields[sasv], path, number)
        scores[key] = (_parse_score(fields[asv], path, number), fused)
    return scores


def sasv_rows(
    trials: Sequence[Mapping[str, str]],
    asv_scores: Mapping[TrialKey, tuple[float, float | None]],
    cm_rows: Sequence[Mapping[str, Any]],
    where: str = "asv_scores",
) -> tuple[list[dict[str, Any]], str]:
    """Trial rows with ``asv``, ``cm``, ``sasv`` and the metadata of the trial's utterance,
    and how the SASV scores were made (see the module docstring)."""
    by_utt = {row["utt_id"]: row for row in cm_rows}
    no_cm = sorted({t["utt_id"] for t in trials} - by_utt.keys())
    no_asv = [f"{t['speaker']} {t['utt_id']}" for t in trials if (t["speaker"], t["utt_id"])
              not in asv_scores]  # fmt: skip
    for missing, what in ((no_cm, "CM scores (the scored split)"), (no_asv, where)):
        if missing:
            raise ValueError(
                f"{len(missing)} ASV trials have no entry in the {what}, e.g. {missing[:3]}"
            )
    fused = all(asv_scores[(t["speaker"], t["utt_id"])][1] is not None for t in trials)
    rows = []
    for trial in trials:
        asv, sasv = asv_scores[(trial["speaker"], trial["utt_id"])]
        cm_row = by_utt[trial["utt_id"]]
        cm = float(cm_row["score"])
        condition = {k: v for k, v in cm_row.items() if k not in trial and k != "score"}
        rows.append(
            condition | dict(trial) | {"asv": asv, "cm": cm, "sasv": sasv if fused else asv + cm}
        )
    return rows, FUSED_BY_FILE if fused else SUM_FUSION


def _entry(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_key = {key: [row for row in rows if row["key"] == key] for key in ASV_KEYS}
    entry: dict[str, Any] = {f"n_{key}": len(by_key[key]) for key in ASV_KEYS}
    arrays = [
        np.asarray([row[system] for row in by_key[key]], dtype=np.float64)
        for system in ("asv", "cm", "sasv")
        for key in ASV_KEYS
    ]
    try:
        return entry | sasv_metrics(*arrays)
    except ValueError as error:  # e.g. no non-target trial in this condition
        return entry | dict.fromkeys(("min_a_dcf", "min_tdcf", "t_eer")) | {"error": str(error)}


def sasv_report(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str] = ()) -> dict:
    """Pooled, per-attack and per-condition a-DCF, min t-DCF and t-EER (percent)."""
    result = _entry(rows) | {"attacks": {}}
    bona = [row for row in rows if row["key"] != "spoof"]
    for attack in sorted({row["attack"] for row in rows if row["key"] == "spoof"}):
        spoof = [row for row in rows if row["key"] == "spoof" and row["attack"] == attack]
        result["attacks"][attack] = _entry(bona + spoof)
    result["conditions"] = {
        column: {
            value: _entry([row for row in rows if str(row.get(column)) == value])
            for value in sorted({str(row.get(column)) for row in rows})
        }
        for column in conditions
    }
    return result


def _cells(entry: Mapping[str, Any]) -> str:
    values = (entry["min_a_dcf"], entry["min_tdcf"], entry["t_eer"])
    return "".join(f"{'n/a':>10}" if v is None else f"{v:10.4f}" for v in values)


def format_sasv(result: Mapping[str, Any]) -> str:
    """Plain-text SASV table: pooled, per attack, per condition."""
    header = (
        f"{'':<12}{'n_tar':>8}{'n_non':>8}{'n_spoof':>8}{'a-DCF':>10}{'t-DCF':>10}{'t-EER %':>10}"
    )
    lines = ["SASV (ASVspoof 5 Track 2)", header]
    groups = [("pooled", {"": result})] + [("attack", result["attacks"])]
    groups += list(result["conditions"].items())
    for name, table in groups:
        for value, entry in table.items():
            label = f"{name} {value}".strip()
            lines.append(
                f"{label:<12}{entry['n_target']:>8}{entry['n_nontarget']:>8}"
                f"{entry['n_spoof']:>8}{_cells(entry)}"
            )
    return "\n".join(lines)


__all__ = ["format_sasv", "read_asv5_scores", "read_asv5_trials", "sasv_report", "sasv_rows"]
