"""Compare runs from their local run directories (no W&B needed).

    python -m spoof_lightning.compare logs/multiruns/demo_sweep
    python -m spoof_lightning.compare 'logs/runs/*' --csv runs.csv --md runs.md

Every argument is a run directory, a folder searched for run directories (any depth: all
versions ``<run_name>/v<N>`` of a name) or a glob. A run directory is one with
``summary.json`` (written by train.py); the final training loss comes from its
``csv/metrics.csv``. The table is sorted by best validation EER; runs that did not complete
come last.
"""

import argparse
import csv
import glob
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from spoof_lightning.atomic import write_text
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
    rows: Sequence[dict[str, Any]], csv_path: Path | None, md_path: Path | None
) -> None:
    """Write the CSV and/or markdown table (atomically)."""
    for path, text in ((csv_path, csv_table(rows)), (md_path, markdown_table(rows))):
        if path is not None:
            write_text(path, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spoof_lightning.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("paths", nargs="*", default=["logs"], help="run dirs, folders or globs")
    parser.add_argument("--csv", type=Path, help="write the table as CSV here")
    parser.add_argument("--md", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    run_dirs = find_runs(args.paths)
    if not run_dirs:
        parser.error(f"no run directories (with {SUMMARY}) under {' '.join(args.paths)}")
    rows = collect(run_dirs)
    write_tables(rows, args.csv, args.md)
    print(markdown_table(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
