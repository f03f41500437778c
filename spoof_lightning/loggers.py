"""Loggers that keep a run's history across ``resume=true``.

A resumed run is the same logger run: ``metrics.csv`` is appended to (less the rows logged
after the checkpoint it continues from) and the W&B run id saved in the run directory is
reused. A fresh run with the same name starts clean in a directory of its own
(spoof_lightning/rundir.py).
"""

import csv
import logging
import netrc
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from spoof_lightning.atomic import atomic_open, atomic_path, write_text
from spoof_lightning.rundir import run_label

log = logging.getLogger(__name__)

# The W&B run id of a run directory, written when the run starts (see WandbRunLogger).
WANDB_ID_FILE = "wandb_run_id.txt"
WANDB_DEFAULT_HOST = "https://api.wandb.ai"


class _AtomicWriter(ExperimentWriter):
    """Rewrites ``metrics.csv`` (and ``hparams.yaml``) whole and atomically at every save,
    instead of appending in place, so a kill or a full disk never leaves them half-written."""

    def save(self) -> None:
        if not self.metrics:
            return
        self._record_new_keys()
        rows = []
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                rows = list(csv.DictReader(handle))
        with atomic_open(self.metrics_file_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows + self.metrics)
        self.metrics = []

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        with atomic_path(Path(self.log_dir) / self.NAME_HPARAMS_FILE) as temp:
            save_hparams_to_yaml(temp, self.hparams)


class _AppendingWriter(_AtomicWriter):
    """Appends to an existing ``metrics.csv`` instead of deleting it (Lightning's default)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """CSVLogger whose ``metrics.csv`` continues where a resumed run stopped.

    Lightning writes every row out as soon as it is logged, so a killed run may leave rows
    logged after the checkpoint that ``resume=true`` continues from; the resumed run drops
    them (:meth:`drop_steps_from`, called by
    :class:`~spoof_lightning.callbacks.resume_state.ResumeState`) and logs them again, so
    the file holds each row once, as in an uninterrupted run.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def drop_steps_from(self, step: int) -> None:
        """Remove the rows of ``step`` and later from ``metrics.csv`` (atomically)."""
        path = Path(self.experiment.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields, rows = reader.fieldnames or [], list(reader)
        kept = [row for row in rows if not row.get("step") or int(row["step"]) < step]
        if len(kept) == len(rows):
            return
        with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        log.info("metrics.csv: dropped %d rows logged after the checkpoint", len(rows) - len(kept))


def has_wandb_credentials(env: Mapping[str, str] | None = None) -> bool:
    """True when W&B can log in without asking: ``WANDB_API_KEY`` is set, or the netrc file
    (``$NETRC`` or ``~/.netrc``, written by ``wandb login``) has an entry for the W&B host."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or WANDB_DEFAULT_HOST).hostname
    path = Path(env["NETRC"]) if env.get("NETRC") else Path.home() / ".netrc"
    try:
        return host is not None and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(env: Mapping[str, str] | None = None) -> str:
    """``WANDB_MODE`` when the user set it, else ``online`` with credentials, else ``offline``.

    Offline runs are synced later with ``wandb sync <run dir>/wandb/offline-run-*``.
    """
    env = os.environ if env is None else env
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    return "online" if has_wandb_credentials(env) else "offline"


def persistent_run_id(run_dir: Path) -> str:
    """The W&B run id stored in ``run_dir``, created (on rank 0) when the run starts."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = secrets.token_hex(6)
    if rank_zero_only.rank == 0:
        write_text(path, run_id + "\n")
    return run_id


class WandbRunLogger(WandbLogger):
    """A WandbLogger bound to the run directory; never prompts for a login.

    * mode: :func:`wandb_mode` (online only with credentials); offline otherwise, so a run
      on a machine without network never blocks.
    * id: saved in ``<save_dir>/wandb_run_id.txt`` when the run starts and reused by
      ``resume=true`` (``resume="allow"``), so a resumed run continues the same W&B run.
    * name: the run's name and version (``<run or sweep-job name>/v<N>``) unless given.
    * group: the sweep name; ``choices`` (the Hydra config-group choices) become the
      ``choices`` config entry and ``group:choice`` tags.

    Args:
        save_dir: the run directory (W&B writes ``<save_dir>/wandb/``).
        choices: config-group choices, e.g. ``{"frontend": "lfcc", "model": "cnn_gru"}``;
            Hydra's own groups (``hydra/...``) and unset groups are left out.
        tags: extra tags.
        **kwargs: passed on to :class:`~lightning.pytorch.loggers.WandbLogger` / ``wandb.init``.
    """

    def __init__(
        self,
        save_dir: str,
        project: str = "spoof-lightning",
        name: str | None = None,
        group: str | None = None,
        choices: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        mode = wandb_mode()
        if mode == "offline" and not os.environ.get("WANDB_MODE"):
            log.info("W&B: no credentials (WANDB_API_KEY or `wandb login`), logging offline")
            os.environ["WANDB_MODE"] = "offline"
        run_dir = Path(save_dir)
        picked = {
            str(k): str(v)
            for k, v in (choices or {}).items()
            if v and not str(k).startswith("hydra")
        }
        config = {**kwargs.pop("config", {}), "choices": picked}
        super().__init__(
            save_dir=str(run_dir),
            project=project,
            name=name or run_label(run_dir),
            id=persistent_run_id(run_dir),
            group=group,
            tags=[*(f"{k}:{v}" for k, v in sorted(picked.items())), *tags],
            config=config,
            mode=mode,
            **kwargs,
        )


def finish_wandb() -> None:
    """Close the current W&B run, if any, so the next multirun job starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def log_images(loggers: Iterable[Logger], folder: Path, prefix: str = "plots") -> list[Path]:
    """Log every PNG in ``folder`` (DET curve, score histogram, ...) to the W&B loggers."""
    images = sorted(folder.glob("*.png")) if folder.is_dir() else []
    for logger in loggers:
        if isinstance(logger, WandbLogger) and images:
            for image in images:
                logger.log_image(key=f"{prefix}/{image.stem}", images=[str(image)])
    return images
