"""Bad config values through the real command line: exit code 2, one paragraph naming each key,
no traceback, and before anything heavy ran (no demo corpus, no run outputs, no checkpoint
loaded). A failing run costs the interpreter start-up, not a training epoch (the runs are
forked from a preloaded server: the CPU measured is what the command did after its imports)."""

from pathlib import Path

import pytest

from tests.integration.cli import run_cli_user_error

pytestmark = pytest.mark.slow

# CPU seconds a refused command may use after its imports (Python, torch, Lightning and Hydra
# start-up, about 10 s more, is not counted): the checks, about 1 s here. An epoch of the
# default demo run costs minutes.
CPU_BUDGET = 10


def test_bad_training_values_exit_2_before_the_corpus_is_built(tmp_path: Path):
    demo = tmp_path / "demo"  # data=demo builds its corpus here on first use
    logs = tmp_path / "logs"
    message, cpu = run_cli_user_error(
        "train.py",
        f"data.root={demo}",
        f"paths.log_dir={logs}",
        "run_name=bad",
        "data.batch_size=-4",
        "data.on_error=bogus",
        "data.train_crop=0",
        "data.subset.train={per_clas:10}",
    )
    assert message.startswith("error: invalid training config: ")
    for part in (
        "data.batch_size must be an integer >= 1, got -4",
        "data.on_error must be one of ('strict', 'skip'), got 'bogus'",
        "data.train_crop must be an integer >= 1, got 0",
        "data.subset.train.per_clas is not a subset kind (did you mean per_class?)",
    ):
        assert part in message
    assert not demo.exists() and not (logs / "runs" / "bad" / "summary.json").exists()
    assert cpu < CPU_BUDGET


def test_a_crop_too_short_for_the_model_exits_2_before_the_corpus_is_built(tmp_path: Path):
    demo = tmp_path / "demo"
    message, cpu = run_cli_user_error(
        "train.py", f"data.root={demo}", f"paths.log_dir={tmp_path / 'logs'}", "data.eval_crop=100"
    )
    assert message == (
        "error: invalid data config: data.eval_crop=100 is shorter than the 257 samples "
        "(16.1 ms at 16000 Hz) that frontend=lfcc model=cnn_gru need: use data.eval_crop >= 257."
    )
    assert not demo.exists() and not list(tmp_path.glob("logs/runs/*/checkpoints"))
    assert cpu < CPU_BUDGET


def test_a_bad_eval_value_exits_2_before_the_checkpoint_is_read(tmp_path: Path):
    missing = tmp_path / "no.ckpt"  # read after the checks: its absence is not the error
    message, _ = run_cli_user_error(
        "eval.py", f"ckpt={missing}", "threshold=abc", f"output_dir={tmp_path / 'out'}"
    )
    assert message.startswith("error: invalid evaluation config: threshold must be a finite")
    assert "got 'abc'" in message
