"""Training throughput and peak memory per model x front-end, at its training crop: JSON.

    python bench/model_throughput.py                         # main pairs, CPU, batch 2
    python bench/model_throughput.py --device cuda --batch-size 0 \
        --precision 32 16-mixed bf16-mixed                   # recipe batch sizes, 3 precisions
    python bench/model_throughput.py --models aasist_la19 rawnet2_la19 --steps 5

Each entry of ``--models`` is an experiment config (conf/experiment/<name>.yaml): its
front-end, model, loss, optimizer, training crop and batch size are composed exactly as
train.py would (data is not read: the batch is random audio of the training crop length).
A training step is front-end + model forward, loss, backward and optimizer step; the first
``--warmup`` steps are not timed (on CPU the first two are several times slower than the
rest). ``samples_per_s`` = batch size x timed steps / seconds.

Every (model, precision) runs in a fresh Python process, so that memory figures are its own
and one failure (say, out of memory) is reported without stopping the others. Peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` over the timed steps (tensors only, not the
caching allocator's reserve); on CPU the growth of the process's peak resident set size
(``ru_maxrss``) over its size after the model was built (weights, activations, gradients,
optimizer state and allocator slack of the training steps).

Precisions follow Lightning's names: ``32`` (float32), ``16-mixed`` (float16 autocast with
a gradient scaler) and ``bf16-mixed`` (bfloat16 autocast). Spectral front-ends compute in
float32 under autocast by design. The SSL set-ups run with random XLS-R 300M weights
(``frontend.checkpoint=null``), which cost the same as pretrained ones.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CPU_MODELS = [
    "aasist_la19",
    "aasist_l_la19",
    "rawnet2_la19",
    "cnn_gru_la19",
    "res_tssdnet_la19",
    "inc_tssdnet_la19",
    "se_res2net50_cqt_la19",
    "se_res2net50_mel_had",
]
CUDA_MODELS = [*CPU_MODELS, "ssl_aasist_la21"]
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
EXTRA_OVERRIDES = {"ssl_aasist": ["frontend.checkpoint=null"]}  # random XLS-R weights


def compose_config(name: str, overrides: list[str] = ()) -> tuple[Any, dict[str, Any]]:
    """The config that ``train.py experiment=<name> <overrides>`` would run (without the
    hydra key; data is not read) and a few facts about it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    overrides = [f"experiment={name}", "data.root=/unused", "paths.run_dir=/unused", *overrides]
    overrides += next((v for k, v in EXTRA_OVERRIDES.items() if name.startswith(k)), [])
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    choices = HydraConfig.get().runtime.choices
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    info = {
        "frontend": str(choices["frontend"]),
        "model": str(choices["model"]),
        "crop": int(cfg.data.train_crop),
        "recipe_batch_size": int(cfg.data.batch_size),
    }
    return cfg, info


def compose_detector(name: str) -> tuple[Any, dict[str, Any]]:
    """The Detector and the plain config that ``train.py experiment=<name>`` would build."""
    from spoof_lightning.training import detector_from_config

    cfg, info = compose_config(name)
    return detector_from_config(cfg), info


def rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def measure(name: str, device: str, precision: str, batch: int, steps: int, warmup: int):
    """Time ``steps`` training steps of experiment ``name``; returns one JSON record."""
    import torch

    torch.manual_seed(0)
    module, info = compose_detector(name)
    batch = batch or info["recipe_batch_size"]
    dev = torch.device(device)
    module.to(dev).train()
    optimizer = module.configure_optimizers()["optimizer"]
    amp_dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "16-mixed")
    wave = 0.1 * torch.randn(batch, info["crop"], device=dev)
    labels = torch.arange(batch, device=dev) % 2

    def step() -> None:
        autocast = (
            torch.autocast(device_type=dev.type, dtype=amp_dtype) if amp_dtype else nullcontext()
        )
        with autocast:
            loss = module.loss_fn(module(wave), labels)["total"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    before = rss_mb()
    for _ in range(warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    if dev.type == "cuda":
        memory = {"peak_mem_mb": torch.cuda.max_memory_allocated(dev) / 2**20}
        memory["mem_kind"] = "cuda_max_allocated"
    else:
        memory = {"peak_mem_mb": peak_rss_mb() - before, "mem_kind": "cpu_peak_rss_growth"}
    return {
        "experiment": name,
        **info,
        "params": sum(p.numel() for p in module.parameters()),
        "device": device,
        "precision": precision,
        "batch_size": batch,
        "steps": steps,
        "step_s": round(seconds / steps, 4),
        "samples_per_s": round(batch * steps / seconds, 2),
        "audio_s_per_s": round(batch * steps * info["crop"] / 16000 / seconds, 1),
        "peak_mem_mb": round(memory["peak_mem_mb"], 1),
        "mem_kind": memory["mem_kind"],
    }


def run_child(args: argparse.Namespace, name: str, precision: str) -> dict[str, Any]:
    """One measurement in a fresh interpreter; an error becomes a record, not a crash."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--single",
        name,
        "--device",
        args.device,
        "--precision",
        precision,
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=args.timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"experiment": name, "device": args.device, "precision": precision, "error": error}


def environment(device: str) -> dict[str, Any]:
    import torch

    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="experiment names (default: main pairs)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: best)")
    parser.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, help="default: 32 on CPU, all on CUDA"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="0 = the recipe's batch")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (CPU 2, CUDA 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (CPU 2, CUDA 3)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per measurement")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    args.batch_size = (0 if cuda else 2) if args.batch_size is None else args.batch_size
    args.steps = args.steps or (10 if cuda else 2)
    args.warmup = (3 if cuda else 2) if args.warmup is None else args.warmup
    precisions = args.precision or (list(PRECISIONS) if cuda else ["32"])

    if args.single:  # child process: one measurement, one JSON line
        record = measure(
            args.single, args.device, precisions[0], args.batch_size, args.steps, args.warmup
        )
        print(json.dumps(record))
        return
    models = args.models or (CUDA_MODELS if cuda else CPU_MODELS)
    unknown = [m for m in models if not (REPO / "conf" / "experiment" / f"{m}.yaml").is_file()]
    if unknown:
        parser.error(f"--models: no conf/experiment/<name>.yaml for {unknown}")
    results = []
    for name in models:
        for precision in precisions:
            results.append(run_child(args, name, precision))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress
    print(json.dumps({"environment": environment(args.device), "results": results}, indent=2))


if __name__ == "__main__":
    main()
