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

import os
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from spoof_lightning.atomic import DiskFullError
from spoof_lightning.build import ConfigError
from spoof_lightning.callbacks.nonfinite import NonFiniteError
from spoof_lightning.checkpoint import DEFAULT_SAMPLE_RATE, PARTS, CheckpointError
from spoof_lightning.contracts import IncompatiblePairError
from spoof_lightning.data.preflight import DataError
from spoof_lightning.data.protocols import MissingDataError, ProtocolError
from spoof_lightning.graph_export import ExportError
from spoof_lightning.metrics.scores import ScoreFileError
from spoof_lightning.rundir import RunDirError

USER_ERRORS = (
    ConfigError,
    IncompatiblePairError,
    CheckpointError,
    DataError,
    MissingDataError,
    ProtocolError,
    ScoreFileError,
    NonFiniteError,
    RunDirError,
    DiskFullError,
    ExportError,
    FileNotFoundError,
)
USER_ERROR_EXIT_CODE = 2


@contextmanager
def user_errors_reported(in_sweeps: bool = False) -> Iterator[None]:
    """Turn a :data:`USER_ERRORS` exception into ``error: <message>`` on stderr and exit 2.

    ``in_sweeps``: inside ``-m`` sweeps too (errors that concern the whole command, such as
    the run directory of a job, raised while Hydra starts it).
    """
    try:
        yield
    except USER_ERRORS as err:
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if (multirun and not in_sweeps) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(
            f"error: {err}\n({type(err).__name__}; set HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(USER_ERROR_EXIT_CODE) from None


REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
# command: (the script or module that runs it, what it does)
COMMANDS = {
    "train": ("train.py", "train a countermeasure (conf/train.yaml)"),
    "eval": ("eval.py", "score a checkpoint: score files, metrics, plots (conf/eval.yaml)"),
    "continual": ("spoof_lightning.continual_training", "DFWF vs fine-tuning, continual learning"),
    "cross-corpus": ("spoof_lightning.cross_corpus", "one checkpoint on several corpora"),
    "export": ("spoof_lightning.export", "a checkpoint to .pt, ONNX or TorchScript"),
    "infer": ("spoof_lightning.infer", "score audio files with an exported model"),
    "compare": ("spoof_lightning.compare", "tabulate runs from their run directories"),
    "shards": ("spoof_lightning.data.shards", "a corpus split to WebDataset tar shards"),
    "demo": ("spoof_lightning.data.demo", "build the procedural demo corpus"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``spoof-lightning <command> [arguments]``: run the command's script or module as
    ``python <script>`` / ``python -m <module>`` would (same ``sys.argv[1:]``, same
    ``__main__``, so Lightning's DDP workers re-launch it the same way)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        usage = "usage: spoof-lightning <command> [arguments]  (<command> --help for each)\n" + (
            "\n".join(f"  {name:<13} {what}" for name, (_, what) in COMMANDS.items())
        )
        if args[:1] in (["-h"], ["--help"]):
            print(usage)
            return
        wrong = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"error: {wrong}\n{usage}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE)
    target = COMMANDS[args[0]][0]
    sys.argv = [f"spoof-lightning {args[0]}", *args[1:]]
    if target.endswith(".py"):
        runpy.run_path(str(REPO / target), run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


def compose_config(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """conf/<config_name>.yaml composed with command-line ``overrides`` (Hydra's syntax, the
    ``hydra`` node included); a bad override (an unknown key, a missing option, a syntax
    error) is a :class:`ConfigError` quoting Hydra's reason."""
    if not CONF_DIR.is_dir():
        raise ConfigError(
            f"configs are read from {CONF_DIR}, which is missing (run from a spoof-lightning "
            "checkout)"
        )
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        reason = " ".join(str(err).split()).split(" Config search path:")[0]  # Hydra's paths
        raise ConfigError(f"bad override for conf/{config_name}.yaml: {reason}") from None


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``hydra.main`` on conf/<config_name>.yaml whose command-line errors are user errors.

    The overrides are composed once before Hydra runs, so an unknown key or option ends the
    command with one paragraph and exit 2 (Hydra alone exits 1 with several lines). Command
    lines with flags (``--help``, ``-m`` sweeps, ``--cfg job``) go to Hydra unchecked.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        hydra_main = app(task)

        def run() -> Any:
            if not any(arg.startswith("-") for arg in sys.argv[1:]):
                with user_errors_reported():
                    compose_config(config_name, sys.argv[1:])
            return hydra_main()

        return run

    return decorate


def requested_configs(
    cfg: DictConfig, choices: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The resolved ``frontend`` / ``model`` configs that ``cfg`` names (eval.py's optional
    ``model=aasist``) and their config-group names: what released weights, which store no
    config, are loaded into. While ``sample_rate`` is unset they resolve at 16 kHz, the
    rate of the released models."""
    rate = cfg.get("sample_rate")
    with open_dict(cfg):
        cfg.sample_rate = rate or DEFAULT_SAMPLE_RATE
        requested = {
            part: OmegaConf.to_container(cfg[part], resolve=True) for part in PARTS if cfg.get(part)
        }
        cfg.sample_rate = rate
    return requested, {part: str(choices[part]) for part in PARTS if choices.get(part)}
