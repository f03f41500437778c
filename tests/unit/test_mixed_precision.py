"""Mixed precision on CPU: the float32 islands (front-ends, losses) under autocast, fp16's
skipped steps counted with a real GradScaler, non-finite weights never checkpointed."""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.precision import MixedPrecision
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from spoof_lightning.callbacks.nonfinite import NonFiniteError, NonFiniteGuard
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.ce import CrossEntropy
from spoof_lightning.losses.distill_terms import feature_loss, hard_loss, soft_loss
from spoof_lightning.losses.frame_ce import FrameCrossEntropy
from tests.unit.test_accumulation import Items, _detector

CONF = Path(__file__).resolve().parents[2] / "conf"
LOW = [torch.bfloat16, torch.float16]


def frontend(name: str) -> torch.nn.Module:
    cfg = OmegaConf.create(
        {"sample_rate": 16000, "f": OmegaConf.load(CONF / f"frontend/{name}.yaml")}
    )
    return instantiate(cfg.f).eval()


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", ["sinc", "lfcc", "spectrogram", "mel", "cqt"])
def test_frontends_compute_in_float32_under_autocast(name: str, dtype: torch.dtype) -> None:
    """Under autocast a front-end gives the float32 features of the fp32 computation (an FFT,
    filterbank or log in half precision would be off by ~1e-2)."""
    fe = frontend(name)
    wave = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    reference = fe(wave)
    with torch.autocast("cpu", dtype=dtype):
        out = fe(wave)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", LOW)
def test_losses_compute_in_float32_under_autocast(dtype: torch.dtype) -> None:
    """Logits in half precision (as a model emits them under autocast) give the float32 loss
    of the same values computed in fp32."""
    generator = torch.Generator().manual_seed(0)
    logits = (4 * torch.randn(6, 2, generator=generator)).to(dtype)
    frames = (4 * torch.randn(6, 5, 2, generator=generator)).to(dtype)
    labels = torch.tensor([0, 1, 0, 0, 1, 1])
    frame_labels = torch.randint(0, 2, (6, 5), generator=generator)

    def losses(lg: torch.Tensor, fr: torch.Tensor) -> list[torch.Tensor]:
        out = ModelOutput(logits=lg, embedding=lg, frame_logits=fr)
        return [
            CrossEntropy(class_weights=[0.1, 0.9])(out, labels)["total"],
            FrameCrossEntropy(class_weights=[0.1, 0.9])(out, labels, frame_labels)["total"],
            hard_loss(lg, labels),
            soft_loss(lg, lg.flip(0), temperature=2.0),
            feature_loss(lg, lg.flip(0)),
        ]

    reference = losses(logits.float(), frames.float())
    with torch.autocast("cpu", dtype=dtype):
        mixed = losses(logits, frames)
    for got, want in zip(mixed, reference, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    defaults = {
        "accelerator": "cpu",
        "max_steps": 4,
        "limit_val_batches": 0,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
    }
    return L.Trainer(**(defaults | kwargs))


def test_fp16_overflow_skips_are_counted_and_leave_weights_unchanged(tmp_path: Path) -> None:
    """A real GradScaler whose scale overflows fp16 gradients skips every step; each skip is
    counted (train/amp_skipped_steps) and the weights do not move."""
    module = _detector()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    guard = NonFiniteGuard()
    plugin = MixedPrecision("16-mixed", "cpu", scaler=scaler)
    trainer = _trainer(tmp_path, plugins=[plugin], callbacks=[guard], enable_checkpointing=False)
    trainer.fit(module, DataLoader(Items(), batch_size=2))
    assert guard.skipped_steps == 4
    assert float(trainer.callback_metrics["train/amp_skipped_steps"]) == 4.0
    assert scaler.get_scale() == 2.0**96  # halved once per skipped step
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, equal_nan=True)


def test_no_skip_counter_without_a_scaler(tmp_path: Path) -> None:
    guard = NonFiniteGuard()
    trainer = _trainer(tmp_path, callbacks=[guard], enable_checkpointing=False)
    trainer.fit(_detector(), DataLoader(Items(), batch_size=2))
    assert guard.skipped_steps == 0
    assert "train/amp_skipped_steps" not in trainer.callback_metrics


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    module = _detector()
    trainer = _trainer(tmp_path, max_steps=1, callbacks=[NonFiniteGuard()])
    trainer.fit(module, DataLoader(Items(), batch_size=2))
    good = tmp_path / "good.ckpt"
    trainer.save_checkpoint(good)
    assert good.is_file()
    with torch.no_grad():
        module.model.head.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"model\.head\.weight"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()
