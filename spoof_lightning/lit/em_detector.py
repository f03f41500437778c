"""A Detector whose model is fitted by expectation-maximisation, not by gradients.

Used for models that declare ``training_method = "em"`` (the GMM baselines,
:class:`~spoof_lightning.models.gmm.GMMPair`); :func:`detector_class` picks it, so
``train.py`` runs them like any other model and writes the same checkpoints, score files,
metrics and DET curves. Lightning runs with manual optimisation (a no-op optimizer only
counts steps), and the fit takes one epoch:

- the epoch's batches go through the front-end once, and a uniform random sample of at
  most ``model.max_frames`` frames per class is kept (a reservoir over the batches; all
  of them when there are fewer);
- after the last batch (before validation) each class's GMM is fitted to its sample in
  memory (:func:`~spoof_lightning.models.gmm.fit_gmm`: k-means++, then EM to convergence),
  so the front-end runs once per training utterance, not once per EM iteration. Training
  then stops. ``train/em/loglik/{bonafide,spoof}`` logs the average frame log-likelihood
  at every EM iteration (step = iteration; EM never decreases it) and
  ``train/em/iterations/{bonafide,spoof}`` how many ran.

The reservoir is stored in checkpoints, so a run resumed mid-epoch keeps its sample; it is
dropped once the GMMs are fitted. EM runs in one process (a multi-device run is refused).
"""

from typing import Any

import torch
from torch import Tensor, nn

from spoof_lightning.build import ConfigError, resolve_class
from spoof_lightning.contracts import BONAFIDE, SPOOF
from spoof_lightning.lit.detector import Detector
from spoof_lightning.models.gmm import fit_gmm

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
        self.fitted = False
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
        if self.generator is None:  # not restored from a checkpoint
            seed = int(torch.randint(2**31 - 1, (1,)).item())  # from the run's seeded RNG
            self.generator = torch.Generator().manual_seed(seed)

    def _frames(self, batch: dict[str, Any]) -> dict[int, Tensor]:
        feats = self.frontend(batch["waveform"]).float()  # [B, C, T']
        frames = feats.transpose(1, 2)
        labels = batch["label"]
        return {c: frames[labels == c].reshape(-1, feats.shape[1]) for c in (SPOOF, BONAFIDE)}

    def _reservoir(self, label: int, x: Tensor) -> None:
        """Keep a uniform sample of at most ``max_frames`` frames (smallest random keys)."""
        keys = torch.rand(x.shape[0], generator=self.generator).to(x.device)
        if label in self.sample:
            x = torch.cat([self.sample[label], x])
            keys = torch.cat([self.sample_keys[label], keys])
        keep = min(self.model.max_frames, x.shape[0])
        kept = torch.topk(keys, keep, largest=False).indices
        self.sample[label], self.sample_keys[label] = x[kept], keys[kept]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if not self.fitted:
            with torch.no_grad():
                for label, x in self._frames(batch).items():
                    if x.shape[0]:
                        self._reservoir(label, x)
        self.optimizers().step()  # no-op: advances global_step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The fit must happen before the epoch-end validation, which runs before
        # on_train_epoch_end: do it after the epoch's last batch.
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self._fit()

    def on_train_epoch_end(self) -> None:
        self._fit()  # iterable loaders with no known length

    def _fit(self) -> None:
        if self.fitted:
            self.trainer.should_stop = True
            return
        missing = [CLASS_NAMES[c] for c in (SPOOF, BONAFIDE) if c not in self.sample]
        if missing:
            raise ValueError(f"EM needs training frames of both classes; none for {missing}")
        model = self.model
        pooled = torch.cat(list(self.sample.values()))
        model.floor.copy_(model.var_floor * pooled.var(0))
        for label in (SPOOF, BONAFIDE):
            with torch.no_grad():
                params, history = fit_gmm(
                    self.sample[label],
                    model.n_components,
                    model.floor,
                    self.generator,
                    model.init_frames,
                    model.kmeans_iterations,
                    model.max_iterations,
                    model.tol,
                )
            model.set_params(label, params)
            name = CLASS_NAMES[label]
            for logger in self.loggers:
                for iteration, loglik in enumerate(history):
                    logger.log_metrics({f"train/em/loglik/{name}": loglik}, step=iteration)
            iterations = float(len(history))
            self.log(f"train/em/iterations/{name}", iterations, on_step=False, on_epoch=True)
        self.sample, self.sample_keys, self.fitted = {}, {}, True
        self.trainer.should_stop = True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[STATE_KEY] = {
            "sample": self.sample,
            "sample_keys": self.sample_keys,
            "fitted": self.fitted,
            "generator": self.generator.get_state() if self.generator is not None else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(STATE_KEY)
        if not state:
            return
        self.sample, self.sample_keys = state["sample"], state["sample_keys"]
        self.fitted = state.get("fitted", False)
        if state["generator"] is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state["generator"])
