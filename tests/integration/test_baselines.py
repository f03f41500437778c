"""The GMM baselines end to end: train.py fits them by EM, eval.py scores the checkpoint."""

import csv
import json
from pathlib import Path

import pytest

from tests.integration.cli import FAST, run_cli

pytestmark = pytest.mark.slow


def test_lfcc_gmm_trains_by_em_and_eval_reproduces_its_scores(demo_root: Path, tmp_path: Path):
    run_dir = tmp_path / "gmm"
    run_cli(
        "train.py",
        "experiment=lfcc_gmm",
        "data=demo",
        f"data.root={demo_root}",
        *FAST,
        "data.eval_crop=null",
        "model.n_components=8",
        "model.init_frames=2000",
        "trainer.max_epochs=4",  # initialisation + 3 EM iterations
        f"hydra.run.dir={run_dir}",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] > 0
    assert Path(summary["best_checkpoint"]).is_file()
    assert summary["best_val_eer_percent"] < 30  # the demo's spoofs are easy for a GMM
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for name in ("bonafide", "spoof"):
        loglik = [float(r[f"train/loglik/{name}"]) for r in rows if r[f"train/loglik/{name}"]]
        assert len(loglik) == 3 and loglik == sorted(loglik), loglik  # EM never goes down

    eval_dir = tmp_path / "eval"
    run_cli("eval.py", f"ckpt={summary['best_checkpoint']}", f"output_dir={eval_dir}")
    metrics = json.loads((eval_dir / "test_metrics.json").read_text())
    assert metrics["eer_percent"] == pytest.approx(summary["test_eer_percent"], abs=1e-9)
    assert (eval_dir / "test_det.png").is_file()
