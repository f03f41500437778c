"""One-call evaluation of a labelled score set, and a plain-text table of the results.

Breakdowns follow the ASVspoof evaluation packages: per attack, all bona fide trials
against that attack's spoofs; per condition (e.g. the 2021 ``codec`` column), bona fide
and spoof trials of that condition only — unless every bona fide trial has the
placeholder ``-`` in that column (a spoof-only factor such as the DF ``vocoder``), in
which case all bona fide trials are used, as the 2021 package does for such factors.
EERs are fractions in [0, 1]; the table prints percentages.

Metric sets: ``eer`` (every corpus) gives the EER and its threshold for each entry;
``asvspoof5`` adds the ASVspoof 5 Track 1 metrics of
:func:`~spoof_lightning.metrics.asvspoof5.cm_metrics` (minDCF, actDCF, Cllr; the EER is the
same function) to each entry, pooled, per attack and per condition, as the official
package's ``evaluation_full.py`` tabulates them.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from spoof_lightning.metrics.asvspoof5 import cm_metrics
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.metrics.scores import asv_scores_from_rows
from spoof_lightning.metrics.tdcf import AsvScores, min_tdcf_2019, min_tdcf_2021

PLACEHOLDER = "-"
METRIC_SETS = ("eer", "asvspoof5")
DCF_KEYS = ("min_dcf", "act_dcf", "cllr")


def _tdcf(bonafide: np.ndarray, spoof: np.ndarray, asv: AsvScores, form: str) -> dict[str, float]:
    function = {"2019": min_tdcf_2019, "2021": min_tdcf_2021}[form]
    result = function(bonafide, spoof, asv.target, asv.nontarget, asv.spoof)
    return {
        "min_tdcf": result.min_tdcf,
        "tdcf_cm_threshold": result.cm_threshold,
        "eer_asv": result.eer_asv,
        "asv_threshold": result.asv_threshold,
    }


def _eer_entry(bonafide: np.ndarray, spoof: np.ndarray, metric_set: str = "eer") -> dict[str, Any]:
    entry: dict[str, Any] = {"n_bonafide": int(bonafide.size), "n_spoof": int(spoof.size)}
    if not (bonafide.size and spoof.size):  # undefined: a class is empty
        keys = ("eer", "eer_threshold", *(DCF_KEYS if metric_set == "asvspoof5" else ()))
        return entry | dict.fromkeys(keys)
    if metric_set == "asvspoof5":
        return entry | cm_metrics(bonafide, spoof)
    entry["eer"], entry["eer_threshold"] = compute_eer(bonafide, spoof)
    return entry


def _breakdown_tdcf(
    entry: dict[str, Any], bonafide: np.ndarray, spoof: np.ndarray, asv: AsvScores, form: str
) -> None:
    """Add ``min_tdcf`` to a breakdown entry; None plus the reason when it is undefined."""
    try:
        entry["min_tdcf"] = _tdcf(bonafide, spoof, asv, form)["min_tdcf"]
    except ValueError as error:  # e.g. an empty class or a degenerate ASV subset
        entry["min_tdcf"], entry["tdcf_error"] = None, str(error)


def evaluate(
    scores: ArrayLike,
    labels: ArrayLike,
    attacks: Sequence[str],
    conditions: Mapping[str, Sequence[str]] | None = None,
    asv: AsvScores | None = None,
    tdcf: Literal["2019", "2021"] = "2019",
    asv_by_condition: Mapping[str, Mapping[str, AsvScores]] | None = None,
    metric_set: str = "eer",
) -> dict[str, Any]:
    """Pooled, per-attack and per-condition EER (plus the ``metric_set`` metrics), and min
    t-DCF when ASV scores are given.

    ``labels``: 1 bona fide, 0 spoof (one per score); ``attacks``: attack id per trial
    (``-`` for bona fide); ``conditions``: column name -> one value per trial. ``tdcf``
    picks the 2019 or 2021 t-DCF form. Per-attack min t-DCF is reported when ``asv``
    carries attack ids for its spoof trials; per-condition min t-DCF when
    ``asv_by_condition[column][value]`` holds that condition's ASV scores (the 2021
    package recomputes the ASV operating point per condition).
    """
    if metric_set not in METRIC_SETS:
        raise ValueError(f"metric set must be one of {METRIC_SETS}, got {metric_set!r}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    attack_ids = np.asarray(attacks, dtype=str)
    if not (scores.size == labels.size == attack_ids.size):
        raise ValueError(
            f"scores ({scores.size}), labels ({labels.size}) and attacks ({attack_ids.size}) "
            "must have one entry per trial"
        )
    n_unlabelled = int(np.count_nonzero((labels != 0) & (labels != 1)))
    if n_unlabelled:
        raise ValueError(f"{n_unlabelled} trials have no bona fide/spoof label (1/0)")
    is_bona = labels == 1
    bonafide = scores[is_bona]
    if bonafide.size == 0 or bonafide.size == scores.size:
        empty = "bona fide" if bonafide.size == 0 else "spoof"
        raise ValueError(f"the {empty} class is empty: nothing to evaluate")

    result: dict[str, Any] = _eer_entry(bonafide, scores[~is_bona], metric_set)
    if asv is not None:
        result |= _tdcf(bonafide, scores[~is_bona], asv, tdcf) | {"tdcf_form": tdcf}

    result["attacks"] = {}
    for attack in sorted(set(attack_ids[~is_bona])):
        spoof = scores[~is_bona & (attack_ids == attack)]
        entry = _eer_entry(bonafide, spoof, metric_set)
        if asv is not None and attack in asv.spoof_attacks:
            _breakdown_tdcf(entry, bonafide, spoof, asv.for_attack(attack), tdcf)
        result["attacks"][attack] = entry

    result["conditions"] = {}
    for column, values in (conditions or {}).items():
        values = np.asarray(values, dtype=str)
        if values.size != scores.size:
            raise ValueError(
                f"condition {column!r} has {values.size} values for {scores.size} trials"
            )
        spoof_only = bool(np.all(values[is_bona] == PLACEHOLDER))
        condition_asv = (asv_by_condition or {}).get(column, {})
        table = {}
        for value in sorted(set(values[~is_bona] if spoof_only else values)):
            bona_here = bonafide if spoof_only else scores[is_bona & (values == value)]
            spoof_here = scores[~is_bona & (values == value)]
            table[value] = _eer_entry(bona_here, spoof_here, metric_set)
            if value in condition_asv:
                _breakdown_tdcf(table[value], bona_here, spoof_here, condition_asv[value], tdcf)
        result["conditions"][column] = table
    return result


def evaluate_rows(
    rows: Iterable[Mapping[str, Any]],
    condition_columns: Sequence[str] = (),
    asv: AsvScores | Sequence[Mapping[str, Any]] | None = None,
    tdcf: Literal["2019", "2021"] = "2019",
    metric_set: str = "eer",
) -> dict[str, Any]:
    """:func:`evaluate` on rows with ``score``, ``label``, ``attack`` (as ``join_scores`` gives).

    ``asv`` may be :class:`AsvScores` or ASV trial rows (``read_asv_trials_2021``); with
    rows, every condition column they share gets its own ASV scores and min t-DCF.
    """
    rows = list(rows)
    missing = [c for c in ("score", "label", *condition_columns) if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}; they have {sorted(rows[0])}")
    conditions = {column: [str(row[column]) for row in rows] for column in condition_columns}
    asv_by_condition = None
    if asv is not None and not isinstance(asv, AsvScores):
        asv_rows = list(asv)
        asv_by_condition = {
            column: {
                value: asv_scores_from_rows(asv_rows, {column: value}) for value in set(values)
            }
            for column, values in conditions.items()
            if asv_rows and column in asv_rows[0]
        }
        asv = asv_scores_from_rows(asv_rows)
    return evaluate(
        [row["score"] for row in rows],
        [int(row["label"]) for row in rows],
        [str(row.get("attack", PLACEHOLDER)) for row in rows],
        conditions,
        asv=asv,
        tdcf=tdcf,
        asv_by_condition=asv_by_condition,
        metric_set=metric_set,
    )


def _percent(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.3f}"


def _cells(entry: Mapping[str, Any]) -> str:
    """The entry's minDCF, actDCF, Cllr and min t-DCF columns, those it has (None: n/a)."""
    keys = [key for key in (*DCF_KEYS, "min_tdcf") if key in entry]
    return "".join(f"{'n/a':>9}" if entry[k] is None else f"{entry[k]:9.4f}" for k in keys)


