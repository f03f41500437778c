"""Start training from released weights instead of a random initialisation.

:class:`InitFromOfficialAASIST` loads an official AASIST / AASIST-L checkpoint
(clovaai/aasist; Jung et al., ICASSP 2022) into the LightningModule's sinc front-end and
AASIST back-end when fitting starts, through
:func:`~spoof_lightning.models.official_checkpoints.load_official_aasist`. A resumed run
(``trainer.fit(ckpt_path=...)``, i.e. ``resume=true``) keeps the weights of its own
checkpoint: the official ones are loaded only into a fresh run.
"""

import logging
from pathlib import Path

import lightning as L
from torch import nn

from spoof_lightning.models.aasist import AASIST
from spoof_lightning.models.official_checkpoints import load_official_aasist

log = logging.getLogger(__name__)


class InitFromOfficialAASIST(L.Callback):
    """Load an official AASIST checkpoint into ``pl_module.frontend`` + ``pl_module.model``.

    Args:
        path: the released ``AASIST.pth`` or ``AASIST-L.pth`` (a local file).
        frontend_attr, model_attr: the LightningModule attributes that hold the sinc
            front-end and the AASIST back-end (``frontend`` and ``model`` in
            :class:`~spoof_lightning.lit.detector.Detector`).

    The weights are loaded in ``on_fit_start``: after Lightning has restored a checkpoint
    given to ``fit`` (then ``trainer.ckpt_path`` is set and nothing is loaded) and before
    the first training step. Parameters are copied in place, so the optimizer built before
    keeps tracking them, on any device.
    """

    def __init__(
        self, path: str | Path, frontend_attr: str = "frontend", model_attr: str = "model"
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.frontend_attr = frontend_attr
        self.model_attr = model_attr
        self.loaded = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path:
            log.info("Resuming from %s: not loading %s", trainer.ckpt_path, self.path)
            return
        frontend, backend = self._modules(pl_module)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"InitFromOfficialAASIST: checkpoint not found: {self.path} "
                "(set callbacks.init_official.path to the released AASIST.pth or AASIST-L.pth)"
            )
        load_official_aasist(self.path, frontend, backend)
        self.loaded = True
        log.info("Initialised %s + %s from %s", self.frontend_attr, self.model_attr, self.path)

    def _modules(self, pl_module: L.LightningModule) -> tuple[nn.Module, AASIST]:
        missing = [a for a in (self.frontend_attr, self.model_attr) if not hasattr(pl_module, a)]
        if missing:
            raise AttributeError(
                f"InitFromOfficialAASIST: {type(pl_module).__name__} has no attribute(s) "
                f"{missing}; set frontend_attr / model_attr"
            )
        frontend = getattr(pl_module, self.frontend_attr)
        backend = getattr(pl_module, self.model_attr)
        if not isinstance(backend, AASIST):
            raise TypeError(
                f"InitFromOfficialAASIST needs model=aasist or model=aasist_l (an AASIST "
                f"back-end) with frontend=sinc; {self.model_attr} is {type(backend).__name__}"
            )
        return frontend, backend


__all__ = ["InitFromOfficialAASIST"]
