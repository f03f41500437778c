"""Error bars over seeds end to end: train.py -m seed=1,2,3, then compare --by-seed."""

import csv
import json
from pathlib import Path
from statistics import mean

import pytest

from spoof_lightning import compare
from tests.integration.cli import FAST, run_cli


@pytest.mark.slow
def test_three_seeds_give_one_configuration_with_mean_std_min_max(demo_root: Path, tmp_path):
    logs = tmp_path / "logs"
    tiny = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "logger=csv"]
    tiny += ["+callbacks.score_writer.plots=false"]
    run_cli("train.py", "-m", f"paths.log_dir={logs}", f"data.root={demo_root}", *FAST, *tiny,
            "seed=1,2,3")  # fmt: skip
    summaries = [json.loads(p.read_text()) for p in sorted(logs.rglob("summary.json"))]
    assert len(summaries) == 3 and {s["status"] for s in summaries} == {"completed"}
    out = tmp_path / "seeds.csv"
    assert compare.main([str(logs), "--by-seed", "--csv", str(out)]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    pooled = [r for r in rows if r["attack"] == "pooled"]
    assert len(pooled) == 1 and (pooled[0]["n"], pooled[0]["seeds"]) == ("3", "1 2 3")
    eers = [s["test_eer_percent"] for s in summaries]
    assert float(pooled[0]["mean"]) == pytest.approx(mean(eers))
    assert (float(pooled[0]["min"]), float(pooled[0]["max"])) == (min(eers), max(eers))
    attacks = {r["attack"] for r in rows} - {"pooled"}
    assert attacks == set(summaries[0]["test_eer_percent_by_attack"])
