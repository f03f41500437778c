"""bench/real_speech.py: time limits, unseen attacks and the mean ± std table."""

import json
from pathlib import Path

from bench import real_speech


def test_max_time_is_lightning_duration() -> None:
    assert real_speech.max_time(30) == "00:00:30:00"
    assert real_speech.max_time(120) == "00:02:00:00"
    assert real_speech.max_time(1501) == "01:01:01:00"


def test_unseen_attacks_are_those_only_in_eval(tmp_path: Path) -> None:
    protocols = tmp_path / "LA" / "ASVspoof2019_LA_cm_protocols"
    protocols.mkdir(parents=True)
    rows = {"train.trn": ["A01", "-"], "dev.trl": ["A02"], "eval.trl": ["A01", "A03", "A04", "-"]}
    for split, attacks in rows.items():
        lines = [
            f"S{i} u{split}{i} - {a} {'bonafide' if a == '-' else 'spoof'}"
            for i, a in enumerate(attacks)
        ]
        (protocols / f"ASVspoof2019.LA.cm.{split}.txt").write_text("\n".join(lines) + "\n")
    assert real_speech.unseen_attacks(tmp_path) == ["A03", "A04"]


def run(dev: float, test: float, a03: float) -> dict:
    return {
        "status": "completed",
        "best_val_eer_percent": dev,
        "test_eer_percent": test,
        "test_eer_percent_by_attack": {"A01": 1.0, "A03": a03},
        "time_s": 60.0,
        "epochs": 3,
    }


def test_aggregate_and_table_mark_the_best_dev_recipe() -> None:
    runs = {
        "lfcc_gmm": [run(10.0, 20.0, 30.0), run(14.0, 24.0, 34.0), {"status": "failed"}],
        "real_speech_cpu": [run(5.0, 8.0, 9.0)],
    }
    report = real_speech.aggregate(runs, ["A03"])
    gmm = report["recipes"]["lfcc_gmm"]
    assert gmm["seeds"] == 2  # the failed run is listed but not averaged
    assert gmm["eval_eer_percent"]["mean"] == 22.0
    assert abs(gmm["eval_eer_percent"]["std"] - 2.8284271) < 1e-6  # sample std
    table = real_speech.markdown(report).splitlines()
    assert table[0] == "| recipe | seeds | dev EER % | eval EER % | A03 (unseen) | time / run |"
    assert table[2].startswith("| lfcc_gmm | 2 | 12.00 ± 2.83 | 22.00 ± 2.83 | 32.00 ± 2.83 |")
    assert table[3].startswith("| **real_speech_cpu** | 1 | 5.00 ± 0.00 |")


def test_the_report_holds_every_recorded_run(tmp_path: Path) -> None:
    """A call that trains one recipe still reports the runs of earlier calls."""
    for recipe, seed in [("lfcc_gmm", 0), ("lfcc_gmm", 1), ("real_speech_cpu", 0)]:
        (tmp_path / recipe / f"seed{seed}").mkdir(parents=True)
        summary = run(10.0 + seed, 20.0, 30.0)
        (tmp_path / recipe / f"seed{seed}" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "lfcc_lcnn" / "seed0").mkdir(parents=True)  # died before its summary
    (tmp_path / "lfcc_lcnn" / "seed0" / "harness.json").write_text('{"returncode": 1}')
    (tmp_path / "not_a_recipe" / "seed0").mkdir(parents=True)
    runs = real_speech.recorded_runs(tmp_path)
    assert sorted(runs) == ["lfcc_gmm", "lfcc_lcnn", "real_speech_cpu"]
    assert [r["best_val_eer_percent"] for r in runs["lfcc_gmm"]] == [10.0, 11.0]
    assert runs["lfcc_lcnn"] == [{"status": "failed", "returncode": 1}]
