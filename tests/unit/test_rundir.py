"""Run directories: versions, resume, names, the lock between live processes, requeues."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from spoof_lightning.build import ConfigError
from spoof_lightning.checkpoint import EXPORT_FORMAT, EXPORT_VERSION, CheckpointError
from spoof_lightning.checkpoint_match import check_resumable
from spoof_lightning.outputs import claim_output_dir
from spoof_lightning.rundir import (
    LOCK_FILE,
    RunDirError,
    check_name,
    lock,
    newest_versions,
    requeue_overrides,
    run_directory,
    run_label,
    versions,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["../../x", "a/b", "", "..", ".hidden", "a..b", "x" * 201, "a b"])
def test_a_bad_run_name_is_refused_naming_the_key(name: str):
    with pytest.raises(ConfigError, match="^run_name="):
        check_name("run_name", name)


def test_good_names_pass():
    for name in ("demo-lfcc-cnn_gru-weighted_ce", "aasist_la19", "run,lr=0.01", "seed=1"):
        assert check_name("run_name", name) == name


def _checkpoint(run_dir: Path) -> None:
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"PK")


def test_new_runs_get_new_versions_and_resume_picks_one(tmp_path: Path):
    root = str(tmp_path / "runs")
    first = Path(run_directory(root, "exp"))
    assert first == tmp_path / "runs" / "exp" / "v1"
    assert run_directory(root, "exp") == str(first)  # one process, one run: resolved again
    # resume=true with nothing resumable: a new version, not the empty v1
    second = Path(run_directory(root, "exp", True))
    assert second.name == "v2"
    _checkpoint(first)
    third = Path(run_directory(root, "exp", False, 7))  # another sweep job of the same name
    assert third.name == "v3"
    assert run_directory(root, "exp", "true", 8) == str(first)  # newest with a last.ckpt
    assert run_directory(root, "exp", "v2") == str(second)
    assert run_directory(root, "exp", 3) == str(third)
    assert run_directory(root, "exp", str(second)) == str(second)
    assert run_directory(root, "exp", str(first.parent)) == str(first)  # the run-name folder
    with pytest.raises(ConfigError, match=r"resume=v9: .* does not exist \(versions: v1, v2, v3\)"):
        run_directory(root, "exp", "v9")
    with pytest.raises(ConfigError, match="resume=/nonexistent"):
        run_directory(root, "exp", "/nonexistent")
    assert [p.name for p in versions(first.parent)] == ["v1", "v2", "v3"]
    assert all((p / LOCK_FILE).is_file() for p in (first, second, third))
    assert newest_versions([first, third, second, tmp_path]) == sorted([third, tmp_path])
    assert run_label(third) == "exp/v3" and run_label(tmp_path) == tmp_path.name


HOLDER = textwrap.dedent(
    """
    import sys, time
    from spoof_lightning.rundir import lock
    lock(sys.argv[1], sys.argv[2] or None)
    print("locked", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize(
    ("owner_file", "holder_named"),
    [(LOCK_FILE, "PID {pid} on"), ("", "another process")],
    ids=["run directory", "eval output directory"],
)
def test_a_live_holder_blocks_and_a_killed_one_does_not(
    owner_file: str, holder_named: str, tmp_path: Path
):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir), owner_file],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        named = holder_named.format(pid=holder.pid)
        with pytest.raises(RunDirError, match=rf"{run_dir} is in use by {named}"):
            lock(run_dir, owner_file or None)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    lock(run_dir, owner_file or None)  # the kernel released the dead process's lock
    if owner_file:
        assert f'"pid": {os.getpid()}' in (run_dir / LOCK_FILE).read_text()
    else:
        assert not list(run_dir.iterdir())  # an eval's output directory holds results only


WHERE = "import sys; from spoof_lightning.rundir import run_directory as d; print(d(*sys.argv[1:]))"


@pytest.mark.slow
def test_the_tasks_of_one_slurm_job_step_share_one_new_version(tmp_path: Path):
    """One process per device, all choosing the run directory: task 0 creates it."""

    def launch(job_id: str) -> set[str]:
        procs = []
        for task in (1, 0):  # task 1 starts first and waits for task 0
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO),
                "SLURM_NTASKS": "2",
                "SLURM_PROCID": str(task),
                "SLURM_JOB_ID": job_id,
                "SLURM_STEP_ID": "0",
            }
            command = [sys.executable, "-c", WHERE, str(tmp_path), "exp", "false", "0"]
            procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
            time.sleep(0.2)
        return {p.communicate(timeout=600)[0].strip() for p in procs}

    assert launch("1001") == {str(tmp_path / "exp" / "v1")}
    assert launch("1002") == {str(tmp_path / "exp" / "v2")}


