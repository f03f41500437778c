"""compare --by-seed: runs grouped by configuration (not directory name), statistics over seeds."""

import csv
import json
from pathlib import Path
from statistics import mean, stdev

import numpy as np
import pytest

from spoof_lightning import compare
from spoof_lightning.metrics.report import evaluate_rows
from spoof_lightning.metrics.scores import read_asv_scores_2019, write_cm_scores_2019

CHOICES = {"data": "demo", "frontend": "lfcc", "model": "cnn_gru", "loss": "weighted_ce"}


def _run(root: Path, name: str, overrides: list[str], seed: int, status: str = "completed"):
    """A run directory as train.py leaves it: summary.json and the 2019 CM test scores."""
    rng = np.random.default_rng(seed)
    rows = [
        {"utt_id": f"u{i}", "label": int(i < 20), "attack": "-" if i < 20 else f"A{7 + i % 2:02d}",
         "score": float(rng.normal(1.5 if i < 20 else 0, 1))}
        for i in range(60)
    ]  # fmt: skip
    run_dir = root / name
    score_file = write_cm_scores_2019(run_dir / "scores" / "test_scores.txt", rows)
    report = evaluate_rows(rows)
    summary = {
        "status": status,
        "choices": CHOICES | {"hydra/launcher": "basic", "optimizer": "adam"},
        "overrides": overrides,
        "test_eer_percent": 100 * report["eer"],
        "test_eer_percent_by_attack": {a: 100 * e["eer"] for a, e in report["attacks"].items()},
        "score_file": str(score_file),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return summary


def _asv_file(path: Path) -> Path:
    rng = np.random.default_rng(9)
    lines = [f"bonafide target {rng.normal(3)!r}" for _ in range(20)]
    lines += [f"bonafide nontarget {rng.normal(-3)!r}" for _ in range(20)]
    lines += [f"A{7 + i % 2:02d} spoof {rng.normal(1)!r}" for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_statistics_per_configuration_and_attack(tmp_path: Path):
    runs = {}
    for version, seed in enumerate((1, 2, 3)):  # versioned directories, not named by seed
        overrides = ["data.batch_size=16", f"seed={seed}", f"run_name=x_v{version}", "resume=true"]
        runs[seed] = _run(tmp_path / "runs", f"x_v{version}", overrides, seed)
    _run(tmp_path / "runs", "lr", ["data.batch_size=16", "optimizer.lr=0.1", "seed=1"], 4)
    _run(tmp_path / "runs", "dead", ["data.batch_size=16", "seed=4"], 5, status="failed")
    asv = _asv_file(tmp_path / "asv.txt")
    out = tmp_path / "seeds.csv"
    args = [str(tmp_path / "runs"), "--by-seed", "--asv-scores", str(asv), "--csv", str(out)]
    assert compare.main([*args, "--md", str(tmp_path / "seeds.md")]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    base = "data=demo frontend=lfcc model=cnn_gru loss=weighted_ce data.batch_size=16"
    assert {r["configuration"] for r in rows} == {base, f"{base} optimizer.lr=0.1"}
    pooled = next(r for r in rows if r["configuration"] == base and r["attack"] == "pooled")
    eers = [runs[s]["test_eer_percent"] for s in (1, 2, 3)]
    assert (pooled["metric"], pooled["n"], pooled["seeds"]) == ("EER %", "3", "1 2 3")
    assert float(pooled["mean"]) == pytest.approx(mean(eers))
    assert float(pooled["std"]) == pytest.approx(stdev(eers))
    assert (float(pooled["min"]), float(pooled["max"])) == (min(eers), max(eers))
    a08 = next(r for r in rows if r["configuration"] == base and r["attack"] == "A08")
    assert float(a08["mean"]) == pytest.approx(
        mean(runs[s]["test_eer_percent_by_attack"]["A08"] for s in (1, 2, 3))
    )
    # min t-DCF from each run's score file and the ASV scores
    asv_scores = read_asv_scores_2019(asv)
    tdcfs = []
    for seed in (1, 2, 3):
        scores = tmp_path / "runs" / f"x_v{seed - 1}" / "scores" / "test_scores.txt"
        tdcfs.append(compare.seed_results(scores.parents[1], asv_scores)["min_tdcf"]["pooled"])
    tdcf = next(r for r in rows if r["configuration"] == base and r["metric"] == "min t-DCF")
    assert tdcf["attack"] == "pooled" and float(tdcf["mean"]) == pytest.approx(mean(tdcfs))
    assert len(set(tdcfs)) == 3
    single = [r for r in rows if r["configuration"] != base]
    assert all(r["n"] == "1" and r["std"] == "" for r in single)  # one seed: no spread
    markdown = (tmp_path / "seeds.md").read_text()
    assert f"| {base} | pooled | EER % | 3 | " in markdown and " ± " in markdown


def test_without_asv_scores_there_is_no_tdcf(tmp_path: Path):
    for seed in (1, 2):
        _run(tmp_path, f"r{seed}", [f"seed={seed}"], seed)
    rows = compare.by_seed(compare.find_runs([tmp_path]))
    assert {r["metric"] for r in rows} == {"EER %"} and rows[0]["n"] == 2
