"""Write the scores and metrics of a test (or stand-alone validate) pass to disk.

The files are those of eval.py (see :mod:`spoof_lightning.outputs`): the 2019 CM score
file, the 2021 submission, a CSV with the protocol metadata joined by utterance id,
``<stage>_metrics.json`` (:func:`~spoof_lightning.metrics.summary.split_metrics`) and the
DET / histogram plots.
"""

from pathlib import Path
from typing import Any

import lightning as L

from spoof_lightning.checkpoint import stored_threshold
from spoof_lightning.metrics.summary import add_decisions, join_rows, split_metrics
from spoof_lightning.outputs import write_outputs
from spoof_lightning.scoring import ScoreSet


def _protocol(trainer: L.Trainer, stage: str, scores: ScoreSet) -> list[Any]:
    """The datamodule's entries of the split (all metadata), else what the batches carried."""
    datamodule = trainer.datamodule
    if datamodule is not None and hasattr(datamodule, "utterances"):
        return datamodule.utterances(stage)
    return scores.rows()


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
        rows, _ = join_rows(
            scores.scores, _protocol(trainer, stage, scores), f"{stage} split", skip
        )
        threshold = stored_threshold(getattr(pl_module, "eer_threshold", None))  # NaN: None
        if threshold is not None:
            add_decisions(rows, threshold)
        metrics = split_metrics(rows, threshold=threshold)
        files = write_outputs(self.output_dir, stage, rows, metrics, plots=self.plots)
        score_file = files.get("scores", files.get("submission", files["csv"]))
        self.written = {"score_file": score_file, "metrics_file": files["metrics"], **files}
