"""Write the scores and metrics of a test (or stand-alone validate) pass to disk.

The files are those of eval.py (see :mod:`spoof_lightning.evaluation`): the 2019 CM score
file, the 2021 submission, a CSV with the protocol metadata joined by utterance id,
``<stage>_metrics.json`` and the DET / histogram plots.
"""

import math
from pathlib import Path
from typing import Any

import lightning as L

from spoof_lightning.evaluation import add_decisions, join_rows, split_metrics, write_outputs
from spoof_lightning.lit.score_collector import ScoreSet
from spoof_lightning.metrics.eer import compute_eer


def score_metrics(scores: ScoreSet) -> dict[str, float | int | dict[str, float]]:
    """Pooled EER (%), its threshold, and the EER of every attack against all bona fide."""
    bonafide, spoof = scores.split()
    metrics: dict = {"n_bonafide": int(bonafide.size), "n_spoof": int(spoof.size)}
    if bonafide.size and spoof.size:
        eer, threshold = compute_eer(bonafide, spoof)
        metrics |= {"eer_percent": 100 * eer, "eer_threshold": threshold}
        metrics["eer_percent_by_attack"] = {
            attack: 100 * compute_eer(bonafide, attack_scores)[0]
            for attack, attack_scores in scores.by_attack().items()
        }
    return metrics


def _protocol(trainer: L.Trainer, stage: str, scores: ScoreSet) -> list[Any]:
    """The datamodule's entries of the split (all metadata), else what the batches carried."""
    datamodule = trainer.datamodule
    if datamodule is not None and hasattr(datamodule, "utterances"):
        return datamodule.utterances(stage)
    return [
        {"utt_id": utt, "label": label, "attack": attack}
        for utt, label, attack in zip(scores.utt_ids, scores.labels, scores.attacks, strict=True)
    ]


class ScoreWriter(L.Callback):
    """After ``trainer.test`` (and a stand-alone ``trainer.validate``), writes
    ``<stage>_scores.txt``, ``<stage>_submission.txt``, ``<stage>_scores.csv``,
    ``<stage>_metrics.json`` and, with ``plots``, ``<stage>_det.png`` and
    ``<stage>_score_hist.png`` under ``output_dir`` on rank 0.

    ``written`` maps ``score_file`` (the 2019 file, or the submission for unlabelled
    data) and ``metrics_file`` to their paths, plus every file by kind.
    """

    def __init__(self, output_dir: str, plots: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.plots = plots
        self.written: dict[str, Path] = {}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "test")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._write(trainer, pl_module, "val")

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        scores = pl_module.last_scores.get(stage)
        if not trainer.is_global_zero or scores is None:
            return
        skip = getattr(trainer.datamodule, "on_error", "strict") == "skip"
        score_map = dict(zip(scores.utt_ids, scores.scores, strict=True))
        rows, _ = join_rows(score_map, _protocol(trainer, stage, scores), f"{stage} split", skip)
        buffer = getattr(pl_module, "eer_threshold", None)
        threshold = float(buffer) if buffer is not None else math.nan
        threshold = threshold if math.isfinite(threshold) else None
        if threshold is not None:
            add_decisions(rows, threshold)
        metrics = split_metrics(rows, threshold=threshold)
        files = write_outputs(self.output_dir, stage, rows, metrics, plots=self.plots)
        score_file = files.get("scores", files.get("submission", files["csv"]))
        self.written = {"score_file": score_file, "metrics_file": files["metrics"], **files}
