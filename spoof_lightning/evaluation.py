"""What eval.py runs: score a corpus split with a trained checkpoint and write every result.

Outputs, under ``output_dir``, named by split (``test`` or ``val``):

* ``<split>_scores.txt`` — ASVspoof 2019 CM score file ``utt source key score`` (labelled
  sets only; what the official 2019 scorer reads);
* ``<split>_submission.txt`` — ASVspoof 2021 submission ``utt score``;
* ``<split>_scores.csv`` — every metadata column of the protocol joined by utterance id
  (never by order), plus ``decision`` (``bonafide``/``spoof``, when a threshold is
  known), ``llr`` (with ``calibrate=true``) and ``score``;
* ``<split>_metrics.json`` — pooled EER (+ threshold, bootstrap 95% CI), per attack, per
  condition column, the ASVspoof 5 metrics (``metrics=asvspoof5``, the default for
  ``data=asvspoof5``: minDCF, actDCF, Cllr; with ASV scores the SASV a-DCF, min t-DCF and
  t-EER), min t-DCF with an ASV score file, rates at the decision threshold, calibration
  and localisation results;
* ``<split>_det.png`` (probit DET) and ``<split>_score_hist.png`` (labelled sets only);
* ``<split>_frame_scores.npz`` — per-utterance frame scores, when the model has a frame head.

The files of a split are written together and atomically (:func:`write_outputs`): a kill or
a full disk leaves the earlier set whole. eval.py locks ``output_dir`` while it runs and
refuses one that holds the results of another checkpoint (:func:`claim_output_dir`).

Decisions: a trial is called bona fide when ``score > threshold``, as the official
``compute_eer`` rejects the trials scoring at or below its threshold (up to ties). The threshold is
``threshold=`` when given, else the dev-set EER threshold stored in the checkpoint (the
Detector's ``eer_threshold`` buffer, set at the validation of the checkpoint's weights).

Frame-level (HAD) localisation needs a model whose output has ``frame_logits`` ``[B, F, 2]``
on the data's ``frame_hop`` grid (the frames of the items' ``frame_labels``), e.g.
``model=frame_localizer``; with other models only the utterance-level EER is reported for HAD.
"""

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from spoof_lightning.atomic import atomic_files
from spoof_lightning.build import ConfigError, instantiate_data, min_input_samples
from spoof_lightning.checkpoint import (
    PARTS,
    Countermeasure,
    LoadedModel,
    check_request,
    load_countermeasure,
)
from spoof_lightning.config_checks import (
    check_crops,
    check_eval_config,
    data_problems,
    raise_problems,
)
from spoof_lightning.contracts import BONAFIDE, SPOOF, ModelOutput, scores_from_logits
from spoof_lightning.data.dataset import utterance_groups
from spoof_lightning.data.protocols import CORPUS_CONDITIONS
from spoof_lightning.metrics import localization
from spoof_lightning.metrics.bootstrap import eer_confidence_interval
from spoof_lightning.metrics.report import evaluate_rows
from spoof_lightning.metrics.report import format_report as format_metrics
from spoof_lightning.metrics.sasv import (
    format_sasv,
    read_asv5_scores,
    read_asv5_trials,
    sasv_report,
    sasv_rows,
)
from spoof_lightning.metrics.scores import (
    join_scores,
    read_asv_scores_2019,
    read_asv_trials_2021,
    write_cm_scores_2019,
    write_scores_2021,
    write_scores_csv,
)
from spoof_lightning.metrics.tdcf import AsvScores
from spoof_lightning.models.released_weights import requested_configs
from spoof_lightning.rundir import claim

log = logging.getLogger(__name__)

STAGE = {"test": "test", "val": "validate"}
# Protocol columns that are never conditions: identity, outcome, or per-file detail (the
# ASVspoof 5 codec_seed names the source utterance of a coded file).
NOT_CONDITIONS = frozenset(
    {"utt_id", "path", "label", "speaker", "attack", "score", "decision", "llr", "segments"}
    | {"codec_seed"}
)
MAX_CONDITION_VALUES = 64


# ------------------------------------------------------------------------ scoring


@dataclass
class UttScore:
    """The score of one utterance, and its frame scores / frame labels when available."""

    utt_id: str
    score: float
    frame_scores: np.ndarray | None = None
    frame_labels: np.ndarray | None = None


