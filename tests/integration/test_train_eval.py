"""End to end on a small demo slice: train -> test -> eval.py (resume: test_run_dirs.py)."""

import json
from pathlib import Path

import pytest
import torch

from tests.integration.cli import FinishedRun, run_cli

pytestmark = pytest.mark.slow


def _read_scores(path: Path) -> dict[str, tuple[str, str, float]]:
    rows = {}
    for line in path.read_text().splitlines():
        utt, attack, key, score = line.split()
        rows[utt] = (attack, key, float(score))
    return rows


def _protocol_ids(demo_root: Path, split: str) -> set[str]:
    protocol = demo_root / f"LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.txt"
    return {line.split()[1] for line in protocol.read_text().splitlines()}


def test_train_then_eval_writes_consistent_scores(
    finished_run: FinishedRun, demo_root: Path, tmp_path: Path
):
    run_dir, out = finished_run.run_dir, finished_run.stdout  # train.py, 2 epochs, then test
    assert "test EER" in out and str(run_dir) in out

    summary = json.loads((run_dir / "summary.json").read_text())
    best = Path(summary["best_checkpoint"])
    assert best == run_dir / "checkpoints" / "best.ckpt" and best.is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    train_scores = _read_scores(Path(summary["score_file"]))
    assert set(train_scores) == _protocol_ids(demo_root, "eval.trl")
    assert {key for _, key, _ in train_scores.values()} == {"bonafide", "spoof"}

    # The checkpoint is plain data: it loads without unpickling code.
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert checkpoint["spoof_lightning_config"]["data"]["root"] == str(demo_root)
    assert torch.isfinite(checkpoint["state_dict"]["eer_threshold"])

    eval_dir = tmp_path / "eval"
    logs = f"paths.log_dir={tmp_path / 'logs'}"
    out = run_cli("eval.py", f"ckpt={best}", f"output_dir={eval_dir}", logs, fresh=True).stdout
    assert "EER" in out
    eval_scores = _read_scores(eval_dir / "test_scores.txt")
    assert eval_scores.keys() == train_scores.keys()
    # Same checkpoint, same deterministic evaluation crops: the same scores.
    for utt, (attack, key, score) in eval_scores.items():
        assert train_scores[utt][:2] == (attack, key)
        assert score == pytest.approx(train_scores[utt][2], abs=1e-5)
    metrics = json.loads((eval_dir / "test_metrics.json").read_text())
    assert metrics["eer_percent"] == pytest.approx(summary["test_eer_percent"], abs=1e-9)
    assert metrics["n_bonafide"] + metrics["n_spoof"] == len(eval_scores)

    # data=<name> (here demo.yaml: eval_crop 64600, batch_size 32) keeps the checkpoint's crop
    # (16000), pad and sample rate: the same scores again (test_eval: a key set on the command
    # line wins).
    named = tmp_path / "named"
    data = ["data=demo", f"data.root={demo_root}", "data.demo=false", logs]
    out = run_cli("eval.py", f"ckpt={best}", *data, f"output_dir={named}").stdout
    assert "eval_crop=16000 (checkpoint), pad=repeat (checkpoint), sample_rate=16000" in out
    named_scores = _read_scores(named / "test_scores.txt")
    assert named_scores.keys() == train_scores.keys()
    for utt, (_, _, score) in named_scores.items():
        assert score == pytest.approx(train_scores[utt][2], abs=1e-5)
