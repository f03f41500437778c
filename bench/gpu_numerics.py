"""The GPU check's numerical parts: official checkpoints under TF32 / bf16 / fp16, loss
curves per precision, torch.compile, and the official AASIST training loop side by side
(see bench/gpu_check.py; the shared machinery is in bench/gpu_parts.py)."""

from __future__ import annotations

import importlib.util
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from bench.gpu_parts import (
    PRECISIONS,
    Context,
    StepTimer,
    fit,
    free_memory,
    sync,
    synthetic_loader,
    tf32,
)
from spoof_lightning.checkpoint import Countermeasure, load_released_weights
from spoof_lightning.contracts import scores_from_logits
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.training import detector_from_config

# clovaai/aasist config/AASIST.conf "model_config" (the official model's arguments).
OFFICIAL_AASIST_CONF = {
    "architecture": "AASIST",
    "nb_samp": 64600,
    "first_conv": 128,
    "filts": [70, [1, 32], [32, 32], [32, 64], [64, 64]],
    "gat_dims": [64, 32],
    "pool_ratios": [0.5, 0.7, 0.5, 0.5],
    "temperatures": [2.0, 2.0, 100.0, 100.0],
}


def load_official_weights(module: Any, path: Path) -> None:
    """The official weights into a Detector's front-end + model, checked against its configs."""
    load_released_weights(Countermeasure(module.frontend, module.model), path, module.hparams)


def score_set(ctx: Context) -> tuple[torch.Tensor, np.ndarray]:
    """First 64,600 samples of every demo-corpus eval utterance, and its labels."""
    from spoof_lightning.data.datamodule import AntiSpoofDataModule

    dm = AntiSpoofDataModule(
        corpus="asvspoof2019_la",
        root=str(ctx.demo_root),
        eval_crop=8000 if ctx.smoke else 64600,
        batch_size=32,
        num_workers=4,
        preflight="exists",
    )
    dm.setup("test")
    batches = list(dm.test_dataloader())
    waves = torch.cat([b["waveform"] for b in batches])
    labels = torch.cat([torch.as_tensor(b["label"]) for b in batches]).numpy()
    return waves, labels


def part_agreement(ctx: Context) -> None:
    """Official AASIST / AASIST-L weights: logits and EER under TF32, bf16 and fp16 autocast
    against fp32 (TF32 off), on the demo eval set; fp32 against the official reference logits."""
    waves, labels = score_set(ctx)
    if ctx.smoke:
        waves, labels = waves[:24], labels[:24]
    reference = ctx.official_dir / "official_outputs.npz"
    ref = np.load(reference) if reference.is_file() else None
    for variant, experiment in (("AASIST", "aasist_la19"), ("AASIST-L", "aasist_l_la19")):
        module = detector_from_config(ctx.compose(experiment))
        load_official_weights(module, ctx.official_dir / f"{variant}.pth")
        module.to(ctx.device).eval()
        logits = {}
        for mode in ("fp32", "tf32", "bf16", "fp16"):
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
            autocast = torch.autocast(ctx.device.split(":")[0], dtype=dtype) if dtype else None
            with torch.no_grad(), tf32(mode == "tf32"), autocast or nullcontext():
                logits[mode] = run_batches(module, waves, ctx.device)
                if ref is not None and mode == "fp32":
                    out = module(torch.from_numpy(ref["waveforms"]).to(ctx.device)).logits
                    official = torch.from_numpy(ref[f"{variant}_logits"])
                    ctx.emit(
                        {
                            "part": "agreement",
                            "variant": variant,
                            "mode": "fp32 vs official reference",
                            "max_abs_logit_diff": float((out.float().cpu() - official).abs().max()),
                        }
                    )
        ctx.emit(
            {
                "part": "agreement",
                "variant": variant,
                "mode": "fp32",
                **eer_of(logits["fp32"], labels),
            }
        )
        for mode in ("tf32", "bf16", "fp16"):
            ctx.emit(
                {
                    "part": "agreement",
                    "variant": variant,
                    "mode": mode,
                    "utterances": len(labels),
                    **compare_logits(logits["fp32"], logits[mode], labels),
                }
            )
        del module
        free_memory()


def run_batches(module: Any, waves: torch.Tensor, device: str, size: int = 32) -> torch.Tensor:
    outs = [
        module(waves[i : i + size].to(device)).logits.float().cpu()
        for i in range(0, len(waves), size)
    ]
    return torch.cat(outs)


