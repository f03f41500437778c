"""What eval.py runs: score a corpus split with a trained checkpoint and write every result.

Orchestration: the config (the checkpoint's data settings, ``data=``, the command line), the
checkpoint, the ASV scores; then the core that training's test uses too: :mod:`.scoring`
scores, :func:`.metrics.summary.split_metrics` summarises and :mod:`.outputs` writes (the
files are listed there). Decisions use ``threshold=`` when given, else the dev-set EER
threshold stored in the checkpoint (the Detector's ``eer_threshold``, set at the validation
of the checkpoint's weights). Localisation (HAD) needs a model with ``frame_logits``
``[B, F, 2]`` on the data's ``frame_hop`` grid (e.g. ``model=frame_localizer``).
"""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from spoof_lightning.build import ConfigError, instantiate_data, min_input_samples
from spoof_lightning.checkpoint import PARTS, LoadedModel, load_countermeasure
from spoof_lightning.checkpoint_match import check_request
from spoof_lightning.config_checks import (
    check_crops,
    check_eval_config,
    data_problems,
    raise_problems,
)
from spoof_lightning.config_rules import plain
from spoof_lightning.data.protocols import CORPUS_CONDITIONS
from spoof_lightning.metrics.sasv import read_asv5_scores, read_asv5_trials, sasv_rows
from spoof_lightning.metrics.scores import read_asv_scores_2019, read_asv_trials_2021
from spoof_lightning.metrics.summary import add_decisions, join_rows, split_metrics
from spoof_lightning.metrics.tdcf import AsvScores
from spoof_lightning.models.released_weights import requested_configs
from spoof_lightning.outputs import claim_output_dir, write_outputs
from spoof_lightning.scoring import ScoreSet, score_split

log = logging.getLogger(__name__)


# Data keys that shape what the model sees: eval.py keeps the checkpoint's values.
KEPT_DATA_KEYS = ("eval_crop", "pad", "sample_rate")


def command_line_keys(cfg: DictConfig) -> set[str]:
    """Config keys set on the command line (``data.eval_crop=null`` -> ``data.eval_crop``)."""
    composed = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    if composed is not None:  # composed by hand: compose(..., return_hydra_config=True)
        overrides = list(composed)
    elif HydraConfig.initialized():
        overrides = list(HydraConfig.get().overrides.task)
    else:
        overrides = []
    return {str(o).split("=", 1)[0].lstrip("+~") for o in overrides}


def data_config(cfg: DictConfig, loaded: LoadedModel) -> dict[str, Any]:
    """The data config to evaluate on: ``data=<name>`` (a full config), or the checkpoint's
    with any ``+data.key=value`` overrides. Report files go to ``output_dir``.

    Whatever ``data=`` names, the crop, padding and sample rate are the checkpoint's
    (:data:`KEPT_DATA_KEYS`; files at other rates are resampled), so that its scores are
    those of train.py's own test, unless the command line sets them (``data.eval_crop=null``
    scores whole files). The values used, and where they come from, are logged.
    """
    given = cfg.get("data") or OmegaConf.create({})
    fixed = {"report_dir": str(cfg.output_dir), "augment": None}
    stored = loaded.config.get("data")
    stored = stored if isinstance(stored, dict) and "_target_" in stored else None
    named = "_target_" in given
    if named:
        with open_dict(given):  # before resolving: report_dir interpolates Hydra's run dir
            given.merge_with(fixed)
        base: Any = OmegaConf.to_container(given, resolve=True)
        given = OmegaConf.create({})
    elif stored is None:
        raise ConfigError(f"{loaded.path} stores no data config: pass data=<name> data.root=<path>")
    else:
        base = stored
    merged = OmegaConf.to_container(OmegaConf.merge(base, given, fixed), resolve=True)
    chosen = command_line_keys(cfg)
    sources = {}
    for key in KEPT_DATA_KEYS:
        if f"data.{key}" in chosen:
            sources[key] = "command line"
        elif key == "sample_rate":
            merged[key], sources[key] = loaded.sample_rate, "checkpoint"
        elif stored is not None and key in stored:
            merged[key], sources[key] = stored[key], "checkpoint"
        else:
            sources[key] = f"data={merged.get('corpus')}" if named else "default"
    if merged.get("sample_rate") != loaded.sample_rate:
        raise ConfigError(
            f"data.sample_rate={merged.get('sample_rate')}, but {loaded.path} was trained at "
            f"{loaded.sample_rate} Hz (audio at other rates is resampled; leave it unset)"
        )
    log.info(
        "scoring input: %s",
        ", ".join(f"{key}={merged.get(key)} ({sources[key]})" for key in KEPT_DATA_KEYS),
    )
    return merged


