"""OmegaConf resolvers used by conf/; registered when the package is imported, i.e. before
train.py / eval.py let Hydra compose the config."""

import hashlib
import os
from typing import Any

from omegaconf import OmegaConf

MAX_JOB_NAME = 200


def job_name(run_name: str, overrides: str = "") -> str:
    """A sweep job's directory name: ``run_name`` (the config choices), then the job's other
    overrides as Hydra writes them (``hydra.job.override_dirname``, e.g. ``optimizer.lr=0.01``).

    The same command line always gives the same names, so a re-launched sweep (``resume=true``)
    finds its jobs again. A very long name is shortened with a hash of its full form.
    """
    name = f"{run_name},{overrides}" if overrides else run_name
    name = name.replace(os.sep, "_")
    if len(name) > MAX_JOB_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[: MAX_JOB_NAME - 11]}-{digest}"
    return name


def checked_name(key: str, value: Any) -> str:
    """``run_name`` / ``sweep_name`` when it can name a directory; else exit 2 naming ``key``."""
    from spoof_lightning.cli import user_errors_reported
    from spoof_lightning.rundir import check_name

    with user_errors_reported(in_sweeps=True):
        return check_name(key, value)


def run_dir(root: str, name: str, resume: Any = False, job_num: Any = None) -> str:
    """``hydra.run.dir`` / ``hydra.sweep.subdir``: see :func:`spoof_lightning.rundir.run_directory`;
    a bad ``resume=`` or a directory in use ends the command (exit 2) before Hydra writes to it."""
    from spoof_lightning.cli import user_errors_reported
    from spoof_lightning.rundir import run_directory

    with user_errors_reported(in_sweeps=True):
        return run_directory(root, name, resume, job_num)


def register() -> None:
    # conf/hydra/default.yaml: hydra.run.dir, hydra.sweep.dir and hydra.sweep.subdir
    OmegaConf.register_new_resolver("spoof.job_name", job_name, replace=True)
    OmegaConf.register_new_resolver("spoof.name", checked_name, replace=True)
    OmegaConf.register_new_resolver("spoof.run_dir", run_dir, replace=True)
    # paths.root_dir (conf/paths/default.yaml). Not ${hydra:runtime.cwd}: sweepers such as
    # Optuna resolve hydra.sweep.dir before Hydra's own config is set. Hydra never changes
    # the working directory here (hydra.job.chdir: false).
    OmegaConf.register_new_resolver("spoof.cwd", os.getcwd, replace=True)
