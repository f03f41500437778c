"""Store the resolved run config in every checkpoint, as plain data (weights_only-safe)."""

from typing import Any

import lightning as L

CONFIG_KEY = "spoof_lightning_config"


class ConfigInCheckpoint(L.Callback):
    """Puts ``config`` (a plain dict) under ``checkpoint["spoof_lightning_config"]``, so
    eval.py can rebuild the data pipeline and know what was trained."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = self.config
