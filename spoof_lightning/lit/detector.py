"""The countermeasure LightningModule: front-end + model + loss, exact EER on val/test.

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
from spoof_lightning.data.dataset import utterance_groups
from spoof_lightning.lit.score_collector import ScoreCollector, ScoreSet
from spoof_lightning.metrics.eer import compute_eer


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
        self.collector = ScoreCollector()
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

    def batch_scores(self, batch: dict[str, Any]) -> Tensor:
        """Scores of a collated batch; whole utterances of different lengths
        (``data.eval_crop: null``) are scored on their own samples (:func:`utterance_groups`)."""
        return torch.cat([self.score(waveform) for _, waveform in utterance_groups(batch)])

    def _collect(self, batch: dict[str, Any]) -> None:
        scores = self.batch_scores(batch)
        self.collector.update(batch["utt_id"], scores, batch["label"], batch["attack"])

    def on_validation_epoch_start(self) -> None:
        self.collector.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        scores = self.collector.gather()
        self.last_scores["val"] = scores
        if self.trainer.sanity_checking or not _has_both_classes(scores):
            return
        eer, threshold = compute_eer(*scores.split())
        # The exact EER of the whole set, identical on every rank: no reduction needed.
        self.log(
            "val/eer",
            torch.tensor(eer, dtype=torch.float64),
            prog_bar=True,
            rank_zero_only=False,
            sync_dist=False,
        )
        # ModelCheckpoint saves after this hook (on_validation_end), so every checkpoint,
        # best.ckpt included, holds the threshold of its own epoch's weights.
        self.eer_threshold.fill_(threshold)

    def on_test_epoch_start(self) -> None:
        self.collector.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch)

    def on_test_epoch_end(self) -> None:
        scores = self.collector.gather()
        self.last_scores["test"] = scores
        if not _has_both_classes(scores):
            return
        bonafide, spoof = scores.split()
        self.log("test/eer", compute_eer(bonafide, spoof)[0], sync_dist=False)
        for attack, attack_scores in scores.by_attack().items():
            self.log(f"test/eer/{attack}", compute_eer(bonafide, attack_scores)[0])

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


def _has_both_classes(scores: ScoreSet) -> bool:
    labels = set(scores.labels)
    return 0 in labels and 1 in labels