def test_a_requeued_job_resumes_its_own_run_directory(tmp_path: Path):
    """What submitit calls when SLURM is about to stop a job (preemption, time limit)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra_plugins.spoof_lightning_launchers import ResumingSlurmLauncher

    run_dir = tmp_path / "multiruns" / "s" / "demo-lfcc-cnn_gru-weighted_ce,optimizer.lr=0.1" / "v2"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.launcher._target_ == (
        "hydra_plugins.spoof_lightning_launchers.ResumingSlurmLauncher"
    )
    overrides = ["optimizer.lr=0.1", "resume=true"]
    delayed = ResumingSlurmLauncher().checkpoint(overrides, "hydra.sweep.dir", 3, "id_3", {})
    resubmitted = delayed.args[0]
    assert resubmitted[0] == "optimizer.lr=0.1" and len(resubmitted) == 2
    parsed = OverridesParser.create().parse_override(resubmitted[1])
    assert (parsed.key_or_group, parsed.value()) == ("resume", str(run_dir))
    assert delayed.args[1:3] == ("hydra.sweep.dir", 3)
    quoted = requeue_overrides([], "/logs/a,b='c'/v1")[0]
    assert OverridesParser.create().parse_override(quoted).value() == "/logs/a,b='c'/v1"


def test_eval_never_writes_over_another_checkpoints_results(tmp_path: Path):
    out = tmp_path / "eval"
    out.mkdir()
    claim_output_dir(out, "test", tmp_path / "a.ckpt")  # empty: fine
    (out / "test_metrics.json").write_text('{"checkpoint": "%s"}' % (tmp_path / "a.ckpt"))
    claim_output_dir(out, "test", tmp_path / "a.ckpt")  # the same checkpoint: replaced
    claim_output_dir(out, "val", tmp_path / "b.ckpt")  # another split: fine
    with pytest.raises(ConfigError, match=r"already holds test results of .*a\.ckpt"):
        claim_output_dir(out, "test", tmp_path / "b.ckpt")


FRONTEND = {"_target_": "spoof_lightning.frontends.lfcc.LFCC", "n_lfcc": 20}
MODEL = {"_target_": "spoof_lightning.models.cnn_gru.CNNGRU", "hidden": 8}
TRAINING = {"epoch": 0, "global_step": 3, "loops": {}, "optimizer_states": []}


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        (_zip, "truncated or corrupt"),
        ({"conv_time.band_pass": torch.zeros(70, 1)}, "bare state dict"),  # official AASIST
        (
            {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "frontend": FRONTEND}
            | {"model": MODEL, "state_dict": {}},
            "an exported model without training state",
        ),
        (
            {"state_dict": {}, "hyper_parameters": {"frontend": FRONTEND, "model": MODEL}}
            | TRAINING,
            "another front-end or model (model.hidden: checkpoint 8, requested 16)",
        ),
    ],
    ids=["random zip", "official weights", "exported model", "another model"],
)
def test_resume_refuses_a_foreign_last_ckpt(content, refusal: str, tmp_path: Path):
    """(Truncated and pickled-code files, through train.py: integration/test_run_dirs.py.)"""
    path = tmp_path / "last.ckpt"
    content(path) if callable(content) else torch.save(content, path)
    expected = {"frontend": FRONTEND, "model": MODEL | {"hidden": 16}}
    with pytest.raises(CheckpointError, match=re.escape(refusal)) as refused:
        check_resumable(path, expected)
    assert str(path) in str(refused.value)


def test_resume_accepts_a_training_checkpoint_of_the_same_model(tmp_path: Path):
    path = tmp_path / "last.ckpt"
    hparams = {"frontend": FRONTEND, "model": MODEL}
    torch.save({"state_dict": {}, "hyper_parameters": hparams} | TRAINING, path)
    assert check_resumable(path, hparams) == {"epoch": 0, "global_step": 3}
