"""The GPU check's measurements (see bench/gpu_check.py, which runs each part in its own
process with a time limit). Every part takes a :class:`Context` and emits JSON records.

Training runs go through this project's own machinery, as train.py uses it: the experiment
config composed by Hydra, ``apply_micro_batches``, ``trainer_arguments`` (precision, bf16
fallback), ``detector_from_config``, ``compile_model``, a Lightning Trainer from the trainer
preset, and the callbacks train.py always adds. Throughput runs feed synthetic batches from
memory (pinned), so they time the training step and not the disk.
"""

from __future__ import annotations

import copy
import gc
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from bench.gpu_report import PRECISIONS
from bench.model_throughput import compose_config
from spoof_lightning.callbacks.nonfinite import NonFiniteGuard
from spoof_lightning.training import (
    apply_micro_batches,
    compile_model,
    detector_from_config,
    trainer_arguments,
)

GIB = 2**30
# Presets that change a recipe so that it fits a 4 GiB GPU, measured beside it.
SMALL_GPU_PRESETS = {
    "ssl_aasist_la21": "ssl_aasist_la21_small_gpu",
    "se_res2net50_cqt_la19": "se_res2net50_cqt_la19_small_gpu",
}
# --smoke: CPU-sized versions of every recipe (tiny crop, tiny wav2vec2).
SMOKE_OVERRIDES = [
    "trainer.accelerator=cpu",
    "data.train_crop=8000",
    "data.eval_crop=8000",
    "frontend.encoder_num_layers=2",
]


@dataclass
class Context:
    """What a part needs: where to write, how big to be, and until when it may run."""

    device: str
    smoke: bool
    deadline: float
    emit: Callable[[dict[str, Any]], None]
    demo_root: Path | None = None
    official_dir: Path | None = None
    workers: list[int] = field(default_factory=lambda: [0, 4, 8])

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def left(self) -> float:
        return self.deadline - time.time()

    def compose(self, name: str, *overrides: str) -> Any:
        extra = [o for o in SMOKE_OVERRIDES if self.smoke and _applies(name, o)]
        run_dir = f"paths.run_dir=/tmp/gpu_check_run_{os.getpid()}"  # data reports land here
        return compose_config(name, [*extra, run_dir, *overrides])[0]


def _applies(name: str, override: str) -> bool:
    return not override.startswith("frontend.encoder") or name.startswith("ssl")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float]:
    if not torch.cuda.is_available():
        return {}
    return {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 3),
    }


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 matrix products and convolutions on or off for the block (restored after).

    The legacy flags; torch >= 2.9 refuses to mix them with its newer ``fp32_precision``
    settings, so those are used when something set them first.
    """
    try:
        old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
        legacy = True
    except RuntimeError:
        matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
        old = matmul.fp32_precision, conv.fp32_precision
        matmul.fp32_precision = conv.fp32_precision = "tf32" if enabled else "ieee"
        legacy = False
    try:
        yield
    finally:
        if legacy:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
        else:
            matmul.fp32_precision, conv.fp32_precision = old


# ------------------------------------------------------------------ training machinery


class RepeatedBatch(Dataset):
    """One collated batch, ``length`` times: data costs nothing, the step is timed."""

    def __init__(self, batch: dict[str, Any], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batch


def synthetic_loader(batch: int, crop: int, length: int, seed: int = 0) -> DataLoader:
    """Random audio-like batches as the datamodule collates them, pinned when CUDA is there."""
    generator = torch.Generator().manual_seed(seed)
    waveform = 0.1 * torch.randn(batch, crop, generator=generator)
    if torch.cuda.is_available():
        waveform = waveform.pin_memory()
    labels = torch.arange(batch) % 2
    item = {
        "waveform": waveform,
        "label": labels,
        "utt_id": [f"u{i}" for i in range(batch)],
        "attack": ["-" if y else "A01" for y in labels.tolist()],
    }
    return DataLoader(RepeatedBatch(item, length), batch_size=None)


class StepTimer(L.Callback):
    """Times training batches ``warmup`` to ``warmup + steps - 1`` (synchronised), takes the
    peak GPU memory over them, and keeps every batch's loss (as tensors: no extra syncs)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.seconds = math.nan
        self.memory: dict[str, float] = {}
        self.losses: list[torch.Tensor] = []
        self.first_step_s = math.nan
        self._t0 = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self._t0 = time.perf_counter()
        if batch_idx == self.warmup:
            sync()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach())
        if batch_idx == 0:
            sync()
            self.first_step_s = time.perf_counter() - self._t0
        if batch_idx == self.warmup + self.steps - 1:
            sync()
            self.seconds = time.perf_counter() - self._t0
            self.memory = peak_memory()

    def loss_values(self) -> list[float]:
        return [float(loss) for loss in self.losses]


