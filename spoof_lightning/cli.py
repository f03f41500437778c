"""What train.py and eval.py share: a user error ends the command with one readable paragraph.

A wrong path, config key or checkpoint, a full disk or a run directory in use raises one of
:data:`USER_ERRORS`, whose message names the file or key; the traceback below it would only
hide that. ``HYDRA_FULL_ERROR=1`` shows the full traceback again, and inside ``-m`` sweeps
errors of a job are left to Hydra (a failed job must not end the sweep's other jobs).
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from spoof_lightning.atomic import DiskFullError
from spoof_lightning.build import ConfigError
from spoof_lightning.callbacks.nonfinite import NonFiniteError
from spoof_lightning.checkpoint import CheckpointError
from spoof_lightning.contracts import IncompatiblePairError
from spoof_lightning.data.preflight import DataError
from spoof_lightning.data.protocols import MissingDataError, ProtocolError
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
