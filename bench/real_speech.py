"""Real-speech benchmark: train every CPU-sized recipe on the speech corpus, report eval EERs.

    python bench/speech_corpus/build.py data/speech             # the corpus (once)
    nice -n 15 python bench/real_speech.py --root data/speech   # every recipe, seeds 0 1 2
    python bench/real_speech.py --recipes lfcc_gmm real_speech_cpu --seeds 0
    python bench/real_speech.py --report-only                   # tables from finished runs

Each (recipe, seed) is one ``train.py`` run in its own directory
``<out>/<recipe>/seed<k>`` with the recipe's time limit (``trainer.max_time``); it selects
its checkpoint on the dev split only (best dev EER) and is then scored on eval. The harness
is resumable: a run whose ``summary.json`` says ``completed`` is skipped, an interrupted
one is continued with ``resume=true``. Results are read from each run's ``summary.json``
(eval EER overall and per attack) and written, as mean and standard deviation over the
seeds, to ``bench/results/real_speech.json`` and a markdown table (``real_speech.md``,
also spliced into README.md between the ``real-speech-table`` markers). Unseen attacks are
those of the eval protocol absent from the train and dev protocols. ``time_s`` is the wall
time of the training process (fit + test), on whatever machine ran it (``machine``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spoof_lightning.atomic import write_json, write_text
from spoof_lightning.data.corpora.asvspoof2019 import official_paths

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"
MARKERS = ("<!-- real-speech-table:begin -->", "<!-- real-speech-table:end -->")

# Channel augmentation + SpecAugment, compared on dev with the recipes without them
AUGMENT = ["augment=noise", "frontend.freq_mask=6", "frontend.time_mask=20"]
# The LFCC of the ASVspoof baselines (real_speech_cpu's front-end before the 128-filter one)
LFCC20 = ["frontend.n_filter=20", "frontend.n_lfcc=20", "frontend.deltas=2"]
# name -> (what it is, train.py overrides, time limit in minutes)
RECIPES: dict[str, tuple[str, list[str], int]] = {
    "lfcc_gmm": ("LFCC-GMM (B2), 512 components", ["experiment=lfcc_gmm"], 120),
    "lfcc_gmm64": (
        "LFCC-GMM, 64 components (the held-out measurement's)",
        ["experiment=lfcc_gmm", "model.n_components=64"],
        60,
    ),
    "cqcc_gmm": ("CQCC-GMM (B1), 512 components", ["experiment=cqcc_gmm"], 120),
    "lfcc_lcnn": (
        "LFCC-LCNN-LSTM (B3), 30 epochs max",
        ["experiment=lfcc_lcnn", "trainer.max_epochs=30"],
        30,
    ),
    "default_cnn_gru": (
        "default LFCC + CNN-GRU, 30 epochs",
        ["data=speech_corpus", "trainer.max_epochs=30"],
        30,
    ),
    "res_tssdnet": (
        "Res-TSSDNet, 2 s crops, 30 epochs max",
        ["experiment=real_speech_res_tssdnet"],
        30,
    ),
    "inc_tssdnet": (
        "Inc-TSSDNet, 2 s crops, 30 epochs max",
        ["experiment=real_speech_inc_tssdnet"],
        30,
    ),
    "aasist_l": ("AASIST-L, 2 s crops, 30 epochs max", ["experiment=real_speech_aasist_l"], 30),
    "aasist_l_ft": (
        "AASIST-L fine-tuned from the released weights, 1 s crops, 10 epochs max",
        ["experiment=real_speech_aasist_l_ft"],
        30,
    ),
    "real_speech_cpu": ("real_speech_cpu (recommended)", ["experiment=real_speech_cpu"], 30),
    "real_speech_cpu_channel_aug": (
        "real_speech_cpu + channel augmentation (augment=noise)",
        ["experiment=real_speech_cpu", "augment=noise"],
        30,
    ),
    "real_speech_cpu_lfcc128": (
        "real_speech_cpu on 128 linear filters and 128 cepstra (its previous front-end)",
        ["experiment=real_speech_cpu_lfcc"],
        30,
    ),
    "real_speech_cpu_lfcc128_channel_aug": (
        "real_speech_cpu_lfcc128 + channel augmentation (augment=noise)",
        ["experiment=real_speech_cpu_lfcc", "augment=noise"],
        30,
    ),
    "real_speech_cpu_lfcc20": (
        "real_speech_cpu on the baselines' LFCC (20 filters, 20 cepstra + deltas)",
        ["experiment=real_speech_cpu_lfcc", *LFCC20],
        30,
    ),
    "real_speech_cpu_lfcc20_aug": (
        "real_speech_cpu_lfcc20 + channel augmentation and SpecAugment",
        ["experiment=real_speech_cpu_lfcc", *LFCC20, *AUGMENT],
        30,
    ),
    "real_speech_cpu_lfcc20_aug_1s": (
        "real_speech_cpu_lfcc20 + augmentation, 1 s crops, batch 16",
        [
            "experiment=real_speech_cpu_lfcc",
            *LFCC20,
            *AUGMENT,
            "data.train_crop=16000",
            "data.batch_size=16",
        ],
        30,
    ),
}


def max_time(minutes: int) -> str:
    """``trainer.max_time`` for a limit in minutes: Lightning wants DD:HH:MM:SS."""
    return f"{minutes // 1440:02d}:{minutes // 60 % 24:02d}:{minutes % 60:02d}:00"


def protocol_attacks(root: Path, split: str) -> set[str]:
    protocol, _ = official_paths(root / "LA", "LA", split)  # split: train, dev or eval
    lines = protocol.read_text().splitlines()
    return {line.split()[3] for line in lines if line.split() and line.split()[3] != "-"}


def unseen_attacks(root: Path) -> list[str]:
    seen = protocol_attacks(root, "train") | protocol_attacks(root, "dev")
    return sorted(protocol_attacks(root, "eval") - seen)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def recorded_runs(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run the harness started under ``out``, per recipe: its summary plus the timing
    (``{"status": "failed"}`` when it ended without a summary)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for recipe in RECIPES:
        for run_dir in sorted(out.glob(f"{recipe}/seed*")):
            timing = read_json(run_dir / "harness.json")
            summary = read_json(run_dir / "summary.json")
            if timing or summary:
                runs.setdefault(recipe, []).append(
                    {**(summary or {"status": "failed"}), **(timing or {})}
                )
    return runs


def run_one(
    recipe: str, seed: int, root: Path, out: Path, extra: list[str], threads: int
) -> dict[str, Any]:
    """Train (or finish) one (recipe, seed) with ``threads`` intra-op CPU threads; returns
    its summary plus the harness timing."""
    run_dir = out / recipe / f"seed{seed}"
    summary = read_json(run_dir / "summary.json")
    timing = read_json(run_dir / "harness.json") or {"time_s": 0.0}
    if summary and summary.get("status") == "completed":
        return {**summary, **timing}
    _, overrides, minutes = RECIPES[recipe]
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *overrides,
        f"data.root={root}",
        f"seed={seed}",
        f"run_name=real_speech-{recipe}-seed{seed}",
        f"hydra.run.dir={run_dir}",
        f"++trainer.max_time={max_time(minutes)}",
        "trainer.enable_progress_bar=false",
        *extra,
    ]
    if summary is not None:  # started before: continue from last.ckpt
        command.append("resume=true")
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(run_dir / "harness.log", "a") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        proc = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    timing = {
        "time_s": timing["time_s"] + time.time() - start,
        "returncode": proc.returncode,
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {threads} torch threads)",
    }
    write_json(run_dir / "harness.json", timing)
    return {**(read_json(run_dir / "summary.json") or {"status": "failed"}), **timing}


def mean_std(values: list[float]) -> dict[str, float | int]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def aggregate(runs: dict[str, list[dict[str, Any]]], unseen: list[str]) -> dict[str, Any]:
    """Per recipe: mean/std over completed seeds of dev EER, eval EER, per-attack EER, time."""
    out = {}
    for recipe, results in runs.items():
        done = [
            r
            for r in results
            if r.get("status") == "completed" and r.get("test_eer_percent") is not None
        ]
        entry: dict[str, Any] = {"description": RECIPES[recipe][0], "seeds": len(done)}
        if done:
            entry["dev_eer_percent"] = mean_std([r["best_val_eer_percent"] for r in done])
            entry["eval_eer_percent"] = mean_std([r["test_eer_percent"] for r in done])
            attacks = sorted({a for r in done for a in r["test_eer_percent_by_attack"]})
            entry["eval_eer_percent_by_attack"] = {
                a: mean_std([r["test_eer_percent_by_attack"][a] for r in done]) for a in attacks
            }
            entry["time_s"] = mean_std([r["time_s"] for r in done])
            entry["epochs"] = mean_std([float(r.get("epochs", 0)) for r in done])
        entry["runs"] = [
            {
                k: r.get(k)
                for k in (
                    "run_dir",
                    "status",
                    "best_val_eer_percent",
                    "test_eer_percent",
                    "time_s",
                    "epochs",
                    "machine",
                )
            }
            for r in results
        ]
        out[recipe] = entry
    return {"unseen_attacks": unseen, "recipes": out}


def markdown(report: dict[str, Any]) -> str:
    """The results table: mean ± std over seeds, best dev EER recipe marked."""
    recipes = {k: v for k, v in report["recipes"].items() if v["seeds"]}
    unseen = report["unseen_attacks"]
    best = min(recipes, key=lambda k: recipes[k]["dev_eer_percent"]["mean"], default=None)
    head = [
        "recipe",
        "seeds",
        "dev EER %",
        "eval EER %",
        *[f"{a} (unseen)" for a in unseen],
        "time / run",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(stat: dict[str, float]) -> str:
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}"

    for name, entry in recipes.items():
        by_attack = entry["eval_eer_percent_by_attack"]
        minutes = entry["time_s"]["mean"] / 60
        label = f"**{name}**" if name == best else name
        row = [
            label,
            str(entry["seeds"]),
            cell(entry["dev_eer_percent"]),
            cell(entry["eval_eer_percent"]),
            *[cell(by_attack[a]) if a in by_attack else "" for a in unseen],
            f"{minutes:.1f} min",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def splice_readme(table: str) -> None:
    """Replace the text between the README markers with ``table`` (if the markers exist)."""
    text = README.read_text()
    begin, end = MARKERS
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_text(README, f"{head}{begin}\n{table}{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "speech")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "real_speech")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per run (1: these small models gain little from more, and on a "
        "shared machine more threads spin against other jobs)",
    )
    parser.add_argument("--report-only", action="store_true", help="no training")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every run")
    args = parser.parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    if not (root / "LA").is_dir():
        parser.error(f"no corpus at {root}/LA: build it with bench/speech_corpus/build.py")
    if not args.report_only:
        for recipe in args.recipes:
            for seed in args.seeds:
                result = run_one(recipe, seed, root, out, args.overrides, args.threads)
                print(
                    f"{recipe} seed {seed}: {result and result.get('status')} "
                    f"eval EER {result and result.get('test_eer_percent')}",
                    flush=True,
                )
    runs = recorded_runs(out)  # every run under out, not only those of this call
    report = aggregate(runs, unseen_attacks(root))
    write_json(RESULTS / "real_speech.json", report)
    table = markdown(report)
    write_text(RESULTS / "real_speech.md", table)
    if not args.no_readme:
        splice_readme(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