def _extra_header(entries: Iterable[Mapping[str, Any]]) -> str:
    entries = list(entries)
    header = "".join(f"{name:>9}" for name in ("minDCF", "actDCF", "Cllr"))
    with_dcf = any("min_dcf" in entry for entry in entries)
    with_tdcf = any("min_tdcf" in entry for entry in entries)
    return (header if with_dcf else "") + (f"{'t-DCF':>9}" if with_tdcf else "")


def _pooled_lines(result: Mapping[str, Any]) -> list[str]:
    line = f"pooled   EER {_percent(result['eer'])} %"
    ci = result.get("eer_ci")
    if ci:
        line += f" [{100 * ci['level']:g}% CI {100 * ci['low']:.3f}-{100 * ci['high']:.3f}]"
    lines = [
        line + f"  threshold {result['eer_threshold']:.6g}"
        f"  (bona fide {result['n_bonafide']}, spoof {result['n_spoof']})"
    ]
    if "min_dcf" in result:
        lines.append(
            f"         minDCF {result['min_dcf']:.4f}  actDCF {result['act_dcf']:.4f}"
            f"  Cllr {result['cllr']:.4f} bits  (ASVspoof 5 Track 1 costs)"
        )
    if "min_tdcf" in result:
        lines.append(
            f"         min t-DCF ({result['tdcf_form']}) {result['min_tdcf']:.4f}"
            f"  ASV EER {_percent(result['eer_asv'])} %"
        )
    return lines


def format_report(result: Mapping[str, Any]) -> str:
    """Plain-text tables: pooled line, then per attack, then per condition."""
    lines = _pooled_lines(result)
    if result.get("attacks"):
        extra = _extra_header(result["attacks"].values())
        lines += ["", f"{'attack':<12}{'n_spoof':>8}{'EER %':>9}" + extra]
        for attack, entry in result["attacks"].items():
            lines.append(
                f"{attack:<12}{entry['n_spoof']:>8}{_percent(entry['eer']):>9}{_cells(entry)}"
            )
    for column, table in result.get("conditions", {}).items():
        extra = _extra_header(table.values())
        lines += ["", f"{column:<12}{'n_bona':>8}{'n_spoof':>8}{'EER %':>9}" + extra]
        for value, entry in table.items():
            lines.append(
                f"{value:<12}{entry['n_bonafide']:>8}{entry['n_spoof']:>8}"
                f"{_percent(entry['eer']):>9}{_cells(entry)}"
            )
    return "\n".join(lines)


__all__ = ["METRIC_SETS", "evaluate", "evaluate_rows", "format_report"]
