"""Score one checkpoint on every evaluation corpus given, and tabulate EER + primary metric.

    spoof-lightning cross-corpus ckpt=logs/runs/<run>/checkpoints/best.ckpt \\
        la19_root=/data/ASVspoof2019 la21_root=/data/ASVspoof2021 df21_root=/data/ASVspoof2021 \\
        itw_root=/data/release_in_the_wild asv5_root=/data/ASVspoof5

Each corpus whose root is given is scored as ``spoof-lightning eval ckpt=... data=<corpus>
data.root=<root>`` would score it (conf/eval.yaml, composed per corpus, plus
``eval_overrides``), into ``<output_dir>/<corpus>/``. The table (``cross_corpus.md`` and
``cross_corpus.csv`` in ``output_dir``, rewritten atomically after each corpus) has each
corpus's EER with its bootstrap 95% CI and its primary metric: min t-DCF for ASVspoof 2019
LA (2019 form) and 2021 LA (2021 form) when their ASV scores are given (else the EER),
EER for 2021 DF and In-the-Wild, minDCF for ASVspoof 5. See conf/cross_corpus.yaml.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose
from omegaconf import DictConfig

from spoof_lightning.atomic import write_text
from spoof_lightning.build import ConfigError
from spoof_lightning.cli import hydra_app, user_errors_reported
from spoof_lightning.compare import csv_table
from spoof_lightning.evaluation import evaluate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """One evaluation corpus: its data config, root key, and primary metric."""

    key: str  # prefix of the config keys: <key>_root, <key>_asv_scores, ...
    data: str  # conf/data/<data>.yaml
    title: str
    primary: str  # metrics.json key of the primary metric ("eer" or "min_dcf")
    tdcf: str | None = None  # t-DCF form when ASV scores are given (primary = min_tdcf)


CORPORA = (
    Corpus("la19", "asvspoof2019_la", "ASVspoof 2019 LA eval", "eer", tdcf="2019"),
    Corpus("la21", "asvspoof2021_la", "ASVspoof 2021 LA eval", "eer", tdcf="2021"),
    Corpus("df21", "asvspoof2021_df", "ASVspoof 2021 DF eval", "eer"),
    Corpus("itw", "in_the_wild", "In-the-Wild", "eer"),
    Corpus("asv5", "asvspoof5", "ASVspoof 5 eval (track 1)", "min_dcf"),
)
COLUMNS = (
    "corpus", "data", "n_bonafide", "n_spoof", "eer_percent", "eer_ci95_low", "eer_ci95_high",
    "primary_metric", "primary_value", "output_dir",
)  # fmt: skip
METRIC_NAMES = {"eer": "EER %", "min_dcf": "minDCF", "min_tdcf": "min t-DCF"}


def _quoted(value: Any) -> str:
    """A Hydra override value: paths and other strings quoted, null as null."""
    if value is None:
        return "null"
    text = str(value)
    if "'" in text:
        raise ConfigError(f"paths with a single quote are not supported: {text}")
    return f"'{text}'"


def _selected(cfg: DictConfig) -> list[Corpus]:
    """The corpora with a root, checked to exist before anything is scored."""
    chosen = [c for c in CORPORA if cfg.get(f"{c.key}_root")]
    if not chosen:
        keys = ", ".join(f"{c.key}_root" for c in CORPORA)
        raise ConfigError(f"give at least one corpus root: {keys}")
    for corpus in chosen:
        root = Path(cfg[f"{corpus.key}_root"])
        if not root.is_dir():
            raise ConfigError(f"{corpus.key}_root={root} is not a directory ({corpus.title})")
        for suffix in ("asv_scores", "asv_keys"):
            path = cfg.get(f"{corpus.key}_{suffix}")
            if path and not Path(path).is_file():
                raise ConfigError(f"{corpus.key}_{suffix}={path}: file not found")
    return chosen


def eval_overrides(cfg: DictConfig, corpus: Corpus, output_dir: Path) -> list[str]:
    """The eval.py overrides that score ``corpus``."""
    overrides = [
        f"ckpt={_quoted(cfg.ckpt)}",
        f"data={corpus.data}",
        f"data.root={_quoted(cfg[f'{corpus.key}_root'])}",
        "split=test",
        f"output_dir={_quoted(output_dir / corpus.key)}",
    ]
    if corpus.key == "itw":
        overrides.append(f"data.eval_crop={cfg.itw_eval_crop or 'null'}")
    for suffix in ("asv_scores", "asv_keys"):
        if cfg.get(f"{corpus.key}_{suffix}"):
            overrides.append(f"{suffix}={_quoted(cfg[f'{corpus.key}_{suffix}'])}")
    if corpus.tdcf:
        overrides.append(f"tdcf={corpus.tdcf}")
    return overrides + list(cfg.eval_overrides or [])


def table_row(corpus: Corpus, metrics: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """One table row from a corpus's metrics.json content."""
    primary = "min_tdcf" if "min_tdcf" in metrics else corpus.primary
    ci = metrics.get("eer_ci") or {}
    value = metrics.get(primary)
    return {
        "corpus": corpus.title,
        "data": corpus.data,
        "n_bonafide": metrics.get("n_bonafide"),
        "n_spoof": metrics.get("n_spoof"),
        "eer_percent": metrics.get("eer_percent"),
        "eer_ci95_low": 100 * ci["low"] if ci else None,
        "eer_ci95_high": 100 * ci["high"] if ci else None,
        "primary_metric": METRIC_NAMES[primary],
        "primary_value": 100 * value if primary == "eer" and value is not None else value,
        "output_dir": str(output_dir / corpus.key),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as GitHub markdown: EER with its 95% CI, then the primary metric."""
    lines = [
        "| corpus | bona fide | spoof | EER % | EER 95% CI | primary metric | value |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ci = "n/a"
        if row["eer_ci95_low"] is not None:
            ci = f"{row['eer_ci95_low']:.3f}-{row['eer_ci95_high']:.3f}"
        eer = "n/a" if row["eer_percent"] is None else f"{row['eer_percent']:.3f}"
        lines.append(
            f"| {row['corpus']} | {row['n_bonafide']} | {row['n_spoof']} | {eer} | {ci} "
            f"| {row['primary_metric']} | {_cell(row['primary_value'])} |"
        )
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Score every corpus given; returns ``{"rows": [...], "files": {...}}``."""
    if not cfg.get("ckpt") or not Path(cfg.ckpt).is_file():
        raise ConfigError(f"ckpt={cfg.get('ckpt')}: checkpoint file not found")
    corpora = _selected(cfg)
    output_dir = Path(cfg.output_dir)
    rows: list[dict[str, Any]] = []
    files: dict[str, Path] = {}
    for corpus in corpora:
        log.info("scoring %s under %s", corpus.title, cfg[f"{corpus.key}_root"])
        report = evaluate(
            compose(
                "eval",
                overrides=eval_overrides(cfg, corpus, output_dir),
                return_hydra_config=True,  # eval sees which data keys were set
            )
        )
        rows.append(table_row(corpus, report["metrics"], output_dir))
        files = {
            "md": write_text(output_dir / "cross_corpus.md", markdown(rows)),
            "csv": write_text(output_dir / "cross_corpus.csv", csv_table(rows, COLUMNS)),
        }
    return {"rows": rows, "files": files}


@hydra_app("cross_corpus")
def main(cfg: DictConfig) -> None:
    with user_errors_reported():
        result = run(cfg)
    print(markdown(result["rows"]), end="")
    print(f"written: {result['files']['md']} {result['files']['csv']}")


if __name__ == "__main__":
    main()
