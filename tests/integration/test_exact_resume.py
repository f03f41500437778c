"""Exact resume: a training process killed with SIGKILL at any point and continued with
``resume=true`` ends with the weights of an uninterrupted run, bit for bit (CPU,
``trainer.deterministic=true``), and its metrics.csv holds every logged row once.

Every run is a child process forked from the test (a fresh interpreter would spend most of
the time importing torch and Lightning again); it runs ``training.train`` as train.py does.
The kills are real SIGKILLs that a child sends itself at chosen points: mid-epoch between two
checkpoints, during validation, and in the middle of a checkpoint write. Each point kills
once (a marker file remembers), so one case can be killed at several points in a row.
The run uses both kinds of randomness: per-item augmentation (noise) and the global torch
RNG (SpecAugment masks in the front-end).
"""

import contextlib
import csv
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, open_dict

from spoof_lightning.training import train
from tests.integration.cli import REPO

pytestmark = pytest.mark.slow

# 24 training utterances in batches of 4: 6 batches an epoch, last.ckpt every 3 steps.
TINY = [
    "data.demo=false",
    "data.train_crop=3200",
    "data.eval_crop=3200",
    "data.batch_size=4",
    "data.subset.train={size:24}",
    "data.subset.val={size:8}",
    "augment=noise",
    "frontend.freq_mask=4",
    "frontend.time_mask=8",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.step_checkpoint.every_n_train_steps=3",
    "test_after_fit=false",
    "run_name=exact",
]


class _SigkillWhenPickled:
    """Kills its process when torch.save pickles it, i.e. in the middle of a checkpoint write."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """SIGKILL this process once, at the ``nth`` ``point`` (``step``: after an optimizer
    step; ``validation``: after a validation batch; ``save``: during a checkpoint write) at
    or after optimizer step ``step``."""

    def __init__(self, point: str, step: int, marker: str, nth: int = 1) -> None:
        self.point, self.step, self.marker, self.nth = point, step, Path(marker), nth

    def _due(self, trainer: L.Trainer, point: str) -> bool:
        if point != self.point or trainer.global_step < self.step or self.marker.exists():
            return False
        self.nth -= 1
        if self.nth:
            return False
        self.marker.touch()
        return True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._due(trainer, "step"):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        if not trainer.sanity_checking and self._due(trainer, "validation"):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self._due(trainer, "save"):
            checkpoint["kill"] = _SigkillWhenPickled()


def _compose(run_dir: Path, demo_root: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose(
            "train",
            overrides=[f"data.root={demo_root}", f"paths.run_dir={run_dir}", *TINY, *overrides],
        )


CHECKPOINTS = ("last.ckpt", "best.ckpt")  # the final weights, and those eval.py would test


def _job(cfg: DictConfig) -> None:
    os.setsid()  # a process group of its own: the job's, with its loader workers
    train(cfg)


def _run(cfg: DictConfig) -> int:
    """Run ``train(cfg)`` in a forked child process; its exit code (-9: SIGKILL).

    A killed run's loader workers (orphans that notice within 5 s) go with it, as the
    processes of a killed job do."""
    process = multiprocessing.get_context("fork").Process(target=_job, args=(cfg,))
    process.start()
    deadline = time.monotonic() + 300
    while process.exitcode is None:  # (join() would wait for the orphans too)
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("the training process hung")
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # (nothing left of a run that ended)
        os.killpg(process.pid, signal.SIGKILL)
    process.join()
    return process.exitcode


def _final(run_dir: Path) -> tuple[dict[str, torch.Tensor], ...]:
    """The weights of the run's last.ckpt and best.ckpt, and the rows of its metrics.csv."""
    checkpoints = run_dir / "checkpoints"
    last, best = (torch.load(checkpoints / name, weights_only=True) for name in CHECKPOINTS)
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        return last["state_dict"], best["state_dict"], list(csv.DictReader(handle))


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ from the uninterrupted run: {different}"


