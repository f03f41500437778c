"""Check a composed config before anything heavy runs (demo corpus, data scan, model build).

Every range and choice of the ``data``, ``trainer``, ``augment`` and eval.py keys is a row
of a table (key -> :class:`~spoof_lightning.config_rules.Rule`); keys the data module or
``lightning.Trainer`` do not take are refused with the closest names. All problems are
reported at once, in one :class:`ConfigError` paragraph that names each key, its value and
what is accepted, so ``data.batch_size=-4`` exits 2 in a second instead of a traceback
after the corpus scan. Crops are checked against the shortest waveform the front-end and
model accept once they are built (:func:`check_crops`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from spoof_lightning.build import resolve_class
from spoof_lightning.config_rules import (
    Rule,
    choice,
    flag,
    integer,
    is_int,
    is_number,
    number,
    plain,
    plain_values,
    raise_problems,
    rule_problems,
    show,
    text,
    unknown_keys,
)
from spoof_lightning.data.protocols import CORPORA, SPLITS
from spoof_lightning.metrics.report import METRIC_SETS

log = logging.getLogger(__name__)


def _count_or_fraction(v: Any) -> bool:
    """Lightning's ``limit_*_batches`` / ``overfit_batches``: a batch count or a fraction."""
    return v is None or (is_int(v) and v >= 0) or (is_number(v) and 0 <= v <= 1)


SUBSET_KEYS = ("per_class", "per_attack", "size")
SUBSET_CLASSES = ("bonafide", "spoof", "unknown")
SUBSET_FORMS = (
    "one of {per_class: N}, {per_class: {bonafide: N, spoof: M}}, {per_attack: N}, {size: N}"
)


