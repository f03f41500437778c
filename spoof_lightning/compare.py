"""Compare runs from their local run directories (no W&B needed).

    spoof-lightning compare logs/multiruns/demo_sweep
    spoof-lightning compare 'logs/runs/*' --csv runs.csv --md runs.md
    spoof-lightning compare logs/multiruns/seeds --by-seed [--asv-scores FILE]

Every argument is a run directory, a folder searched for run directories (any depth: all
versions ``<run_name>/v<N>`` of a name) or a glob. A run directory is one with
``summary.json`` (written by train.py); the final training loss comes from its
``csv/metrics.csv``. The table is sorted by best validation EER; runs that did not complete
come last.

``--by-seed`` groups the completed runs that differ only in ``seed`` (same config-group
choices and the same overrides once ``seed``, ``resume``, ``run_name``, ``hydra.*`` and
``paths.*`` are left out; read from summary.json, never from directory names) and reports,
per configuration and per attack, the mean, sample standard deviation (n - 1), min and max
over seeds of the test EER (%) and, where available, the min t-DCF. The min t-DCF comes
from the run's ``test_metrics.json`` when it has one, or is computed from the run's test
score file (ASVspoof 2019 CM format) with ``--asv-scores`` (an organisers' 2019 ASV score
file; ``--tdcf`` picks the form).
"""

import csv
import glob
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from spoof_lightning.atomic import write_text
from spoof_lightning.cli import CommandParser
from spoof_lightning.metrics.report import evaluate_rows
from spoof_lightning.metrics.scores import read_asv_scores_2019, read_cm_scores_2019
from spoof_lightning.metrics.tdcf import AsvScores
from spoof_lightning.rundir import run_label

SUMMARY = "summary.json"
CHOICE_COLUMNS = ("data", "frontend", "model", "loss")
COLUMNS = (
    "run",
    "status",
    *CHOICE_COLUMNS,
    "overrides",
    "epochs",
    "global_step",
    "parameters",
    "final_train_loss",
    "best_val_eer_percent",
    "test_eer_percent",
    "error",
    "run_dir",
)


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories (holding ``summary.json``) named by, or found under, ``paths``."""
    found: set[Path] = set()
    for pattern in paths:
        matches = glob.glob(str(pattern), recursive=True) or [str(pattern)]
        for match in map(Path, matches):
            if match.name == SUMMARY and match.is_file():
                found.add(match.parent)
            elif (match / SUMMARY).is_file():
                found.add(match)
            elif match.is_dir():
                found |= {s.parent for s in match.rglob(SUMMARY)}
    return sorted(p.resolve() for p in found)


def final_train_loss(run_dir: Path) -> float | None:
    """Mean ``train/loss`` over the last epoch logged in ``csv/metrics.csv``, if any."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("train/loss") and r.get("epoch")]
    if not rows:
        return None
    last = max(int(r["epoch"]) for r in rows)
    losses = [float(r["train/loss"]) for r in rows if int(r["epoch"]) == last]
    return sum(losses) / len(losses)


def run_row(run_dir: Path) -> dict[str, Any]:
    """One table row from a run directory."""
    summary = json.loads((run_dir / SUMMARY).read_text())
    choices = summary.get("choices", {})
    overrides = summary.get("name_overrides")
    if overrides is None:  # older summaries: every override but the choices shown as columns
        overrides = " ".join(
            o for o in summary.get("overrides", []) if o.split("=", 1)[0] not in CHOICE_COLUMNS
        )
    row: dict[str, Any] = {
        "run": run_label(run_dir),
        "status": summary.get("status", "completed"),
        **{key: choices.get(key, "") for key in CHOICE_COLUMNS},
        "overrides": overrides,
        "final_train_loss": final_train_loss(run_dir),
        "run_dir": str(run_dir),
    }
    for key in COLUMNS:
        row.setdefault(key, summary.get(key))
    return row


