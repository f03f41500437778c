"""What a checkpoint holds for an exact resume: the loaders' position (map-style and
streaming, with and without workers), the global RNG states, and the metrics.csv cut."""

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from spoof_lightning.callbacks.resume_state import rng_states, set_rng_states
from spoof_lightning.data.augment import Gain
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.loader import EpochLoader
from spoof_lightning.loggers import ResumableCSVLogger
from tests.corpora import make_asvspoof2019

CROP = 400


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    counts = {"train": (4, 8), "dev": (2, 3), "eval": (2, 2)}
    return make_asvspoof2019(tmp_path_factory.mktemp("resume"), "LA", counts=counts)


def train_loader(corpus: Path, loader: str, workers: int, batch_size: int = 2) -> EpochLoader:
    """12 utterances, random crops and gains; in batches of 2: 6 batches an epoch."""
    dm = AntiSpoofDataModule(
        corpus="asvspoof2019_la", root=str(corpus), loader=loader, train_crop=CROP,
        batch_size=batch_size, shuffle_buffer=3, num_workers=workers,
        persistent_workers=workers > 0, augment=Gain(p=0.5),
    )  # fmt: skip
    dm.setup("fit")
    return dm.train_dataloader()


def same_batches(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x["utt_id"] == y["utt_id"] and torch.equal(x["waveform"], y["waveform"])
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("loader", ["map", "stream"])
def test_a_restored_loader_yields_exactly_the_rest_of_the_epoch(corpus, loader, workers):
    uninterrupted = train_loader(corpus, loader, workers)
    epochs = [list(uninterrupted) for _ in range(3)]
    assert len(epochs[1]) == 6 and not same_batches(epochs[1], epochs[2])

    interrupted = train_loader(corpus, loader, workers)
    list(interrupted)  # epoch 0
    batches = iter(interrupted)
    trained = [next(batches) for _ in range(3)]  # 3 of epoch 1 (with workers: 2 + 1)
    state = interrupted.state_dict()
    assert (state["epoch"], state["batches"]) == (1, 3) and same_batches(trained, epochs[1][:3])

    resumed = train_loader(corpus, loader, workers)  # a new process, in effect
    resumed.load_state_dict(state)
    assert same_batches(list(resumed), epochs[1][3:])
    assert resumed.state_dict() == {**state, "batches": 6}
    assert same_batches(list(resumed), epochs[2])  # then whole epochs again


def test_a_position_from_another_epoch_is_not_applied(corpus):
    loader = train_loader(corpus, "map", 0)
    loader.load_state_dict({"epoch": 0, "batches": 4})
    loader.epoch_source = lambda: 1  # the trainer is already in the next epoch
    assert len(list(loader)) == 6


def test_a_position_from_other_batches_or_streams_is_flagged(corpus, caplog):
    state = train_loader(corpus, "map", 0).state_dict()
    train_loader(corpus, "map", 0, batch_size=3).load_state_dict({**state, "batches": 3})
    state = train_loader(corpus, "stream", 0).state_dict()
    train_loader(corpus, "stream", 2).load_state_dict({**state, "batches": 3})  # more streams
    assert caplog.text.count("does not continue the interrupted one exactly") == 2


def test_loading_draws_nothing_from_the_global_torch_rng(corpus):
    loader = train_loader(corpus, "map", 0)
    before = torch.get_rng_state()
    list(loader)
    assert torch.equal(torch.get_rng_state(), before)


def test_rng_states_survive_a_checkpoint(tmp_path):
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's legacy state
    path = tmp_path / "rng.pt"
    torch.save({"rng": rng_states()}, path)
    expected = (random.random(), np.random.standard_normal(3), torch.rand(3))
    set_rng_states(torch.load(path, weights_only=True)["rng"])
    drawn = (random.random(), np.random.standard_normal(3), torch.rand(3))
    assert drawn[0] == expected[0]
    np.testing.assert_array_equal(drawn[1], expected[1])
    assert torch.equal(drawn[2], expected[2])


def test_rows_logged_after_the_checkpoint_are_dropped(tmp_path):
    logger = ResumableCSVLogger(str(tmp_path), name="csv", version="")
    for step in range(5):
        logger.log_metrics({"train/loss": float(step)}, step)
    logger.log_metrics({"val/eer": 0.5}, 2)
    logger.save()
    resumed = ResumableCSVLogger(str(tmp_path), name="csv", version="")  # checkpoint: step 3
    resumed.drop_steps_from(3)
    resumed.log_metrics({"train/loss": 30.0}, 3)
    resumed.save()
    path = tmp_path / "csv" / "metrics.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["step"], r["train/loss"], r["val/eer"]) for r in rows] == [
        ("0", "0.0", ""),
        ("1", "1.0", ""),
        ("2", "2.0", ""),
        ("2", "", "0.5"),
        ("3", "30.0", ""),
    ]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.csv"]  # no partial file left
