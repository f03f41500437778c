"""Atomic writes: a file is replaced whole or not at all, and nothing is left behind."""

import json
from pathlib import Path

import pytest

from spoof_lightning.atomic import (
    PARTIAL_PREFIX,
    atomic_files,
    atomic_open,
    remove_partial_files,
    write_json,
    write_text,
)


def _leftovers(directory: Path) -> list[Path]:
    return list(directory.rglob(f"{PARTIAL_PREFIX}*"))


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "sub" / "summary.json"
    write_json(path, {"status": "running"})
    write_json(path, {"status": "completed"})
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path):
    path = write_text(tmp_path / "scores.txt", "old\n")
    with pytest.raises(KeyboardInterrupt), atomic_open(path) as handle:
        handle.write("new, half")
        raise KeyboardInterrupt  # e.g. a signal's exception in the middle of a write
    assert path.read_text() == "old\n" and not _leftovers(tmp_path)


def test_a_set_of_files_is_replaced_together_or_not_at_all(tmp_path: Path):
    a, b = write_text(tmp_path / "a.txt", "a1"), write_text(tmp_path / "b.png", "b1")
    with pytest.raises(ValueError), atomic_files() as files:
        files.temp(a).write_text("a2")
        assert files.temp(b).suffix == ".png"  # writers that infer the format keep working
        raise ValueError("plotting failed")
    assert (a.read_text(), b.read_text()) == ("a1", "b1") and not _leftovers(tmp_path)

    with atomic_files() as files:
        files.temp(a).write_text("a3")
        files.temp(b).write_text("b3")
        assert (a.read_text(), b.read_text()) == ("a1", "b1")  # nothing replaced before the end
    assert (a.read_text(), b.read_text()) == ("a3", "b3") and not _leftovers(tmp_path)


def test_remove_partial_files_removes_only_temporaries(tmp_path: Path):
    keep = write_text(tmp_path / "checkpoints" / "last.ckpt", "x")
    debris = tmp_path / "checkpoints" / f"{PARTIAL_PREFIX}0123abcd-last.ckpt"
    debris.write_text("half")
    assert remove_partial_files(tmp_path) == [debris]
    assert keep.is_file() and not debris.exists()


def test_metrics_csv_is_rewritten_whole_with_a_new_header(tmp_path: Path):
    from spoof_lightning.loggers import ResumableCSVLogger

    logger = ResumableCSVLogger(save_dir=str(tmp_path), name="csv", version="")
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"train/loss": 0.5}, step=0)
    logger.save()
    logger.log_metrics({"train/loss": 0.4, "val/eer": 0.2}, step=1)  # a new column
    logger.save()
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert lines == ["step,train/loss,val/eer", "0,0.5,", "1,0.4,0.2"]
    assert "lr: 0.1" in (tmp_path / "csv" / "hparams.yaml").read_text()
    assert not _leftovers(tmp_path)