def fit(cfg: Any, loader: Any, max_steps: int, callbacks: list, module=None):
    """Fit ``max_steps`` optimizer steps as train.py would (no validation, no checkpoints)."""
    cfg = copy.deepcopy(cfg)
    apply_micro_batches(cfg)
    kwargs, options = trainer_arguments(cfg)
    if module is None:
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
        module = detector_from_config(cfg)
    compile_model(module, options["compile"])
    kwargs.update(
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer = instantiate(kwargs, callbacks=[*callbacks, NonFiniteGuard()], logger=False)
    try:
        trainer.fit(module, train_dataloaders=loader)
    finally:  # nothing of this run may count in the next one's memory
        module.zero_grad(set_to_none=True)
        module.trainer = None
    return trainer, module


def throughput(cfg: Any, module: Any, warmup: int, steps: int) -> dict[str, Any]:
    """Samples/s and peak memory of the training step at the config's batch and crop."""
    batch, crop = int(cfg.data.batch_size), int(cfg.data.train_crop)
    timer = StepTimer(warmup, steps)
    trainer, _ = fit(cfg, synthetic_loader(batch, crop, warmup + steps), warmup + steps, [timer])
    losses = timer.loss_values()
    return {
        "precision": str(trainer.precision),
        "batch_size": batch,
        "crop": crop,
        "steps": steps,
        "step_ms": round(1000 * timer.seconds / steps, 2),
        "samples_per_s": round(batch * steps / timer.seconds, 1),
        "first_step_s": round(timer.first_step_s, 2),
        "finite_losses": all(math.isfinite(x) for x in losses),
        **timer.memory,
    }


def guarded(ctx: Context, record: dict[str, Any], run: Callable[[], dict[str, Any]]) -> None:
    """Emit ``record`` with what ``run`` measured, or with the error (OOM included)."""
    try:
        record |= run()
    except Exception as err:  # one failing case must not end the part
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    free_memory()
    ctx.emit(record)


# ------------------------------------------------------------------ parts


def part_recipe(ctx: Context, name: str) -> None:
    """Throughput and peak memory per precision at the recipe's batch; then trainer=small_gpu
    at an effective batch of 32 (and the recipe's small-GPU preset, if it has one)."""
    warmup, steps = (1, 1) if ctx.smoke else (3, 10)
    precisions = ["32-true", "bf16-mixed"] if ctx.smoke else list(PRECISIONS)
    batch = ["data.batch_size=2"] if ctx.smoke else []
    base = ctx.compose(name, *batch)
    L.seed_everything(int(base.seed), verbose=False)
    module = detector_from_config(base)
    initial = copy.deepcopy(module.state_dict())
    params = sum(p.numel() for p in module.parameters())
    for precision in precisions:
        record = {"part": "throughput", "recipe": name, "params": params}
        if ctx.left() < 5:
            ctx.emit({**record, "precision": precision, "skipped": "time budget"})
            continue
        module.load_state_dict(initial)
        cfg = ctx.compose(name, *batch, f"trainer.precision={precision}")
        guarded(ctx, record, lambda cfg=cfg: throughput(cfg, module, warmup, steps))
    small = ["data.batch_size=4", "trainer.micro_batch_size=2"] if ctx.smoke else []
    for experiment in (name, SMALL_GPU_PRESETS.get(name)):
        if experiment is None:
            continue
        record = {"part": "small_gpu", "recipe": name, "experiment": experiment}
        if ctx.left() < 5:
            ctx.emit({**record, "skipped": "time budget"})
            continue
        overrides = ["trainer=small_gpu", "data.batch_size=32", *small]
        cfg = ctx.compose(experiment, *overrides)
        reuse = module if experiment == name else None  # a preset builds its own
        if reuse is not None:
            reuse.load_state_dict(initial)
        guarded(ctx, record, lambda cfg=cfg, reuse=reuse: small_gpu(cfg, reuse))


def small_gpu(cfg: Any, module: Any) -> dict[str, Any]:
    """Peak memory of two optimizer steps (micro-batches with accumulation) from a clean start."""
    probe = copy.deepcopy(cfg)
    apply_micro_batches(probe)
    micro, accumulation = int(probe.data.batch_size), int(probe.trainer.accumulate_grad_batches)
    free_memory()
    loader = synthetic_loader(micro, int(cfg.data.train_crop), 2 * accumulation)
    trainer, module = fit(cfg, loader, 2, [], module=module)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    memory = peak_memory()
    return {
        "precision": str(trainer.precision),
        "effective_batch": micro * accumulation,
        "micro_batch": micro,
        "accumulation": accumulation,
        "trainable_params": trainable,
        **memory,
        "fits_4gib": memory["peak_reserved_gib"] <= 4.0 if memory else None,
    }
