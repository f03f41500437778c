"""config_checks.py: every range and choice refused by key, before anything is built; crops
against the shortest input a front-end + model accept (build.min_input_samples)."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn

from spoof_lightning.build import ConfigError, build_components, min_input_samples
from spoof_lightning.config_checks import check_crops, check_eval_config, check_train_config

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def config(name: str, *overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


# Each case composes once (a compose costs ~0.3 s) and expects every listed message.
BAD_TRAINING_VALUES = {
    "issue 10": {
        "data.batch_size=-4": "data.batch_size must be an integer >= 1, got -4",
        "data.on_error=bogus": "data.on_error must be one of ('strict', 'skip'), got 'bogus'",
        "data.train_crop=0": "data.train_crop must be an integer >= 1, got 0",
        "data.subset.train={per_clas:10}": (
            "data.subset.train.per_clas is not a subset kind (did you mean per_class?)"
        ),
    },
    "data": {
        "data.subset.val={per_class:{bonafide:5,spof:3}}": "per_class.spof is not a class",
        "data.subset.test={per_class:5,size:9}": "data.subset.test must be null or one of",
        "data.attacks={trian:[A01]}": "data.attacks.trian is not a split (did you mean train?)",
        "data.eval_crop=-1": "data.eval_crop must be an integer >= 1 or null, got -1",
        "data.eval_batch_size=0": "data.eval_batch_size must be an integer >= 1 or null",
        "data.num_workers=-1": "data.num_workers must be an integer >= 0, got -1",
        "data.pad=mirror": "data.pad must be one of ('repeat', 'zero'), got 'mirror'",
        "data.loader=lazy": "data.loader must be one of ('map', 'stream', 'shards')",
        "data.preflight=full": "data.preflight must be one of ('off', 'exists', 'header'",
        "data.uneven=pad": "data.uneven must be one of ('wrap', 'drop'), got 'pad'",
        "data.shuffle_buffer=-1": "data.shuffle_buffer must be an integer >= 0",
        "data.frame_hop=0": "data.frame_hop must be a number > 0 or null, got 0",
        "sample_rate=0": "data.sample_rate must be an integer >= 1, got 0",
        "data.corpus=asvspoof2017": "data.corpus must be one of ('asvspoof2019_la'",
        "data.pin_memory=maybe": "data.pin_memory must be true or false, got 'maybe'",
        "+data.crop=100": "data.crop is not an argument of AntiSpoofDataModule (did you mean",
        "seed=-1": ("seed must be an integer >= 0, got -1", "data.seed must be an integer >= 0"),
    },
    "trainer": {
        "trainer.max_epochs=-5": "trainer.max_epochs must be an integer >= -1 or null, got -5",
        "trainer.precision=17": "trainer.precision must be one of ('16-mixed'",
        "trainer.accumulate_grad_batches=0": "trainer.accumulate_grad_batches must be an",
        "trainer.micro_batch_size=0": "trainer.micro_batch_size must be an integer >= 1",
        "trainer.gradient_clip_val=-1": "trainer.gradient_clip_val must be a number >= 0",
        "trainer.log_every_n_steps=-1": "trainer.log_every_n_steps must be an integer >= 0",
        "trainer.devices=0": "trainer.devices must be a positive integer, -1 (all), auto",
        "trainer.accelerator=gpux": "trainer.accelerator must be one of ('auto', 'cpu'",
        "trainer.deterministic=sometimes": "trainer.deterministic must be true, false, warn",
        "+trainer.val_check_interval=1.5": "trainer.val_check_interval must be an integer",
        "+trainer.max_epoch=3": "trainer.max_epoch is not a lightning.Trainer argument (did",
        "data.loader=shards": "data.loader=shards needs data.shards_root",
        "augment=noise": "",
        "augment.transforms.0.p=1.5": "augment.transforms[0].p must be a probability in [0, 1]",
    },
    "more": {
        "data.subset.train={per_class:0}": "data.subset.train.per_class must be an integer",
        "data.attacks={train:[]}": "data.attacks.train must be a non-empty list of attack ids",
        "augment=rawboost": "",
        "augment.min_snr_db=50": "augment.min_snr_db=50 must not exceed augment.max_snr_db=40",
    },
    "constructor": {"augment=rawboost": "", "augment.algo=9": "augment: ValueError: RawBoost"},
}


@pytest.mark.parametrize("case", BAD_TRAINING_VALUES)
def test_bad_training_values_are_refused_by_key_all_at_once(case: str):
    expected = BAD_TRAINING_VALUES[case]
    with pytest.raises(ConfigError) as error:
        check_train_config(config("train", *expected))
    assert_problems(str(error.value), "training", expected.values())


def assert_problems(message: str, where: str, expected) -> None:
    """One paragraph listing exactly the ``expected`` problems (empty ones are no problem)."""
    prefix = f"invalid {where} config: "
    assert message.startswith(prefix) and message.endswith(".") and "\n" not in message
    problems = message[len(prefix) : -1].split("; ")
    wanted = [p for part in expected for p in ([part] if isinstance(part, str) else part) if p]
    assert len(problems) == len(wanted), problems
    for part in wanted:
        assert any(part in problem for problem in problems), part


@pytest.mark.slow  # ~30 composes
def test_every_shipped_config_passes():
    roots = ["data.root=/corpus", "data.train_root=/corpus", "+had_root=/had"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for experiment in EXPERIMENTS:
            check_train_config(compose("train", [f"experiment={experiment}", *roots]))
        for group in ["trainer=gpu", "trainer=ddp", "trainer=small_gpu_bf16", "augment=rawboost"]:
            check_train_config(compose("train", [group]))
        check_train_config(compose("continual", ["experiment=dfwf_demo"]))
        with pytest.raises(ConfigError, match="data.batch_size must be"):
            check_train_config(compose("continual", ["experiment=dfwf_demo", "data.batch_size=0"]))


BAD_EVAL_VALUES = {
    "threshold=abc": "threshold must be a finite number",
    "split=train": "split must be one of ('test', 'val'), got 'train'",
    "tdcf=2020": "tdcf must be 2019 or 2021, got 2020",
    "calibration_prior=1.5": "calibration_prior must be a number in (0, 1), got 1.5",
    "precision=17": "precision must be one of",
    "conditions=5": "conditions must be auto, null, a metadata column",
    "asv_keys=keys.txt": "asv_keys needs asv_scores",
    "data=folder": "data.root is not set: pass data.root=<value>",
    "data.batch_size=0": "data.batch_size must be an integer >= 1, got 0",
}


def test_bad_eval_values_are_refused_by_key_all_at_once():
    with pytest.raises(ConfigError) as error:
        check_eval_config(config("eval", "ckpt=model.ckpt", *BAD_EVAL_VALUES))
    assert_problems(str(error.value), "evaluation", BAD_EVAL_VALUES.values())


def test_eval_needs_a_checkpoint_and_accepts_the_defaults():
    with pytest.raises(ConfigError, match="ckpt is not set: pass ckpt="):
        check_eval_config(config("eval"))
    check_eval_config(config("eval", "ckpt=model.ckpt", "data=had", "data.root=/had"))


# ------------------------------------------------------------------ input length

LFCC = {"_target_": "spoof_lightning.frontends.lfcc.LFCCFrontEnd"}
CNN_GRU = {"_target_": "spoof_lightning.models.cnn_gru.CNNGRU"}


class Strided(nn.Module):
    """A model that needs ``kernel`` input samples (an unpadded convolution)."""

    accepts = frozenset({"waveform"})

    def __init__(self, in_channels: int, kernel: int = 50) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 2, kernel)

    def forward(self, x: torch.Tensor):
        from spoof_lightning.contracts import ModelOutput

        logits = self.conv(x).mean(-1)
        return ModelOutput(logits=logits, embedding=logits)


def test_the_probed_minimum_is_exact():
    frontend, model = build_components(LFCC, CNN_GRU)
    frontend.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not the probe's one thread (tests/conftest.py: one for all)
    try:
        need = min_input_samples(frontend, model)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(threads)
    assert need == 257  # n_fft // 2 + 1: the centred STFT's reflect padding
    assert frontend.training and model.training  # modes restored
    with torch.no_grad():
        model.eval()
        model(frontend.eval()(torch.zeros(1, need)))
        with pytest.raises(ValueError, match="at least 257 samples"):
            model(frontend(torch.zeros(1, need - 1)))
    raw = {"_target_": "spoof_lightning.frontends.raw.RawFrontEnd"}
    strided = {"_target_": f"{__name__}.Strided", "kernel": 1000}
    assert min_input_samples(*build_components(raw, strided)) == 1000
    with pytest.raises(ConfigError, match="fail on every waveform up to 512 samples"):
        min_input_samples(*build_components(raw, strided), limit=512)


def test_crops_shorter_than_the_minimum_are_refused_by_key():
    data = {"train_crop": 100, "eval_crop": None, "sample_rate": 16000}
    with pytest.raises(ConfigError) as error:
        check_crops(data, 257, "frontend=lfcc model=cnn_gru")
    assert str(error.value) == (
        "invalid data config: data.train_crop=100 is shorter than the 257 samples (16.1 ms at "
        "16000 Hz) that frontend=lfcc model=cnn_gru need: use data.train_crop >= 257."
    )
    check_crops(data | {"train_crop": 257}, 257, "x")
    with pytest.raises(ConfigError, match="data.eval_crop=256 is shorter"):
        check_crops(data | {"train_crop": 257, "eval_crop": 256}, 257, "x")
    check_crops(data, 257, "x", keys=["eval_crop"])  # eval.py: the train crop is not used
