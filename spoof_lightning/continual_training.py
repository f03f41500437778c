"""Continual learning over a sequence of experiences: DFWF against plain fine-tuning.

    spoof-lightning continual experiment=dfwf_demo   (conf/continual.yaml)

Ma et al., "Continual learning for fake audio detection", Interspeech 2021 (DFWF, see
:mod:`spoof_lightning.losses.dfwf`). The model learns experience 1, 2, ... in turn
(new attacks, or a new corpus), each with its own train/val/test splits. After each
experience the best checkpoint (lowest EER on that experience's val split) is kept, scored
on the test split of *every* experience, and frozen as the old model of the next one.

Results (``continual.json`` and ``continual.md`` in the run directory), per regime:

- the EER matrix ``R[i][j]``: EER (%) on the test set of experience j after learning i;
- the average EER after the last experience (mean of the last row), and after each
  experience over the experiences seen so far;
- the forgetting of experience j < N: ``R[N][j] - min_{j <= i < N} R[i][j]`` (EER
  points lost since its best, as in Chaudhry et al., 2018, with EER for accuracy) and its
  mean.

Regimes: ``dfwf`` (the loss as configured) and, with ``compare_finetune``, ``finetune``
(the same loss with ``lambda_kd = lambda_psa = 0``). Experience 1 has no old model, so it
is the same in both and is trained once (under ``<run>/exp1-<name>``); later experiences
go to ``<run>/<regime>/exp<i>-<name>``, each with ``checkpoints/best.ckpt`` (eval.py
reads it and its experience's data config) and a CSV log.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from spoof_lightning.atomic import write_json, write_text
from spoof_lightning.build import (
    ConfigError,
    instantiate_data,
    min_input_samples,
    resolve_class,
)
from spoof_lightning.callbacks.config_in_checkpoint import ConfigInCheckpoint
from spoof_lightning.checkpoint import describe, read_checkpoint
from spoof_lightning.cli import hydra_app, user_errors_reported
from spoof_lightning.config_checks import (
    check_crops,
    check_train_config,
    data_problems,
    raise_problems,
)
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.lit.detector import Detector
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.training import (
    apply_micro_batches,
    config_choices,
    detector_from_config,
    trainer_arguments,
)

RESULTS_JSON = "continual.json"
RESULTS_MD = "continual.md"
FINETUNE = {"lambda_kd": 0.0, "lambda_psa": 0.0}


@dataclass
class Experience:
    """One step of the sequence: a name and its resolved data config."""

    name: str
    data: dict[str, Any]

    def dirname(self, index: int) -> str:
        return f"exp{index + 1}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)


def experiences_from_config(cfg: DictConfig) -> list[Experience]:
    """The ``experiences`` mapping (name -> ``{data: overrides, attacks: per split}``, in
    order) as resolved data configs: the ``data`` group with each experience's overrides."""
    spec = cfg.get("experiences")
    if not spec or len(spec) < 2:
        raise ConfigError(
            "`experiences` needs at least 2 entries, e.g. experiment=dfwf_demo "
            "(name: {data: {...overrides of the data config...}, attacks: {train: [...]}})"
        )
    base = OmegaConf.to_container(cfg.data, resolve=True)
    out = []
    for name, entry in spec.items():
        entry = OmegaConf.to_container(entry, resolve=True) if entry is not None else {}
        unknown = set(entry) - {"data", "attacks"}
        if unknown:
            raise ConfigError(f"experiences.{name}: unknown keys {sorted(unknown)} (data, attacks)")
        data = OmegaConf.to_container(OmegaConf.merge(base, entry.get("data") or {}))
        if entry.get("attacks"):
            target = resolve_class(data, f"experiences.{name}.data")
            if not issubclass(target, AntiSpoofDataModule):
                raise ConfigError(
                    f"experiences.{name}.attacks needs an AntiSpoofDataModule data config, "
                    f"got {data['_target_']}"
                )
            data["attacks"] = entry["attacks"]
        out.append(Experience(str(name), data))
    return out


def fit_experience(
    module: Detector, cfg: DictConfig, experience: Experience, out_dir: Path, min_samples: int = 1
) -> str | None:
    """Fit ``module`` on one experience and load its best checkpoint; returns its path.

    ``min_samples``: the shortest waveform the module accepts (see ``build.instantiate_data``).
    """
    datamodule = instantiate_data(experience.data, min_samples)
    checkpoint = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="best",
        monitor="val/eer",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    run_config = OmegaConf.to_container(cfg, resolve=True)
    run_config["data"] = experience.data  # eval.py scores this experience's test set
    kwargs, _ = trainer_arguments(cfg)
    kwargs.update(
        callbacks=[checkpoint, ConfigInCheckpoint(run_config)],
        logger=CSVLogger(str(out_dir), name="csv", version=""),
        default_root_dir=str(out_dir),
    )
    trainer: L.Trainer = instantiate(kwargs)
    trainer.fit(module, datamodule=datamodule)
    best = checkpoint.best_model_path
    if best:
        module.load_state_dict(read_checkpoint(best)["state_dict"])
    return best or None


