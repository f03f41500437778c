"""A Detector whose model is fitted by expectation-maximisation, not by gradients.

Used for models that declare ``training_method = "em"`` (the GMM baselines,
:class:`~spoof_lightning.models.gmm.GMMPair`); :func:`detector_class` picks it, so
``train.py`` runs them like any other model and writes the same checkpoints, score files,
metrics and DET curves. Lightning runs with manual optimisation (a no-op optimizer only
counts steps):

- epoch 0 draws a uniform random sample of ``model.init_frames`` front-end frames per class
  (a reservoir over the batches) and initialises each GMM from it with k-means++;
- every later epoch is one EM iteration: the batches add up the E-step's sufficient
  statistics, and after the epoch's last batch (before validation) the M-step updates the
  GMMs; ``train/loglik/{bonafide,spoof}`` logs the average frame log-likelihood of the
  parameters the E-step used, which EM never decreases.

Dev EER is measured after every epoch, so ``best.ckpt`` is the EM iteration that is best on
dev. The statistics and the reservoir are stored in checkpoints: a run resumed mid-epoch
continues the same iteration. EM runs in one process (a multi-device run is refused).
"""

from typing import Any

import torch
from torch import Tensor, nn

from spoof_lightning.build import ConfigError, resolve_class
from spoof_lightning.contracts import BONAFIDE, SPOOF
from spoof_lightning.lit.detector import Detector
from spoof_lightning.models.gmm import kmeans_init, maximisation, sufficient_statistics

CLASS_NAMES = {BONAFIDE: "bonafide", SPOOF: "spoof"}
STATE_KEY = "em_state"


def detector_class(model_config: Any) -> type[Detector]:
    """:class:`EMDetector` for models trained by EM, else :class:`Detector`."""
    model_cls = resolve_class(model_config, "model")
    return EMDetector if getattr(model_cls, "training_method", "") == "em" else Detector


class EMDetector(Detector):
    """Fits ``self.model`` (a :class:`~spoof_lightning.models.gmm.GMMPair`) by EM."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.sample: dict[int, Tensor] = {}
        self.sample_keys: dict[int, Tensor] = {}
        self.stats: dict[int, dict[str, Tensor]] = {}
        self.pending = False  # batches seen since the last initialisation / M-step
        self.generator: torch.Generator | None = None
        # Lightning counts optimizer steps as the global step, and ModelCheckpoint saves only
        # when it advances: a no-op optimizer over a parameter that never gets a gradient
        # takes one step per batch.
        self.step_counter = nn.Parameter(torch.zeros(1), requires_grad=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.step_counter], lr=0.0)

    def on_fit_start(self) -> None:
        if self.trainer.world_size > 1:
            raise ConfigError(
                f"model={type(self.model).__name__} is fitted by EM in one process; "
                f"run it with trainer.devices=1 (got world size {self.trainer.world_size})"
            )
        seed = int(torch.randint(2**31 - 1, (1,)).item())  # from the run's seeded RNG
        self.generator = torch.Generator().manual_seed(seed)

    def _frames(self, batch: dict[str, Any]) -> dict[int, Tensor]:
        feats = self.frontend(batch["waveform"]).float()  # [B, C, T']
        frames = feats.transpose(1, 2)
        labels = batch["label"]
        return {c: frames[labels == c].reshape(-1, feats.shape[1]) for c in (SPOOF, BONAFIDE)}

    def _reservoir(self, label: int, x: Tensor) -> None:
        """Keep a uniform sample of at most ``init_frames`` frames (smallest random keys)."""
        keys = torch.rand(x.shape[0], generator=self.generator).to(x.device)
        if label in self.sample:
            x = torch.cat([self.sample[label], x])
            keys = torch.cat([self.sample_keys[label], keys])
        keep = min(self.model.init_frames, x.shape[0])
        kept = torch.topk(keys, keep, largest=False).indices
        self.sample[label], self.sample_keys[label] = x[kept], keys[kept]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with torch.no_grad():
            for label, x in self._frames(batch).items():
                if not x.shape[0]:
                    continue
                if self.current_epoch == 0:
                    self._reservoir(label, x)
                    continue
                new = sufficient_statistics(x, *self.model.params(label))
                old = self.stats.get(label)
                self.stats[label] = new if old is None else {k: old[k] + new[k] for k in new}
        self.pending = True
        self.optimizers().step()  # no-op: advances global_step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The M-step must happen before the epoch-end validation, which runs before
        # on_train_epoch_end: do it after the epoch's last batch.
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self._update()

    def on_train_epoch_end(self) -> None:
        self._update()  # iterable loaders with no known length

    def _update(self) -> None:
        if not self.pending:
            return
        missing = [CLASS_NAMES[c] for c in (SPOOF, BONAFIDE) if c not in self.sample | self.stats]
        if missing:
            raise ValueError(f"EM needs training frames of both classes; none for {missing}")
        if self.current_epoch == 0:
            self._initialise()
        else:
            for label, stats in self.stats.items():
                loglik = float(stats["loglik"] / stats["frames"])
                self.log(f"train/loglik/{CLASS_NAMES[label]}", loglik, on_step=False, on_epoch=True)
                params = maximisation(stats, self.model.floor, self.model.params(label))
                self.model.set_params(label, params)
        self.stats, self.pending = {}, False

    def _initialise(self) -> None:
        pooled = torch.cat(list(self.sample.values()))
        self.model.floor.copy_(self.model.var_floor * pooled.var(0))
        for label, x in self.sample.items():
            params = kmeans_init(
                x, self.model.n_components, self.generator, self.model.kmeans_iterations
            )
            floored = (params[0], params[1], torch.maximum(params[2], self.model.floor))
            self.model.set_params(label, floored)
        self.sample, self.sample_keys = {}, {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[STATE_KEY] = {
            "sample": self.sample,
            "sample_keys": self.sample_keys,
            "stats": self.stats,
            "pending": self.pending,
            "generator": self.generator.get_state() if self.generator is not None else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(STATE_KEY)
        if not state:
            return
        self.sample, self.sample_keys = state["sample"], state["sample_keys"]
        self.stats, self.pending = state["stats"], state["pending"]
        if state["generator"] is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state["generator"])
