"""Data loader throughput on the demo corpus: prints JSON, one record per loader setting.

    python bench/data_throughput.py [--root data/demo] [--batch-size 32] [--epochs 1]
        [--augment none rawboost codec chain] [--augment-workers 4]

Measures what the train loader delivers (utterances/s and seconds of audio/s after
decoding, cropping to 64,600 samples and batching) for map-style, streaming (lazy
file reads) and tar-shard loading, with 0 and 2 worker processes, then for the map-style
loader with each ``conf/augment`` config and ``--augment-workers`` workers. Wall time per
epoch includes worker start-up; ``first_batch_s`` shows that latency alone. The
shards (train and val) are written to a temporary folder first (not timed). The README's target:
at least 5x what the fastest model consumes in training on the same machine: ``training_demand``
times train.py's default model (LFCC + CNN-GRU, the fastest) on random batches of the same
size, and each record's ``x_demand`` is its utterances/s over that demand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.demo import ensure_demo_corpus
from spoof_lightning.data.shards import write_shards


def measure(dm: AntiSpoofDataModule, epochs: int) -> dict[str, float]:
    dm.setup("fit")
    loader = dm.train_dataloader()
    utterances = samples = 0
    first = None
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            if first is None:
                first = time.perf_counter() - start
            utterances += len(batch["label"])
            samples += batch["waveform"].numel()
    seconds = time.perf_counter() - start
    return {
        "utterances": utterances,
        "seconds": round(seconds, 3),
        "first_batch_s": round(first or 0.0, 3),
        "utterances_per_s": round(utterances / seconds, 1),
        "audio_seconds_per_s": round(samples / dm.sample_rate / seconds, 1),
    }


CONF = Path(__file__).resolve().parents[1] / "conf"


def augmentation(name: str, sample_rate: int = 16000):
    """The transform ``augment=<name>`` builds (None for ``none``)."""
    if name == "none":
        return None
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"augment={name}", f"sample_rate={sample_rate}"])
    return instantiate(cfg.augment)


def training_demand(batch_size: int, crop: int, steps: int = 6, warmup: int = 2) -> dict:
    """Utterances/s that train.py's default model (LFCC + CNN-GRU) trains on, on random audio
    of ``crop`` samples: the loader must deliver several times this."""
    import torch
    from omegaconf import OmegaConf

    from spoof_lightning.lit.detector import Detector

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train")
    parts = ("frontend", "model", "loss", "optimizer")
    module = Detector(**{p: OmegaConf.to_container(cfg[p], resolve=True) for p in parts})
    optimizer = module.configure_optimizers()["optimizer"]
    batch = torch.randn(batch_size, crop)
    labels = torch.arange(batch_size) % 2
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = module.loss_fn(module(batch), labels)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return {
        "model": "lfcc + cnn_gru (train.py default)",
        "utterances_per_s": round(batch_size * steps / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/demo", help="demo corpus root (built if absent)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=64600)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--augment", nargs="+", default=["none", "rawboost", "codec", "chain"])
    parser.add_argument("--augment-workers", type=int, default=4)
    args = parser.parse_args()
    root = ensure_demo_corpus(args.root)
    common = {
        "corpus": "asvspoof2019_la",
        "root": str(root),
        "train_crop": args.crop,
        "batch_size": args.batch_size,
        "preflight": "exists",
    }
    demand = training_demand(args.batch_size, args.crop)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        probe = AntiSpoofDataModule(**common)
        for split in ("train", "val"):
            write_shards(probe.utterances(split), Path(tmp) / split, shard_size=100)
        for loader in ("map", "stream", "shards"):
            for workers in args.workers:
                dm = AntiSpoofDataModule(
                    **common,
                    loader=loader,
                    shards_root=tmp if loader == "shards" else None,
                    num_workers=workers,
                    persistent_workers=False,
                )
                results.append({"loader": loader, "workers": workers, **measure(dm, args.epochs)})
                print(results[-1], file=sys.stderr, flush=True)
    for name in args.augment:
        dm = AntiSpoofDataModule(
            **common, num_workers=args.augment_workers, augment=augmentation(name)
        )
        record = {"loader": "map", "workers": args.augment_workers, "augment": name}
        results.append(record | measure(dm, args.epochs))
        print(results[-1], file=sys.stderr, flush=True)
    for record in results:
        record["x_demand"] = round(record["utterances_per_s"] / demand["utterances_per_s"], 1)
    report = {
        "benchmark": "data_throughput",
        "corpus": "demo (asvspoof2019_la layout), train split",
        "train_utterances": len(probe.utterances("train")),
        "batch_size": args.batch_size,
        "crop_samples": args.crop,
        "epochs": args.epochs,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "training_demand": demand,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
