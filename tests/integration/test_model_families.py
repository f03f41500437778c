"""Experiment configs compose and build; one short demo training per model family learns.

Every conf/experiment/*.yaml is composed the way train.py does (real-data configs with a
placeholder root) and its front-end x model pair is built, without reading data: this
catches typos. The model-zoo recipes are also built whole (Detector, optimizer, scheduler,
data module, callbacks) and checked against the published set-ups (parameter counts, crop
lengths and batch sizes, 400-frame Res2Net windows).

The slow tests fit a Detector with a Lightning Trainer on the demo corpus, in-process on
CPU, overfitting one small batch of short crops, and check that the training loss falls.
Sizes are cut down to keep each run to a few seconds on two shared cores (noted per family).
"""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from spoof_lightning.build import build_components
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.lit.detector import Detector
from spoof_lightning.training import (
    apply_micro_batches,
    detector_from_config,
    instantiate_group,
    trainer_arguments,
)
from tests.tiny_configs import TINY_WAV2VEC2

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
GROUPS = ("frontend", "model")
# Overrides a user must give (mandatory paths), and, for the SSL set-ups, a tiny random
# wav2vec2 instead of loading XLS-R 300M.
SSL = ["frontend.checkpoint=null"] + [f"frontend.{k}={v}" for k, v in TINY_WAV2VEC2.items()]
MANDATORY = {
    "aasist_la19_official_init": ["callbacks.init_official.path=/nonexistent/AASIST.pth"],
    "ssl_aasist_la21": SSL,
    "ssl_aasist_df21": SSL,
    "ssl_aasist_la21_small_gpu": SSL,
}
# name: (back-end parameters, training crop in samples, batch size)
PUBLISHED = {
    "aasist_la19": (297_866, 64_600, 24),
    "aasist_l_la19": (85_306, 64_600, 24),
    "aasist_la19_official_init": (297_866, 64_600, 24),
    "se_res2net50_cqt_la19": (923_102, 102_144, 32),
    "se_res2net50_cqt_la19_small_gpu": (923_102, 102_144, 32),
    "se_res2net50_cqt_pa19": (923_102, 102_144, 32),
    "se_res2net50_mel_had": (923_102, 63_840, 32),
    "res_tssdnet_la19": (348_530, 96_000, 64),
    "inc_tssdnet_la19": (92_658, 96_000, 64),
    "rawnet2_la19": (17_621_410, 64_600, 32),
    "cnn_gru_la19": (None, 64_600, 32),
    "ssl_aasist_la21": (None, 64_600, 14),  # tiny wav2vec2 here: the count is not XLS-R's
    "ssl_aasist_df21": (None, 64_600, 14),
}


