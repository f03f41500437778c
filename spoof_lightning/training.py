"""What train.py runs: build everything from the composed config, fit, test, summarise.

Also the engine options that are not Lightning Trainer arguments (``trainer.micro_batch_size``,
``trainer.compile``), the naming of sweep jobs, what a multirun job does with a front-end x
model pair that cannot work (it records it and lets the sweep go on), and what a resumed or
preempted run does (:func:`checkpoint_to_resume`, :mod:`spoof_lightning.preemption`).
"""

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from spoof_lightning.atomic import write_json
from spoof_lightning.build import ConfigError, instantiate_data, min_input_samples
from spoof_lightning.callbacks.config_in_checkpoint import ConfigInCheckpoint
from spoof_lightning.callbacks.nonfinite import NonFiniteGuard
from spoof_lightning.callbacks.preemption import PreemptionCheckpoint
from spoof_lightning.callbacks.resume_state import ResumeState
from spoof_lightning.callbacks.score_writer import ScoreWriter
from spoof_lightning.checkpoint import describe
from spoof_lightning.checkpoint_match import check_resumable
from spoof_lightning.cli import is_multirun
from spoof_lightning.config_checks import check_crops, check_train_config
from spoof_lightning.contracts import IncompatiblePairError
from spoof_lightning.lit.detector import Detector
from spoof_lightning.lit.em_detector import detector_class
from spoof_lightning.loggers import finish_wandb, log_images
from spoof_lightning.metrics.summary import split_metrics
from spoof_lightning.preemption import Preempted, handling_signals
from spoof_lightning.rundir import LAST_CHECKPOINT, claim, run_label

log = logging.getLogger(__name__)

# Keys of the trainer group that configure spoof-lightning, not lightning.Trainer.
ENGINE_KEYS = ("micro_batch_size", "compile")


def config_choices(cfg: DictConfig) -> dict[str, str]:
    """The config-group choices of this run (``{"model": "aasist", ...}``), if known."""
    if HydraConfig.initialized():
        return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
    return {}


def task_overrides() -> list[str]:
    """The command-line (or sweep) overrides of this job, if run by Hydra."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def name_overrides() -> str:
    """The overrides that name a sweep job (``hydra.job.override_dirname``: all but the
    choices, resume and storage keys listed in conf/hydra/default.yaml)."""
    return str(HydraConfig.get().job.override_dirname) if HydraConfig.initialized() else ""


def detector_from_config(cfg: DictConfig) -> Detector:
    """A :class:`Detector` from the frontend/model/loss/optimizer/scheduler groups (an
    :class:`~spoof_lightning.lit.em_detector.EMDetector` for models fitted by EM)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    choices = config_choices(cfg)
    return detector_class(plain["model"])(
        frontend=plain["frontend"],
        model=plain["model"],
        loss=plain["loss"],
        optimizer=plain["optimizer"],
        scheduler=plain.get("scheduler") or None,
        scheduler_interval=plain.get("scheduler_interval", "epoch"),
        names={k: choices[k] for k in ("frontend", "model", "loss") if k in choices},
    )


