"""train.py / eval.py end a user error with one paragraph and exit code 2."""

import importlib

import pytest

from spoof_lightning.atomic import DiskFullError
from spoof_lightning.build import ConfigError
from spoof_lightning.checkpoint import CheckpointError
from spoof_lightning.cli import USER_ERRORS, user_errors, user_errors_reported
from spoof_lightning.rundir import RunDirError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("data.root: /x does not exist"),
        CheckpointError("bad.ckpt"),
        DiskFullError("cannot write last.ckpt: no space left on the device"),
        RunDirError("logs/runs/x/v1 is in use by PID 7 on host, started 2026-01-01 10:00:00"),
    ],
)
def test_a_user_error_is_one_paragraph_and_exit_code_2(error, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exited, user_errors_reported():
        raise error
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {error}\n")
    assert "Traceback" not in err and "HYDRA_FULL_ERROR=1" in err


def test_hydra_full_error_keeps_the_traceback(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError), user_errors_reported():
        raise ConfigError("trainer.devices")


def test_other_errors_pass_through(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(RuntimeError), user_errors_reported():
        raise RuntimeError("CUDA out of memory")


def test_every_user_error_named_is_an_exception_of_its_module():
    for module, names in USER_ERRORS.items():
        for name in names:
            error = getattr(importlib.import_module(module), name)
            assert issubclass(error, Exception) and error in user_errors(), (module, name)
