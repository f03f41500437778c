"""One prepared check of every seed recipe on one GPU: precision, memory, speed, data feeding.

    python3 bench/gpu_check.py --out DIR [--budget 420] [--official-aasist .official_aasist]
    python bench/gpu_check.py --out /tmp/gpu_smoke --smoke     # every code path, CPU, tiny

It runs with what a lent GPU machine offers, nothing more: that machine's own python3 and
torch (2.11 when this was written), lightning and torchmetrics; this project on PYTHONPATH
(not installed, no dependencies resolved); the pure-Python packages the project needs and
the machine lacks (hydra-core, omegaconf, antlr4-python3-runtime, nnAudio, soundfile,
cffi, pycparser) carried as wheels in .whl/. Nothing is downloaded: the demo corpus is
generated at start, in the background. bench/gpu_check.md has the exact command.

Parts, most important first, each in its own process with a time limit (one over its limit
is stopped and recorded as such; the others go on):

- ``recipe:<experiment>`` for the seven seed recipes: training samples/s and peak memory at
  the recipe's batch in 32-true, 16-mixed and bf16-mixed; then trainer=small_gpu at an
  effective batch of 32 (peak memory; target <= 4 GiB), and the recipe's small-GPU preset;
- ``agreement``: the official AASIST / AASIST-L checkpoints under TF32, bf16 and fp16
  autocast against fp32: logits and EER on the demo eval set;
- ``official``: the official AASIST training loop (fp32) against train.py's (bf16-mixed);
- ``feeding``: real train.py runs reading flac with data.num_workers 0 / 4 / 8;
- ``loss_curves``: a short AASIST run in fp32, bf16-mixed and 16-mixed;
- ``compile``: torch.compile speed-up and agreement (last: it may take the longest).

DIR gets gpu_check.json (every record), gpu_check.md (the tables) after every part, and
gpu_check.log (everything the parts printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/gpu_check.py` puts bench/ first, not the repo
    sys.path.insert(0, str(REPO))

from bench.gpu_report import RECIPES, markdown  # noqa: E402

# Time limits (s) of the parts; the recipes' default is 35 s.
# (on an H200 the 2026-11-27 run needed 32 s for AASIST, 45 s for SE-Res2Net50 without its
# small-GPU rows, 69 s for SSL-AASIST; see bench/results/)
RECIPE_LIMITS = {
    "aasist_la19": 40,
    "aasist_l_la19": 40,
    "se_res2net50_cqt_la19": 75,
    "ssl_aasist_la21": 90,
}
# (part, time limit in seconds, needs the demo corpus)
PARTS = [
    ("env", 30, False),
    *((f"recipe:{name}", RECIPE_LIMITS.get(name, 35), False) for name in RECIPES),
    ("agreement", 45, True),
    ("official", 45, False),
    ("feeding", 100, True),
    ("loss_curves", 50, True),
    ("compile", 150, False),
]
DEMO_SIZES = {"n_train": 960, "n_dev": 20, "n_eval": 300}
SMOKE_DEMO_SIZES = {"n_train": 64, "n_dev": 10, "n_eval": 40}
TAG = "[gpu_check]"


def log(message: str) -> None:
    print(f"{TAG} {time.strftime('%H:%M:%S')} {message}", flush=True)


# ------------------------------------------------------------------ inside a part's process


def run_part(args: argparse.Namespace) -> None:
    """Child process: run one part, appending each record to ``args.records`` as it comes."""
    import logging

    import torch

    from bench.gpu_feed import part_feeding
    from bench.gpu_numerics import part_agreement, part_compile, part_loss_curves, part_official
    from bench.gpu_parts import Context, part_recipe

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    records = open(args.records, "a")  # noqa: SIM115 (kept open for the process's life)

    def emit(record: dict[str, Any]) -> None:
        records.write(json.dumps(record) + "\n")
        records.flush()
        brief = {k: v for k, v in record.items() if k not in ("losses", "part")}
        log(f"{args.part}: {json.dumps(brief)[:400]}")

    ctx = Context(
        device=args.device,
        smoke=args.smoke,
        deadline=args.deadline,
        emit=emit,
        demo_root=Path(args.demo_root),
        official_dir=Path(args.official_aasist) if args.official_aasist else None,
        workers=args.workers,
    )
    if args.device.startswith("cuda:"):  # plain "cuda" is the current device already
        torch.cuda.set_device(torch.device(args.device))
    name, _, arg = args.part.partition(":")
    parts = {
        "env": lambda: emit(environment(args.device)),
        "recipe": lambda: part_recipe(ctx, arg),
        "agreement": lambda: part_agreement(ctx),
        "official": lambda: part_official(ctx),
        "feeding": lambda: part_feeding(ctx),
        "loss_curves": lambda: part_loss_curves(ctx),
        "compile": lambda: part_compile(ctx),
    }
    parts[name]()


def environment(device: str) -> dict[str, Any]:
    """Versions, the GPU, its default float32 settings, and two measured ceilings."""
    import lightning
    import torch

    env: dict[str, Any] = {
        "part": "env",
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if not device.startswith("cuda"):
        return env
    props = torch.cuda.get_device_properties(torch.device(device))
    env |= {
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }
    with contextlib.suppress(RuntimeError):  # torch >= 2.9 may refuse the legacy flags
        env["default_matmul_tf32"] = torch.backends.cuda.matmul.allow_tf32
        env["default_cudnn_tf32"] = torch.backends.cudnn.allow_tf32
        env["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    try:
        smi = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        env["driver"] = subprocess.run(
            smi, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        env["driver"] = "nvidia-smi not available"
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    src = torch.randn(2**28, device=device)  # 1 GiB
    dst = torch.empty_like(src)
    for _ in range(3):
        a @ b
        dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    env["bf16_matmul_tflops"] = round(10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12)
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    env["copy_tb_per_s"] = round(10 * 2 * 2**30 / (time.perf_counter() - start) / 1e12, 2)
    return env


# ------------------------------------------------------------------ the driver


# The part (and demo build) processes running now: a SIGTERM to the driver (an outer
# `timeout`) ends them too, so that nothing keeps the GPU after the command returns.
RUNNING: list[subprocess.Popen] = []


def stop_running(signum: int, frame: Any) -> None:
    for proc in RUNNING:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    log(f"stopped by signal {signum}; the parts done so far are in the report")
    raise SystemExit(128 + signum)


def forward_output(proc: subprocess.Popen, logfile: Any, tail: list[str]) -> None:
    """Copy a part's output into the log; echo its progress lines; keep its last lines."""
    for line in proc.stdout:
        logfile.write(line)
        logfile.flush()
        if line.startswith(TAG):
            print(line, end="", flush=True)
        tail.append(line.rstrip())
        del tail[:-8]