def checkpoint_to_resume(run_dir: Path, cfg: DictConfig) -> str | None:
    """``last.ckpt`` of ``run_dir`` when ``cfg.resume`` asks to continue, checked before
    anything is built; None for a run that starts from the beginning.

    A run never starts from the beginning over checkpoints it would overwrite (e.g. an
    explicit ``hydra.run.dir`` that holds a run): that is refused, as is a ``last.ckpt``
    that is not a train.py checkpoint of this front-end and model (truncated, foreign or
    holding pickled code).
    """
    last = run_dir / LAST_CHECKPOINT
    asked = str(cfg.resume).lower() if isinstance(cfg.resume, bool) else cfg.resume
    if cfg.resume and last.is_file():
        plain = OmegaConf.to_container(cfg, resolve=True)
        done = check_resumable(last, {part: plain[part] for part in ("frontend", "model")})
        log.info(
            "resume=%s: continuing %s from %s (epoch %d, global step %d)",
            asked,
            run_dir,
            last,
            done["epoch"],
            done["global_step"],
        )
        return str(last)
    existing = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    if existing:
        why = "has no last.ckpt to continue from" if cfg.resume else "is not resumed"
        raise ConfigError(
            f"{run_dir} already holds checkpoints ({', '.join(existing)}) but {why}; a run "
            "never starts over them. resume=true continues a run from its last.ckpt; a new "
            "run gets its own directory when hydra.run.dir and paths.run_dir are left unset."
        )
    if cfg.resume:
        log.warning(
            "resume=%s: %s holds no %s (no earlier run of this name saved one): training "
            "starts from the beginning in it",
            asked,
            run_dir,
            LAST_CHECKPOINT,
        )
    return None


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group (a dict of configs)."""
    if not group:
        return []
    return [instantiate(conf) for conf in group.values() if conf and "_target_" in conf]


def micro_batches(batch_size: int, micro_batch_size: int) -> tuple[int, int]:
    """``(loader batch, accumulate_grad_batches)`` for one optimizer step over ``batch_size``
    utterances, at most ``micro_batch_size`` at a time.

    The accumulation ``k`` is the smallest divisor of ``batch_size`` with
    ``batch_size / k <= micro_batch_size``, so the effective batch stays exactly
    ``batch_size`` (e.g. 24 with at most 10 at a time: 3 x 8).
    """
    if batch_size < 1 or micro_batch_size < 1:
        raise ConfigError(
            f"data.batch_size={batch_size} and trainer.micro_batch_size={micro_batch_size} "
            "must be positive"
        )
    accumulation = math.ceil(batch_size / micro_batch_size)
    while batch_size % accumulation:
        accumulation += 1
    return batch_size // accumulation, accumulation


def apply_micro_batches(cfg: DictConfig) -> None:
    """With ``trainer.micro_batch_size`` set, keep ``data.batch_size`` as the batch of one
    optimizer step (the paper's) and load it in micro-batches with gradient accumulation.

    The config is rewritten to what runs (loader batch, accumulation), so checkpoints store it.
    """
    micro = cfg.trainer.get("micro_batch_size")
    if micro is None:
        return
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        raise ConfigError(
            "set trainer.micro_batch_size or trainer.accumulate_grad_batches, not both "
            f"(got {micro} and {cfg.trainer.accumulate_grad_batches})"
        )
    batch, accumulation = micro_batches(int(cfg.data.batch_size), int(micro))
    if accumulation > 1:
        log.info(
            "data.batch_size=%d in %d micro-batches of %d (trainer.micro_batch_size=%d)",
            cfg.data.batch_size,
            accumulation,
            batch,
            micro,
        )
    cfg.data.batch_size = batch
    cfg.trainer.accumulate_grad_batches = accumulation
    cfg.trainer.micro_batch_size = None


def trainer_arguments(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(lightning.Trainer config, engine options)`` from the trainer group; the first is
    plain data for :func:`hydra.utils.instantiate` (``plugins`` are ``_target_`` configs).

    bf16-mixed on a CUDA GPU without bf16 support (before Ampere) falls back to 16-mixed.
    """
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    options = {key: kwargs.pop(key, None) for key in ENGINE_KEYS}
    precision = str(kwargs.get("precision", ""))
    uses_cuda = kwargs.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if precision.startswith("bf16") and uses_cuda and not torch.cuda.is_bf16_supported():
        log.warning("trainer.precision=%s: this GPU has no bf16, using 16-mixed", precision)
        kwargs["precision"] = "16-mixed"
    return kwargs, options


def compile_model(module: Detector, option: bool | Mapping[str, Any] | None) -> None:
    """``trainer.compile``: :func:`torch.compile` the model, not the front-end (spectral
    front-ends leave autocast and call into nnAudio/FFT code that compiles poorly).

    ``true``, or a dict of torch.compile arguments (``{mode: max-autotune}``). In place
    (``nn.Module.compile``), so state_dict keys and checkpoints are those of an eager run.
    """
    if option:
        module.model.compile(**(dict(option) if isinstance(option, Mapping) else {}))


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` of the run (main process only, atomically); read by compare."""
    if rank_zero_only.rank == 0:
        write_json(run_dir / "summary.json", summary)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``summary.json`` in the run directory.

    ``summary["status"]`` is ``running`` while the run goes, then ``completed``, ``failed``
    (the error is re-raised), ``preempted`` (a signal stopped it after saving ``last.ckpt``;
    :class:`Preempted` is re-raised) or ``incompatible``: a front-end x model pair that
    cannot work raises :class:`IncompatiblePairError` in a single run, but in a multirun
    job it is recorded and returned, so the sweep goes on with the other jobs.
    """
    check_train_config(cfg)  # before anything is built, scanned or written
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.run_dir)
    if rank_zero_only.rank == 0:  # DDP workers share the directory of their main process
        for path in claim(run_dir):
            log.info("removed %s, left unfinished by a killed process", path)
    ckpt_path = checkpoint_to_resume(run_dir, cfg)
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "status": "running",
        "choices": config_choices(cfg),
        "overrides": task_overrides(),
        "name_overrides": name_overrides(),
        "resumed_from": ckpt_path,
    }
    with handling_signals():
        write_summary(run_dir, summary)
        try:
            summary |= fit_and_test(cfg, run_dir, ckpt_path)
            summary["status"] = "completed"
        except Preempted as stop:
            log.warning("%s: %s; resume=true continues the run", run_dir, stop)
            summary |= {"status": "preempted", "signal": stop.signal_name}
            summary["checkpoint"] = str(stop.checkpoint) if stop.checkpoint else None
            write_summary(run_dir, summary)
            raise
        except IncompatiblePairError as err:
            summary |= {"status": "incompatible", "error": str(err)}
            write_summary(run_dir, summary)
            if not is_multirun():
                raise
            log.error("Job %s skipped: %s", run_label(run_dir), err)
            return summary
        except Exception as err:
            summary |= {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            write_summary(run_dir, summary)
            raise
        finally:
            finish_wandb()  # the next multirun job gets its own W&B run
        write_summary(run_dir, summary)
    return summary


def fit_and_test(cfg: DictConfig, run_dir: Path, ckpt_path: str | None) -> dict[str, Any]:
    """Build, fit (from ``ckpt_path`` if given), test the best checkpoint; the run's results."""
    apply_micro_batches(cfg)
    trainer_kwargs, options = trainer_arguments(cfg)
    module = detector_from_config(cfg)  # refuses a bad front-end x model pair first
    min_samples = min_input_samples(module.frontend, module.model)
    check_crops(cfg.data, min_samples, describe(cfg.frontend, cfg.model, config_choices(cfg)))
    compile_model(module, options["compile"])
    datamodule = instantiate_data(cfg.data, min_samples)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks = instantiate_group(cfg.get("callbacks"))
    # ResumeState: RNG states in checkpoints (the loaders save the data position)
    callbacks += [ConfigInCheckpoint(resolved), NonFiniteGuard(), ResumeState()]
    callbacks.append(PreemptionCheckpoint(run_dir / LAST_CHECKPOINT))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(trainer_kwargs, callbacks=callbacks, logger=loggers or False)
    for logger in trainer.loggers:
        logger.log_hyperparams({"config": resolved})
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)

    result: dict[str, Any] = {
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "parameters": sum(p.numel() for p in module.parameters()),
        "batch_size": cfg.data.batch_size,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "world_size": trainer.world_size,
    }
    # The ModelCheckpoint that monitors (best.ckpt), whatever the order of the callbacks.
    checkpoint = next(
        (c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)), None
    )
    best = checkpoint.best_model_path if checkpoint is not None else ""
    result["best_checkpoint"] = best or None
    if checkpoint is not None and checkpoint.best_model_score is not None:
        result["best_val_eer_percent"] = 100 * float(checkpoint.best_model_score)
    if cfg.test_after_fit and not trainer.fast_dev_run:
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
        # exact, not the float32 log
        metrics = split_metrics(module.last_scores["test"].rows(), conditions=None)
        result["test_eer_percent"] = metrics.get("eer_percent")
        result["test_eer_percent_by_attack"] = {
            attack: 100 * entry["eer"] for attack, entry in metrics.get("attacks", {}).items()
        }
        writer = next((c for c in callbacks if isinstance(c, ScoreWriter)), None)
        if writer is not None and writer.written:
            result["score_file"] = str(writer.written["score_file"])
        if trainer.is_global_zero:
            scores_dir = writer.output_dir if writer is not None else run_dir / "scores"
            log_images(trainer.loggers, scores_dir)
    return result


def format_summary(summary: dict[str, Any]) -> str:
    """A few human-readable lines for the end of a training run."""
    lines = [f"run directory   {summary['run_dir']}"]
    if summary.get("status") not in (None, "completed"):
        lines.append(f"status          {summary['status']}: {summary.get('error', '')}")
        return "\n".join(lines)
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
