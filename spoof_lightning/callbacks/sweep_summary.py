"""Hydra callback: a table of every job when a multirun ends (conf/hydra/default.yaml)."""

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from spoof_lightning.compare import collect, find_runs, markdown_table, write_tables
from spoof_lightning.rundir import newest_versions

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Writes ``<sweep dir>/summary.csv`` and ``summary.md`` (see :mod:`spoof_lightning.compare`)
    at the end of ``train.py -m``, and logs the markdown table.

    The table holds the jobs of this sweep (recorded as they end; with a remote launcher,
    whose jobs end elsewhere, the newest version of every job found under the sweep
    directory).
    """

    def __init__(self) -> None:
        self.job_dirs: list[Path] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        self.job_dirs.append(Path(config.hydra.runtime.output_dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        found = find_runs(self.job_dirs or [sweep_dir])
        run_dirs = found if self.job_dirs else newest_versions(found)
        if not run_dirs:
            return
        rows = collect(run_dirs)
        write_tables(rows, sweep_dir / "summary.csv", sweep_dir / "summary.md")
        log.info("Sweep summary (%s):\n%s", sweep_dir / "summary.md", markdown_table(rows))
