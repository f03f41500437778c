"""End to end on a small demo slice: train -> test -> eval.py, and resume."""

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.integration.cli import FAST, run_cli

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


def test_train_then_eval_writes_consistent_scores(demo_root: Path, tmp_path: Path):
    logs = tmp_path / "logs"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", *FAST]
    out = run_cli("train.py", *common, "run_name=e2e", "trainer.max_epochs=2").stdout
    run_dir = logs / "runs" / "e2e" / "v1"
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
    out = run_cli(
        "eval.py", f"ckpt={best}", f"output_dir={eval_dir}", f"paths.log_dir={logs}"
    ).stdout
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
    data = ["data=demo", f"data.root={demo_root}", "data.demo=false", f"paths.log_dir={logs}"]
    out = run_cli("eval.py", f"ckpt={best}", *data, f"output_dir={named}").stdout
    assert "eval_crop=16000 (checkpoint), pad=repeat (checkpoint), sample_rate=16000" in out
    named_scores = _read_scores(named / "test_scores.txt")
    assert named_scores.keys() == train_scores.keys()
    for utt, (_, _, score) in named_scores.items():
        assert score == pytest.approx(train_scores[utt][2], abs=1e-5)


def test_resume_continues_the_same_run(demo_root: Path, tmp_path: Path):
    logs = tmp_path / "logs"
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", "run_name=resumed", *FAST]
    run_cli("train.py", *common, "trainer.max_epochs=1", "test_after_fit=false")
    run_dir = logs / "runs" / "resumed" / "v1"
    last = run_dir / "checkpoints" / "last.ckpt"
    first = torch.load(last, map_location="cpu", weights_only=True)
    steps_per_epoch = first["global_step"]
    assert first["epoch"] == 0 and steps_per_epoch > 0

    out = run_cli(
        "train.py", *common, "trainer.max_epochs=2", "test_after_fit=false", "resume=true"
    )
    second = torch.load(last, map_location="cpu", weights_only=True)
    assert second["global_step"] == 2 * steps_per_epoch  # continued, not restarted
    assert [p.name for p in run_dir.parent.iterdir()] == ["v1"]  # the same run
    # The same logger run: epoch 0's rows are still there, followed by epoch 1's.
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        val_epochs = [row["epoch"] for row in csv.DictReader(handle) if row["val/eer"]]
    assert val_epochs == ["0", "1"]
    assert "run directory" in out.stdout
    assert f"continuing {run_dir} from {last}" in out.stdout + out.stderr