def decision_threshold(loaded: LoadedModel, override: float | None) -> tuple[float | None, str]:
    """``(threshold, where it comes from)``: ``threshold=`` or the checkpoint's dev EER one."""
    if override is not None:  # a finite number: check_eval_config refuses others
        return float(override), "threshold="
    if loaded.eer_threshold is not None:
        return loaded.eer_threshold, "checkpoint: dev EER threshold of its epoch"
    return None, "none: the checkpoint has no dev EER threshold; pass threshold=<score>"


def metric_set_of(cfg: DictConfig, data: Mapping[str, Any]) -> str:
    """``metrics``: ``auto`` is ``asvspoof5`` for data=asvspoof5, else ``eer``."""
    requested = str(cfg.get("metrics") or "auto")
    if requested == "auto":
        return "asvspoof5" if data.get("corpus") == "asvspoof5" else "eer"
    return requested  # checked against METRIC_SETS by config_checks.check_eval_config


def load_asv(cfg: DictConfig, data: Mapping[str, Any]) -> AsvScores | list[dict] | None:
    """ASV scores for the t-DCF: a 2019 ASV score file (``asv_scores``), or 2021 ASV
    scores (``asv_scores``) with their trial metadata (``asv_keys``). ASVspoof 5 ASV
    scores are for the SASV metrics instead (:func:`sasv_metrics_of`)."""
    if not cfg.get("asv_scores") or data.get("corpus") == "asvspoof5":
        return None
    if not cfg.get("asv_keys"):
        return read_asv_scores_2019(cfg.asv_scores)
    track = str(data.get("corpus", "")).rsplit("_", 1)[-1].upper()
    if track not in ("LA", "PA"):
        raise ConfigError(
            f"asv_keys: 2021 ASV keys exist for LA and PA, not for corpus {data.get('corpus')!r}"
        )
    phase = (data.get("corpus_options") or {}).get("phase") or "eval"
    return read_asv_trials_2021(cfg.asv_scores, cfg.asv_keys, track, phase)


def load_sasv(cfg: DictConfig, data: Mapping[str, Any]) -> tuple[list, dict] | None:
    """``(trials, ASV scores)`` for the ASVspoof 5 SASV metrics (:mod:`metrics.sasv`): the
    track-2 trial list ``asv_keys`` and the ``asv_scores`` of data=asvspoof5."""
    if data.get("corpus") != "asvspoof5" or not cfg.get("asv_scores"):
        return None
    if not cfg.get("asv_keys"):
        raise ConfigError(
            "asv_scores for ASVspoof 5 need asv_keys=<ASVspoof5.<split>.track_2.trial.tsv>, "
            "the trial list of the ASV scores"
        )
    return read_asv5_trials(cfg.asv_keys), read_asv5_scores(cfg.asv_scores)


def _sasv_trials(cfg: DictConfig, asv5: tuple[list, dict], rows: list[dict]) -> tuple:
    """The SASV trial rows (ASV + CM scores) and their fusion, for :func:`split_metrics`."""
    try:
        return sasv_rows(*asv5, rows)
    except ValueError as err:
        raise ConfigError(f"asv_scores={cfg.asv_scores}, asv_keys={cfg.asv_keys}: {err}") from err