def launch_part(args, part: str, timeout: float, records: Path, logfile) -> dict[str, Any]:
    """Run one part in a child process, stopped at ``timeout`` s; returns its status."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--out",
        args.out,
        "--part",
        part,
        "--records",
        str(records),
        "--deadline",
        str(time.time() + timeout - 3),
        "--device",
        args.device,
        "--demo-root",
        args.demo_root,
        "--official-aasist",
        args.official_aasist or "",
        "--workers",
        *map(str, args.workers),
        *(["--smoke"] if args.smoke else []),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    start = time.time()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )
    RUNNING.append(proc)
    tail: list[str] = []
    reader = threading.Thread(target=forward_output, args=(proc, logfile, tail), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its group: the part and what it started
        proc.wait()
        status = f"stopped at its time limit ({timeout:.0f} s)"
    reader.join(timeout=5)
    RUNNING.remove(proc)
    result = {"status": status, "seconds": round(time.time() - start, 1)}
    if proc.returncode != 0:
        result["last_output"] = tail[-3:]
        log(f"{part}: {status}; last output: {' | '.join(tail[-3:])[-600:]}")
    return result


def build_demo(args: argparse.Namespace, logfile) -> subprocess.Popen:
    sizes = SMOKE_DEMO_SIZES if args.smoke else DEMO_SIZES
    code = (
        "from spoof_lightning.data.demo import ensure_demo_corpus; "
        f"ensure_demo_corpus({args.demo_root!r}, **{sizes!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=logfile, stderr=logfile, process_group=0
    )
    RUNNING.append(proc)
    return proc


def write_report(out: Path, report: dict[str, Any]) -> None:
    """gpu_check.json and gpu_check.md, each written beside and renamed into place."""
    try:
        tables = markdown(report)
    except Exception as err:  # the JSON must still be written, and the next parts run
        tables = f"# GPU check\n\nthe tables could not be made ({type(err).__name__}: {err})\n"
    for name, text in (
        ("gpu_check.json", json.dumps(report, indent=1) + "\n"),
        ("gpu_check.md", tables),
    ):
        partial = out / f".{name}.partial"
        partial.write_text(text)
        os.replace(partial, out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the JSON, markdown and log")
    parser.add_argument("--budget", type=float, default=420, help="seconds for all parts")
    parser.add_argument("--parts", nargs="+", help="run only these parts (names as above)")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: test the code")
    parser.add_argument("--device", default=None, help="cuda (default) or cpu (--smoke)")
    parser.add_argument(
        "--official-aasist",
        default=str(REPO / ".official_aasist"),
        help="folder with the official models/AASIST.py (clovaai/aasist, MIT) "
        "and AASIST.pth / AASIST-L.pth; parts that need it are skipped without",
    )
    parser.add_argument("--demo-root", help="default /tmp/gpu_check_demo[_smoke]")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8])
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every part's time limit (e.g. for a slow CPU smoke run)",
    )
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--records", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.demo_root = args.demo_root or "/tmp/gpu_check_demo" + ("_smoke" if args.smoke else "")
    if args.part:
        run_part(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    official = Path(args.official_aasist) if args.official_aasist else None
    if official is None or not (official / "AASIST.py").is_file():
        args.official_aasist = None
    deadline = time.time() + args.budget
    signal.signal(signal.SIGTERM, stop_running)
    signal.signal(signal.SIGINT, stop_running)
    report: dict[str, Any] = {"command": sys.argv, "parts": {}, "records": []}
    logfile = (out / "gpu_check.log").open("a")
    log(f"GPU check: budget {args.budget:.0f} s, device {args.device}, out {out}")
    selected = [
        (part, limit, needs_demo)
        for part, limit, needs_demo in PARTS
        if not args.parts or part in args.parts or part.split(":")[0] in args.parts
    ]
    demo = build_demo(args, logfile) if any(needs for *_, needs in selected) else None
    for part, limit, needs_demo in selected:
        if part in ("agreement", "official") and args.official_aasist is None:
            report["parts"][part] = {"status": "skipped: no --official-aasist folder"}
            continue
        if needs_demo and demo.poll() is None:
            log(f"{part}: waiting for the demo corpus")
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.wait(timeout=max(deadline - time.time() - 15, 1))
        if needs_demo and demo.returncode != 0:
            report["parts"][part] = {
                "status": f"skipped: demo corpus not built ({demo.returncode})"
            }
            continue
        left = deadline - time.time()
        if left < 15:
            report["parts"][part] = {"status": f"skipped: {left:.0f} s of the budget left"}
            continue
        limit *= args.time_scale
        log(f"{part}: start (limit {min(limit, left):.0f} s)")
        records = out / ".records.jsonl"
        records.unlink(missing_ok=True)
        report["parts"][part] = launch_part(args, part, min(limit, left), records, logfile)
        if records.is_file():
            report["records"] += [json.loads(x) for x in records.read_text().splitlines() if x]
            records.unlink()
        write_report(out, report)
    if demo is not None and demo.poll() is None:
        demo.kill()
    write_report(out, report)
    log(f"done; {out / 'gpu_check.md'}")
    print((out / "gpu_check.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
