"""W&B without a network: online only with credentials, offline otherwise, never a prompt;
the run id lives in the run directory and is reused; choices as config and tags; plots."""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import wandb

from spoof_lightning.loggers import (
    WANDB_ID_FILE,
    WandbRunLogger,
    finish_wandb,
    has_wandb_credentials,
    log_images,
    wandb_mode,
)


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.netrc and no W&B variables; returns that HOME."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def _netrc(path: Path, host: str) -> Path:
    path.write_text(f"machine {host}\n  login user\n  password {'k' * 40}\n")
    path.chmod(0o600)
    return path


def test_credentials_come_from_the_api_key_or_netrc(tmp_path: Path, no_credentials: Path):
    assert not has_wandb_credentials()
    assert has_wandb_credentials({"WANDB_API_KEY": "x" * 40})
    _netrc(no_credentials / ".netrc", "api.wandb.ai")  # what `wandb login` writes
    assert has_wandb_credentials()
    # A self-hosted server: its host must be in the netrc file.
    other = {"WANDB_BASE_URL": "https://wandb.example.org", "HOME": str(no_credentials)}
    assert not has_wandb_credentials(other)
    netrc = _netrc(tmp_path / "netrc", "wandb.example.org")
    assert has_wandb_credentials({**other, "NETRC": str(netrc)})
    broken = tmp_path / "broken"
    broken.write_text("machine\n")
    assert not has_wandb_credentials({"NETRC": str(broken)})


def test_mode_is_offline_without_credentials_and_user_choice_wins(no_credentials: Path):
    assert wandb_mode() == "offline"
    assert wandb_mode({"WANDB_API_KEY": "x" * 40}) == "online"
    assert wandb_mode({"WANDB_API_KEY": "x" * 40, "WANDB_MODE": "disabled"}) == "disabled"
    assert wandb_mode({"WANDB_MODE": "online"}) == "online"


def test_logger_keeps_its_run_id_in_the_run_dir_and_passes_choices(
    tmp_path: Path, no_credentials: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list[dict] = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or SimpleNamespace())
    run_dir = tmp_path / "runs" / "demo-lfcc-cnn_gru-ce"
    choices = {"frontend": "lfcc", "model": "cnn_gru", "debug": None, "hydra/launcher": "basic"}
    logger = WandbRunLogger(save_dir=str(run_dir), group="demo_sweep", choices=choices)
    _ = logger.experiment
    run_id = (run_dir / WANDB_ID_FILE).read_text().strip()
    init = calls[0]
    assert init["id"] == run_id and init["resume"] == "allow"
    assert init["mode"] == "offline" and os.environ["WANDB_MODE"] == "offline"
    assert init["name"] == "demo-lfcc-cnn_gru-ce" and init["group"] == "demo_sweep"
    assert init["dir"] == str(run_dir)
    assert init["config"] == {"choices": {"frontend": "lfcc", "model": "cnn_gru"}}
    assert init["tags"] == ["frontend:lfcc", "model:cnn_gru"]

    # resume=true builds the logger again in the same run directory: the same W&B run.
    _ = WandbRunLogger(save_dir=str(run_dir), choices=choices).experiment
    assert calls[1]["id"] == run_id
    # Another run directory, another run.
    _ = WandbRunLogger(save_dir=str(tmp_path / "other")).experiment
    assert calls[2]["id"] != run_id


def test_plots_in_the_scores_dir_are_logged_as_images(tmp_path: Path, no_credentials: Path):
    scores = tmp_path / "scores"
    scores.mkdir()
    for name in ("test_det.png", "test_score_hist.png", "test_scores.txt"):
        (scores / name).write_bytes(b"")
    logger = WandbRunLogger(save_dir=str(tmp_path))
    logged: list[tuple[str, list]] = []
    logger.log_image = lambda key, images: logged.append((key, images))  # type: ignore[method-assign]
    assert [p.name for p in log_images([logger], scores)] == ["test_det.png", "test_score_hist.png"]
    assert logged == [
        ("plots/test_det", [str(scores / "test_det.png")]),
        ("plots/test_score_hist", [str(scores / "test_score_hist.png")]),
    ]
    assert log_images([logger], tmp_path / "missing") == []


def test_finish_closes_the_current_run_only_when_there_is_one(monkeypatch: pytest.MonkeyPatch):
    finished: list[bool] = []
    fake = SimpleNamespace(run=None, finish=lambda: finished.append(True))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    finish_wandb()
    assert finished == []
    fake.run = object()
    finish_wandb()
    assert finished == [True]
