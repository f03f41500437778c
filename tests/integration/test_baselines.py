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
        "data.train_crop=48000",  # EM to convergence overfits the demo's 1 s crops
        "data.eval_crop=null",
        "model.n_components=8",
        "model.max_frames=20000",
        "model.init_frames=2000",
        "trainer.max_epochs=3",  # the fit takes one epoch and stops training
        f"hydra.run.dir={run_dir}",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] > 0
    assert Path(summary["best_checkpoint"]).is_file()
    assert summary["best_val_eer_percent"] < 30  # the demo's spoofs are easy for a GMM
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert summary["epochs"] == 1
    for name in ("bonafide", "spoof"):
        loglik = [float(r[f"train/em/loglik/{name}"]) for r in rows if r[f"train/em/loglik/{name}"]]
        iterations = [r[f"train/em/iterations/{name}"] for r in rows]
        assert [float(n) for n in iterations if n] == [len(loglik)]
        assert len(loglik) > 2 and loglik == sorted(loglik), loglik  # EM never goes down

    eval_dir = tmp_path / "eval"
    run_cli("eval.py", f"ckpt={summary['best_checkpoint']}", f"output_dir={eval_dir}")
    metrics = json.loads((eval_dir / "test_metrics.json").read_text())
    assert metrics["eer_percent"] == pytest.approx(summary["test_eer_percent"], abs=1e-9)
    assert (eval_dir / "test_det.png").is_file()
