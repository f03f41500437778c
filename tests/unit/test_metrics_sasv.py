"""ASVspoof 5 SASV files (track-2 trial lists, the package's score files) and the report."""

from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.asvspoof5 import sasv_metrics
from spoof_lightning.metrics.sasv import (
    SUM_FUSION,
    format_sasv,
    read_asv5_scores,
    read_asv5_trials,
    sasv_report,
    sasv_rows,
)
from spoof_lightning.metrics.scores import ScoreFileError
from tests.corpora import asv5_trials, write_asv5_scores, write_asv5_trials


def _cm_rows(n_bona: int = 30, n_spoof: int = 40, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_bona + n_spoof):
        bona = i < n_bona
        attack = "-" if bona else f"A{17 + i % 3}"
        rows.append({
            "utt_id": f"E_{i:010d}", "label": int(bona), "attack": attack,
            "codec": ["-", "C01"][i % 2], "score": float(rng.normal(2 if bona else -1, 1.5)),
        })  # fmt: skip
    return rows


def _asv_scores(trials: list[dict], seed: int = 1) -> list[float]:
    rng = np.random.default_rng(seed)
    means = {"target": 3.0, "nontarget": -2.0, "spoof": 1.5}
    return [float(rng.normal(means[t["key"]], 1.2)) for t in trials]


def test_trial_and_score_files_round_trip(tmp_path: Path):
    cm = _cm_rows()
    trials = asv5_trials(cm)
    path = write_asv5_trials(tmp_path / "ASVspoof5.eval.track_2.trial.tsv", trials)
    read = read_asv5_trials(path)
    assert [(t["speaker"], t["utt_id"], t["key"]) for t in read] == [
        (t["speaker"], t["utt_id"], t["key"]) for t in trials
    ]
    assert {t["attack"] for t in read if t["key"] != "spoof"} == {"-"}
    asv = _asv_scores(trials)
    scores = read_asv5_scores(write_asv5_scores(tmp_path / "asv.tsv", trials, asv))
    assert [scores[(t["speaker"], t["utt_id"])] for t in trials] == [(a, None) for a in asv]
    fused = read_asv5_scores(write_asv5_scores(tmp_path / "f.tsv", trials, asv, sasv=True))
    assert fused[(trials[0]["speaker"], trials[0]["utt_id"])] == (asv[0], 2 * asv[0])
    plain = tmp_path / "plain.txt"  # enrolled_speaker utt score
    lines = [f"{t['speaker']} {t['utt_id']} {a!r}\n" for t, a in zip(trials, asv, strict=True)]
    plain.write_text("".join(lines))
    assert read_asv5_scores(plain) == scores


def test_bad_files_name_the_line(tmp_path: Path):
    trials = tmp_path / "trials.tsv"
    trials.write_text("E_1 E_2 F A11 spoof\nE_1 E_3 F - maybe\n")
    with pytest.raises(ScoreFileError, match=r"trials\.tsv:2: ASV key 'maybe'"):
        read_asv5_trials(trials)
    trials.write_text("E_1 E_2 F spoof\n")
    with pytest.raises(ScoreFileError, match=r"trials\.tsv:1: expected 5 fields"):
        read_asv5_trials(trials)
    scores = tmp_path / "asv.tsv"
    scores.write_text("spk\tfilename\tasv-score\nE_1\tE_2\tnan\n")
    with pytest.raises(ScoreFileError, match=r"asv\.tsv:2: score 'nan' is not finite"):
        read_asv5_scores(scores)
    scores.write_text("speaker\tfile\tasv-score\nE_1\tE_2\t1.0\n")
    with pytest.raises(ScoreFileError, match=r"asv\.tsv:1: no column spk or tar_spk_anon"):
        read_asv5_scores(scores)


def test_report_is_sasv_metrics_on_each_subset():
    cm = _cm_rows()
    trials = asv5_trials(cm)
    asv = _asv_scores(trials)
    scores = {(t["speaker"], t["utt_id"]): (a, None) for t, a in zip(trials, asv, strict=True)}
    rows, fusion = sasv_rows(trials, scores, cm)
    assert fusion == SUM_FUSION
    cm_by_utt = {r["utt_id"]: r["score"] for r in cm}
    assert all(r["sasv"] == r["asv"] + cm_by_utt[r["utt_id"]] for r in rows)
    report = sasv_report(rows, ["codec"])

    def expected(selected: list[dict]) -> dict:
        arrays = [
            [r[system] for r in selected if r["key"] == key]
            for system in ("asv", "cm", "sasv")
            for key in ("target", "nontarget", "spoof")
        ]
        return sasv_metrics(*arrays)

    assert {k: report[k] for k in ("min_a_dcf", "min_tdcf", "t_eer")} == expected(rows)
    assert (report["n_target"], report["n_nontarget"], report["n_spoof"]) == (30, 30, 40)
    bona = [r for r in rows if r["key"] != "spoof"]
    for attack in ("A17", "A18", "A19"):
        spoof = [r for r in rows if r["attack"] == attack]
        entry = report["attacks"][attack]
        assert {k: entry[k] for k in ("min_a_dcf", "t_eer")} == {
            k: expected(bona + spoof)[k] for k in ("min_a_dcf", "t_eer")
        }
    coded = [r for r in rows if r["codec"] == "C01"]
    assert report["conditions"]["codec"]["C01"]["t_eer"] == expected(coded)["t_eer"]
    text = format_sasv(report)
    assert "attack A17" in text and "codec C01" in text and "t-EER %" in text


def test_rows_need_every_trial_scored():
    cm = _cm_rows(4, 4)
    trials = asv5_trials(cm)
    scores = {(t["speaker"], t["utt_id"]): (1.0, 3.0) for t in trials}
    rows, fusion = sasv_rows(trials, scores, cm)
    assert fusion != SUM_FUSION and {r["sasv"] for r in rows} == {3.0}
    with pytest.raises(ValueError, match=r"1 ASV trials have no entry in the asv_scores"):
        sasv_rows(trials, dict(list(scores.items())[1:]), cm)
    with pytest.raises(ValueError, match=r"no entry in the CM scores \(the scored split\)"):
        sasv_rows(trials, scores, cm[1:])
    # a condition without non-target trials has no SASV metrics, with the reason
    only_targets = [r | {"codec": "C09"} if r["key"] == "target" else r for r in rows]
    entry = sasv_report(only_targets, ["codec"])["conditions"]["codec"]["C09"]
    assert entry["t_eer"] is None and "non-target" in entry["error"]
