"""The metrics of a scored split: the one summary of training's test and of eval.py.

A score set becomes rows by joining it with the protocol by utterance id (:func:`join_rows`,
never by order: every metadata column comes along); :func:`split_metrics` turns the rows into
the metrics dict written to ``<split>_metrics.json``: counts, decisions at a threshold, the
ASVspoof report (pooled, per attack, per condition; EER, t-DCF, the ASVspoof 5 set), the
EER's bootstrap interval, and for eval.py the SASV metrics, calibration and localisation.

Decisions: a trial is called bona fide when ``score > threshold``, as the official
``compute_eer`` rejects the trials scoring at or below its threshold (up to ties).
"""

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from spoof_lightning.errors import ConfigError
from spoof_lightning.metrics import localization
from spoof_lightning.metrics.bootstrap import eer_confidence_interval
from spoof_lightning.metrics.report import evaluate_rows
from spoof_lightning.metrics.sasv import sasv_report
from spoof_lightning.metrics.scores import join_scores
from spoof_lightning.metrics.tdcf import AsvScores

if TYPE_CHECKING:
    from spoof_lightning.scoring import ScoreSet

log = logging.getLogger(__name__)

# Protocol columns that are never conditions: identity, outcome, or per-file detail (the
# ASVspoof 5 codec_seed names the source utterance of a coded file).
NOT_CONDITIONS = frozenset(
    {"utt_id", "path", "label", "speaker", "attack", "score", "decision", "llr", "segments"}
    | {"codec_seed"}
)
MAX_CONDITION_VALUES = 64