@dataclass
class SplitScores:
    """Scores of one pass over a split, unique by utterance id."""

    scores: dict[str, float] = field(default_factory=dict)
    frame_scores: dict[str, np.ndarray] = field(default_factory=dict)
    frame_labels: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, items: Iterable[UttScore]) -> None:
        for item in items:
            if item.utt_id in self.scores:  # a padded/wrapped loader repeats utterances
                continue
            self.scores[item.utt_id] = item.score
            if item.frame_scores is not None:
                self.frame_scores[item.utt_id] = item.frame_scores
            if item.frame_labels is not None:
                self.frame_labels[item.utt_id] = item.frame_labels


def frame_scores_of(output: ModelOutput) -> Tensor | None:
    """Per-frame bona fide scores ``[B, F]`` from ``output.frame_logits`` ``[B, F, 2]``, if any."""
    frame_logits = getattr(output, "frame_logits", None)
    if frame_logits is None:
        return None
    if frame_logits.ndim != 3 or frame_logits.shape[-1] != 2:
        raise ValueError(
            f"frame_logits must be [B, F, 2] (spoof, bona fide), got {list(frame_logits.shape)}"
        )
    return (frame_logits[..., BONAFIDE] - frame_logits[..., SPOOF]).float()


def _labelled_frames(labels: np.ndarray) -> int:
    """Frames up to the last labelled one (the rest is padding, -1)."""
    return int(np.flatnonzero(labels != -1).max(initial=-1)) + 1


def _aligned_labels(utt_id: str, n_frames: int, labels: Tensor) -> np.ndarray:
    """The first ``n_frames`` frame labels; the rest must be padding (-1)."""
    labels_np = labels.detach().cpu().numpy()
    if n_frames > labels_np.size or (labels_np[n_frames:] != -1).any():
        raise ValueError(
            f"{utt_id}: the model gives {n_frames} frame scores but the data has "
            f"{_labelled_frames(labels_np)} labelled frames; frame_logits must be on the "
            "data.frame_hop grid"
        )
    return labels_np[:n_frames]


def score_batch(net: Countermeasure, batch: Mapping[str, Any]) -> list[UttScore]:
    """Score a collated batch (see :func:`utterance_groups`), with frame scores if any.

    Frames of padding (label -1 after the last labelled frame: the crop's or the minimum
    length's padding) are left out of the frame scores: they are no part of the audio.
    """
    frame_labels = batch.get("frame_labels")
    results = []
    for indices, x in utterance_groups(batch):
        output = net(x)
        scores = scores_from_logits(output.logits).cpu().tolist()
        frames = frame_scores_of(output)
        for j, i in enumerate(indices):
            utt = batch["utt_id"][i]
            utt_frames = labels = None
            if frames is not None:
                utt_frames = frames[j].cpu().double().numpy()
                if frame_labels is not None:
                    labels = _aligned_labels(utt, utt_frames.size, frame_labels[i])
                    audio = _labelled_frames(labels)
                    utt_frames, labels = utt_frames[:audio], labels[:audio]
            results.append(UttScore(utt, scores[j], utt_frames, labels))
    return results


class ScoringModule(L.LightningModule):
    """Runs a :class:`Countermeasure` under ``Trainer.predict`` (device, precision, progress)."""

    def __init__(self, net: Countermeasure) -> None:
        super().__init__()
        self.net = net

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[UttScore]:
        return score_batch(self.net, batch)


def score_split(
    net: Countermeasure, datamodule: Any, split: str, trainer_options: Mapping[str, Any]
) -> SplitScores:
    """Score every utterance of ``split`` (test/val) of ``datamodule`` on one device."""
    datamodule.prepare_data()
    datamodule.setup(STAGE[split])
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    trainer = L.Trainer(
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        **trainer_options,
    )
    result = SplitScores()
    for batch_scores in trainer.predict(ScoringModule(net), dataloaders=loader) or []:
        result.add(batch_scores)
    return result


# ------------------------------------------------------------------------ rows