def collect(run_dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """Rows of all runs, best validation EER first, unfinished and failed runs last."""
    rows = [run_row(d) for d in run_dirs]

    def key(row: dict[str, Any]) -> tuple[bool, float, str]:
        eer = row.get("best_val_eer_percent")
        return (row["status"] != "completed", math.inf if eer is None else eer, row["run"])

    return sorted(rows, key=key)


# ------------------------------------------------------------------ results over seeds

NOT_CONFIG = ("seed", "resume", "run_name")  # override keys that do not change a configuration
NOT_CONFIG_PREFIXES = ("hydra.", "paths.")
SEED_COLUMNS = ("configuration", "attack", "metric", "n", "seeds", "mean", "std", "min", "max")


def configuration_of(summary: dict[str, Any]) -> tuple[str, str | None]:
    """``(configuration, seed)`` of a run: its data/frontend/model/loss choices and its
    overrides without the seed and run-naming keys; the seed is None when not overridden.
    Other config-group choices (optimizer, trainer, ...) differ between runs only through
    an override, which is part of the configuration."""
    choices = summary.get("choices", {})
    seed, kept = None, []
    for override in summary.get("overrides", []):
        key, _, value = override.lstrip("+~").partition("=")
        if key == "seed":
            seed = value
        elif not (
            key in NOT_CONFIG or key.startswith(NOT_CONFIG_PREFIXES) or key in CHOICE_COLUMNS
        ):
            kept.append(override)
    shown = [f"{group}={choices[group]}" for group in CHOICE_COLUMNS if group in choices]
    return " ".join(shown + sorted(kept)), seed


def seed_results(
    run_dir: Path, asv: AsvScores | None = None, tdcf: str = "2019"
) -> dict[str, dict[str, float]]:
    """``{"eer": {"pooled": %, attack: %}, "min_tdcf": {...}}`` of one completed run."""
    summary = json.loads((run_dir / SUMMARY).read_text())
    results: dict[str, dict[str, float]] = {"eer": {}, "min_tdcf": {}}
    if summary.get("test_eer_percent") is not None:
        results["eer"]["pooled"] = summary["test_eer_percent"]
        results["eer"] |= summary.get("test_eer_percent_by_attack", {})
    score_file = Path(summary.get("score_file") or run_dir / "scores" / "test_scores.txt")
    metrics_file = score_file.parent / "test_metrics.json"  # written beside the score file
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if asv is not None and score_file.suffix == ".txt" and score_file.is_file():
        metrics = evaluate_rows(read_cm_scores_2019(score_file), asv=asv, tdcf=tdcf)
    if metrics.get("min_tdcf") is not None:
        results["min_tdcf"]["pooled"] = metrics["min_tdcf"]
    for attack, entry in (metrics.get("attacks") or {}).items():
        if entry.get("min_tdcf") is not None:
            results["min_tdcf"][attack] = entry["min_tdcf"]
    return results


def _stats(values: list[float]) -> dict[str, float | None]:
    return {
        "mean": mean(values),
        "std": stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }


def by_seed(
    run_dirs: Iterable[Path], asv: AsvScores | None = None, tdcf: str = "2019"
) -> list[dict[str, Any]]:
    """One row per configuration, attack (``pooled`` first) and metric, over the seeds of
    the completed runs of that configuration."""
    groups: dict[str, list[tuple[str | None, dict]]] = {}
    for run_dir in run_dirs:
        summary = json.loads((run_dir / SUMMARY).read_text())
        if summary.get("status", "completed") != "completed":
            continue
        configuration, seed = configuration_of(summary)
        groups.setdefault(configuration, []).append((seed, seed_results(run_dir, asv, tdcf)))
    rows = []
    for configuration, runs in sorted(groups.items()):
        for metric in ("eer", "min_tdcf"):
            attacks = sorted(
                {a for _, r in runs for a in r[metric]}, key=lambda a: (a != "pooled", a)
            )
            for attack in attacks:
                found = [(seed, r[metric][attack]) for seed, r in runs if attack in r[metric]]
                rows.append({
                    "configuration": configuration, "attack": attack,
                    "metric": "EER %" if metric == "eer" else "min t-DCF", "n": len(found),
                    "seeds": " ".join(str(seed) for seed, _ in sorted(found, key=str)),
                    **_stats([value for _, value in found]),
                })  # fmt: skip
    return rows


def seed_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The by-seed table: mean ± std, min and max per configuration, attack and metric."""
    lines = [
        "| configuration | attack | metric | n | mean ± std | min | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        spread = "" if row["std"] is None else f" ± {_cell(row['std'])}"
        lines.append(
            f"| {row['configuration'].replace('|', chr(92) + '|')} | {row['attack']} "
            f"| {row['metric']} | {row['n']} | {_cell(row['mean'])}{spread} "
            f"| {_cell(row['min'])} | {_cell(row['max'])} |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 else f"{value:.2f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A GitHub-flavoured markdown table (``run_dir`` left out for width)."""
    shown = [c for c in columns if c != "run_dir"]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        cells = (_cell(row.get(c)).replace("|", "\\|").replace("\n", " ") for c in shown)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """The same table as CSV, every column, full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({c: "" if row.get(c) is None else row.get(c) for c in columns} for row in rows)
    return buffer.getvalue()


def write_tables(
    rows: Sequence[dict[str, Any]],
    csv_path: Path | None,
    md_path: Path | None,
    columns: Sequence[str] = COLUMNS,
    markdown: Any = markdown_table,
) -> None:
    """Write the CSV and/or markdown table (atomically)."""
    for path, text in ((csv_path, csv_table(rows, columns)), (md_path, markdown(rows))):
        if path is not None:
            write_text(path, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser("compare", __doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["logs"], help="run dirs, folders or globs")
    parser.add_argument("--csv", type=Path, help="write the table as CSV here")
    parser.add_argument("--md", type=Path, help="write the markdown table here")
    parser.add_argument(
        "--by-seed", action="store_true", help="mean ± std, min, max over runs that differ in seed"
    )
    parser.add_argument("--asv-scores", type=Path, help="2019 ASV score file for the min t-DCF")
    parser.add_argument("--tdcf", choices=("2019", "2021"), default="2019", help="t-DCF form")
    args = parser.parse_args(argv)
    run_dirs = find_runs(args.paths)
    if not run_dirs:
        parser.error(f"no run directories (with {SUMMARY}) under {' '.join(args.paths)}")
    if args.by_seed:
        asv = read_asv_scores_2019(args.asv_scores) if args.asv_scores else None
        rows = by_seed(run_dirs, asv, args.tdcf)
        write_tables(rows, args.csv, args.md, SEED_COLUMNS, seed_markdown)
        print(seed_markdown(rows), end="")
        return 0
    rows = collect(run_dirs)
    write_tables(rows, args.csv, args.md)
    print(markdown_table(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
