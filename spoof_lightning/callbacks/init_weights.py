"""Start training from released weights instead of a random initialisation.

:class:`InitFromReleasedWeights` is the Lightning glue of
:func:`spoof_lightning.checkpoint.load_released_weights` (the official AASIST / AASIST-L of
clovaai/aasist, Jung et al., ICASSP 2022; wav2vec 2.0 XLS-R + AASIST of
TakHemlata/SSL_Anti-spoofing, Tak et al., Odyssey 2022): it loads them into the
LightningModule's front-end and model when fitting starts, fine-tuning a released model. A
resumed run (``trainer.fit(ckpt_path=...)``, i.e. ``resume=true``) keeps the weights of its
own checkpoint: the released ones are loaded only into a fresh run.
"""

import logging
from pathlib import Path

import lightning as L
from torch import nn

from spoof_lightning.checkpoint import Countermeasure, load_released_weights
from spoof_lightning.models.aasist import AASIST
from spoof_lightning.models.ssl_aasist import SSLAASIST

log = logging.getLogger(__name__)
RELEASED_MODELS = (AASIST, SSLAASIST)


class InitFromReleasedWeights(L.Callback):
    """Load released weights into ``pl_module.frontend`` + ``pl_module.model``.

    Args:
        path: the released file (``AASIST.pth``, ``AASIST-L.pth``, an SSL_Anti-spoofing
            ``LA_model.pth``; a local file).
        frontend_attr, model_attr: the LightningModule attributes that hold the front-end
            and the model (``frontend`` and ``model`` in
            :class:`~spoof_lightning.lit.detector.Detector`).

    The weights are loaded in ``on_fit_start``: after Lightning has restored a checkpoint
    given to ``fit`` (then ``trainer.ckpt_path`` is set and nothing is loaded) and before
    the first training step. Parameters are copied in place, so the optimizer built before
    keeps tracking them, on any device. The module's ``frontend`` / ``model`` configs
    (a Detector's hyper-parameters) must be those of the release (e.g. the fixed sinc
    front-end of AASIST), and every weight must fit, or nothing is loaded.
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
        net = Countermeasure(*self._modules(pl_module))
        if not self.path.is_file():
            raise FileNotFoundError(
                f"InitFromReleasedWeights: checkpoint not found: {self.path} (set "
                "callbacks.init_official.path to the released AASIST.pth, AASIST-L.pth or "
                "SSL_Anti-spoofing model file)"
            )
        hparams = getattr(pl_module, "hparams", {})
        configs = {part: hparams.get(part) for part in ("frontend", "model")}
        load_released_weights(net, self.path, configs)  # copies into the module's parameters
        self.loaded = True
        log.info("Initialised %s + %s from %s", self.frontend_attr, self.model_attr, self.path)

    def _modules(self, pl_module: L.LightningModule) -> tuple[nn.Module, nn.Module]:
        missing = [a for a in (self.frontend_attr, self.model_attr) if not hasattr(pl_module, a)]
        if missing:
            raise AttributeError(
                f"InitFromReleasedWeights: {type(pl_module).__name__} has no attribute(s) "
                f"{missing}; set frontend_attr / model_attr"
            )
        frontend = getattr(pl_module, self.frontend_attr)
        model = getattr(pl_module, self.model_attr)
        if not isinstance(model, RELEASED_MODELS):
            raise TypeError(
                f"InitFromReleasedWeights needs a model with released weights: model=aasist "
                f"or model=aasist_l (frontend=sinc), or model=ssl_aasist (frontend=wav2vec2); "
                f"{self.model_attr} is {type(model).__name__}"
            )
        return frontend, model


InitFromOfficialAASIST = InitFromReleasedWeights  # its earlier name, AASIST only

__all__ = ["InitFromOfficialAASIST", "InitFromReleasedWeights"]