def compose_experiment(name: str, run_dir: Path) -> DictConfig:
    overrides = [f"experiment={name}", "data.root=/nonexistent", f"paths.run_dir={run_dir}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=overrides + MANDATORY.get(name, []), return_hydra_config=True
        )
    HydraConfig.instance().set_config(cfg)  # resolves ${hydra:...} as in a real run
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # what train() gets


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_builds_its_pair(name: str, tmp_path: Path) -> None:
    """Every experiment config, whoever wrote it: the front-end x model pair builds."""
    cfg = compose_experiment(name, tmp_path)
    frontend = OmegaConf.to_container(cfg.frontend, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    choices = HydraConfig.get().runtime.choices
    build_components(frontend, model, {k: str(choices[k]) for k in GROUPS})


def test_model_zoo_recipes_exist() -> None:
    assert set(PUBLISHED) <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_recipe_builds(name: str, tmp_path: Path) -> None:
    """The model-zoo recipes: everything train.py builds, and the published numbers."""
    cfg = compose_experiment(name, tmp_path)
    plain = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert not OmegaConf.missing_keys(plain), f"{name}: unset mandatory keys"
    assert plain["run_name"] and "${" not in plain["run_name"]

    module = detector_from_config(cfg)
    params, crop, batch = PUBLISHED[name]
    if params is not None:
        assert sum(p.numel() for p in module.model.parameters()) == params
    assert (plain["data"]["train_crop"], plain["data"]["batch_size"]) == (crop, batch)
    assert plain["trainer"]["accelerator"] == "gpu"
    optim = module.configure_optimizers()  # optimizer and scheduler partials instantiate
    assert optim["optimizer"].param_groups[0]["lr"] > 0
    datamodule = instantiate(cfg.data, _convert_="all")  # reads nothing yet
    assert isinstance(datamodule, AntiSpoofDataModule)
    assert instantiate_group(cfg.callbacks)
    if name.startswith("se_res2net50"):  # the paper's 400-frame windows
        with torch.no_grad():
            assert module.frontend(torch.zeros(1, crop)).shape[-1] == 400


def test_ssl_recipes_use_rawboost_and_the_2019_train_set(tmp_path: Path) -> None:
    algos = {}
    for name in ("ssl_aasist_la21", "ssl_aasist_df21"):
        cfg = compose_experiment(name, tmp_path)
        datamodule = instantiate(cfg.data, _convert_="all")
        assert datamodule.train_corpus == "asvspoof2019_la"
        assert type(datamodule.augment).__name__ == "RawBoost"
        algos[name] = cfg.augment.algo
    assert algos == {"ssl_aasist_la21": 5, "ssl_aasist_df21": 3}  # as Tak et al.


def test_ssl_small_gpu_preset_trains_the_back_end_only(tmp_path: Path) -> None:
    """4 GiB cannot hold XLS-R's weights, gradients and Adam moments: the preset freezes the
    SSL front-end (nothing of it reaches the optimizer) and keeps the recipe's batch."""
    cfg = compose_experiment("ssl_aasist_la21_small_gpu", tmp_path)
    apply_micro_batches(cfg)
    kwargs, _ = trainer_arguments(cfg)
    assert (cfg.data.batch_size, kwargs["accumulate_grad_batches"]) == (7, 2)
    assert kwargs["precision"] == "16-mixed"
    module = detector_from_config(cfg)
    optimized = {
        id(p)
        for group in module.configure_optimizers()["optimizer"].param_groups
        for p in group["params"]
    }
    assert not optimized & {id(p) for p in module.frontend.parameters()}
    assert {id(p) for p in module.model.parameters() if p.requires_grad} <= optimized


def test_se_res2net_small_gpu_preset_keeps_the_batch_in_micro_batches_of_4(tmp_path: Path):
    """19.0 GiB at batch 32 on the GPU check: 8 fp16 micro-batches of 4 per optimizer step."""
    cfg = compose_experiment("se_res2net50_cqt_la19_small_gpu", tmp_path)
    apply_micro_batches(cfg)
    kwargs, _ = trainer_arguments(cfg)
    assert (cfg.data.batch_size, kwargs["accumulate_grad_batches"]) == (4, 8)
    assert kwargs["precision"] == "16-mixed"


def test_had_recipe_trains_on_1000_per_class(tmp_path: Path) -> None:
    cfg = compose_experiment("se_res2net50_mel_had", tmp_path)
    assert cfg.data.corpus == "had" and cfg.frontend._target_.endswith("MelFrontEnd")
    assert OmegaConf.to_container(cfg.data.subset) == {
        "train": {"per_class": 1000},
        "val": None,
        "test": None,
    }


# ---------------------------------------------------------------- demo training per family


def _load(group: str, name: str, **overrides: object) -> dict:
    cfg = OmegaConf.merge(
        {"sample_rate": 16000},
        {"c": OmegaConf.load(CONF / group / f"{name}.yaml")},
        {"c": overrides},
    )
    return OmegaConf.to_container(cfg, resolve=True)["c"]


# family: (frontend, its overrides, model, its overrides, crop in samples)
FAMILIES = {
    "cnn_gru": ("raw", {}, "cnn_gru", {}, 4000),
    # SE-Res2Net blocks on 40 mel bands; one block per stage instead of [3, 4, 6, 3]
    "se_res2net_mel": ("mel", {"n_mels": 40}, "se_res2net50", {"layers": [1, 1, 1, 1]}, 4000),
    # AASIST-L back-end on a 20-filter sinc front-end (70 in the paper)
    "aasist_sinc": ("sinc", {"n_filters": 20}, "aasist_l", {}, 4000),
    "inc_tssdnet": ("raw", {}, "inc_tssdnet", {}, 4000),
    "lcnn": ("lfcc", {}, "lcnn", {"dropout": 0.0}, 4000),
    # tiny random wav2vec2; the SSL-AASIST back-end projected to 16 rows (128 in the paper)
    "ssl_aasist": ("wav2vec2", TINY_WAV2VEC2, "ssl_aasist", {"proj_dim": 16}, 2400),
}


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_demo_training_lowers_the_loss(family: str, demo_root: Path) -> None:
    frontend, frontend_over, model, model_over, crop = FAMILIES[family]
    torch.manual_seed(0)
    module = Detector(
        frontend=_load("frontend", frontend, **frontend_over),
        model=_load("model", model, **model_over),
        loss=_load("loss", "ce"),
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
    )
    datamodule = AntiSpoofDataModule(
        root=str(demo_root), train_crop=crop, eval_crop=crop, batch_size=8, preflight="exists"
    )
    recorder = LossRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=8,
        overfit_batches=1,  # the same 8 utterances every step (fresh random crops)
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, datamodule=datamodule)
    losses = recorder.losses
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.7 * first, f"{family}: loss {first:.3f} -> {last:.3f} ({losses})"
