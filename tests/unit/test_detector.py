"""The Detector stores the dev threshold of the weights each checkpoint holds (its scoring of
what it is given, nothing of the padding around it, is tested in test_scoring.py)."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from spoof_lightning.callbacks.step_checkpoint import StepCheckpoint
from spoof_lightning.lit.detector import Detector
from spoof_lightning.metrics.eer import compute_eer

CONFIG = {
    "frontend": {"_target_": "spoof_lightning.frontends.lfcc.LFCCFrontEnd", "deltas": 0},
    "model": {
        "_target_": "spoof_lightning.models.cnn_gru.CNNGRU",
        "filts": [8, [8, 8], [8, 16], [16, 16]],
        "gru_hidden": 16,
    },
    "loss": {"_target_": "spoof_lightning.losses.ce.CrossEntropy"},
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
}


class _Utterances(torch.utils.data.Dataset):
    """Random waveforms, half bona fide; labels fixed, so the EER moves as the model learns."""

    def __init__(self, n: int = 12, length: int = 4000) -> None:
        generator = torch.Generator().manual_seed(1)
        self.waveforms = torch.randn(n, length, generator=generator)
        self.labels = torch.arange(n) % 2

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        attack = "-" if self.labels[i] == 1 else "A01"
        return {
            "waveform": self.waveforms[i],
            "label": self.labels[i],
            "utt_id": f"u{i:02d}",
            "attack": attack,
        }


class _EpochThresholds(L.Callback):
    def __init__(self) -> None:
        self.eer: list[float] = []
        self.threshold: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: Detector) -> None:
        eer, threshold = compute_eer(*pl_module.last_scores["val"].split())
        self.eer.append(eer)
        self.threshold.append(threshold)


class _SpoilLastEpoch(L.Callback):
    """Zero every weight before the last validation: every score ties (EER 1), so the last
    epoch is never the best, whatever the numerics (thread count, kernels) of the others."""

    def on_validation_start(self, trainer: L.Trainer, pl_module: Detector) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.zero_()


def test_best_and_last_checkpoints_hold_the_dev_threshold_of_their_own_epoch(tmp_path):
    torch.manual_seed(0)
    config = {**CONFIG, "optimizer": {**CONFIG["optimizer"], "lr": 0.05}}
    loader = torch.utils.data.DataLoader(_Utterances(), batch_size=8)
    epochs = _EpochThresholds()
    checkpoint = ModelCheckpoint(tmp_path, filename="best", monitor="val/eer", mode="min")
    trainer = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        callbacks=[checkpoint, StepCheckpoint(tmp_path), _SpoilLastEpoch(), epochs],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    detector = Detector(**config)
    trainer.fit(detector, loader, loader)

    best_epoch = epochs.eer.index(min(epochs.eer))
    assert best_epoch != len(epochs.eer) - 1 and epochs.eer[-1] == 1.0
    saved = torch.load(tmp_path / "best.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == best_epoch
    assert float(saved["state_dict"]["eer_threshold"]) == pytest.approx(
        epochs.threshold[best_epoch]
    )
    # The module, and last.ckpt written at the end of every epoch (not only when the best
    # improved), hold the threshold of their own weights.
    assert float(detector.eer_threshold) == pytest.approx(epochs.threshold[-1])
    last = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == len(epochs.eer) - 1
    assert float(last["state_dict"]["eer_threshold"]) == pytest.approx(epochs.threshold[-1])
    # The monitored value is the exact EER (here k/6), not a float32 rounding of it.
    assert float(checkpoint.best_model_score) == epochs.eer[best_epoch]