def experience_eer(module: Detector, datamodule: L.LightningDataModule, cfg: DictConfig) -> float:
    """Exact EER (%) of ``module`` on the test split of ``datamodule``."""
    kwargs, _ = trainer_arguments(cfg)
    trainer = L.Trainer(
        accelerator=kwargs.get("accelerator", "auto"),
        devices=1,
        precision=kwargs.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.test(module, datamodule=datamodule, verbose=False)
    bonafide, spoof = module.last_scores["test"].split()
    return 100.0 * compute_eer(bonafide, spoof)[0]


def continual_metrics(matrix: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Average EER and forgetting from an N x N EER matrix (row i: after experience i)."""
    n = len(matrix)
    final = list(matrix[-1])
    forgetting = [final[j] - min(matrix[i][j] for i in range(j, n - 1)) for j in range(n - 1)]
    return {
        "average_eer_percent": mean(final),
        "average_eer_seen_percent": [mean(matrix[i][: i + 1]) for i in range(n)],
        "forgetting_percent": forgetting,
        "average_forgetting_percent": mean(forgetting),
    }


def run_continual(cfg: DictConfig) -> dict[str, Any]:
    """Train the experience sequence under DFWF (and fine-tuning); write and return results."""
    check_train_config(cfg)  # before anything is built or read
    if not hasattr(resolve_class(cfg.loss, "loss"), "remember"):
        raise ConfigError(
            f"loss={cfg.loss._target_} has no old model to remember: the continual loop "
            "needs loss=dfwf (fine-tuning = loss.lambda_kd=0 loss.lambda_psa=0)"
        )
    if trainer_arguments(cfg)[1].get("compile"):
        raise ConfigError("trainer.compile is not supported by the continual loop")
    apply_micro_batches(cfg)  # trainer.micro_batch_size, as in train.py
    experiences = experiences_from_config(cfg)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    problems = [
        p for e in experiences for p in data_problems(e.data, f"experiences.{e.name}.data.")
    ]
    raise_problems(problems, "experience")

    # Experience 1: no old model yet, hence the same for every regime: trained once.
    L.seed_everything(cfg.seed, workers=True)
    module = detector_from_config(cfg)
    described = describe(cfg.frontend, cfg.model, config_choices(cfg))
    min_samples = min_input_samples(module.frontend, module.model)
    for e in experiences:
        check_crops(e.data, min_samples, described, prefix=f"experiences.{e.name}.data.")
    test_sets = [instantiate_data(e.data, min_samples) for e in experiences]
    first_dir = run_dir / experiences[0].dirname(0)
    first = fit_experience(module, cfg, experiences[0], first_dir, min_samples)
    first_row = [experience_eer(module, data, cfg) for data in test_sets]
    after_first = {k: v.detach().clone() for k, v in module.state_dict().items()}

    regimes: dict[str, Mapping[str, float]] = {"dfwf": {}}
    if cfg.get("compare_finetune", True):
        regimes["finetune"] = FINETUNE
    results: dict[str, Any] = {"experiences": [e.name for e in experiences], "regimes": {}}
    for regime, overrides in regimes.items():
        regime_cfg = copy.deepcopy(cfg)
        for key, value in overrides.items():
            OmegaConf.update(regime_cfg, f"loss.{key}", value, merge=False)
        L.seed_everything(cfg.seed + 1, workers=True)
        module = detector_from_config(regime_cfg)
        module.load_state_dict(after_first)
        matrix, checkpoints = [first_row], [first]
        for index, experience in enumerate(experiences[1:], start=1):
            module.loss_fn.remember(module.frontend, module.model)
            out_dir = run_dir / regime / experience.dirname(index)
            checkpoints.append(fit_experience(module, regime_cfg, experience, out_dir, min_samples))
            matrix.append([experience_eer(module, data, regime_cfg) for data in test_sets])
        loss = OmegaConf.to_container(regime_cfg.loss, resolve=True)
        results["regimes"][regime] = {
            "loss": {k: v for k, v in loss.items() if k != "_target_"},
            "eer_matrix_percent": matrix,
            **continual_metrics(matrix),
            "checkpoints": checkpoints,
        }
    write_json(run_dir / RESULTS_JSON, results)
    write_text(run_dir / RESULTS_MD, format_markdown(results))
    return {**results, "run_dir": str(run_dir)}


def format_markdown(results: Mapping[str, Any]) -> str:
    """The EER matrices and the regime comparison as markdown tables."""
    names = results["experiences"]
    lines = ["# Continual learning: EER (%) on each experience's test set", ""]
    for regime, result in results["regimes"].items():
        lines += [f"## {regime}", "", "| after \\ test | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 1) + "|")
        for name, row in zip(names, result["eer_matrix_percent"], strict=True):
            lines.append(f"| {name} | " + " | ".join(f"{eer:.2f}" for eer in row) + " |")
        lines.append("")
    lines += ["## Summary", "", "| regime | average EER (%) | average forgetting (EER points) |"]
    lines.append("|---|---|---|")
    for regime, result in results["regimes"].items():
        average, forgetting = result["average_eer_percent"], result["average_forgetting_percent"]
        lines.append(f"| {regime} | {average:.2f} | {forgetting:.2f} |")
    return "\n".join(lines) + "\n"


@hydra_app("continual")
def main(cfg: DictConfig) -> float:
    with user_errors_reported():
        results = run_continual(cfg)
    print(format_markdown(results))
    print(f"run directory {results['run_dir']}")
    # What a sweeper minimises: the average EER of DFWF after the last experience.
    return results["regimes"]["dfwf"]["average_eer_percent"]


if __name__ == "__main__":
    main()


__all__ = [
    "Experience",
    "continual_metrics",
    "experiences_from_config",
    "fit_experience",
    "format_markdown",
    "run_continual",
    "experience_eer",
]
