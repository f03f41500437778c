"""The countermeasure LightningModule: front-end + model + loss, exact EER on val/test.

Validation and test score through :func:`~spoof_lightning.scoring.score_batch` into a
:class:`~spoof_lightning.scoring.ScoreSet` gathered from every process, as eval.py does;
the test metrics are :func:`~spoof_lightning.metrics.summary.split_metrics`.

Everything it is built from is plain config data (dicts of ``_target_`` and
hyper-parameters), so checkpoints hold no pickled objects and load with
``weights_only=True``; the optimizer and scheduler are instantiated as partials
only in :meth:`configure_optimizers`.
"""

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor

from spoof_lightning.build import build_components
from spoof_lightning.contracts import ModelOutput, scores_from_logits
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.metrics.summary import split_metrics
from spoof_lightning.scoring import ScoreSet, score_batch


class Detector(L.LightningModule):
    """Binary bona fide / spoof detector.

    Args:
        frontend, model, loss: ``_target_`` configs (see conf/frontend, conf/model, conf/loss).
        optimizer: a ``_partial_`` optimizer config, called with the parameters.
        scheduler: an optional ``_partial_`` LR-scheduler config, called with the optimizer.
        scheduler_interval: ``"epoch"`` or ``"step"``.
        names: the config choices (e.g. ``{"frontend": "lfcc", "model": "cnn_gru"}``),
            used in error messages and run summaries.

    The loss is called as ``loss(output, labels)`` -> ``{"total": ..., <term>: ...}``, with
    ``waveform=`` as well when its class sets ``needs_waveform = True``, and ``<key>=batch[key]``
    for each name in its ``batch_keys`` (e.g. ``("frame_labels",)``). Optional loss hooks:
    ``build(frontend, model)``, called once here (heads sized from the model's outputs), and
    ``prepare_fit(frontend, model)``, called when fitting starts (training-only state such as
    a teacher); both run before the optimizer is built.
    """

    def __init__(
        self,
        frontend: Mapping[str, Any],
        model: Mapping[str, Any],
        loss: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        scheduler_interval: str = "epoch",
        names: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.frontend, self.model = build_components(frontend, model, names)
        self.loss_fn = instantiate(loss, _convert_="all")
        # Losses with heads on the model's stage outputs (self-distillation) size them here,
        # so that they exist before the optimizer and when a checkpoint is loaded.
        if hasattr(self.loss_fn, "build"):
            self.loss_fn.build(self.frontend, self.model)
        # Dev-set EER threshold of the last validation, i.e. of the weights a checkpoint
        # holds: the decision threshold for unlabelled audio (eval.py).
        self.register_buffer("eer_threshold", torch.tensor(float("nan")))
        self.scored = ScoreSet()  # this process's scores of the running val/test epoch
        self.last_scores: dict[str, ScoreSet] = {}

    def forward(self, waveform: Tensor) -> ModelOutput:
        return self.model(self.frontend(waveform))

    def score(self, waveform: Tensor) -> Tensor:
        """Bona fide score per utterance (higher = more bona fide)."""
        return scores_from_logits(self(waveform).logits)

    def setup(self, stage: str) -> None:
        # Training-only parts of a loss (a teacher checkpoint) load when fitting starts,
        # before the optimizer is built; evaluation never needs them.
        if stage == "fit" and hasattr(self.loss_fn, "prepare_fit"):
            self.loss_fn.prepare_fit(self.frontend, self.model)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        waveform = batch["waveform"]
        # Distillation losses run a teacher / old model on the same input; a loss may also
        # name batch entries it needs (its `batch_keys`, e.g. frame_labels; None if absent).
        inputs = {"waveform": waveform} if getattr(self.loss_fn, "needs_waveform", False) else {}
        inputs |= {key: batch.get(key) for key in getattr(self.loss_fn, "batch_keys", ())}
        terms = self.loss_fn(self(waveform), batch["label"], **inputs)
        batch_size = batch["label"].shape[0]
        self.log("train/loss", terms["total"], prog_bar=True, batch_size=batch_size)
        for name, value in terms.items():
            if name != "total":
                self.log(f"train/loss/{name}", value, batch_size=batch_size)
        return terms["total"]

    def on_validation_epoch_start(self) -> None:
        self.scored = ScoreSet()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.scored.add(score_batch(self, batch))

    def on_validation_epoch_end(self) -> None:
        scores = self.scored.gather()
        self.last_scores["val"] = scores
        # ModelCheckpoint saves after this hook (on_validation_end), so every checkpoint,
        # best.ckpt included, holds the threshold of its own epoch's weights.
        eer = None if self.trainer.sanity_checking else self.set_dev_threshold(scores)
        if eer is None:
            return
        # The exact EER of the whole set, identical on every rank: no reduction needed.
        self.log(
            "val/eer",
            torch.tensor(eer, dtype=torch.float64),
            prog_bar=True,
            rank_zero_only=False,
            sync_dist=False,
        )

    def set_dev_threshold(self, scores: ScoreSet) -> float | None:
        """Store the EER threshold of the dev ``scores`` of these weights; returns the EER
        (None, and the threshold unchanged, when a class is missing)."""
        bonafide, spoof = scores.split()
        if not (bonafide.size and spoof.size):
            return None
        eer, threshold = compute_eer(bonafide, spoof)
        self.eer_threshold.fill_(threshold)
        return eer

    on_test_epoch_start = on_validation_epoch_start  # test scores as validation does
    test_step = validation_step

    def on_test_epoch_end(self) -> None:
        scores = self.scored.gather()
        self.last_scores["test"] = scores
        metrics = split_metrics(scores.rows(), conditions=None)
        if "eer" not in metrics:  # a class is missing
            return
        self.log("test/eer", metrics["eer"], sync_dist=False)
        for attack, entry in metrics["attacks"].items():
            self.log(f"test/eer/{attack}", entry["eer"])

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = instantiate(self.hparams.optimizer)(params)
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }
