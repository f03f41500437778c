"""Weight averaging written as a normal checkpoint: SWA as in the official AASIST recipe, or
the mean of the top-k epochs.

Stochastic weight averaging (Izmailov et al., "Averaging weights leads to wider optima and
better generalization", UAI 2018), as AASIST's ``main.py`` (clovaai/aasist; Jung et al.,
ICASSP 2022) uses it: after every epoch whose dev EER is the best so far (ties included)
the weights join a running average (torchcontrib's ``update_swa``); at the end the average
replaces the weights, the BatchNorm statistics are recomputed with one pass over the
training data (``bn_update``), and the model is scored and saved (``swa.pth``).

:class:`WeightAveraging` selects epochs by ``select``:

* ``improved``: the AASIST recipe (``callbacks=swa``);
* ``every``: every epoch from ``start_epoch`` (the original SWA schedule);
* ``top_k``: the ``k`` epochs of lowest dev EER (``callbacks=top_k_average``).

When fitting ends, the parameters become the plain mean of the selected epochs'
parameters, BatchNorm statistics are recomputed on the training data (``bn_update``), the
dev-set EER threshold of the averaged weights is measured on the val split (the decision
threshold of eval.py), and ``<dirpath>/<filename>.ckpt`` is written by the trainer (its
checkpoint plugin: written beside, then renamed), in the format of ``best.ckpt``: eval.py,
export and ``load_countermeasure`` read it. The module's own weights are restored after.
Under DDP, BatchNorm statistics are those of the main process's share of the data.
"""

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from spoof_lightning.scoring import ScoreSet, score_batch

log = logging.getLogger(__name__)
SELECTIONS = ("improved", "every", "top_k")
MONITOR = "val/eer"


def recompute_batch_norm(module: nn.Module, batches: Any, to_device: Any) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them as the plain mean
    over ``batches`` (momentum None), the module in training mode, no gradients (what
    torchcontrib's ``bn_update`` and ``torch.optim.swa_utils.update_bn`` do). Returns the
    number of batches seen (0 and nothing changed when there is no BatchNorm)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    norms = [m for m in norms if m.track_running_stats]
    if not norms:
        return 0
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = module.training
    module.train()
    seen = 0
    with torch.no_grad():
        for batch in batches:
            module(to_device(batch)["waveform"])
            seen += 1
    for m, momentum in momenta.items():
        m.momentum = momentum
    module.train(was_training)
    return seen


class WeightAveraging(L.Callback):
    """Average the weights of selected epochs and save them as ``<dirpath>/<filename>.ckpt``.

    Args:
        dirpath, filename: where the averaged checkpoint goes (``filename`` without suffix).
        select: ``improved`` (dev EER the best so far: AASIST's SWA), ``every`` or ``top_k``.
        start_epoch: epochs before it are never selected.
        k: the number of epochs averaged by ``top_k``.
        bn_update: recompute BatchNorm statistics of the average on the training data.

    The state (the average so far, or the top-k weights) is saved in the run's checkpoints,
    so a resumed run averages the same epochs. ``top_k`` holds k copies of the weights in
    CPU memory.
    """

    def __init__(
        self,
        dirpath: str | Path,
        filename: str = "swa",
        select: str = "improved",
        start_epoch: int = 0,
        k: int = 5,
        bn_update: bool = True,
    ) -> None:
        if select not in SELECTIONS:
            raise ValueError(f"callbacks weight averaging: select={select!r} not in {SELECTIONS}")
        if k < 1 or start_epoch < 0:
            raise ValueError("callbacks weight averaging: need k >= 1 and start_epoch >= 0")
        self.dirpath, self.filename = Path(dirpath), filename
        self.select, self.start_epoch, self.k, self.bn_update = select, start_epoch, k, bn_update
        self.best = float("inf")
        self.count = 0  # epochs in the running average (improved / every)
        self.average: dict[str, Tensor] = {}
        self.top: list[tuple[float, int, dict[str, Tensor]]] = []  # (eer, epoch, weights)
        self.epochs: list[int] = []
        self.saved: Path | None = None

    @property
    def state_key(self) -> str:
        """Unique per output file, so that several averages can run side by side."""
        return self._generate_state_key(select=self.select, filename=self.filename)

    # --------------------------------------------------------------- selection

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or MONITOR not in trainer.callback_metrics:
            return
        epoch, eer = trainer.current_epoch, float(trainer.callback_metrics[MONITOR])
        if epoch < self.start_epoch or epoch in self.epochs:
            return
        weights = {
            n: p.detach().to("cpu", torch.float32, copy=True)
            for n, p in pl_module.named_parameters()
        }
        if self.select == "top_k":
            self.top = sorted([*self.top, (eer, epoch, weights)], key=lambda t: (t[0], t[1]))
            self.top = self.top[: self.k]
            self.epochs = sorted(e for _, e, _ in self.top)
            return
        if self.select == "improved" and eer > self.best:
            return
        self.best = min(self.best, eer)
        self.count += 1
        for name, value in weights.items():  # running mean: avg += (w - avg) / n
            self.average[name] = (
                value.clone()
                if self.count == 1
                else self.average[name] + (value - self.average[name]) / self.count
            )
        self.epochs.append(epoch)

    def averaged(self) -> dict[str, Tensor]:
        """The mean of the selected epochs' parameters (empty when none was selected)."""
        if self.select != "top_k":
            return self.average
        if not self.top:
            return {}
        return {n: torch.stack([w[n] for _, _, w in self.top]).mean(0) for n in self.top[0][2]}

    # --------------------------------------------------------------- at the end

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        average = self.averaged()
        if not average or trainer.fast_dev_run:
            log.warning("weight averaging: no epoch was selected (no %s); nothing saved", MONITOR)
            return
        backup = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        with torch.no_grad():
            for name, parameter in pl_module.named_parameters():
                parameter.copy_(average[name].to(parameter.device, parameter.dtype))
        to_device = trainer.strategy.batch_to_device
        if self.bn_update:
            with trainer.precision_plugin.forward_context():
                seen = recompute_batch_norm(pl_module, trainer.train_dataloader, to_device)
            log.info("weight averaging: BatchNorm statistics from %d training batches", seen)
        eer = self._dev_threshold(trainer, pl_module)
        self.saved = self.dirpath / f"{self.filename}.ckpt"
        trainer.save_checkpoint(self.saved)
        pl_module.load_state_dict(backup)
        log.info(
            "weight averaging (%s): epochs %s averaged into %s (dev EER %s)",
            self.select,
            self.epochs,
            self.saved,
            "n/a" if eer is None else f"{100 * eer:.3f} %",
        )

    @staticmethod
    def _dev_threshold(trainer: L.Trainer, pl_module: L.LightningModule) -> float | None:
        """Score the val split with the averaged weights; set their EER threshold."""
        loaders = trainer.val_dataloaders
        if loaders is None or not hasattr(pl_module, "set_dev_threshold"):
            return None
        scored = ScoreSet()
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad(), trainer.precision_plugin.forward_context():
            for loader in loaders if isinstance(loaders, list | tuple) else [loaders]:
                for batch in loader:
                    scored.add(score_batch(pl_module, trainer.strategy.batch_to_device(batch)))
        pl_module.train(was_training)
        return pl_module.set_dev_threshold(scored.gather())

    # --------------------------------------------------------------- resume

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "count": self.count,
            "average": self.average,
            "top": [{"eer": e, "epoch": ep, "weights": w} for e, ep, w in self.top],
            "epochs": list(self.epochs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.count = float(state["best"]), int(state["count"])
        self.average = dict(state["average"])
        self.top = [(t["eer"], t["epoch"], dict(t["weights"])) for t in state["top"]]
        self.epochs = list(state["epochs"])


__all__ = ["SELECTIONS", "WeightAveraging", "recompute_batch_norm"]
