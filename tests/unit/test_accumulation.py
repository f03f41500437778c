"""Gradient accumulation (trainer=small_gpu): k micro-batches make the update of one batch k
times larger; the micro-batch rule; the trainer presets; the compile option."""

from pathlib import Path
from typing import ClassVar

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from spoof_lightning.build import ConfigError
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.lit.detector import Detector
from spoof_lightning.training import (
    apply_micro_batches,
    compile_model,
    micro_batches,
    trainer_arguments,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
N, T = 8, 64


class TinyModel(nn.Module):
    """A contract-conforming model without BatchNorm: conv, GRU, linear head."""

    accepts: ClassVar[frozenset[str]] = frozenset({"waveform"})

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 4, 5, stride=2)
        self.gru = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: Tensor) -> ModelOutput:
        h = torch.relu(self.conv(x)).transpose(1, 2)
        embedding = self.gru(h)[0][:, -1]
        return ModelOutput(logits=self.head(embedding), embedding=embedding)


class Items(Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.waveforms = torch.randn(N, T, generator=generator)
        self.labels = [1, 0, 0, 1, 0, 0, 0, 1]

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict:
        label = self.labels[i]
        return {
            "waveform": self.waveforms[i],
            "label": label,
            "utt_id": f"u{i}",
            "attack": "-" if label else "A01",
        }


def _detector() -> Detector:
    """Raw front-end + TinyModel + plain CE, SGD; the same initial weights every call."""
    torch.manual_seed(0)
    return Detector(
        frontend={"_target_": "spoof_lightning.frontends.raw.RawFrontEnd"},
        model={"_target_": f"{__name__}.TinyModel"},
        loss={"_target_": "spoof_lightning.losses.ce.CrossEntropy"},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.5},
    )


def _one_step(batch_size: int, accumulation: int) -> dict[str, Tensor]:
    """The Detector's parameters after one optimizer step over all N items."""
    module = _detector()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        accumulate_grad_batches=accumulation,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(Items(), batch_size=batch_size, shuffle=False))
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.mark.slow
def test_accumulated_micro_batches_give_the_update_of_one_large_batch():
    untouched = _one_step(N, 1)  # reference: one batch of 8
    accumulated = _one_step(2, 4)  # 4 micro-batches of 2, one optimizer step
    initial = dict(_detector().named_parameters())
    moved = False
    for name, value in untouched.items():
        torch.testing.assert_close(accumulated[name], value, atol=1e-6, rtol=1e-5)
        moved |= not torch.allclose(value, initial[name])
    assert moved, "the optimizer step changed nothing: the comparison would be vacuous"
    # Not accumulating (4 steps of 2) is a different update.
    stepped = _one_step(2, 1)
    assert not all(torch.allclose(stepped[k], v, atol=1e-6) for k, v in untouched.items())


@pytest.mark.parametrize(
    ("batch", "micro", "expected"),
    [
        (24, 8, (8, 3)),
        (24, 10, (8, 3)),
        (32, 12, (8, 4)),
        (32, 8, (8, 4)),
        (16, 32, (16, 1)),
        (23, 8, (1, 23)),
    ],
)
def test_micro_batches_keep_the_effective_batch(batch, micro, expected):
    loader_batch, accumulation = micro_batches(batch, micro)
    assert (loader_batch, accumulation) == expected
    assert loader_batch * accumulation == batch and loader_batch <= max(micro, 1)


def test_micro_batches_refuse_nonsense():
    with pytest.raises(ConfigError, match="trainer.micro_batch_size"):
        micro_batches(24, 0)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_small_gpu_preset_keeps_the_papers_batch_in_fp16_micro_batches():
    cfg = _compose("trainer=small_gpu", "data.batch_size=24")
    apply_micro_batches(cfg)
    assert (cfg.data.batch_size, cfg.trainer.accumulate_grad_batches) == (8, 3)
    kwargs, options = trainer_arguments(cfg)
    assert kwargs["precision"] == "16-mixed" and kwargs["accumulate_grad_batches"] == 3
    assert "micro_batch_size" not in kwargs and "compile" not in kwargs
    assert options == {"micro_batch_size": None, "compile": False}
    # The rewritten config is self-consistent: applying the rule again changes nothing.
    apply_micro_batches(cfg)
    assert (cfg.data.batch_size, cfg.trainer.accumulate_grad_batches) == (8, 3)


def test_micro_batch_size_and_accumulation_together_are_refused():
    cfg = _compose("trainer=small_gpu", "trainer.accumulate_grad_batches=2")
    with pytest.raises(ConfigError, match="accumulate_grad_batches"):
        apply_micro_batches(cfg)


@pytest.mark.parametrize(
    ("preset", "precision", "strategy"),
    [
        ("cpu", "32-true", None),
        ("small_gpu_bf16", "bf16-mixed", None),
        ("gpu_bf16", "bf16-mixed", None),
        ("ddp", "32-true", "ddp"),
    ],
)
def test_trainer_presets_build_lightning_arguments(preset, precision, strategy):
    cfg = _compose(f"trainer={preset}")
    kwargs, _ = trainer_arguments(cfg)
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        precision = precision.replace("bf16", "16")
    assert kwargs["precision"] == precision and kwargs.get("strategy") == strategy
    plugins = kwargs["plugins"]
    assert [p["_target_"] for p in plugins] == [
        "spoof_lightning.callbacks.checkpoint_io.AtomicCheckpointIO"
    ]
    assert OmegaConf.select(cfg, "trainer.compile") is False


def test_compile_wraps_the_model_only_and_keeps_checkpoint_keys():
    module = _detector()
    keys = list(module.state_dict())
    compile_model(module, {"backend": "eager"})
    assert module.model._compiled_call_impl is not None
    assert module.frontend._compiled_call_impl is None
    assert list(module.state_dict()) == keys
    torch.manual_seed(0)
    assert module(torch.randn(2, T)).logits.shape == (2, 2)


def test_experiments_leave_precision_and_batching_to_the_trainer_preset():
    """`experiment=X trainer=small_gpu` must run the preset's fp16 micro-batches: an experiment
    that set trainer.precision (or the batching keys) would silently override the preset.
    A small-GPU experiment that picks the trainer preset itself may tune it."""
    preset_keys = {"precision", "micro_batch_size", "accumulate_grad_batches"}
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        content = OmegaConf.load(path)
        if any("override /trainer" in str(entry) for entry in content.get("defaults") or []):
            continue
        trainer = content.get("trainer") or {}
        assert not preset_keys & set(trainer), (
            f"{path.name} sets trainer.{preset_keys & set(trainer)}"
        )
    cfg = _compose("experiment=aasist_l_la19", "trainer=small_gpu")  # inherits aasist_la19
    assert (cfg.trainer.precision, cfg.trainer.micro_batch_size) == ("16-mixed", 8)
