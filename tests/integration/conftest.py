"""Shared fixtures for end-to-end runs."""

from pathlib import Path

import pytest

from spoof_lightning.data.demo import ensure_demo_corpus
from tests.integration.cli import FAST, FinishedRun, run_cli


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus (ASVspoof 2019 LA layout) shared by the integration tests."""
    return ensure_demo_corpus(tmp_path_factory.mktemp("demo"), n_train=64, n_dev=40, n_eval=60)


@pytest.fixture(scope="session")
def finished_run(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """A 2-epoch ``python train.py`` run (a new interpreter) on the demo corpus, its best
    checkpoint tested after the fit, shared by the tests that read one (tests that write
    into it copy it first)."""
    logs = tmp_path_factory.mktemp("finished_run")
    common = [f"data.root={demo_root}", f"paths.log_dir={logs}", *FAST]
    out = run_cli("train.py", *common, "run_name=e2e", "trainer.max_epochs=2", fresh=True).stdout
    return FinishedRun(logs / "runs" / "e2e" / "v1", out)
