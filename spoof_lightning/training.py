"""What train.py runs: build everything from the composed config, fit, test, summarise."""

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from spoof_lightning.callbacks.config_in_checkpoint import ConfigInCheckpoint
from spoof_lightning.callbacks.score_writer import ScoreWriter, score_metrics
from spoof_lightning.lit.detector import Detector

log = logging.getLogger(__name__)


def config_choices(cfg: DictConfig) -> dict[str, str]:
    """The config-group choices of this run (``{"model": "aasist", ...}``), if known."""
    if HydraConfig.initialized():
        return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
    return {}


def detector_from_config(cfg: DictConfig) -> Detector:
    """A :class:`Detector` from the frontend/model/loss/optimizer/scheduler groups."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    choices = config_choices(cfg)
    return Detector(
        frontend=plain["frontend"],
        model=plain["model"],
        loss=plain["loss"],
        optimizer=plain["optimizer"],
        scheduler=plain.get("scheduler") or None,
        scheduler_interval=plain.get("scheduler_interval", "epoch"),
        names={k: choices[k] for k in ("frontend", "model", "loss") if k in choices},
    )


# What a run writes into its directory; a fresh run moves an old run's copy aside.
RUN_OUTPUTS = ("checkpoints", "csv", "tensorboard", "wandb", "scores", "summary.json")


def checkpoint_to_resume(run_dir: Path, resume: bool) -> str | None:
    """``last.ckpt`` of this run when resuming; otherwise set aside an old run's outputs."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume:
        if last.is_file():
            log.info("Resuming from %s", last)
            return str(last)
        log.warning("resume=true but %s does not exist: starting a new run", last)
        return None
    old = [run_dir / name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    if old:
        previous = run_dir / "previous"
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir()
        for path in old:
            path.rename(previous / path.name)
        log.warning(
            "%s already held a run; moved its outputs to %s (resume=true continues a run).",
            run_dir,
            previous,
        )
    return None


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group (a dict of configs)."""
    if not group:
        return []
    return [instantiate(conf) for conf in group.values() if conf and "_target_" in conf]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``summary.json`` in the run directory."""
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # The model first: a bad front-end x model pair fails before any data work.
    module = detector_from_config(cfg)
    ckpt_path = checkpoint_to_resume(run_dir, cfg.resume)
    datamodule = instantiate(cfg.data, _convert_="all")
    callbacks = instantiate_group(cfg.get("callbacks"))
    callbacks.append(ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)))
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.get("logger")) or False
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)

    summary: dict[str, Any] = {"run_dir": str(run_dir), "epochs": trainer.current_epoch}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    summary["best_checkpoint"] = best or None
    if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.best_model_score:
        summary["best_val_eer_percent"] = 100 * float(trainer.checkpoint_callback.best_model_score)
    if cfg.test_after_fit and not trainer.fast_dev_run:
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
        metrics = score_metrics(module.last_scores["test"])  # exact, not the float32 log
        summary["test_eer_percent"] = metrics.get("eer_percent")
        summary["test_eer_percent_by_attack"] = metrics.get("eer_percent_by_attack", {})
        writer = next((c for c in callbacks if isinstance(c, ScoreWriter)), None)
        if writer is not None and writer.written:
            summary["score_file"] = str(writer.written["score_file"])
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A few human-readable lines for the end of a training run."""
    lines = [f"run directory   {summary['run_dir']}"]
    if summary.get("best_val_eer_percent") is not None:
        lines.append(f"best val EER    {summary['best_val_eer_percent']:.2f} %")
    if summary.get("test_eer_percent") is not None:
        lines.append(f"test EER        {summary['test_eer_percent']:.2f} %")
        per_attack = summary.get("test_eer_percent_by_attack", {})
        lines += [f"  {attack:<13} {eer:.2f} %" for attack, eer in sorted(per_attack.items())]
    lines.append(f"best checkpoint {summary.get('best_checkpoint')}")
    if summary.get("score_file"):
        lines.append(f"test scores     {summary['score_file']}")
    return "\n".join(lines)
