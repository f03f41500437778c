"""Streaming dataset: (rank, worker) sharding, equal lengths, shards, bad data."""

import csv
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from spoof_lightning.data import streaming
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.dataset import ItemTransform, collate
from spoof_lightning.data.protocols import load_split
from spoof_lightning.data.shards import main as shards_main
from spoof_lightning.data.shards import write_shards
from spoof_lightning.data.streaming import (
    FileSource,
    ShardSource,
    StreamingDataset,
    StreamLoader,
)
from tests.corpora import make_asvspoof2019

CROP = 400


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    counts = {"train": (4, 8), "dev": (2, 3), "eval": (2, 2)}
    return make_asvspoof2019(tmp_path_factory.mktemp("stream"), "LA", counts=counts)


def dataset(source, rank: int, world: int, **kw) -> StreamingDataset:
    transform = ItemTransform(crop=CROP, train=kw.pop("train", True))
    kw = {"shuffle": True, "seed": 1, "shuffle_buffer": 3, **kw}
    return StreamingDataset(source, transform, rank=rank, world_size=world, **kw)


def run_epoch(monkeypatch, make, world=2, workers=2, epoch=0) -> dict[tuple[int, int], list]:
    """Items of every (rank, worker) stream, simulating workers with get_worker_info."""
    out = {}
    for rank in range(world):
        ds = make(rank, world)
        ds.num_workers = workers
        ds.set_epoch(epoch)
        for w in range(workers):
            info = SimpleNamespace(id=w, num_workers=workers)
            monkeypatch.setattr(streaming, "get_worker_info", lambda info=info: info)
            out[rank, w] = [item["utt_id"] for item in ds]
    return out


def test_every_sample_once_per_epoch_2_ranks_2_workers(corpus, monkeypatch):
    source = FileSource(load_split("asvspoof2019_la", corpus, "train"), 16000)
    ids = {u.utt_id for u in source.utterances}
    epochs = [run_epoch(monkeypatch, lambda r, w: dataset(source, r, w), epoch=e) for e in (0, 1)]
    for streams in epochs:
        seen = [u for items in streams.values() for u in items]
        assert sorted(seen) == sorted(ids)  # 12 samples, 4 streams: exactly once
        assert {len(items) for items in streams.values()} == {3}
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    again = run_epoch(monkeypatch, lambda r, w: dataset(source, r, w), epoch=1)
    assert again == epochs[1]  # and reproducible


@pytest.mark.parametrize(("uneven", "per_stream"), [("wrap", 2), ("drop", 1)])
def test_uneven_split_gives_equal_streams(corpus, monkeypatch, uneven, per_stream):
    source = FileSource(load_split("asvspoof2019_la", corpus, "val"), 16000)  # 5 samples
    streams = run_epoch(monkeypatch, lambda r, w: dataset(source, r, w, uneven=uneven))
    assert {len(items) for items in streams.values()} == {per_stream}
    counts = Counter(u for items in streams.values() for u in items)
    if uneven == "wrap":
        assert set(counts) == {u.utt_id for u in source.utterances}
        assert sum(counts.values()) - len(counts) == 3  # < streams duplicates
    else:
        assert set(counts.values()) == {1} and len(counts) == 4


def test_shards_exactly_once_and_same_items_as_files(corpus, tmp_path, monkeypatch):
    entries = load_split("asvspoof2019_la", corpus, "train")
    index = write_shards(entries, tmp_path / "train", shard_size=5)  # shards of 5, 5, 2
    info = json.loads(index.read_text())
    assert [s["count"] for s in info["shards"]] == [5, 5, 2] and info["total"] == 12
    source = ShardSource(index, 16000)
    assert [u.utt_id for u in source.utterances()] == [u.utt_id for u in entries]
    streams = run_epoch(monkeypatch, lambda r, w: dataset(source, r, w))
    seen = [u for items in streams.values() for u in items]
    assert sorted(seen) == sorted(u.utt_id for u in entries)
    # unshuffled, single stream: the same waveforms and labels as the files give
    from_shards = list(dataset(source, 0, 1, shuffle=False, train=False))
    from_files = list(dataset(FileSource(entries, 16000), 0, 1, shuffle=False, train=False))
    for a, b in zip(from_shards, from_files, strict=True):
        assert (a["utt_id"], a["label"], a["attack"]) == (b["utt_id"], b["label"], b["attack"])
        torch.testing.assert_close(a["waveform"], b["waveform"], rtol=0, atol=0)


def test_real_workers_equal_batches_per_rank(corpus):
    source = FileSource(load_split("asvspoof2019_la", corpus, "val"), 16000)  # 5 samples
    per_rank = []
    for rank in range(2):
        ds = dataset(source, rank, 2)
        loader = StreamLoader(
            ds, batch_size=2, num_workers=2, collate_fn=collate, persistent_workers=True
        )
        assert ds.samples_per_rank() == 4  # 2 workers x ceil(5 / 4 streams)
        epochs = [[b["utt_id"] for b in loader] for _ in range(2)]
        assert all(len(batches) == len(loader) for batches in epochs)
        per_rank.append(epochs)
    assert len(per_rank[0][0]) == len(per_rank[1][0]) == 2  # 2 workers x ceil(2 / 2)
    for epoch in range(2):
        seen = {u for rank in per_rank for batch in rank[epoch] for u in batch}
        assert seen == {u.utt_id for u in source.utterances}
    assert per_rank[0][0] != per_rank[0][1]  # persistent workers saw the new epoch


