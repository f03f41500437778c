"""Data feeding on a GPU: does the loader keep it busy? (a part of bench/gpu_check.py)

A real ``train.py`` run reads the demo corpus's flac files from disk through the project's
datamodule, with ``data.num_workers`` in {0, 4, 8}. :class:`FeedTimer`, added as a callback
(``+callbacks.feed_timer._target_=bench.gpu_feed.FeedTimer``), stamps every training
batch's start and end. The time from one batch's end to the next one's start is the wait
for data (fetch, collate, host-to-device copy, loop overhead); over the time from one
batch start to the next it is the fraction of step time spent waiting. On CUDA the same is
measured on the GPU's own clock with events: the GPU is idle between finishing a batch's
work and the point where the next batch's work is queued, so that fraction is the share
of time the GPU waits (the target: at most 10 %). The host fraction alone can overstate it,
since the host may wait while the GPU still works through queued kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]


class FeedTimer(L.Callback):
    """Writes per-batch host times (and CUDA events) to ``path`` as JSON when training ends;
    the first ``skip`` batches (worker start-up, warm-up) are left out of the summary."""

    def __init__(self, path: str, skip: int = 5) -> None:
        self.path, self.skip = Path(path), skip
        self.host: list[tuple[float, float]] = []
        self.events: list[list[torch.cuda.Event]] = []
        self.batch_size = 0

    def _event(self) -> torch.cuda.Event | None:
        if not torch.cuda.is_available():
            return None
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch_size = len(batch["label"])
        self.host.append((time.perf_counter(), float("nan")))
        self.events.append([self._event(), None])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.host[-1] = (self.host[-1][0], time.perf_counter())
        self.events[-1][1] = self._event()

    def on_train_end(self, trainer, pl_module) -> None:
        self.path.write_text(json.dumps(self.summary()))

    def summary(self) -> dict[str, Any]:
        host = self.host[self.skip :]
        result: dict[str, Any] = {"batches": len(host), "batch_size": self.batch_size}
        if len(host) < 2:
            return result
        steps = [b[0] - a[0] for a, b in zip(host, host[1:], strict=False)]
        waits = [b[0] - a[1] for a, b in zip(host, host[1:], strict=False)]
        result |= {
            "step_ms": round(1000 * sum(steps) / len(steps), 2),
            "samples_per_s": round(self.batch_size * len(steps) / sum(steps), 1),
            "host_wait_fraction": round(sum(waits) / sum(steps), 4),
        }
        events = self.events[self.skip :]
        if events and events[-1][1] is not None:
            torch.cuda.synchronize()
            pairs = list(zip(events, events[1:], strict=False))
            gpu_steps = [a[0].elapsed_time(b[0]) for a, b in pairs]
            gpu_waits = [a[1].elapsed_time(b[0]) for a, b in pairs]
            result["gpu_idle_fraction"] = round(sum(gpu_waits) / sum(gpu_steps), 4)
        return result


def part_feeding(ctx: Any) -> None:
    """One short train.py run per ``data.num_workers`` setting, AASIST recipe, bf16-mixed."""
    batch, steps = (4, 8) if ctx.smoke else (24, 35)
    for workers in ctx.workers:
        record = {"part": "feeding", "num_workers": workers, "recipe": "aasist_la19"}
        if ctx.left() < 20:
            ctx.emit({**record, "skipped": "time budget"})
            continue
        out = Path(f"/tmp/gpu_check_feed_{os.getpid()}_{workers}")
        overrides = [
            "experiment=aasist_la19",
            f"data.root={ctx.demo_root}",
            f"data.batch_size={batch}",
            f"data.num_workers={workers}",
            "data.preflight=exists",
            f"++trainer.max_steps={steps}",
            "++trainer.limit_val_batches=0",
            "++trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "test_after_fit=false",
            f"paths.log_dir={out}",
            f"run_name=workers{workers}",
            "+callbacks.feed_timer._target_=bench.gpu_feed.FeedTimer",
            f"+callbacks.feed_timer.path={out}/feed.json",
            f"+callbacks.feed_timer.skip={2 if ctx.smoke else 5}",
        ]
        overrides += (
            ["trainer.accelerator=cpu", "data.train_crop=8000", "data.eval_crop=8000"]
            if ctx.smoke
            else ["trainer.precision=bf16-mixed"]
        )
        path = [str(REPO), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        env["HYDRA_FULL_ERROR"] = "1"  # the exception, not Hydra's hint, ends the output
        try:
            proc = subprocess.run(
                [sys.executable, str(REPO / "train.py"), *overrides],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=max(ctx.left() - 5, 10),
            )
            feed = out / "feed.json"
            if proc.returncode == 0 and feed.is_file():
                record |= json.loads(feed.read_text())
            else:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                record["error"] = f"train.py exit {proc.returncode}: {tail[:300]}"
        except subprocess.TimeoutExpired:
            record["error"] = "timed out"
        ctx.emit(record)
