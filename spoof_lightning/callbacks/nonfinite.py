"""Mixed-precision safety: stop on a NaN/inf loss, never save non-finite weights, count the
optimizer steps that fp16's gradient scaler skips.

With ``trainer.precision=16-mixed`` a GradScaler multiplies the loss before backward and
skips the optimizer step whenever the scaled gradients overflow (then halves the scale):
a few skipped steps at the start are normal, a steady stream means fp16 does not suit the
model. Those steps are logged as ``train/amp_skipped_steps`` (a running count). A
non-finite *loss* is another matter: no scale can fix it (the forward pass itself
overflowed, or the weights diverged), so the run stops before that batch's backward pass
and optimizer step, naming the step and the last checkpoint written. Checkpoints are
checked too: one whose weights hold a NaN or inf is never written.
"""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from spoof_lightning.errors import listed


class NonFiniteError(RuntimeError):
    """Training produced a NaN or inf loss or weights; the message says where and what to do."""


class NonFiniteGuard(L.Callback):
    """Stops on a non-finite loss, refuses to checkpoint non-finite weights, and logs
    ``train/amp_skipped_steps`` while a gradient scaler (16-mixed) is active.

    train.py adds it to every run. Checking the loss costs one host-device sync per batch.
    """

    def __init__(self) -> None:
        self.skipped_steps = 0
        self._batch_idx = 0
        self._scale_before_step: float | None = None

    @staticmethod
    def _scaler(trainer: L.Trainer) -> torch.amp.GradScaler | None:
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        return scaler if scaler is not None and scaler.is_enabled() else None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_idx = batch_idx

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor):
        # Under 16-mixed this is the scaled loss: finite exactly when the loss is (the scale
        # would have to pass ~1e38 / loss to overflow float32).
        if not bool(torch.isfinite(loss.detach()).all()):
            value = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
            raise NonFiniteError(
                f"training stopped: the loss is {value} at optimizer step "
                f"{trainer.global_step + 1} (epoch {trainer.current_epoch}, batch "
                f"{self._batch_idx}), before its backward pass, so no weights were changed by it. "
                f"{_last_good(trainer)} Usual causes: a learning rate too high for the model "
                f"(optimizer.lr; trainer.gradient_clip_val helps), "
                + (
                    "fp16 overflow in the forward pass (trainer.precision=16-mixed: try "
                    "bf16-mixed or 32-true), "
                    if self._scaler(trainer) is not None
                    else ""
                )
                + "or bad input audio (data.preflight=decode finds unreadable files)."
            )

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any
    ) -> None:
        scaler = self._scaler(trainer)
        self._scale_before_step = scaler.get_scale() if scaler is not None else None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        if self._scale_before_step is None:
            return
        scaler = self._scaler(trainer)
        # GradScaler.update() lowers the scale exactly when it skipped the step.
        if scaler is not None and scaler.get_scale() < self._scale_before_step:
            self.skipped_steps += 1
        self._scale_before_step = None
        pl_module.log("train/amp_skipped_steps", float(self.skipped_steps), on_step=True)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Parameters and normalisation statistics; other buffers may be NaN by design (the
        # Detector's eer_threshold before the first validation).
        weights = [*pl_module.named_parameters()]
        weights += [(n, b) for n, b in pl_module.named_buffers() if ".running_" in f".{n}"]
        bad = [name for name, value in weights if not bool(torch.isfinite(value).all())]
        if bad:
            raise NonFiniteError(
                f"training stopped at optimizer step {trainer.global_step}: the weights hold "
                f"NaN or inf ({listed(bad)}), so this "
                f"checkpoint was not written. {_last_good(trainer)} Lower optimizer.lr or set "
                f"trainer.gradient_clip_val."
            )

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))


def _last_good(trainer: L.Trainer) -> str:
    """The sentence naming the checkpoints on disk (all written from finite weights)."""
    names = ("last_model_path", "best_model_path")
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        for path in (getattr(callback, name, "") for name in names)
        if path and Path(path).is_file()
    }
    if not paths:
        return "No checkpoint had been written yet."
    return (
        f"The last good checkpoints are kept: {', '.join(sorted(paths))} (resume=true "
        "continues from last.ckpt once the cause is fixed)."
    )
