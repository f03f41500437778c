"""What eval.py runs: score a split with a trained checkpoint and write the results."""

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from spoof_lightning.callbacks.config_in_checkpoint import CONFIG_KEY
from spoof_lightning.callbacks.score_writer import ScoreWriter
from spoof_lightning.lit.detector import Detector


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the requested model."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a spoof-lightning checkpoint with ``weights_only=True`` (no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (set `ckpt=`)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    for key in ("state_dict", "hyper_parameters"):
        if key not in checkpoint:
            raise CheckpointError(f"{path} is not a spoof-lightning checkpoint (no `{key}`)")
    return checkpoint


def detector_from_checkpoint(checkpoint: dict[str, Any], path: str | Path = "") -> Detector:
    """Rebuild the Detector from the config stored in the checkpoint and load its weights."""
    module = Detector(**checkpoint["hyper_parameters"])
    result = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model it describes: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return module.eval()


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.split`` of the data and write scores + metrics to ``cfg.output_dir``."""
    checkpoint = load_checkpoint(cfg.ckpt)
    module = detector_from_checkpoint(checkpoint, cfg.ckpt)
    train_config = checkpoint.get(CONFIG_KEY, {})
    if cfg.sample_rate is None:
        cfg.sample_rate = train_config.get("sample_rate", 16000)
    data_config = cfg.data if cfg.get("data") else train_config.get("data")
    if not data_config:
        raise ValueError(f"{cfg.ckpt} stores no data config: pass data=<name> data.root=<path>")
    datamodule = instantiate(data_config, _convert_="all")

    output_dir = Path(cfg.output_dir)
    writer = ScoreWriter(str(output_dir))
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        callbacks=[writer],
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    if cfg.split == "test":
        trainer.test(module, datamodule=datamodule)
    elif cfg.split == "val":
        trainer.validate(module, datamodule=datamodule)
    else:
        raise ValueError(f"split must be 'test' or 'val', got {cfg.split!r}")
    metrics = json.loads(writer.written["metrics_file"].read_text())
    return {"output_dir": str(output_dir), "metrics": metrics, **writer.written}


def format_report(report: dict[str, Any]) -> str:
    """The EER table printed at the end of eval.py."""
    metrics = report["metrics"]
    lines = [f"outputs  {report['output_dir']}"]
    if "eer_percent" in metrics:
        eer, threshold = metrics["eer_percent"], metrics["eer_threshold"]
        lines.append(f"EER      {eer:.3f} %  (threshold {threshold:.4f})")
        for attack, eer in metrics.get("eer_percent_by_attack", {}).items():
            lines.append(f"  {attack:<7}{eer:.3f} %")
    return "\n".join(lines)
