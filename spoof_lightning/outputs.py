"""The files of a scored split, written together and atomically, and the summary eval.py prints.

Outputs, under ``output_dir``, named by split (``test`` or ``val``), from eval.py and from
training's test (:class:`~spoof_lightning.callbacks.score_writer.ScoreWriter`):

* ``<split>_scores.txt`` — ASVspoof 2019 CM score file ``utt source key score`` (labelled
  sets only; what the official 2019 scorer reads);
* ``<split>_submission.txt`` — ASVspoof 2021 submission ``utt score``;
* ``<split>_scores.csv`` — every metadata column of the protocol joined by utterance id
  (never by order), plus ``decision`` (``bonafide``/``spoof``, when a threshold is
  known), ``llr`` (with ``calibrate=true``) and ``score``;
* ``<split>_metrics.json`` — :func:`~spoof_lightning.metrics.summary.split_metrics`: pooled
  EER (+ threshold, bootstrap 95% CI), per attack, per condition column, the ASVspoof 5
  metrics (``metrics=asvspoof5``, the default for ``data=asvspoof5``: minDCF, actDCF, Cllr;
  with ASV scores the SASV a-DCF, min t-DCF and t-EER), min t-DCF with an ASV score file,
  rates at the decision threshold, calibration and localisation results;
* ``<split>_det.png`` (probit DET) and ``<split>_score_hist.png`` (labelled sets only);
* ``<split>_frame_scores.npz`` — per-utterance frame scores, when the model has a frame head.

The files of a split are written together and atomically (:func:`write_outputs`): a kill or
a full disk leaves the earlier set whole. eval.py locks ``output_dir`` while it runs and
refuses one that holds the results of another checkpoint (:func:`claim_output_dir`).
"""

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spoof_lightning.atomic import atomic_files
from spoof_lightning.errors import ConfigError
from spoof_lightning.metrics.report import format_report as format_metrics
from spoof_lightning.metrics.sasv import format_sasv
from spoof_lightning.metrics.scores import write_cm_scores_2019, write_scores_2021, write_scores_csv
from spoof_lightning.metrics.summary import class_values, labelled_rows
from spoof_lightning.rundir import claim

log = logging.getLogger(__name__)


def _writable_ids(rows: Sequence[Mapping[str, Any]], path: Path) -> bool:
    spaced = [row["utt_id"] for row in rows if len(str(row["utt_id"]).split()) != 1]
    if spaced:
        log.warning(
            "not writing %s: %d utterance ids contain whitespace (e.g. %r); see the CSV",
            path,
            len(spaced),
            spaced[0],
        )
    return not spaced


