"""Hydra multirun: job directories named from the choices and overrides, an incompatible pair
recorded without stopping the sweep, the summary table, W&B runs per job, re-launching."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from spoof_lightning import compare
from spoof_lightning.resolvers import job_name
from tests.integration.cli import FAST, REPO, run_cli
from tests.integration.test_resume_kill import offline_env

TINY = [
    *FAST,
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "trainer.log_every_n_steps=1",
    "test_after_fit=false",
]
# experiment=demo_sweep (make sweep): {lfcc, raw} x {cnn_gru, inc_tssdnet}.
JOBS = {
    ("lfcc", "cnn_gru"): "completed",
    ("raw", "cnn_gru"): "completed",
    ("raw", "inc_tssdnet"): "completed",
    ("lfcc", "inc_tssdnet"): "incompatible",  # Inc-TSSDNet reads the raw waveform
}
# The overrides that name every job, after the choices (sorted as Hydra writes them).
NAMED = (
    "+trainer.limit_train_batches=2,data.batch_size=16,data.demo=False,data.eval_crop=16000,"
    "data.train_crop=16000,trainer.max_epochs=1"
)


def test_job_names_are_the_choices_then_the_other_overrides():
    assert job_name("demo-lfcc-cnn_gru-ce") == "demo-lfcc-cnn_gru-ce"
    assert job_name("demo-lfcc-cnn_gru-ce", "optimizer.lr=0.01,seed=1") == (
        "demo-lfcc-cnn_gru-ce,optimizer.lr=0.01,seed=1"
    )
    assert "/" not in job_name("r", "data.subset=a/b")
    long = job_name("r", ",".join(f"k{i}=v{i}" for i in range(100)))
    assert len(long) <= 200 and long == job_name("r", ",".join(f"k{i}=v{i}" for i in range(100)))
    assert long != job_name("r", ",".join(f"k{i}=v{i}" for i in range(101)))


def _sweep(logs: Path, home: Path, *overrides: str) -> None:
    run_cli(
        "train.py",
        "-m",
        f"paths.log_dir={logs}",
        "experiment=demo_sweep",
        "logger=[csv,wandb]",
        *TINY,
        *overrides,
        env=offline_env(home),
    )


@pytest.mark.slow
def test_sweep_runs_every_job_records_the_refused_pair_and_tables_them(
    demo_root: Path, tmp_path: Path
):
    logs = tmp_path / "logs"
    _sweep(logs, tmp_path / "home", f"data.root={demo_root}")
    sweep_dir = logs / "multiruns" / "demo_sweep"
    jobs = {}
    for (frontend, model), status in JOBS.items():
        job_dir = sweep_dir / f"demo-{frontend}-{model}-weighted_ce,{NAMED}" / "v1"
        summary = json.loads((job_dir / "summary.json").read_text())
        assert summary["status"] == status, summary
        assert summary["choices"]["frontend"] == frontend and summary["choices"]["model"] == model
        jobs[frontend, model] = job_dir
    refused = json.loads((jobs["lfcc", "inc_tssdnet"] / "summary.json").read_text())
    assert "frontend=lfcc" in refused["error"] and "model=inc_tssdnet" in refused["error"]
    assert not (jobs["lfcc", "inc_tssdnet"] / "checkpoints").exists()  # refused before training

    # Every trained job has its own W&B run (offline here).
    run_ids = set()
    for key in [k for k, status in JOBS.items() if status == "completed"]:
        run_id = (jobs[key] / "wandb_run_id.txt").read_text().strip()
        assert [p.name.endswith(run_id) for p in (jobs[key] / "wandb").glob("offline-run-*")] == [
            True
        ]
        run_ids.add(run_id)
    assert len(run_ids) == 3

    # The table written at the end of the sweep: 4 jobs, trained ones first.
    with (sweep_dir / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert [r["status"] for r in rows[:3]] == ["completed"] * 3 and rows[3]["status"] == (
        "incompatible"
    )
    assert all(r["overrides"] == NAMED for r in rows)
    assert all(float(r["final_train_loss"]) > 0 for r in rows[:3])
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.count("\n") == 2 + 4 and "| incompatible |" in markdown

    # The compare command gives the same table from the run directories.
    out = tmp_path / "compare.csv"
    assert compare.main([str(sweep_dir / "demo-*"), "--csv", str(out)]) == 0
    assert out.read_text() == (sweep_dir / "summary.csv").read_text()

    # Re-launching (here one job of it) with resume=true finds the same directory and W&B run.
    before = sorted(p.name for p in sweep_dir.iterdir())
    job = jobs["lfcc", "cnn_gru"]
    run_id = (job / "wandb_run_id.txt").read_text().strip()
    _sweep(
        logs,
        tmp_path / "home",
        f"data.root={demo_root}",
        "hydra.sweeper.params.frontend=lfcc",
        "hydra.sweeper.params.model=cnn_gru",
        "resume=true",
    )
    assert sorted(p.name for p in sweep_dir.iterdir()) == before
    assert [p.name for p in job.parent.iterdir()] == ["v1"]  # the same run, continued
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["name_overrides"] == NAMED
    assert (job / "wandb_run_id.txt").read_text().strip() == run_id
    assert len(list((job / "wandb").glob(f"offline-run-*-{run_id}"))) == 2


CONF = REPO / "conf"


def _installed(plugin: str) -> bool:
    try:
        return importlib.util.find_spec(f"hydra_plugins.{plugin}") is not None
    except ModuleNotFoundError:
        return False


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("search", "loss"), [("optuna", "weighted_ce"), ("optuna_self_distill", "self_distill")]
)
def test_optuna_search_space_names_keys_of_the_training_config(search: str, loss: str):
    """Each searched key must exist; the plugin itself is optional (hydra-optuna-sweeper)."""
    params = {}
    for name in ("optuna", search):
        params |= OmegaConf.load(CONF / "hparams_search" / f"{name}.yaml").hydra.sweeper.params
    assert {"optimizer.lr", "optimizer.weight_decay", "loss.class_weights.0"} <= params.keys()
    trial = [f"{key}=0.25" for key in params]  # one sample of the search space
    cfg = _compose(f"loss={loss}", *trial)
    for key in params:
        assert OmegaConf.select(cfg, key) == 0.25, key
    if _installed("hydra_optuna_sweeper"):
        cfg = _compose(f"hparams_search={search}")
        assert cfg.hydra.sweeper.direction == "minimize" and cfg.test_after_fit is False


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_slurm_launcher_takes_its_tasks_from_the_trainer(trainer: str):
    launcher = OmegaConf.load(CONF / "hydra" / "launcher" / "slurm.yaml")
    trainer_cfg = _compose(f"trainer={trainer}", "trainer.devices=4").trainer
    cfg = OmegaConf.create({"trainer": OmegaConf.to_container(trainer_cfg), "slurm": launcher})
    assert cfg.slurm.tasks_per_node == cfg.slurm.gpus_per_node == 4
    assert cfg.slurm.nodes == 1 and cfg.slurm.max_num_timeout > 0
    if _installed("hydra_submitit_launcher"):
        cfg = _compose("hydra/launcher=slurm", f"trainer={trainer}", "trainer.devices=4")
        assert cfg.hydra.launcher.tasks_per_node == 4


@pytest.mark.slow
def test_optuna_search_runs_on_the_demo_and_continues_its_study(demo_root: Path, tmp_path: Path):
    """hparams_search=optuna: real trials that minimise the dev EER, kept in a sqlite study."""
    import optuna

    logs, storage = tmp_path / "logs", f"sqlite:///{tmp_path / 'optuna.db'}"

    def search(n_trials: int) -> None:
        run_cli(
            "train.py",
            "hparams_search=optuna",
            f"paths.log_dir={logs}",
            f"data.root={demo_root}",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.n_trials={n_trials}",
            "hydra.sweeper.sampler.n_startup_trials=2",
            *TINY,
            env=offline_env(tmp_path / "home"),
        )

    search(2)
    sweep_dir = logs / "multiruns" / "optuna"
    summaries = [json.loads(p.read_text()) for p in sweep_dir.glob("*/v1/summary.json")]
    assert len(summaries) == 2 and all(s["status"] == "completed" for s in summaries)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == min(s["best_val_eer_percent"] for s in summaries)
    assert set(results.best_params) == {
        "optimizer.lr",
        "optimizer.weight_decay",
        "loss.class_weights.0",
    }
    assert 1e-5 <= results.best_params["optimizer.lr"] <= 1e-2

    search(1)  # the same storage: n_trials more trials of the same study
    study = optuna.load_study(study_name="optuna", storage=storage)
    assert len(study.trials) == 3