def _uninterrupted(tmp: Path, demo_root: Path, overrides: tuple[str, ...], runs: dict) -> tuple:
    """The final state of an uninterrupted run with ``overrides`` (each computed once)."""
    if overrides not in runs:
        run_dir = tmp / f"uninterrupted-{len(runs)}"
        assert _run(_compose(run_dir, demo_root, *overrides)) == 0
        runs[overrides] = _final(run_dir)
    return runs[overrides]


@pytest.fixture(scope="module")
def uninterrupted(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """``uninterrupted(*overrides)``: weights and metrics rows of an uninterrupted run."""
    tmp, runs = tmp_path_factory.mktemp("uninterrupted"), {}
    return lambda *overrides: _uninterrupted(tmp, demo_root, overrides, runs)


MAP, STREAM = (), ("data.loader=stream", "data.shuffle_buffer=4")
WORKERS = ("data.num_workers=2", "data.persistent_workers=true")
# (overrides, overrides of the uninterrupted run to compare with, kills in the order they
# fire: point, step, nth). 6 steps an epoch; last.ckpt after steps 3 and 9 and at the epoch
# ends (there also ModelCheckpoint's, written after the validation when val/eer improves).
CASES = {
    "map": (
        MAP,
        MAP,
        [
            ("step", 4, 1),  # mid-epoch, one step after a checkpoint
            ("validation", 6, 1),  # resumes mid-epoch (from step 3)
            ("save", 6, 3),  # writing the epoch-end last.ckpt: resumes from the val-end one
            ("save", 9, 1),  # writing a mid-epoch last.ckpt: resumes from the epoch end
        ],
    ),
    # Batches of 4 in micro-batches of 2 (2 loader batches a step), with 2 workers; compared
    # with the run without workers.
    "map-workers2-accumulate": (
        (*WORKERS, "trainer.micro_batch_size=2"),
        ("trainer.micro_batch_size=2",),
        [("step", 4, 1), ("save", 6, 3)],
    ),
    "stream-accumulate": (
        (*STREAM, "data.batch_size=2", "trainer.accumulate_grad_batches=2"),
        (*STREAM, "data.batch_size=2", "trainer.accumulate_grad_batches=2"),
        [("validation", 6, 1), ("save", 9, 1)],
    ),
    # 2 workers x 3 batches an epoch; a resume after 3 batches rotates the workers' streams.
    "stream-workers2": (
        (*STREAM, *WORKERS),
        (*STREAM, *WORKERS),
        [("step", 4, 1), ("step", 11, 1)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_killed_and_resumed_run_ends_bit_identical(
    case: str, demo_root: Path, tmp_path: Path, uninterrupted
) -> None:
    overrides, reference, kills = CASES[case]
    cfg = _compose(tmp_path / "run", demo_root, *overrides)
    markers = [tmp_path / f"killed-{i}" for i in range(len(kills))]
    with open_dict(cfg):
        for i, (point, step, nth) in enumerate(kills):
            target = f"{__name__}.KillAt"
            cfg.callbacks[f"kill{i}"] = {
                "_target_": target,
                "point": point,
                "step": step,
                "nth": nth,
                "marker": str(markers[i]),
            }
    for marker in markers:
        assert _run(cfg) == -signal.SIGKILL and marker.exists()
        cfg.resume = True
    assert _run(cfg) == 0
    last, best, rows = _final(tmp_path / "run")
    expected_last, expected_best, expected_rows = uninterrupted(*reference)
    _assert_same(last, expected_last)
    _assert_same(best, expected_best)
    assert rows == expected_rows  # every row once, with the same values


def test_uninterrupted_runs_are_bit_identical_with_or_without_workers(uninterrupted) -> None:
    """The reference of the tests above: the same run twice (here, once with 2 loader
    workers) ends with the same weights and the same logs."""
    last, best, rows = uninterrupted(*MAP)
    other_last, other_best, other_rows = uninterrupted(*WORKERS)
    _assert_same(other_last, last)
    _assert_same(other_best, best)
    assert other_rows == rows
