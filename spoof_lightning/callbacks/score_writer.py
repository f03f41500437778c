"""Write the scores and metrics of a test (or stand-alone validate) pass to disk."""

import json
from pathlib import Path

import lightning as L

from spoof_lightning.lit.score_collector import ScoreSet
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.metrics.scores import write_cm_scores_2019, write_scores_2021


def write_score_file(path: Path, scores: ScoreSet) -> Path:
    """The 2019 CM format ``utt source key score`` when every trial is labelled,
    else the 2021 submission format ``utt score``; scores written exactly (``repr``)."""
    if set(scores.labels) <= {0, 1}:
        rows = [
            {"utt_id": utt, "attack": attack, "label": label, "score": score}
            for utt, attack, label, score in zip(
                scores.utt_ids, scores.attacks, scores.labels, scores.scores, strict=True
            )
        ]
        return write_cm_scores_2019(path, rows)
    return write_scores_2021(path, dict(zip(scores.utt_ids, scores.scores, strict=True)))


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


class ScoreWriter(L.Callback):
    """After ``trainer.test`` (and a stand-alone ``trainer.validate``), writes
    ``<stage>_scores.txt`` and ``<stage>_metrics.json`` under ``output_dir`` on rank 0."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
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
        self.output_dir.mkdir(parents=True, exist_ok=True)
        score_path = self.output_dir / f"{stage}_scores.txt"
        write_score_file(score_path, scores)
        metrics_path = self.output_dir / f"{stage}_metrics.json"
        metrics_path.write_text(json.dumps(score_metrics(scores), indent=2) + "\n")
        self.written = {"score_file": score_path, "metrics_file": metrics_path}