def _per_split_problems(value: Any, key: str, check: Callable[[Any, str], list[str]]) -> list[str]:
    """``data.subset`` / ``data.attacks``: null, or split -> setting (each checked)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{key} must be null or a mapping of {list(SPLITS)} to settings, got {show(value)}"]
    problems = unknown_keys(value, SPLITS, f"{key}.", "a split")
    return problems + [p for split in SPLITS for p in check(value.get(split), f"{key}.{split}")]


def _subset_problems(spec: Any, key: str) -> list[str]:
    if spec is None or (isinstance(spec, Mapping) and not spec):
        return []
    wanted = f"{key} must be null or {SUBSET_FORMS}"
    if not isinstance(spec, Mapping):
        return [f"{wanted}, got {show(spec)}"]
    problems = unknown_keys(spec, SUBSET_KEYS, f"{key}.", "a subset kind")
    chosen = [k for k in SUBSET_KEYS if spec.get(k) is not None]
    if not problems and len(chosen) != 1:
        problems.append(f"{wanted} (exactly one), got {show(spec)}")
    for name in chosen:
        value = spec[name]
        if name == "per_class" and isinstance(value, Mapping):
            problems += unknown_keys(value, SUBSET_CLASSES, f"{key}.per_class.", "a class")
            problems += [
                f"{key}.per_class.{c} must be an integer >= 0, got {show(n)}"
                for c, n in value.items()
                if not (is_int(n) and n >= 0)
            ]
        elif not (is_int(value) and value >= 1):
            problems.append(f"{key}.{name} must be an integer >= 1, got {show(value)}")
    return problems


def _attacks_problems(ids: Any, key: str) -> list[str]:
    if ids is None or (isinstance(ids, Sequence) and not isinstance(ids, str) and ids):
        return []
    return [f"{key} must be a non-empty list of attack ids (or null: all), got {show(ids)}"]


DATA_RULES: dict[str, Rule] = {
    "corpus": choice(*CORPORA),
    "train_corpus": choice(*CORPORA, optional=True),
    "root": text(),
    "sample_rate": integer(1),
    "train_crop": integer(1),
    "eval_crop": integer(1, optional=True),
    "pad": choice("repeat", "zero"),
    "frame_hop": number(0, strict=True, optional=True),
    "batch_size": integer(1),
    "eval_batch_size": integer(1, optional=True),
    "num_workers": integer(0),
    "pin_memory": flag(),
    "persistent_workers": flag(),
    "seed": integer(0),
    "demo": flag(),
    "loader": choice("map", "stream", "shards"),
    "shards_root": text(optional=True),
    "shuffle_buffer": integer(0),
    "uneven": choice("wrap", "drop"),
    "preflight": choice("off", "exists", "header", "decode"),
    "on_error": choice("strict", "skip"),
}

# lightning.Trainer's precision values (lightning.fabric.connector._PRECISION_INPUT)
PRECISIONS = ("16-mixed", "bf16-mixed", "32-true", "16-true", "bf16-true", "64-true")
PRECISIONS += ("transformer-engine", "transformer-engine-float16", "16", "32", "64", "bf16")
PRECISION = Rule(
    f"one of {PRECISIONS}", lambda v: v in PRECISIONS or (is_int(v) and v in (16, 32, 64))
)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _devices(v: Any) -> bool:
    if v == "auto" or (is_int(v) and (v >= 1 or v == -1)):
        return True
    if isinstance(v, str):
        return all(part.strip().isdigit() for part in v.split(",") if part.strip()) or v == "-1"
    return isinstance(v, Sequence) and len(v) > 0 and all(is_int(i) and i >= 0 for i in v)


def _strategies() -> list[str]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]


TRAINER_RULES: dict[str, Rule] = {
    "accelerator": choice(*ACCELERATORS),
    "strategy": Rule(
        "a Lightning strategy name (auto, ddp, ddp_spawn, fsdp, ...) or a _target_ config",
        lambda v: v in _strategies() or (isinstance(v, Mapping) and "_target_" in v),
    ),
    "devices": Rule(
        "a positive integer, -1 (all), auto, a list of device indices or a string like '0,1'",
        _devices,
    ),
    "num_nodes": integer(1),
    "precision": PRECISION,
    "max_epochs": integer(-1, optional=True),
    "min_epochs": integer(0, optional=True),
    "max_steps": integer(-1),
    "min_steps": integer(0, optional=True),
    "accumulate_grad_batches": integer(1),
    "micro_batch_size": integer(1, optional=True),
    "gradient_clip_val": number(0, optional=True),
    "gradient_clip_algorithm": choice("norm", "value", optional=True),
    "log_every_n_steps": integer(0, optional=True),
    "num_sanity_val_steps": integer(-1, optional=True),
    "check_val_every_n_epoch": integer(1, optional=True),
    "val_check_interval": Rule(
        "an integer >= 1 (batches), a number in (0, 1] (a fraction of the epoch) or null",
        lambda v: v is None or (is_int(v) and v >= 1) or (is_number(v) and 0 < v <= 1),
    ),
    "limit_train_batches": Rule("an integer >= 0, a number in [0, 1] or null", _count_or_fraction),
    "limit_val_batches": Rule("an integer >= 0, a number in [0, 1] or null", _count_or_fraction),
    "limit_test_batches": Rule("an integer >= 0, a number in [0, 1] or null", _count_or_fraction),
    "overfit_batches": Rule("an integer >= 0 or a number in [0, 1]", _count_or_fraction),
    "fast_dev_run": Rule(
        "true, false or an integer >= 0", lambda v: isinstance(v, bool) or (is_int(v) and v >= 0)
    ),
    "deterministic": Rule("true, false, warn or null", lambda v: v in (True, False, None, "warn")),
    "benchmark": flag(optional=True),
    "enable_checkpointing": flag(optional=True),
    "enable_progress_bar": flag(optional=True),
    "enable_model_summary": flag(optional=True),
    "sync_batchnorm": flag(),
    "compile": Rule(
        "true, false or a dict of torch.compile arguments",
        lambda v: isinstance(v, bool | Mapping) or v is None,
    ),
}

EVAL_RULES: dict[str, Rule] = {
    "ckpt": text(),
    "split": choice("test", "val"),
    "threshold": Rule(
        "a finite number (score > threshold = bona fide) or null",
        lambda v: v is None or is_number(v),
    ),
    "conditions": Rule(
        "auto, null, a metadata column or a list of columns",
        lambda v: (
            v is None
            or isinstance(v, str)
            or (isinstance(v, Sequence) and all(isinstance(c, str) for c in v))
        ),
    ),
    "asv_scores": text(optional=True),
    "asv_keys": text(optional=True),
    "tdcf": Rule("2019 or 2021", lambda v: str(v) in ("2019", "2021")),
    "metrics": choice("auto", *METRIC_SETS),
    "bootstrap": Rule(
        "{n_resamples: an integer >= 0 (0 = off), seed: an integer >= 0, level: a number in "
        "(0, 1)}",
        lambda v: (
            isinstance(v, Mapping)
            and set(v) <= {"n_resamples", "seed", "level"}
            and is_int(v.get("n_resamples", 0))
            and v.get("n_resamples", 0) >= 0
            and is_int(v.get("seed", 0))
            and is_number(v.get("level", 0.95))
            and 0 < v.get("level", 0.95) < 1
        ),
    ),
    "calibrate": flag(),
    "calibration_prior": Rule("a number in (0, 1)", lambda v: is_number(v) and 0 < v < 1),
    "plots": flag(),
    "progress_bar": flag(),
    "accelerator": choice(*ACCELERATORS),
    "precision": PRECISION,
    "sample_rate": integer(1, optional=True),
}


def _parameters(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]


def data_problems(data: Any, prefix: str = "data.", skip_null: bool = False) -> list[str]:
    """Problems of a data config (an AntiSpoofDataModule's; other data modules only by class)."""
    from spoof_lightning.data.datamodule import AntiSpoofDataModule

    values, missing = plain_values(data)
    problems = [f"{prefix}{key} is not set: pass {prefix}{key}=<value>" for key in missing]
    cls = resolve_class(values, prefix.rstrip("."))
    if not issubclass(cls, AntiSpoofDataModule):
        return problems
    known = [*_parameters(cls), "_target_"]
    problems += unknown_keys(values, known, prefix, f"an argument of {cls.__name__}")
    problems += rule_problems(values, DATA_RULES, prefix, skip_null)
    problems += _per_split_problems(values.get("subset"), f"{prefix}subset", _subset_problems)
    problems += _per_split_problems(values.get("attacks"), f"{prefix}attacks", _attacks_problems)
    if values.get("loader") == "shards":
        if not values.get("shards_root"):
            shards = "written by spoof-lightning shards"
            problems.append(f"{prefix}loader=shards needs {prefix}shards_root ({shards})")
        for key in ("subset", "attacks"):
            if any((values.get(key) or {}).values()):
                problems.append(
                    f"{prefix}{key} selects protocol entries: it does not apply to "
                    f"{prefix}loader=shards (convert the selection to shards)"
                )
    return problems


def trainer_problems(trainer: Any, prefix: str = "trainer.") -> list[str]:
    from spoof_lightning.training import ENGINE_KEYS  # imports this module

    values, missing = plain_values(trainer)
    problems = [f"{prefix}{key} is not set" for key in missing]
    known = [*_parameters(L.Trainer), *ENGINE_KEYS, "_target_"]
    problems += unknown_keys(values, known, prefix, "a lightning.Trainer argument")
    return problems + rule_problems(values, TRAINER_RULES, prefix)


def augment_problems(augment: Any, prefix: str = "augment") -> list[str]:
    """Probabilities (``p``, ``*_p``) in [0, 1] and ``min_x <= max_x`` pairs, at any depth;
    then what the transforms' own constructors refuse."""
    if augment is None:
        return []
    values = plain(augment)
    problems = _augment_node(values, prefix)
    if not problems and isinstance(values, Mapping) and "_target_" in values:
        try:
            instantiate(values)
        except Exception as err:  # a constructor's own check (Hydra wraps it)
            cause = err.__cause__ or err
            problems.append(f"{prefix}: {type(cause).__name__}: {cause}")
    return problems


def _augment_node(node: Any, key: str) -> list[str]:
    if isinstance(node, Sequence) and not isinstance(node, str):
        return [p for i, item in enumerate(node) for p in _augment_node(item, f"{key}[{i}]")]
    if not isinstance(node, Mapping):
        return []
    problems = []
    for name, value in node.items():
        if name == "p" or name.endswith("_p"):
            if not (is_number(value) and 0 <= value <= 1):
                problems.append(f"{key}.{name} must be a probability in [0, 1], got {show(value)}")
        elif name.startswith("min_") and f"max_{name[4:]}" in node:
            high = node[f"max_{name[4:]}"]
            if not (is_number(value) and is_number(high)):
                problems.append(f"{key}.{name} and max_{name[4:]} must be numbers")
            elif value > high:
                problems.append(f"{key}.{name}={value} must not exceed {key}.max_{name[4:]}={high}")
        problems += _augment_node(value, f"{key}.{name}")
    return problems


def check_train_config(cfg: DictConfig) -> None:
    """Check train.py's (or the continual loop's) data, trainer and augment groups."""
    problems = data_problems(cfg.data) if cfg.get("data") else []
    if cfg.get("trainer") is not None:
        problems += trainer_problems(cfg.trainer)
    problems += augment_problems(cfg.get("augment"))
    values, _ = plain_values(cfg, ("seed",))  # resume: checked where the run dir is chosen
    problems += rule_problems(values, {"seed": integer(0)}, "")
    raise_problems(problems, "training")


def check_eval_config(cfg: DictConfig) -> None:
    """Check eval.py's keys, and the ``data`` keys given (null ones are filled from the
    checkpoint; the merged data config is checked again before it is used)."""
    values, missing = plain_values(cfg, list(EVAL_RULES))
    problems = [f"{key} is not set: pass {key}=<value>" for key in missing]
    problems += rule_problems(values, EVAL_RULES, "")
    if values.get("asv_keys") and not values.get("asv_scores"):
        problems.append("asv_keys needs asv_scores (the ASV score file of those trials)")
    if cfg.get("data") and "_target_" in cfg.data:
        problems += data_problems(cfg.data, skip_null=True)
    raise_problems(problems, "evaluation")


def check_crops(
    data: Mapping[str, Any],
    need: int,
    described: str,
    keys: Sequence[str] = ("train_crop", "eval_crop"),
    prefix: str = "data.",
) -> None:
    """Refuse crops shorter than the ``need`` samples the front-end and model accept (see
    :func:`spoof_lightning.build.min_input_samples`)."""
    rate = data.get("sample_rate") or 16000
    shortest = f"{need} samples ({1000 * need / rate:.1f} ms at {rate} Hz)"
    log.info("%s need at least %s", described, shortest)
    problems = [
        f"{prefix}{key}={data[key]} is shorter than the {shortest} that {described} need: "
        f"use {prefix}{key} >= {need}"
        for key in keys
        if data.get(key) is not None and data[key] < need
    ]
    raise_problems(problems, "data")
