"""What the commands share: a user error ends the command with one readable paragraph, and
the ``model=`` / ``frontend=`` choices that released weights are loaded into.

A wrong path, config key or checkpoint, a full disk or a run directory in use raises one of
:data:`USER_ERRORS`, whose message names the file or key; the traceback below it would only
hide that. ``HYDRA_FULL_ERROR=1`` shows the full traceback again, and inside ``-m`` sweeps
errors of a job are left to Hydra (a failed job must not end the sweep's other jobs).
"""

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

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


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


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


def compose_requested(overrides: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """:func:`requested_configs` outside Hydra apps (the export and infer commands):
    ``["model=aasist_l"]`` or ``["model=ssl_aasist", "frontend=wav2vec2", "model.proj_dim=16"]``
    composed from the project's conf/ folder."""
    if not overrides:
        return {}, {}
    if not CONF_DIR.is_dir():
        raise ConfigError(
            f"{' '.join(overrides)}: config groups are read from {CONF_DIR}, which is missing "
            "(run from a spoof-lightning checkout)"
        )
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("eval", overrides=list(overrides), return_hydra_config=True)
    except HydraException as err:
        raise ConfigError(f"{' '.join(overrides)}: {err}") from None
    return requested_configs(cfg, cfg.hydra.runtime.choices)
