"""Weight averaging: the saved weights are the mean of the selected epochs' weights, BatchNorm
statistics are re-estimated, and the result is a checkpoint like best.ckpt."""

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader

from spoof_lightning.callbacks.weight_averaging import WeightAveraging
from spoof_lightning.checkpoint import load_countermeasure
from spoof_lightning.data.dataset import collate
from spoof_lightning.lit.detector import Detector

CONF = Path(__file__).resolve().parents[2] / "conf"
EPOCHS = 5


def component(group: str, name: str) -> dict[str, Any]:
    root = OmegaConf.create(
        {"sample_rate": 16000, "c": OmegaConf.load(CONF / group / f"{name}.yaml")}
    )
    return OmegaConf.to_container(root, resolve=True)["c"]


def items(n: int, seed: int) -> list[dict[str, Any]]:
    """Noise, plus a 300 Hz tone for bona fide: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    tone = torch.sin(2 * torch.pi * 300 * torch.arange(4000) / 16000)
    out = []
    for i in range(n):
        label = i % 2
        wave = 0.3 * torch.randn(4000, generator=g) + 0.04 * label * tone
        out.append(
            {
                "waveform": wave,
                "label": label,
                "utt_id": f"u{seed}_{i}",
                "attack": "-" if label else "A01",
            }
        )
    return out


class Recorder(L.Callback):
    """The parameters and dev EER of every epoch, as the averaging callback sees them."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []
        self.eers: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.weights.append({n: p.detach().clone() for n, p in pl_module.named_parameters()})
            self.eers.append(float(trainer.callback_metrics["val/eer"]))


SELECTIONS = {"improved": {}, "every": {"start_epoch": 2}, "top_k": {"k": 2}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short fit with the three selections side by side, and what every epoch held."""
    folder = tmp_path_factory.mktemp("averaging")
    torch.manual_seed(0)
    module = Detector(
        frontend=component("frontend", "lfcc"),
        model=component("model", "cnn_gru"),
        loss=component("loss", "ce"),
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 3e-3},
    )
    train = DataLoader(items(24, 1), batch_size=8, shuffle=False, collate_fn=collate)
    val = DataLoader(items(32, 2), batch_size=16, collate_fn=collate)
    recorder = Recorder()
    averaging = {
        name: WeightAveraging(folder, filename=name, select=name, **options)
        for name, options in SELECTIONS.items()
    }
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[recorder, *averaging.values()],
    )
    trainer.fit(module, train, val)
    return {"module": module, "recorder": recorder, "train": train, "averaging": averaging}


def mean(weights: list[dict[str, torch.Tensor]], epochs: list[int]) -> dict[str, torch.Tensor]:
    return {n: torch.stack([weights[e][n] for e in epochs]).mean(0) for n in weights[0]}


@pytest.mark.parametrize("select", list(SELECTIONS))
def test_the_average_is_the_mean_of_the_selected_epochs(run: dict[str, Any], select: str) -> None:
    averaging, recorder = run["averaging"][select], run["recorder"]
    eers = recorder.eers
    if select == "improved":  # AASIST: every epoch whose dev EER is the best so far
        expected = [e for e in range(EPOCHS) if eers[e] <= min(eers[: e + 1])]
    elif select == "every":
        expected = list(range(2, EPOCHS))
    else:
        expected = sorted(sorted(range(EPOCHS), key=lambda e: (eers[e], e))[:2])
    assert averaging.epochs == expected and len(set(eers)) > 1
    assert averaging.saved is not None and averaging.saved.name == f"{select}.ckpt"

    loaded = load_countermeasure(averaging.saved)  # what eval.py and export read
    target = mean(recorder.weights, expected)
    for name, value in loaded.net.named_parameters():
        torch.testing.assert_close(value, target[name], rtol=1e-6, atol=1e-7)
    assert loaded.eer_threshold is not None  # measured on the val split, with the average

    # BatchNorm statistics re-estimated on the training data, as torch's update_bn does
    reference = load_countermeasure(averaging.saved).net
    update_bn((batch["waveform"] for batch in run["train"]), reference)
    ours, theirs = loaded.net.state_dict(), reference.state_dict()
    assert any("running_mean" in name for name in ours)
    for name in ours:
        if "running_" in name:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6)
    # the module itself keeps its trained (last epoch) weights
    for name, value in run["module"].named_parameters():
        torch.testing.assert_close(value, recorder.weights[-1][name], rtol=0, atol=0)


def test_resume_keeps_the_running_average() -> None:
    averaging = WeightAveraging("unused", select="top_k", k=2)
    averaging.top = [(0.1, 3, {"w": torch.ones(2)}), (0.2, 1, {"w": torch.zeros(2)})]
    averaging.epochs = [1, 3]
    restored = WeightAveraging("unused", select="top_k", k=2)
    restored.load_state_dict(averaging.state_dict())
    assert restored.epochs == [1, 3]
    torch.testing.assert_close(restored.averaged()["w"], torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="select='best'"):
        WeightAveraging("x", select="best")
