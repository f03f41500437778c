"""One way in: every command runs as ``spoof-lightning <command>`` (``python -m
spoof_lightning``) and ends a user error the same way, exit code 2 and one ``error:`` line
without a traceback, before anything is trained or read."""

import tomllib
from pathlib import Path

import pytest

from spoof_lightning.cli import COMMANDS, main
from spoof_lightning.export import main as export_main
from tests.integration.cli import REPO, run_cli_user_error

# command: (arguments, the start of the error line); {tmp} is the test's folder.
USER_ERRORS = {
    "train": (("seed=1", "no_such_key=1"), "error: bad override for conf/train.yaml: "
              "Could not override 'no_such_key'. To append to your config use +no_such_key=1"),
    "eval": (("ckpt={tmp}/x.ckpt", "model=no_such_model"),
             "error: bad override for conf/eval.yaml: In 'eval': Could not find "
             "'model/no_such_model' Available options in 'model': aasist"),
    "continual": (("experiment=no_such_experiment",),
                  "error: bad override for conf/continual.yaml: In 'continual': Could not find "
                  "'experiment/no_such_experiment'"),
    "cross-corpus": (("ckpt={tmp}/x.ckpt", "la19_rot={tmp}"),
                     "error: bad override for conf/cross_corpus.yaml: Could not override "
                     "'la19_rot'."),
    "export": (("ckpt={tmp}/x.ckpt", "format=onnx", "output={tmp}/x.onnx"),
               "error: bad override for conf/export.yaml: Could not override 'output'."),
    "infer": (("{tmp}/missing.onnx", "{tmp}/a.wav"), "error: {tmp}/missing.onnx: "),
    "compare": (("{tmp}",), "error: no run directories (with summary.json) under {tmp}"),
    "shards": (("--corpus", "asvspoof2019_la"),
               "error: the following arguments are required: --root, --split, --out"),
    "demo": ((), "error: the following arguments are required: root"),
}  # fmt: skip


def test_every_command_has_a_user_error_test():
    assert set(USER_ERRORS) == set(COMMANDS)


def test_the_console_script_is_the_command():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"spoof-lightning": "spoof_lightning.cli:main"}


def test_help_lists_the_commands_and_an_unknown_one_exits_2(capsys):
    main(["--help"])
    listed = capsys.readouterr().out
    assert all(f"\n  {name} " in listed for name in COMMANDS)
    with pytest.raises(SystemExit) as exited:
        main(["trian", "seed=1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown command 'trian'\nusage: ")


def test_export_help_is_its_usage(capsys):
    export_main(["--help"])
    assert capsys.readouterr().out.startswith("usage: spoof-lightning export ckpt=<checkpoint> ")


# The file tools import torch before they parse their arguments: forked from the preloaded
# server (a new interpreter would spend 5 s on it); the other commands refuse a bad argument
# before that, in a new interpreter.
IMPORT_FIRST = {"infer", "shards", "demo"}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(USER_ERRORS))
def test_a_bad_argument_is_one_error_line_and_exit_2(command: str, tmp_path: Path):
    args, expected = USER_ERRORS[command]
    args = (a.format(tmp=tmp_path) for a in args)
    message, _ = run_cli_user_error(command, *args, fresh=command not in IMPORT_FIRST)
    assert message.startswith(expected.format(tmp=tmp_path))
    assert not list(tmp_path.iterdir())  # nothing written, no corpus built


@pytest.mark.slow
def test_the_scripts_report_bad_overrides_the_same_way(tmp_path: Path):
    message, _ = run_cli_user_error("eval.py", f"ckpt={tmp_path}/x.ckpt", "splt=val")
    assert message.startswith("error: bad override for conf/eval.yaml: Could not override 'splt'")
