"""Shared fixtures for end-to-end runs."""

from pathlib import Path

import pytest

from spoof_lightning.data.demo import ensure_demo_corpus


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus (ASVspoof 2019 LA layout) shared by the integration tests."""
    return ensure_demo_corpus(tmp_path_factory.mktemp("demo"), n_train=64, n_dev=40, n_eval=60)