def join_rows(
    scores: Mapping[str, float], utterances: Sequence[Any], where: str, skip_unscored: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Protocol rows with ``score``, joined by utterance id; returns ``(rows, unscored ids)``.

    ``skip_unscored`` (``data.on_error=skip``, where unreadable files are left out) drops
    protocol entries without a score instead of failing; scores of utterances that are not
    in the protocol are always an error.
    """
    unscored: list[str] = []
    if skip_unscored:
        unscored = [u.utt_id for u in utterances if u.utt_id not in scores]
        utterances = [u for u in utterances if u.utt_id in scores]
        if unscored:
            log.warning("%s: %d utterances were not scored (unreadable)", where, len(unscored))
    try:
        return join_scores(scores, utterances), unscored
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def condition_columns(
    rows: Sequence[Mapping[str, Any]],
    requested: str | Sequence[str] | None,
    declared: Sequence[str] = (),
) -> list[str]:
    """Columns to break results down by: ``auto`` = metadata columns (e.g. the 2021
    ``codec``) with 2 to 64 distinct values, plus the corpus's ``declared`` conditions
    (e.g. the In-the-Wild speaker, see ``CORPUS_CONDITIONS``); or an explicit list,
    checked to exist."""
    if not rows or requested is None:
        return []
    shared = set.intersection(*(set(row) for row in rows))
    if requested == "auto":
        candidates = [c for c in rows[0] if c in shared and c not in NOT_CONDITIONS]
        found = [
            c for c in candidates if 2 <= len({str(row[c]) for row in rows}) <= MAX_CONDITION_VALUES
        ]
        return found + [c for c in declared if c in shared and c not in found]
    columns = [requested] if isinstance(requested, str) else list(requested)
    missing = [c for c in columns if c not in shared]
    if missing:
        raise ConfigError(
            f"conditions: columns {missing} are not in the protocol metadata "
            f"(available: {sorted(shared - NOT_CONDITIONS)})"
        )
    return columns


def add_decisions(rows: list[dict[str, Any]], threshold: float) -> None:
    """``decision`` = ``bonafide`` when ``score > threshold``, else ``spoof``."""
    for row in rows:
        row["decision"] = "bonafide" if row["score"] > threshold else "spoof"


def labelled_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows labelled bona fide (1) or spoof (0)."""
    return [row for row in rows if row["label"] in (0, 1)]


def class_values(rows: Sequence[Mapping[str, Any]], key: str = "score") -> tuple[np.ndarray, ...]:
    """``(bona fide, spoof)`` values of ``key`` (float64)."""
    values = np.asarray([row[key] for row in rows], dtype=np.float64)
    labels = np.asarray([row["label"] for row in rows])
    return values[labels == 1], values[labels == 0]


def split_metrics(
    rows: Sequence[Mapping[str, Any]],
    conditions: str | Sequence[str] | None = "auto",
    asv: AsvScores | Sequence[Mapping[str, Any]] | None = None,
    tdcf: str = "2019",
    threshold: float | None = None,
    metric_set: str = "eer",
    bootstrap: Mapping[str, Any] | None = None,
    declared: Sequence[str] = (),
    *,
    sasv: tuple[list[dict[str, Any]], str] | None = None,
    dev_rows: Sequence[Mapping[str, Any]] | None = None,
    calibration_prior: float = 0.5,
    scored: "ScoreSet | None" = None,
    frame_hop: float | None = None,
) -> dict[str, Any]:
    """Counts, and for the labelled rows (both classes present) the ASVspoof report
    (:func:`metrics.report.evaluate_rows` with ``metric_set``, EERs as fractions) plus
    ``eer_percent``, the error rates at ``threshold`` and, with ``bootstrap``
    (``n_resamples``, ``seed``, ``level``), the EER's confidence interval ``eer_ci``.

    Then, when given: ``sasv`` (the ASVspoof 5 SASV trial rows and fusion of
    :func:`metrics.sasv.sasv_rows`): a-DCF, min t-DCF and t-EER, pooled, per attack and per
    condition; ``dev_rows``: a logistic calibration fitted on them (:func:`calibrate_rows`,
    which adds ``llr`` to ``rows``); ``scored`` (with its frame scores) and ``frame_hop``:
    localisation (:func:`localization_metrics`).
    """
    labelled = labelled_rows(rows)
    metrics: dict[str, Any] = {"n_trials": len(rows), "n_unlabelled": len(rows) - len(labelled)}
    if threshold is not None:
        n_bona = sum(row["score"] > threshold for row in rows)
        metrics["decisions"] = {"bonafide": n_bona, "spoof": len(rows) - n_bona}
    bonafide, spoof = class_values(labelled)
    metrics |= {"n_bonafide": int(bonafide.size), "n_spoof": int(spoof.size)}
    if bonafide.size and spoof.size:
        columns = condition_columns(labelled, conditions, declared)
        metrics |= evaluate_rows(labelled, columns, asv, tdcf, metric_set)
        metrics["eer_percent"] = 100 * metrics["eer"]
        if bootstrap and bootstrap.get("n_resamples"):
            metrics["eer_ci"] = eer_confidence_interval(bonafide, spoof, **bootstrap)
        if threshold is not None:
            metrics["at_threshold"] = {
                "threshold": threshold,
                "bonafide_miss_rate": float(np.mean(bonafide <= threshold)),
                "spoof_accept_rate": float(np.mean(spoof > threshold)),
            }
    if sasv is not None:
        joined, fusion = sasv
        columns = condition_columns(labelled, conditions)
        metrics["sasv"] = sasv_report(joined, [c for c in columns if c in joined[0]])
        metrics["sasv"] |= {"fusion": fusion}
    if dev_rows is not None:
        metrics["calibration"] = calibrate_rows(dev_rows, rows, calibration_prior)
    located = localization_metrics(scored, rows, frame_hop) if scored is not None else None
    if located is not None:
        metrics["localization"] = located
    return metrics


def calibrate_rows(
    dev_rows: Sequence[Mapping[str, Any]], rows: Sequence[dict[str, Any]], prior: float = 0.5
) -> dict[str, Any]:
    """Fit logistic calibration on labelled dev rows, add ``llr`` to ``rows``, and report
    Cllr, minCllr, actDCF and minDCF (ASVspoof 5 costs) where ``rows`` are labelled."""
    from spoof_lightning.metrics import calibration as cal  # scipy: imported when used

    dev_bona, dev_spoof = class_values(labelled_rows(dev_rows))
    if not (dev_bona.size and dev_spoof.size):
        raise ValueError(
            f"calibrate=true needs bona fide and spoof trials in the dev split "
            f"(got {dev_bona.size} bona fide, {dev_spoof.size} spoof)"
        )
    calibration = cal.LogisticCalibration.fit(dev_bona, dev_spoof, prior=prior)
    llrs = calibration([row["score"] for row in rows])
    for row, llr in zip(rows, llrs, strict=True):
        row["llr"] = float(llr)
    result: dict[str, Any] = {
        "scale": calibration.scale,
        "offset": calibration.offset,
        "prior": calibration.prior,
        "n_dev_bonafide": int(dev_bona.size),
        "n_dev_spoof": int(dev_spoof.size),
    }
    bona_llr, spoof_llr = class_values(labelled_rows(rows), "llr")
    if bona_llr.size and spoof_llr.size:
        bona, spoof = class_values(labelled_rows(rows))
        result["cllr"] = cal.cllr(bona_llr, spoof_llr)
        result["min_cllr"] = cal.min_cllr(bona, spoof)
        result["act_dcf"], result["act_dcf_threshold"] = cal.act_dcf(bona_llr, spoof_llr)
        result["min_dcf"], result["min_dcf_threshold"] = cal.min_dcf(bona_llr, spoof_llr)
    return result


def localization_metrics(
    scored: "ScoreSet", rows: Sequence[Mapping[str, Any]], frame_hop: float | None
) -> dict[str, Any] | None:
    """Frame-level and range-based EER (HAD) when the model gave frame scores.

    None when neither the data (segments, frame labels) nor the model (frame head) has
    anything frame-level; ``{"available": False, "reason": ...}`` when only one side has.
    """
    has_segments = bool(rows) and all("segments" in row for row in rows)
    frame_scores, frame_labels = scored.frame_scores, scored.frame_labels
    if not frame_scores:
        if not (has_segments or frame_hop):
            return None
        return {"available": False, "reason": "the model has no frame-level head"}
    if not frame_hop:
        return {"available": False, "reason": "data.frame_hop is null: no frame grid"}
    ids = [row["utt_id"] for row in rows if row["utt_id"] in frame_scores]
    scores = [frame_scores[utt] for utt in ids]
    result: dict[str, Any] = {"available": True, "frame_hop": frame_hop, "n_utterances": len(ids)}
    if all(utt in frame_labels for utt in ids):
        labels = [frame_labels[utt] for utt in ids]
        result["frame_eer"], result["frame_eer_threshold"] = localization.frame_eer(scores, labels)
    if has_segments:
        from spoof_lightning.data.corpora.had import parse_segments

        by_id = {row["utt_id"]: row["segments"] for row in rows}
        segments = [
            [(a, b, int(genuine)) for a, b, genuine in parse_segments(by_id[u])] for u in ids
        ]
        result["range_eer"], result["range_eer_threshold"] = localization.range_eer(
            scores, segments, frame_hop
        )
    return result
