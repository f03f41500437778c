"""The ``spoof-lightning`` command and what its commands share.

``spoof-lightning <command> [arguments]`` runs one command (:data:`COMMANDS`) exactly as its
script would run it: ``spoof-lightning train seed=1`` is ``python train.py seed=1``. The
commands that read configs (train, eval, continual, cross-corpus, export) take Hydra
overrides (``key=value``, ``group=option``, ``+key=value``); the file tools (infer, compare,
shards, demo) take paths and ``--options``.

A wrong path, config key or checkpoint, a full disk or a run directory in use raises one of
:data:`USER_ERRORS`, whose message names the file or key; the traceback below it would only
hide that. ``HYDRA_FULL_ERROR=1`` shows the full traceback again, and inside ``-m`` sweeps
errors of a job are left to Hydra (a failed job must not end the sweep's other jobs).
"""

import argparse
import os
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from spoof_lightning.errors import ConfigError

USER_ERROR_EXIT_CODE = 2

# The exceptions that are user errors, by module. Only modules already imported are looked
# at (an exception's module always is), so reporting one never imports torch.
USER_ERRORS = {
    "builtins": ("FileNotFoundError",),
    "spoof_lightning.errors": ("ConfigError",),
    "spoof_lightning.contracts": ("IncompatiblePairError",),
    "spoof_lightning.checkpoint": ("CheckpointError",),
    "spoof_lightning.data.preflight": ("DataError",),
    "spoof_lightning.data.protocols": ("MissingDataError", "ProtocolError"),
    "spoof_lightning.metrics.scores": ("ScoreFileError",),
    "spoof_lightning.callbacks.nonfinite": ("NonFiniteError",),
    "spoof_lightning.rundir": ("RunDirError",),
    "spoof_lightning.atomic": ("DiskFullError",),
    "spoof_lightning.graph_export": ("ExportError",),
}


def user_errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`USER_ERRORS` whose modules are imported."""
    loaded = [(sys.modules[m], names) for m, names in USER_ERRORS.items() if m in sys.modules]
    return tuple(getattr(module, name) for module, names in loaded for name in names)


def is_multirun() -> bool:
    """True inside a job of a ``-m`` sweep (any sweeper or launcher)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def user_errors_reported(in_sweeps: bool = False) -> Iterator[None]:
    """Turn a :func:`user_errors` exception into ``error: <message>`` on stderr and exit 2.

    ``in_sweeps``: inside ``-m`` sweeps too (errors that concern the whole command, such as
    the run directory of a job, raised while Hydra starts it).
    """
    try:
        yield
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        if (is_multirun() and not in_sweeps) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(
            f"error: {err}\n({type(err).__name__}; set HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(USER_ERROR_EXIT_CODE) from None


REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
# command: (the script or module that runs it, its conf/ config or None, what it does)
COMMANDS = {
    "train": ("train.py", "train", "train a countermeasure"),
    "eval": ("eval.py", "eval", "score a checkpoint: score files, metrics, plots"),
    "continual": ("spoof_lightning.continual_training", "continual", "DFWF vs fine-tuning"),
    "cross-corpus": ("spoof_lightning.cross_corpus", "cross_corpus", "a checkpoint on corpora"),
    "export": ("spoof_lightning.export", "export", "a checkpoint to .pt, ONNX or TorchScript"),
    "infer": ("spoof_lightning.infer", None, "score audio files with an exported model"),
    "compare": ("spoof_lightning.compare", None, "tabulate runs from their run directories"),
    "shards": ("spoof_lightning.data.shards", None, "a corpus split to WebDataset tar shards"),
    "demo": ("spoof_lightning.data.demo", None, "build the procedural demo corpus"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``spoof-lightning <command> [arguments]``: run the command's script or module as
    ``python <script>`` / ``python -m <module>`` would (same ``sys.argv[1:]``, same
    ``__main__``, so Lightning's DDP workers re-launch it the same way)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        usage = "usage: spoof-lightning <command> [arguments]  (<command> --help for each)\n" + (
            "\n".join(f"  {name:<13} {what}" for name, (*_, what) in COMMANDS.items())
        )
        if args[:1] in (["-h"], ["--help"]):
            print(usage)
            return
        wrong = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"error: {wrong}\n{usage}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE)
    target, config, _ = COMMANDS[args[0]]
    if config:  # before the command imports torch and Lightning
        check_overrides(config, args[1:])
    sys.argv = [f"spoof-lightning {args[0]}", *args[1:]]
    with user_errors_reported():  # the file tools' user errors too
        if target.endswith(".py"):
            runpy.run_path(str(REPO / target), run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)


class CommandParser(argparse.ArgumentParser):
    """The arguments of a file tool (``spoof-lightning <command> PATH --option ...``); a bad
    one is a user error like any other: one ``error:`` line, then the usage, exit 2."""

    def __init__(self, command: str, description: str | None) -> None:
        super().__init__(prog=f"spoof-lightning {command}", description=description)

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}\n{self.format_usage().rstrip()}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE)


def compose_config(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """conf/<config_name>.yaml composed with command-line ``overrides`` (Hydra's syntax, the
    ``hydra`` node included); a bad override (an unknown key, a missing option, a syntax
    error) is a :class:`ConfigError` quoting Hydra's reason."""
    if not CONF_DIR.is_dir():
        raise ConfigError(f"{CONF_DIR} is missing: run from a spoof-lightning checkout")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        reason = " ".join(str(err).split()).split(" Config search path:")[0]  # Hydra's paths
        raise ConfigError(f"bad override for conf/{config_name}.yaml: {reason}") from None


def check_overrides(config_name: str, args: Sequence[str]) -> None:
    """Compose conf/<config_name>.yaml with a command line once, so that an unknown key or
    option ends the command with one paragraph and exit 2 (Hydra alone exits 1 with several
    lines). Command lines with flags (``--help``, ``-m`` sweeps, ``--cfg job``) are Hydra's."""
    if not any(arg.startswith("-") for arg in args):
        with user_errors_reported():
            compose_config(config_name, args)


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``hydra.main`` on conf/<config_name>.yaml whose command-line errors are user errors
    (:func:`check_overrides` before Hydra runs)."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        hydra_main = app(task)  # Hydra names the job after the task's file (train, eval, ...)

        def run() -> Any:
            check_overrides(config_name, sys.argv[1:])
            return hydra_main()

        return run

    return decorate
