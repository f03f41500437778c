"""Anti-spoofing metrics that agree with the official ASVspoof scoring code.

``plots`` (matplotlib) is imported on demand, and so is scipy (by the fits of ``calibration``).
"""

from spoof_lightning.metrics.asvspoof5 import cm_metrics, sasv_metrics
from spoof_lightning.metrics.bootstrap import eer_confidence_interval
from spoof_lightning.metrics.eer import compute_det_curve, compute_eer
from spoof_lightning.metrics.report import evaluate, evaluate_rows, format_report
from spoof_lightning.metrics.scores import (
    asv_scores_from_rows,
    join_scores,
    read_asv_scores_2019,
    read_asv_trials_2021,
    read_cm_scores_2019,
    read_scores_2021,
    read_scores_csv,
    write_cm_scores_2019,
    write_scores_2021,
    write_scores_csv,
)
from spoof_lightning.metrics.tdcf import AsvScores, min_tdcf_2019, min_tdcf_2021

__all__ = [
    "AsvScores",
    "asv_scores_from_rows",
    "cm_metrics",
    "compute_det_curve",
    "compute_eer",
    "eer_confidence_interval",
    "evaluate",
    "evaluate_rows",
    "format_report",
    "join_scores",
    "min_tdcf_2019",
    "min_tdcf_2021",
    "read_asv_scores_2019",
    "read_asv_trials_2021",
    "read_cm_scores_2019",
    "read_scores_2021",
    "read_scores_csv",
    "sasv_metrics",
    "write_cm_scores_2019",
    "write_scores_2021",
    "write_scores_csv",
]
