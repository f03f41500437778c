"""Cross-corpus evaluation: one checkpoint on tiny corpora in each official format."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from spoof_lightning.build import ConfigError
from spoof_lightning.cross_corpus import run
from tests.corpora import make_asvspoof5, make_asvspoof2019, make_asvspoof2021, make_in_the_wild
from tests.integration.cli import run_cli
from tests.unit.test_evaluation import _energy_checkpoint

REPO = Path(__file__).resolve().parents[2]
LOCAL = [
    "data.num_workers=0", "data.persistent_workers=false", "data.pin_memory=false",
    "accelerator=cpu", "progress_bar=false", "plots=false", "data.batch_size=4",
    "bootstrap.n_resamples=50",
]  # fmt: skip
EVAL_OVERRIDES = "[" + ",".join(f"'{o}'" for o in LOCAL) + "]"


def _asv_files(tmp_path: Path, root21: Path) -> tuple[Path, Path, Path]:
    """A 2019 organisers' ASV score file, and 2021 LA ASV keys + scores."""
    rng = np.random.default_rng(0)
    kinds = [("target", 3.0)] * 10 + [("nontarget", -3.0)] * 10 + [("spoof", 1.0)] * 10
    la19 = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    la19.write_text("".join(f"{'bonafide' if k != 'spoof' else 'A10'} {k} {rng.normal(m)!r}\n"
                            for k, m in kinds))  # fmt: skip
    keys = root21 / "keys" / "LA" / "ASV" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("".join(f"LA_0001 T{i} alaw ita_tx {'A07' if k == 'spoof' else 'bonafide'} "
                            f"{k} notrim eval\n" for i, (k, _) in enumerate(kinds)))  # fmt: skip
    scores = keys.parent / "score.txt"
    scores.write_text(
        "".join(f"LA_0001 T{i} {rng.normal(m)!r}\n" for i, (_, m) in enumerate(kinds))
    )
    return la19, keys, scores


@pytest.mark.slow
def test_one_table_for_every_corpus_given(tmp_path: Path):
    roots = {
        "la19_root": make_asvspoof2019(tmp_path / "la19", "LA", counts={"eval": (3, 6)}),
        "la21_root": make_asvspoof2021(tmp_path / "asv21", "LA", per_phase=(3, 4)),
        "df21_root": make_asvspoof2021(tmp_path / "asv21", "DF", per_phase=(3, 4)),
        "itw_root": make_in_the_wild(tmp_path / "itw", per_speaker=(2, 1)).parent,
        "asv5_root": make_asvspoof5(tmp_path / "asv5", {"eval": (4, 8)}),
    }
    la19_asv, la21_keys, la21_scores = _asv_files(tmp_path, tmp_path / "asv21")
    trained = {"_target_": "spoof_lightning.data.datamodule.AntiSpoofDataModule"}
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt", trained | {"eval_crop": 16000})
    overrides = [
        f"ckpt={ckpt}",
        f"output_dir={tmp_path / 'out'}",
        f"eval_overrides={EVAL_OVERRIDES}",
    ]
    overrides += [f"{key}={value}" for key, value in roots.items()]
    overrides += [f"la19_asv_scores={la19_asv}", f"la21_asv_keys={la21_keys}"]
    overrides += [f"la21_asv_scores={la21_scores}"]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        result = run(compose("cross_corpus", overrides=overrides))
        with pytest.raises(ConfigError, match="give at least one corpus root"):
            run(compose("cross_corpus", overrides=overrides[:3]))
        missing = [*overrides[:3], f"itw_root={tmp_path / 'nowhere'}"]
        with pytest.raises(ConfigError, match="itw_root=.*nowhere is not a directory"):
            run(compose("cross_corpus", overrides=missing))

    rows = result["rows"]
    assert [r["data"] for r in rows] == [
        "asvspoof2019_la", "asvspoof2021_la", "asvspoof2021_df", "in_the_wild", "asvspoof5",
    ]  # fmt: skip
    assert [r["primary_metric"] for r in rows] == [
        "min t-DCF", "min t-DCF", "EER %", "EER %", "minDCF",
    ]  # fmt: skip
    for row, key in zip(rows, ("la19", "la21", "df21", "itw", "asv5"), strict=True):
        metrics = json.loads((tmp_path / "out" / key / "test_metrics.json").read_text())
        assert row["eer_percent"] == metrics["eer_percent"]
        assert row["eer_ci95_low"] == 100 * metrics["eer_ci"]["low"]
        primary = {"min t-DCF": "min_tdcf", "EER %": "eer_percent", "minDCF": "min_dcf"}
        assert row["primary_value"] == metrics[primary[row["primary_metric"]]]
        # In-the-Wild is scored on whole clips (itw_eval_crop: null), the others with the
        # checkpoint's crop, as eval.py does.
        assert metrics["input"]["eval_crop"] == (None if key == "itw" else 16000)
    assert (rows[0]["n_bonafide"], rows[3]["n_bonafide"], rows[3]["n_spoof"]) == (3, 6, 3)
    with open(result["files"]["csv"], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["eer_percent"]) for r in table] == [r["eer_percent"] for r in rows]
    text = result["files"]["md"].read_text()
    assert "| In-the-Wild | 6 | 3 |" in text and "| minDCF |" in text
    assert not list((tmp_path / "out").glob(".*partial"))


@pytest.mark.slow
def test_the_command_writes_the_table(tmp_path: Path):
    itw = make_in_the_wild(tmp_path / "itw", per_speaker=(2, 2))
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt")
    proc = run_cli(
        "cross-corpus", f"ckpt={ckpt}", f"itw_root={itw}", f"eval_overrides={EVAL_OVERRIDES}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert "| In-the-Wild | 6 | 6 |" in proc.stdout
    assert (tmp_path / "run" / "cross_corpus.csv").is_file()
    assert (tmp_path / "run" / "itw" / "test_metrics.json").is_file()
