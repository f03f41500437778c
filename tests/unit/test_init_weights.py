"""InitFromOfficialAASIST: a Detector starts from the released AASIST weights, not on resume."""

import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from spoof_lightning.callbacks.init_weights import InitFromOfficialAASIST
from spoof_lightning.lit.detector import Detector

CONF = Path(__file__).resolve().parents[2] / "conf"
SHARED = Path(os.environ.get("SPOOF_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = SHARED / "reference" / "aasist"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "official_outputs.npz").is_file(),
    reason=f"official AASIST reference data not found in {REFERENCE} (set SPOOF_SHARED)",
)
OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.0}  # weights stay put


def detector(model: str = "aasist_l", frontend: str = "sinc") -> Detector:
    def load(group: str, name: str) -> dict:
        cfg = OmegaConf.merge({"sample_rate": 16000}, {"c": OmegaConf.load(CONF / group / name)})
        return OmegaConf.to_container(cfg, resolve=True)["c"]

    return Detector(
        frontend=load("frontend", f"{frontend}.yaml"),
        model=load("model", f"{model}.yaml"),
        loss=load("loss", "ce.yaml"),
        optimizer=OPTIMIZER,
    )


def fit(module: Detector, callback: L.Callback, steps: int = 0, ckpt_path: str | None = None):
    """``trainer.fit`` for ``steps`` steps on a short batch (lr 0: the parameters stay put)."""
    batch = {"waveform": torch.randn(2, 8000), "label": torch.tensor([0, 1])}
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[callback],
    )
    trainer.fit(module, DataLoader([batch], batch_size=None), ckpt_path=ckpt_path)


@needs_reference
@pytest.mark.parametrize(("name", "model"), [("AASIST-L", "aasist_l"), ("AASIST", "aasist")])
def test_detector_gives_the_official_logits(name: str, model: str) -> None:
    torch.manual_seed(0)
    module = detector(model)
    callback = InitFromOfficialAASIST(REFERENCE / f"{name}.pth")
    fit(module, callback)  # loads in on_fit_start; no step, so BN statistics stay official
    assert callback.loaded
    reference = np.load(REFERENCE / "official_outputs.npz")
    wave = torch.from_numpy(reference["waveforms"][:2])
    module.eval()
    with torch.no_grad():
        out = module(wave)
    np.testing.assert_allclose(out.logits.numpy(), reference[f"{name}_logits"][:2], atol=1e-4)
    np.testing.assert_allclose(out.embedding.numpy(), reference[f"{name}_embedding"][:2], atol=1e-4)


def test_resume_keeps_the_run_checkpoint(tmp_path: Path) -> None:
    """On resume the weights come from the run's checkpoint; the file is not even opened."""
    torch.manual_seed(0)
    module = detector()
    trainer = L.Trainer(accelerator="cpu", max_steps=0, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = {k: v.clone() for k, v in module.model.named_parameters()}

    resumed = detector()
    callback = InitFromOfficialAASIST(tmp_path / "does_not_exist.pth")
    fit(resumed, callback, steps=1, ckpt_path=str(ckpt))
    assert not callback.loaded
    for key, value in resumed.model.named_parameters():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)


def test_missing_file_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="callbacks.init_official.path"):
        fit(detector(), InitFromOfficialAASIST(tmp_path / "AASIST.pth"))


def test_refuses_a_model_that_is_not_aasist(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="model=aasist"):
        fit(detector("cnn_gru", "raw"), InitFromOfficialAASIST(tmp_path / "AASIST.pth"))


@needs_reference
def test_wrong_variant_is_refused_by_name() -> None:
    """AASIST.pth into an AASIST-L back-end: the loader names the mismatched keys."""
    with pytest.raises(ValueError, match="model=aasist_l"):
        fit(detector("aasist_l"), InitFromOfficialAASIST(REFERENCE / "AASIST.pth"))