def test_bad_samples_are_replaced_in_stream(corpus, tmp_path, monkeypatch):
    entries = load_split("asvspoof2019_la", corpus, "train")
    index = write_shards(entries, tmp_path / "s", shard_size=4)
    shard = tmp_path / "s" / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:3000])  # damaged mid-shard
    bad = tmp_path / "bad.csv"
    source = ShardSource(index, 16000)
    streams = run_epoch(
        monkeypatch, lambda r, w: dataset(source, r, w, on_error="skip", bad_file_log=bad)
    )
    assert {len(items) for items in streams.values()} == {3}  # lengths kept
    with open(bad, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all("shard-000001" in r["path"] for r in rows)
    strict = dataset(source, 0, 1, shuffle=False)
    with pytest.raises(Exception, match="shard-000001"):
        list(strict)


def test_shards_cli_and_datamodule(corpus, tmp_path):
    out = tmp_path / "shards"
    args = ["--corpus", "asvspoof2019_la", "--root", str(corpus), "--out", str(out)]
    shards_main([*args, "--split", "train", "val", "--shard-size", "4"])
    assert json.loads((out / "train" / "index.json").read_text())["total"] == 12
    for kind in ("stream", "shards"):
        dm = AntiSpoofDataModule(
            corpus="asvspoof2019_la",
            root=str(corpus),
            loader=kind,
            shards_root=str(out) if kind == "shards" else None,
            train_crop=CROP,
            eval_crop=CROP,
            batch_size=4,
            shuffle_buffer=8,
        )
        dm.setup("fit")
        batches = list(dm.train_dataloader())
        assert len(batches) == len(dm.train_dataloader()) == 3
        assert batches[0]["waveform"].shape == (4, CROP)
        assert batches[0]["label"].dtype == torch.long
        assert sorted(u for b in batches for u in b["utt_id"]) == sorted(
            u.utt_id for u in dm.utterances("train")
        )
        assert len(list(dm.val_dataloader())) == 2


def test_shards_cli_skip_reports_missing(corpus, tmp_path):
    root = make_asvspoof2019(tmp_path / "c", "LA", counts={"train": (2, 2)})
    next((root / "LA" / "ASVspoof2019_LA_train" / "flac").iterdir()).unlink()
    args = ["--corpus", "asvspoof2019_la", "--root", str(root), "--out", str(tmp_path / "o")]
    with pytest.raises(Exception, match="missing_file"):
        shards_main([*args, "--split", "train"])
    shards_main([*args, "--split", "train", "--on-error", "skip"])
    assert json.loads((tmp_path / "o" / "train" / "index.json").read_text())["total"] == 3
    assert "missing_file" in (tmp_path / "o" / "train" / "data_problems.csv").read_text()


class Recorder(L.LightningModule):
    """A one-parameter model that records the utterances of every training epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.epochs: list[list[tuple[str, float]]] = []

    def on_train_epoch_start(self) -> None:
        self.epochs.append([])

    def training_step(self, batch, _):
        # the first sample identifies the random crop of the item
        self.epochs[-1] += [
            (u, float(w[0])) for u, w in zip(batch["utt_id"], batch["waveform"], strict=True)
        ]
        return (self.w * batch["waveform"].mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("loader", ["map", "stream"])
def test_lightning_epochs_reshuffle_and_recrop(corpus, loader):
    dm = AntiSpoofDataModule(
        corpus="asvspoof2019_la", root=str(corpus), loader=loader, train_crop=CROP,
        batch_size=5, shuffle_buffer=4,
    )  # fmt: skip
    model = Recorder()
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    first, second = model.epochs
    assert sorted(u for u, _ in first) == sorted(u for u, _ in second)
    assert len(first) == len({u for u, _ in first}) == 12
    assert [u for u, _ in first] != [u for u, _ in second]  # new order
    assert dict(first) != dict(second)  # new random crops


def test_stream_epoch_follows_the_trainer_after_resume(corpus):
    def epoch_items(loader) -> list[tuple[str, float]]:
        batches = [zip(b["utt_id"], b["waveform"], strict=True) for b in loader]
        return [(u, float(w[0])) for batch in batches for u, w in batch]

    def make() -> AntiSpoofDataModule:
        dm = AntiSpoofDataModule(
            corpus="asvspoof2019_la", root=str(corpus), loader="stream", train_crop=CROP,
            batch_size=5, shuffle_buffer=4,
        )  # fmt: skip
        dm.setup("fit")
        return dm

    uninterrupted = make().train_dataloader()
    epochs = [epoch_items(uninterrupted) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    resumed = make()  # a run resumed at epoch 2: Lightning never calls the loader's set_epoch
    resumed.trainer = SimpleNamespace(current_epoch=2, global_rank=0, world_size=1)
    assert epoch_items(resumed.train_dataloader()) == epochs[2]
