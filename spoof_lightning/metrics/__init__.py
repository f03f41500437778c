"""Anti-spoofing metrics that agree with the official ASVspoof scoring code."""

from spoof_lightning.metrics.eer import compute_det_curve, compute_eer

__all__ = ["compute_det_curve", "compute_eer"]
