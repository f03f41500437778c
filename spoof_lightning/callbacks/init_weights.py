"""Start training from released weights instead of a random initialisation.

:class:`InitFromReleasedWeights` loads the released weights of a published model
(:mod:`spoof_lightning.models.released_weights`: the official AASIST / AASIST-L of
clovaai/aasist, Jung et al., ICASSP 2022; wav2vec 2.0 XLS-R + AASIST of
TakHemlata/SSL_Anti-spoofing, Tak et al., Odyssey 2022) into the LightningModule's
front-end and model when fitting starts: fine-tuning a released model. A resumed run
(``trainer.fit(ckpt_path=...)``, i.e. ``resume=true``) keeps the weights of its own
checkpoint: the released ones are loaded only into a fresh run.
"""

import logging
from pathlib import Path

import lightning as L
from torch import nn

from spoof_lightning.checkpoint import (
    CheckpointError,
    Countermeasure,
    check_weights,
    read_checkpoint,
)
from spoof_lightning.models.aasist import AASIST
from spoof_lightning.models.released_weights import (
    release_configs,
    release_hint,
    released_layout,
    released_state,
)
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
        content = read_checkpoint(self.path)
        layout = released_layout(content)
        if layout is None:
            raise CheckpointError(
                f"{self.path} is not a released AASIST or SSL_Anti-spoofing state dict"
            )
        hparams = getattr(pl_module, "hparams", {})
        if "model" in hparams:
            try:
                release_configs(layout, {p: hparams.get(p) for p in ("frontend", "model")})
            except ValueError as err:
                raise CheckpointError(f"{self.path}: {err}") from None
        state = released_state(content, layout)
        try:
            stored = check_weights(net, state, self.path, "this run's front-end + model")
        except CheckpointError as err:
            raise CheckpointError(f"{err}. The file holds {release_hint(layout)}") from None
        net.load_state_dict(stored)  # copies into the module's own parameters
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