def _scored_rows(
    loaded: LoadedModel, datamodule: Any, split: str, data: Mapping[str, Any], cfg: DictConfig
) -> tuple[ScoreSet, list[dict[str, Any]], list[str]]:
    options = {
        "accelerator": cfg.accelerator,
        "precision": cfg.precision,
        "enable_progress_bar": cfg.progress_bar,
    }
    scored = score_split(loaded.net, datamodule, split, options)
    where = f"{data.get('corpus')} {split} split under {data.get('root')}"
    rows, unscored = join_rows(
        scored.scores, datamodule.utterances(split), where, data.get("on_error") == "skip"
    )
    return scored, rows, unscored


def _dev_rows(
    loaded: LoadedModel, datamodule: Any, data: Mapping[str, Any], cfg: DictConfig, rows: list
) -> list[dict[str, Any]] | None:
    """The scored val (dev) split that ``calibrate=true`` fits on (None without it)."""
    if not cfg.calibrate:
        return None
    if cfg.split == "val":
        log.warning("calibrate=true with split=val: calibrating on the evaluated split")
        return rows
    try:
        return _scored_rows(loaded, datamodule, "val", data, cfg)[1]
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(
            f"calibrate=true fits on the val (dev) split, which cannot be scored: {err}"
        ) from err


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.split`` with ``cfg.ckpt`` and write the outputs to ``cfg.output_dir``."""
    check_eval_config(cfg)  # before the checkpoint is loaded or any data is read
    split = str(cfg.split)
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    loaded = load_countermeasure(cfg.ckpt, *requested_configs(cfg, choices))  # released: model=
    if cfg.sample_rate is not None and int(cfg.sample_rate) != loaded.sample_rate:
        raise ConfigError(
            f"sample_rate={cfg.sample_rate}, but {loaded.path} was trained at "
            f"{loaded.sample_rate} Hz (audio at other rates is resampled; leave sample_rate unset)"
        )
    cfg.sample_rate = loaded.sample_rate
    for part in PARTS:
        if cfg.get(part):
            check_request(loaded, part, plain(cfg[part]), choices.get(part))
    claim_output_dir(Path(cfg.output_dir), split, loaded.path)
    threshold, threshold_source = decision_threshold(loaded, cfg.threshold)
    data = data_config(cfg, loaded)
    raise_problems(data_problems(data), "data")
    min_samples = min_input_samples(loaded.net.frontend, loaded.net.model)
    check_crops(data, min_samples, loaded.describe(), ["eval_crop"])
    asv, asv5 = load_asv(cfg, data), load_sasv(cfg, data)
    datamodule = instantiate_data(data, min_samples)
    scored, rows, unscored = _scored_rows(loaded, datamodule, split, data, cfg)
    if threshold is not None:
        add_decisions(rows, threshold)

    metrics: dict[str, Any] = {
        "checkpoint": str(loaded.path),
        "model": loaded.describe(),
        "corpus": data.get("corpus"),
        "root": str(data.get("root")),
        "split": split,
        "input": {key: data.get(key) for key in KEPT_DATA_KEYS},  # crop, pad, rate scored
        "threshold": {"value": threshold, "source": threshold_source},
    }
    if unscored:
        metrics["unscored"] = {"count": len(unscored), "examples": sorted(unscored)[:10]}
    metrics |= split_metrics(
        rows,
        cfg.conditions,
        asv,
        str(cfg.tdcf),
        threshold,
        metric_set_of(cfg, data),
        plain(cfg.get("bootstrap")) or {},
        CORPUS_CONDITIONS.get(str(data.get("corpus")), ()),
        sasv=_sasv_trials(cfg, asv5, rows) if asv5 is not None else None,
        dev_rows=_dev_rows(loaded, datamodule, data, cfg, rows),
        calibration_prior=cfg.calibration_prior,
        scored=scored,
        frame_hop=data.get("frame_hop"),
    )
    files = write_outputs(
        cfg.output_dir,
        split,
        rows,
        metrics,
        scored.frame_scores,
        plots=cfg.plots,
        system=loaded.describe(),
        title=f"{data.get('corpus')} {split}",
    )
    return {"output_dir": str(cfg.output_dir), "files": files, "metrics": metrics}
