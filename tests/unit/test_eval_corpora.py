"""eval.py on ASVspoof 5 (Track 1 metrics, SASV) and In-the-Wild; metric sets, EER CI."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from spoof_lightning.build import ConfigError
from spoof_lightning.cli import user_errors
from spoof_lightning.config_checks import EVAL_RULES, rule_problems
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.protocols import SplitUnavailableError, load_split
from spoof_lightning.evaluation import evaluate, metric_set_of
from spoof_lightning.metrics.asvspoof5 import cm_metrics
from spoof_lightning.metrics.bootstrap import eer_confidence_interval
from spoof_lightning.metrics.report import format_report as format_metrics
from spoof_lightning.metrics.scores import read_scores_csv
from spoof_lightning.metrics.summary import split_metrics
from spoof_lightning.outputs import format_report
from tests.corpora import (
    ITW_SPEAKERS,
    asv5_trials,
    make_asvspoof5,
    make_in_the_wild,
    write_asv5_scores,
    write_asv5_trials,
)
from tests.unit.test_evaluation import _energy_checkpoint, eval_config

LOCAL = ["data.num_workers=0", "data.persistent_workers=false", "data.pin_memory=false"]
LOCAL += ["accelerator=cpu", "progress_bar=false", "plots=false", "data.batch_size=4"]


def _rows(n_bona: int = 40, n_spoof: int = 80, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "utt_id": f"u{i}",
            "label": int(i < n_bona),
            "attack": "-" if i < n_bona else f"A{i % 3}",
            "codec": ["-", "C01", "C02"][i % 3],
            "score": float(rng.normal(1.5 if i < n_bona else 0, 1)),
        }
        for i in range(n_bona + n_spoof)
    ]


def _classes(rows: list[dict], where=lambda r: True) -> tuple[list[float], list[float]]:
    bona = [r["score"] for r in rows if r["label"] == 1 and where(r)]
    return bona, [r["score"] for r in rows if r["label"] == 0 and where(r)]


def test_asvspoof5_metric_set_everywhere_in_the_report():
    rows = _rows()
    metrics = split_metrics(rows, "auto", metric_set="asvspoof5")
    assert {k: metrics[k] for k in cm_metrics(*_classes(rows))} == cm_metrics(*_classes(rows))
    bona, _ = _classes(rows)
    spoof_a1 = [r["score"] for r in rows if r["attack"] == "A1"]
    assert metrics["attacks"]["A1"]["min_dcf"] == cm_metrics(bona, spoof_a1)["min_dcf"]
    c01 = metrics["conditions"]["codec"]["C01"]
    assert c01["cllr"] == cm_metrics(*_classes(rows, lambda r: r["codec"] == "C01"))["cllr"]
    text = format_metrics(metrics)
    assert "minDCF" in text and "actDCF" in text and "Cllr" in text
    assert "min_dcf" not in split_metrics(rows, "auto")  # the default set: EER only


def test_bootstrap_interval_in_metrics_and_table():
    rows = _rows()
    options = {"n_resamples": 200, "seed": 3, "level": 0.9}
    metrics = split_metrics(rows, bootstrap=options)
    assert metrics["eer_ci"] == eer_confidence_interval(*_classes(rows), **options)
    assert metrics["eer_ci"]["low"] <= metrics["eer"] <= metrics["eer_ci"]["high"]
    low, high = 100 * metrics["eer_ci"]["low"], 100 * metrics["eer_ci"]["high"]
    assert f"[90% CI {low:.3f}-{high:.3f}]" in format_metrics(metrics)
    assert "eer_ci" not in split_metrics(rows, bootstrap={"n_resamples": 0})


def test_metric_set_switch():
    def choose(metrics: str, corpus: str) -> str:
        return metric_set_of(OmegaConf.create({"metrics": metrics}), {"corpus": corpus})

    assert choose("auto", "asvspoof5") == "asvspoof5"
    assert choose("auto", "asvspoof2021_df") == "eer"
    assert choose("asvspoof5", "in_the_wild") == "asvspoof5"
    (problem,) = rule_problems({"metrics": "mindcf"}, EVAL_RULES, "")  # eval.py exits 2 on it
    assert problem == "metrics must be one of ('auto', 'eer', 'asvspoof5'), got 'mindcf'"


def test_asvspoof5_eval_end_to_end_with_sasv(tmp_path: Path):
    root = make_asvspoof5(tmp_path / "asv5", {"eval": (8, 16)})
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt")
    common = [f"ckpt={ckpt}", f"output_dir={tmp_path / 'out'}", "data=asvspoof5"]
    common += [f"data.root={root}", "bootstrap.n_resamples=100", *LOCAL]
    utterances = load_split("asvspoof5", root, "test")
    trials = asv5_trials([vars(u) for u in utterances])
    keys = write_asv5_trials(tmp_path / "ASVspoof5.eval.track_2.trial.tsv", trials)
    rng = np.random.default_rng(0)
    asv = [rng.normal({"target": 3, "nontarget": -2, "spoof": 1}[t["key"]]) for t in trials]
    scores = write_asv5_scores(tmp_path / "asv_scores.tsv", trials, asv)
    report = evaluate(eval_config(*common, f"asv_scores={scores}", f"asv_keys={keys}"))
    metrics = report["metrics"]
    cm_rows = read_scores_csv(report["files"]["csv"])
    bona = [r["score"] for r in cm_rows if r["label"] == 1]
    spoof = [r["score"] for r in cm_rows if r["label"] == 0]
    assert metrics["min_dcf"] == cm_metrics(bona, spoof)["min_dcf"]
    assert set(metrics["conditions"]) >= {"codec", "codec_q", "attack_tag"}
    assert "min_dcf" in metrics["conditions"]["codec"]["C05"]
    assert metrics["eer_ci"]["n_resamples"] == 100
    sasv = metrics["sasv"]
    assert (sasv["n_target"], sasv["n_nontarget"], sasv["n_spoof"]) == (8, 8, 16)
    assert sasv["fusion"] == "score sum: asv + cm" and sasv["t_eer"] is not None
    assert "codec" in sasv["conditions"]
    text = format_report(report)
    assert "minDCF" in text and "SASV (ASVspoof 5 Track 2)" in text
    with pytest.raises(ConfigError, match="asv_scores for ASVspoof 5 need asv_keys"):
        evaluate(eval_config(*common, f"asv_scores={scores}"))


def test_in_the_wild_is_scored_per_speaker_and_refused_for_training(tmp_path: Path):
    make_in_the_wild(tmp_path / "itw", per_speaker=(3, 2), loud_spoofs=True)
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt")
    common = [f"ckpt={ckpt}", f"output_dir={tmp_path / 'out'}", "data=in_the_wild"]
    report = evaluate(eval_config(*common, f"data.root={tmp_path / 'itw'}", *LOCAL))
    metrics = report["metrics"]
    assert (metrics["n_bonafide"], metrics["n_spoof"], metrics["eer"]) == (9, 6, 0.0)
    per_speaker = metrics["conditions"]["speaker"]
    assert set(per_speaker) == set(ITW_SPEAKERS)
    assert all(
        (e["n_bonafide"], e["n_spoof"], e["eer"]) == (3, 2, 0.0) for e in per_speaker.values()
    )
    assert "Barack Obama" in format_report(report)
    module = AntiSpoofDataModule(corpus="in_the_wild", root=str(tmp_path / "itw"))
    with pytest.raises(SplitUnavailableError, match="evaluation-only") as error:
        module.setup("fit")
    assert isinstance(error.value, user_errors())  # exit 2 with the message, no traceback