def join_rows(
    scores: Mapping[str, float], utterances: Sequence[Any], where: str, skip_unscored: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Protocol rows with ``score``, joined by utterance id; returns ``(rows, unscored ids)``.

    ``skip_unscored`` (``data.on_error=skip``, where unreadable files are left out) drops
    protocol entries without a score instead of failing; scores of utterances that are not
    in the protocol are always an error.
    """
    unscored: list[str] = []
    if skip_unscored:
        unscored = [u.utt_id for u in utterances if u.utt_id not in scores]
        utterances = [u for u in utterances if u.utt_id in scores]
        if unscored:
            log.warning("%s: %d utterances were not scored (unreadable)", where, len(unscored))
    try:
        return join_scores(scores, utterances), unscored
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def condition_columns(
    rows: Sequence[Mapping[str, Any]],
    requested: str | Sequence[str] | None,
    declared: Sequence[str] = (),
) -> list[str]:
    """Columns to break results down by: ``auto`` = metadata columns (e.g. the 2021
    ``codec``) with 2 to 64 distinct values, plus the corpus's ``declared`` conditions
    (e.g. the In-the-Wild speaker, see ``CORPUS_CONDITIONS``); or an explicit list,
    checked to exist."""
    if not rows or requested is None:
        return []
    shared = set.intersection(*(set(row) for row in rows))
    if requested == "auto":
        candidates = [c for c in rows[0] if c in shared and c not in NOT_CONDITIONS]
        found = [
            c for c in candidates if 2 <= len({str(row[c]) for row in rows}) <= MAX_CONDITION_VALUES
        ]
        return found + [c for c in declared if c in shared and c not in found]
    columns = [requested] if isinstance(requested, str) else list(requested)
    missing = [c for c in columns if c not in shared]
    if missing:
        raise ConfigError(
            f"conditions: columns {missing} are not in the protocol metadata "
            f"(available: {sorted(shared - NOT_CONDITIONS)})"
        )
    return columns


def add_decisions(rows: list[dict[str, Any]], threshold: float) -> None:
    """``decision`` = ``bonafide`` when ``score > threshold``, else ``spoof``."""
    for row in rows:
        row["decision"] = "bonafide" if row["score"] > threshold else "spoof"


def _labelled(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows if row["label"] in (0, 1)]


def _classes(rows: Sequence[Mapping[str, Any]], key: str = "score") -> tuple[np.ndarray, ...]:
    values = np.asarray([row[key] for row in rows], dtype=np.float64)
    labels = np.asarray([row["label"] for row in rows])
    return values[labels == 1], values[labels == 0]


# ------------------------------------------------------------------------ metrics


def split_metrics(
    rows: Sequence[Mapping[str, Any]],
    conditions: str | Sequence[str] | None = "auto",
    asv: AsvScores | Sequence[Mapping[str, Any]] | None = None,
    tdcf: str = "2019",
    threshold: float | None = None,
    metric_set: str = "eer",
    bootstrap: Mapping[str, Any] | None = None,
    declared: Sequence[str] = (),
) -> dict[str, Any]:
    """Counts, and for the labelled rows (both classes present) the ASVspoof report
    (:func:`metrics.report.evaluate_rows` with ``metric_set``, EERs as fractions) plus
    ``eer_percent``, the error rates at ``threshold`` and, with ``bootstrap``
    (``n_resamples``, ``seed``, ``level``), the EER's confidence interval ``eer_ci``."""
    labelled = _labelled(rows)
    metrics: dict[str, Any] = {"n_trials": len(rows), "n_unlabelled": len(rows) - len(labelled)}
    if threshold is not None:
        n_bona = sum(row["score"] > threshold for row in rows)
        metrics["decisions"] = {"bonafide": n_bona, "spoof": len(rows) - n_bona}
    bonafide, spoof = _classes(labelled)
    metrics |= {"n_bonafide": int(bonafide.size), "n_spoof": int(spoof.size)}
    if not (bonafide.size and spoof.size):
        return metrics
    columns = condition_columns(labelled, conditions, declared)
    metrics |= evaluate_rows(labelled, columns, asv, tdcf, metric_set)
    metrics["eer_percent"] = 100 * metrics["eer"]
    if bootstrap and bootstrap.get("n_resamples"):
        metrics["eer_ci"] = eer_confidence_interval(bonafide, spoof, **bootstrap)
    if threshold is not None:
        metrics["at_threshold"] = {
            "threshold": threshold,
            "bonafide_miss_rate": float(np.mean(bonafide <= threshold)),
            "spoof_accept_rate": float(np.mean(spoof > threshold)),
        }
    return metrics


def calibrate_rows(
    dev_rows: Sequence[Mapping[str, Any]], rows: list[dict[str, Any]], prior: float = 0.5
) -> dict[str, Any]:
    """Fit logistic calibration on labelled dev rows, add ``llr`` to ``rows``, and report
    Cllr, minCllr, actDCF and minDCF (ASVspoof 5 costs) where ``rows`` are labelled."""
    from spoof_lightning.metrics.calibration import (
        LogisticCalibration,
        act_dcf,
        cllr,
        min_cllr,
        min_dcf,
    )

    dev_bona, dev_spoof = _classes(_labelled(dev_rows))
    if not (dev_bona.size and dev_spoof.size):
        raise ValueError(
            f"calibrate=true needs bona fide and spoof trials in the dev split "
            f"(got {dev_bona.size} bona fide, {dev_spoof.size} spoof)"
        )
    calibration = LogisticCalibration.fit(dev_bona, dev_spoof, prior=prior)
    llrs = calibration([row["score"] for row in rows])
    for row, llr in zip(rows, llrs, strict=True):
        row["llr"] = float(llr)
    result: dict[str, Any] = {
        "scale": calibration.scale,
        "offset": calibration.offset,
        "prior": calibration.prior,
        "n_dev_bonafide": int(dev_bona.size),
        "n_dev_spoof": int(dev_spoof.size),
    }
    bona_llr, spoof_llr = _classes(_labelled(rows), "llr")
    if bona_llr.size and spoof_llr.size:
        bona, spoof = _classes(_labelled(rows))
        result["cllr"] = cllr(bona_llr, spoof_llr)
        result["min_cllr"] = min_cllr(bona, spoof)
        result["act_dcf"], result["act_dcf_threshold"] = act_dcf(bona_llr, spoof_llr)
        result["min_dcf"], result["min_dcf_threshold"] = min_dcf(bona_llr, spoof_llr)
    return result


def _segments(row: Mapping[str, Any]) -> list[tuple[float, float, int]]:
    from spoof_lightning.data.protocols import parse_segments

    return [(start, end, int(genuine)) for start, end, genuine in parse_segments(row["segments"])]


def localization_metrics(
    scored: SplitScores, rows: Sequence[Mapping[str, Any]], frame_hop: float | None
) -> dict[str, Any] | None:
    """Frame-level and range-based EER (HAD) when the model gave frame scores.

    None when neither the data (segments, frame labels) nor the model (frame head) has
    anything frame-level; ``{"available": False, "reason": ...}`` when only one side has.
    """
    has_segments = bool(rows) and all("segments" in row for row in rows)
    if not scored.frame_scores:
        if not (has_segments or frame_hop):
            return None
        return {"available": False, "reason": "the model has no frame-level head"}
    if not frame_hop:
        return {"available": False, "reason": "data.frame_hop is null: no frame grid"}
    ids = [row["utt_id"] for row in rows if row["utt_id"] in scored.frame_scores]
    frame_scores = [scored.frame_scores[utt] for utt in ids]
    result: dict[str, Any] = {"available": True, "frame_hop": frame_hop, "n_utterances": len(ids)}
    if all(utt in scored.frame_labels for utt in ids):
        labels = [scored.frame_labels[utt] for utt in ids]
        result["frame_eer"], result["frame_eer_threshold"] = localization.frame_eer(
            frame_scores, labels
        )
    if has_segments:
        by_id = {row["utt_id"]: row for row in rows}
        segments = [_segments(by_id[utt]) for utt in ids]
        result["range_eer"], result["range_eer_threshold"] = localization.range_eer(
            frame_scores, segments, frame_hop
        )
    return result


# ------------------------------------------------------------------------ files


def _writable_ids(rows: Sequence[Mapping[str, Any]], path: Path) -> bool:
    spaced = [row["utt_id"] for row in rows if len(str(row["utt_id"]).split()) != 1]
    if spaced:
        log.warning(
            "not writing %s: %d utterance ids contain whitespace (e.g. %r); see the CSV",
            path,
            len(spaced),
            spaced[0],
        )
    return not spaced


def write_outputs(
    output_dir: str | Path,
    split: str,
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    frame_scores: Mapping[str, np.ndarray] | None = None,
    plots: bool = True,
    system: str = "scores",
    title: str | None = None,
) -> dict[str, Path]:
    """Write every output file of a scored split (see the module docstring); returns
    ``{"scores" | "submission" | "csv" | "metrics" | "det" | "hist" | "frames": path}``.

    The files replace those of an earlier pass together (:func:`atomic_files`): a kill or a
    full disk while they are written leaves the earlier set whole, never a mix.
    """
    out = Path(output_dir)
    files: dict[str, Path] = {}
    labelled = _labelled(rows)
    bonafide, spoof = _classes(labelled)
    with atomic_files() as staged:

        def temp(kind: str, name: str) -> Path:
            files[kind] = out / f"{split}_{name}"
            return staged.temp(files[kind])

        if rows and len(labelled) == len(rows) and _writable_ids(rows, out / f"{split}_scores.txt"):
            write_cm_scores_2019(temp("scores", "scores.txt"), rows)
        if _writable_ids(rows, out / f"{split}_submission.txt"):
            scores = {row["utt_id"]: row["score"] for row in rows}
            write_scores_2021(temp("submission", "submission.txt"), scores)
        write_scores_csv(temp("csv", "scores.csv"), rows)
        temp("metrics", "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if plots and bonafide.size and spoof.size:
            from spoof_lightning.metrics.plots import plot_det, plot_score_histogram

            plot_det({system: (bonafide, spoof)}, temp("det", "det.png"), title=title)
            threshold = (metrics.get("at_threshold") or {}).get(
                "threshold", metrics["eer_threshold"]
            )
            title = f"{system}, {title}" if title else system
            hist = temp("hist", "score_hist.png")
            plot_score_histogram(bonafide, spoof, hist, threshold=threshold, title=title)
        if frame_scores:
            np.savez_compressed(  # utterance i: scores[offsets[i]:offsets[i + 1]]
                temp("frames", "frame_scores.npz"),
                utt_ids=np.asarray(list(frame_scores), dtype=str),
                offsets=np.cumsum([0, *(v.size for v in frame_scores.values())]),
                scores=np.concatenate(list(frame_scores.values())),
            )
    return files


def claim_output_dir(output_dir: Path, split: str, checkpoint: Path) -> None:
    """Lock ``output_dir`` for this evaluation and refuse to replace the ``split`` results of
    another checkpoint (or of a training run's own test pass) that are already there.

    Results of the same checkpoint are replaced as a set by :func:`write_outputs`. The lock
    is on the directory itself: it holds results only.
    """
    claim(output_dir, owner_file=None)
    metrics = output_dir / f"{split}_metrics.json"
    if not metrics.is_file():
        return
    try:
        earlier = json.loads(metrics.read_text()).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if earlier is None or Path(earlier).resolve() != checkpoint.resolve():
        raise ConfigError(
            f"output_dir={output_dir} already holds {split} results of "
            f"{earlier or 'another run'} ({metrics.name}, ...); eval.py never writes over "
            "the results of another checkpoint: choose another output_dir (by default every "
            "evaluation gets a new one)"
        )


# ------------------------------------------------------------------------ eval.py


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


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
    if override is not None:
        value = float(override)
        if not math.isfinite(value):
            raise ConfigError(f"threshold={override} is not a finite number")
        return value, "threshold="
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


def sasv_metrics_of(
    cfg: DictConfig, asv5: tuple[list, dict], rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """SASV a-DCF, min t-DCF and t-EER, pooled, per attack and per condition."""
    try:
        joined, fusion = sasv_rows(*asv5, rows)
    except ValueError as err:
        raise ConfigError(f"asv_scores={cfg.asv_scores}, asv_keys={cfg.asv_keys}: {err}") from err
    columns = condition_columns(_labelled(rows), cfg.conditions)
    return sasv_report(joined, [c for c in columns if c in joined[0]]) | {"fusion": fusion}


def _scored_rows(
    loaded: LoadedModel, datamodule: Any, split: str, data: Mapping[str, Any], cfg: DictConfig
) -> tuple[SplitScores, list[dict[str, Any]], list[str]]:
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


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.split`` with ``cfg.ckpt`` and write the outputs to ``cfg.output_dir``."""
    check_eval_config(cfg)  # before the checkpoint is loaded or any data is read
    split, tdcf = str(cfg.split), str(cfg.tdcf)
    bootstrap = _plain(cfg.get("bootstrap")) or {}
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
            check_request(loaded, part, _plain(cfg[part]), choices.get(part))
    claim_output_dir(Path(cfg.output_dir), split, loaded.path)
    threshold, threshold_source = decision_threshold(loaded, cfg.threshold)
    data = data_config(cfg, loaded)
    raise_problems(data_problems(data), "data")
    min_samples = min_input_samples(loaded.net.frontend, loaded.net.model)
    check_crops(data, min_samples, loaded.describe(), ["eval_crop"])
    asv, asv5 = load_asv(cfg, data), load_sasv(cfg, data)
    metric_set = metric_set_of(cfg, data)
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
    declared = CORPUS_CONDITIONS.get(str(data.get("corpus")), ())
    metrics |= split_metrics(
        rows, cfg.conditions, asv, tdcf, threshold, metric_set, bootstrap, declared
    )
    if asv5 is not None:
        metrics["sasv"] = sasv_metrics_of(cfg, asv5, rows)
    if cfg.calibrate:
        dev_rows = rows
        if split != "val":
            try:
                _, dev_rows, _ = _scored_rows(loaded, datamodule, "val", data, cfg)
            except (FileNotFoundError, ValueError) as err:
                raise ConfigError(
                    f"calibrate=true fits on the val (dev) split, which cannot be scored: {err}"
                ) from err
        else:
            log.warning("calibrate=true with split=val: calibrating on the evaluated split")
        metrics["calibration"] = calibrate_rows(dev_rows, rows, cfg.calibration_prior)
    located = localization_metrics(scored, rows, data.get("frame_hop"))
    if located is not None:
        metrics["localization"] = located
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


def format_report(report: Mapping[str, Any]) -> str:
    """The summary eval.py prints: what was scored, where the files are, the metrics table."""
    metrics = report["metrics"]
    lines = [
        f"checkpoint {metrics['checkpoint']} ({metrics['model']})",
        f"data       {metrics['corpus']} {metrics['split']} split, {metrics['n_trials']} "
        f"utterances under {metrics['root']}",
        f"outputs    {report['output_dir']}: "
        + " ".join(path.name for path in report["files"].values()),
    ]
    if "unscored" in metrics:
        lines.append(f"unscored   {metrics['unscored']['count']} unreadable files left out")
    threshold = metrics["threshold"]
    if threshold["value"] is None:
        lines.append(f"decisions  {threshold['source']}")
    else:
        counts = metrics["decisions"]
        lines.append(
            f"decisions  score > {threshold['value']:.6g} ({threshold['source']}): "
            f"{counts['bonafide']} bona fide, {counts['spoof']} spoof"
        )
    lines.append("")
    if "eer" in metrics:
        lines.append(format_metrics(metrics))
        at = metrics.get("at_threshold")
        if at:
            lines.append(
                f"at the decision threshold: bona fide missed {100 * at['bonafide_miss_rate']:.3f}"
                f" %, spoofs accepted {100 * at['spoof_accept_rate']:.3f} %"
            )
    else:
        lines.append(
            f"no metrics: {metrics['n_bonafide']} bona fide and {metrics['n_spoof']} spoof "
            f"labelled trials ({metrics['n_unlabelled']} unlabelled)"
        )
    if "sasv" in metrics:
        lines += ["", format_sasv(metrics["sasv"])]
    calibration = metrics.get("calibration")
    if calibration:
        scale, offset = calibration["scale"], calibration["offset"]
        line = f"calibrated on dev: llr = {scale:.4g} * score + {offset:.4g}"
        if "cllr" in calibration:
            line += (
                f"; Cllr {calibration['cllr']:.4f} bits (min {calibration['min_cllr']:.4f}), "
                f"actDCF {calibration['act_dcf']:.4f}, minDCF {calibration['min_dcf']:.4f}"
            )
        lines.append(line)
    located = metrics.get("localization")
    if located:
        if not located["available"]:
            lines.append(f"localization: not available ({located['reason']})")
        else:
            parts = [
                f"{name} EER {100 * located[key]:.3f} %"
                for name, key in (("frame", "frame_eer"), ("range", "range_eer"))
                if key in located
            ]
            lines.append("localization: " + ", ".join(parts))
    return "\n".join(lines)