def eer_of(logits: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    scores = scores_from_logits(logits).numpy()
    if not np.isfinite(scores).all():
        return {"eer_percent": math.nan, "threshold": math.nan}
    eer, threshold = compute_eer(scores[labels == 1], scores[labels == 0])
    return {"eer_percent": round(100 * eer, 3), "threshold": float(threshold)}


def compare_logits(ref: torch.Tensor, other: torch.Tensor, labels: np.ndarray) -> dict[str, Any]:
    base, new = eer_of(ref, labels), eer_of(other, labels)
    ref_scores, scores = scores_from_logits(ref), scores_from_logits(other)
    flips = ((ref_scores >= base["threshold"]) != (scores >= base["threshold"])).sum()
    return {
        "max_abs_logit_diff": float((other - ref).abs().max()),
        "rel_logit_error": float((other - ref).norm() / ref.norm()),
        "max_abs_score_diff": float((scores - ref_scores).abs().max()),
        "eer_fp32_percent": base["eer_percent"],
        "eer_percent": new["eer_percent"],
        "eer_change_pp": round(new["eer_percent"] - base["eer_percent"], 3),
        "decisions_flipped": int(flips),
        "finite": bool(torch.isfinite(other).all()),
    }


def part_loss_curves(ctx: Context) -> None:
    """The same short AASIST run (seed, init, batches from the demo corpus on disk) in fp32,
    bf16-mixed and 16-mixed: per-step losses and how far they drift from fp32."""
    steps = 4 if ctx.smoke else 40
    precisions = ["32-true", "bf16-mixed"] if ctx.smoke else list(PRECISIONS)
    curves = {}
    for precision in precisions:
        if ctx.left() < 10:
            ctx.emit({"part": "loss_curve", "precision": precision, "skipped": "time budget"})
            continue
        cfg = ctx.compose(
            "aasist_la19",
            f"data.root={ctx.demo_root}",
            "data.num_workers=4",
            "data.preflight=exists",
            f"trainer.precision={precision}",
            *(["data.batch_size=4"] if ctx.smoke else []),
        )
        timer = StepTimer(0, steps)
        try:
            fit(cfg, instantiate(cfg.data, _convert_="all"), steps, [timer])
            curves[precision] = timer.loss_values()
        except Exception as err:  # e.g. fp16 overflow stopping the run: that is a result
            message = f"{type(err).__name__}: {str(err)[:300]}"
            ctx.emit({"part": "loss_curve", "precision": precision, "error": message})
        free_memory()
    fp32 = np.array(curves.get("32-true", []))
    for precision, losses in curves.items():
        diff = np.abs(np.array(losses) - fp32) if len(fp32) == len(losses) else np.array([np.nan])
        ctx.emit(
            {
                "part": "loss_curve",
                "precision": precision,
                "steps": len(losses),
                "first_loss": round(losses[0], 4),
                "last10_mean": round(float(np.mean(losses[-10:])), 4),
                "mean_abs_diff_vs_fp32": round(float(diff.mean()), 4),
                "max_abs_diff_vs_fp32": round(float(diff.max()), 4),
                "losses": [round(x, 5) for x in losses],
            }
        )


def part_compile(ctx: Context) -> None:
    """torch.compile (trainer.compile=true) on AASIST, bf16-mixed: training speed-up, the
    compile time, losses against eager on the same batches, and fp32 eval logits (official
    weights) compiled against eager."""
    warmup, steps = (1, 2) if ctx.smoke else (3, 20)
    precision = "32-true" if ctx.smoke else "bf16-mixed"
    base = ["data.batch_size=2"] if ctx.smoke else []
    runs = {}
    for compiled in (False, True):
        # --smoke: dynamo and autograd tracing without inductor's C++ build (minutes on CPU)
        option = "{backend:aot_eager}" if ctx.smoke and compiled else str(compiled).lower()
        cfg = ctx.compose(
            "aasist_la19", *base, f"trainer.precision={precision}", f"trainer.compile={option}"
        )
        timer = StepTimer(warmup, steps)
        loader = synthetic_loader(
            int(cfg.data.batch_size), int(cfg.data.train_crop), warmup + steps
        )
        _, module = fit(cfg, loader, warmup + steps, [timer])
        runs[compiled] = (timer, module)
        ctx.emit(
            {
                "part": "compile",
                "compiled": compiled,
                "precision": precision,
                "samples_per_s": round(int(cfg.data.batch_size) * steps / timer.seconds, 1),
                "first_step_s": round(timer.first_step_s, 2),
            }
        )
    eager, compiled = (np.array(runs[c][0].loss_values()) for c in (False, True))
    ctx.emit(
        {
            "part": "compile",
            "compiled": "training losses",
            "max_abs_loss_diff": float(np.abs(eager - compiled).max()),
            "note": "inductor draws dropout masks with its own RNG: expect noise-level differences",
        }
    )
    if ctx.left() < 20 or ctx.official_dir is None:
        ctx.emit({"part": "compile", "compiled": "eval logits", "skipped": "time budget"})
        return
    crop = 8000 if ctx.smoke else 64600
    waves = 0.1 * torch.randn(8, crop, generator=torch.Generator().manual_seed(1))
    logits = []
    for _, module in runs.values():
        load_official_weights(module, ctx.official_dir / "AASIST.pth")
        module.to(ctx.device).eval()
        with torch.no_grad(), tf32(False):
            logits.append(run_batches(module, waves, ctx.device, size=8))
    diff = (logits[0] - logits[1]).abs().max()
    ctx.emit(
        {
            "part": "compile",
            "compiled": "eval logits (fp32, official weights)",
            "max_abs_eval_logit_diff_fp32": float(diff),
        }
    )


def load_official_model(directory: Path) -> type:
    """``Model`` from the official models/AASIST.py in ``directory`` (never in this repository)."""
    spec = importlib.util.spec_from_file_location("official_aasist", directory / "AASIST.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Model


def official_steps(ctx: Context, loader: DataLoader, warmup: int, steps: int, deterministic: bool):
    """The official training loop (clovaai/aasist main.py ``train_epoch``): its model, weighted
    CE [0.1, 0.9], Adam 1e-4 with per-batch cosine decay, fp32, ``loss.item()`` every batch."""
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, False
    model = load_official_model(ctx.official_dir)(OFFICIAL_AASIST_CONF).to(ctx.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=100 * 1000, eta_min=5e-6
    )
    criterion = torch.nn.CrossEntropyLoss(weight=torch.FloatTensor([0.1, 0.9]).to(ctx.device))
    start = time.perf_counter()
    for i, batch in enumerate(loader):
        if i == warmup:
            sync()
            start = time.perf_counter()
        x = batch["waveform"].to(ctx.device)
        y = batch["label"].view(-1).type(torch.int64).to(ctx.device)
        _, out = model(x, Freq_aug=False)
        loss = criterion(out, y)
        _ = loss.item() * x.size(0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    sync()
    torch.backends.cudnn.deterministic = False
    return time.perf_counter() - start


def part_official(ctx: Context) -> None:
    """Side by side at AASIST's batch (24 x 64,600): the official training loop in fp32 and
    this project's train.py machinery in bf16-mixed (and fp32), same in-memory batches."""
    warmup, steps = (1, 2) if ctx.smoke else (3, 12)
    batch = 2 if ctx.smoke else 24
    crop = 8000 if ctx.smoke else 64600
    rates = {}
    for deterministic in (True, False):
        loader = synthetic_loader(batch, crop, warmup + steps)
        seconds = official_steps(ctx, loader, warmup, steps, deterministic)
        key = "official_fp32" + ("" if deterministic else "_cudnn_nondeterministic")
        rates[key] = batch * steps / seconds
        free_memory()
    for precision in ("bf16-mixed", "32-true"):
        cfg = ctx.compose(
            "aasist_la19", f"data.batch_size={batch}", f"trainer.precision={precision}"
        )
        timer = StepTimer(warmup, steps)
        fit(cfg, synthetic_loader(batch, crop, warmup + steps), warmup + steps, [timer])
        rates[f"ours_{precision}"] = batch * steps / timer.seconds
        free_memory()
    ctx.emit(
        {
            "part": "official",
            "batch_size": batch,
            "crop": crop,
            **{f"{k}_samples_per_s": round(v, 1) for k, v in rates.items()},
            "ratio_ours_bf16_vs_official_fp32": round(
                rates["ours_bf16-mixed"] / rates["official_fp32"], 3
            ),
            "note": "official loop with its config's cudnn flags (deterministic, no benchmark)",
        }
    )