def write_outputs(
    output_dir: str | Path,
    split: str,
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    frame_scores: Mapping[str, np.ndarray] | None = None,
    plots: bool = True,
    system: str = "scores",
    title: str | None = None,
) -> dict[str, Path]:
    """Write every output file of a scored split (see the module docstring); returns
    ``{"scores" | "submission" | "csv" | "metrics" | "det" | "hist" | "frames": path}``.

    The files replace those of an earlier pass together (:func:`atomic_files`): a kill or a
    full disk while they are written leaves the earlier set whole, never a mix.
    """
    out = Path(output_dir)
    files: dict[str, Path] = {}
    labelled = labelled_rows(rows)
    bonafide, spoof = class_values(labelled)
    with atomic_files() as staged:

        def temp(kind: str, name: str) -> Path:
            files[kind] = out / f"{split}_{name}"
            return staged.temp(files[kind])

        if rows and len(labelled) == len(rows) and _writable_ids(rows, out / f"{split}_scores.txt"):
            write_cm_scores_2019(temp("scores", "scores.txt"), rows)
        if _writable_ids(rows, out / f"{split}_submission.txt"):
            scores = {row["utt_id"]: row["score"] for row in rows}
            write_scores_2021(temp("submission", "submission.txt"), scores)
        write_scores_csv(temp("csv", "scores.csv"), rows)
        temp("metrics", "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if plots and bonafide.size and spoof.size:
            from spoof_lightning.metrics.plots import plot_det, plot_score_histogram

            plot_det({system: (bonafide, spoof)}, temp("det", "det.png"), title=title)
            threshold = (metrics.get("at_threshold") or {}).get(
                "threshold", metrics["eer_threshold"]
            )
            title = f"{system}, {title}" if title else system
            hist = temp("hist", "score_hist.png")
            plot_score_histogram(bonafide, spoof, hist, threshold=threshold, title=title)
        if frame_scores:
            np.savez_compressed(  # utterance i: scores[offsets[i]:offsets[i + 1]]
                temp("frames", "frame_scores.npz"),
                utt_ids=np.asarray(list(frame_scores), dtype=str),
                offsets=np.cumsum([0, *(v.size for v in frame_scores.values())]),
                scores=np.concatenate(list(frame_scores.values())),
            )
    return files


def claim_output_dir(output_dir: Path, split: str, checkpoint: Path) -> None:
    """Lock ``output_dir`` for this evaluation and refuse to replace the ``split`` results of
    another checkpoint (or of a training run's own test pass) that are already there.

    Results of the same checkpoint are replaced as a set by :func:`write_outputs`. The lock
    is on the directory itself: it holds results only.
    """
    claim(output_dir, owner_file=None)
    metrics = output_dir / f"{split}_metrics.json"
    if not metrics.is_file():
        return
    try:
        earlier = json.loads(metrics.read_text()).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if earlier is None or Path(earlier).resolve() != checkpoint.resolve():
        raise ConfigError(
            f"output_dir={output_dir} already holds {split} results of "
            f"{earlier or 'another run'} ({metrics.name}, ...); eval.py never writes over "
            "the results of another checkpoint: choose another output_dir (by default every "
            "evaluation gets a new one)"
        )


def format_report(report: Mapping[str, Any]) -> str:
    """The summary eval.py prints: what was scored, where the files are, the metrics table."""
    metrics = report["metrics"]
    lines = [
        f"checkpoint {metrics['checkpoint']} ({metrics['model']})",
        f"data       {metrics['corpus']} {metrics['split']} split, {metrics['n_trials']} "
        f"utterances under {metrics['root']}",
        f"outputs    {report['output_dir']}: "
        + " ".join(path.name for path in report["files"].values()),
    ]
    if "unscored" in metrics:
        lines.append(f"unscored   {metrics['unscored']['count']} unreadable files left out")
    threshold = metrics["threshold"]
    if threshold["value"] is None:
        lines.append(f"decisions  {threshold['source']}")
    else:
        counts = metrics["decisions"]
        lines.append(
            f"decisions  score > {threshold['value']:.6g} ({threshold['source']}): "
            f"{counts['bonafide']} bona fide, {counts['spoof']} spoof"
        )
    lines.append("")
    if "eer" in metrics:
        lines.append(format_metrics(metrics))
        at = metrics.get("at_threshold")
        if at:
            lines.append(
                f"at the decision threshold: bona fide missed {100 * at['bonafide_miss_rate']:.3f}"
                f" %, spoofs accepted {100 * at['spoof_accept_rate']:.3f} %"
            )
    else:
        lines.append(
            f"no metrics: {metrics['n_bonafide']} bona fide and {metrics['n_spoof']} spoof "
            f"labelled trials ({metrics['n_unlabelled']} unlabelled)"
        )
    if "sasv" in metrics:
        lines += ["", format_sasv(metrics["sasv"])]
    calibration = metrics.get("calibration")
    if calibration:
        scale, offset = calibration["scale"], calibration["offset"]
        line = f"calibrated on dev: llr = {scale:.4g} * score + {offset:.4g}"
        if "cllr" in calibration:
            line += (
                f"; Cllr {calibration['cllr']:.4f} bits (min {calibration['min_cllr']:.4f}), "
                f"actDCF {calibration['act_dcf']:.4f}, minDCF {calibration['min_dcf']:.4f}"
            )
        lines.append(line)
    located = metrics.get("localization")
    if located:
        if not located["available"]:
            lines.append(f"localization: not available ({located['reason']})")
        else:
            parts = [
                f"{name} EER {100 * located[key]:.3f} %"
                for name, key in (("frame", "frame_eer"), ("range", "range_eer"))
                if key in located
            ]
            lines.append("localization: " + ", ".join(parts))
    return "\n".join(lines)
