"""DFWF loss terms, the old model, continual metrics and the experience configs."""

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F

from spoof_lightning.build import ConfigError
from spoof_lightning.continual_training import (
    continual_metrics,
    experiences_from_config,
    format_markdown,
)
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.dfwf import DFWF, alignment_loss


class Toy(nn.Module):
    """A linear 'model' on 6-sample waveforms: embedding = W x, logits = V embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        embedding = self.embed(x)
        return ModelOutput(self.head(embedding), embedding)


def test_alignment_uses_bona_fide_rows_only():
    new = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    old = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    labels = torch.tensor([1, 1, 0])  # the third row (spoof) is opposite but ignored
    value = alignment_loss(new, old, labels)
    assert value.item() == pytest.approx(((1 - 1.0) + (1 - 0.0)) / 2)
    value.backward()
    assert new.grad[2].abs().sum() == 0 and new.grad[1].abs().sum() > 0
    none = alignment_loss(new, old, torch.tensor([0, 0, 0]))
    assert none.item() == 0.0 and none.requires_grad


def test_without_an_old_model_dfwf_is_the_weighted_ce():
    loss = DFWF(class_weights=[0.1, 0.9])
    torch.manual_seed(0)
    model, x, labels = Toy(), torch.randn(5, 6), torch.tensor([1, 0, 0, 1, 0])
    terms = loss(model(x), labels, waveform=x)
    expected = F.cross_entropy(model(x).logits, labels, weight=torch.tensor([0.1, 0.9]))
    assert set(terms) == {"total", "ce"}
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_dfwf_terms_against_the_remembered_model():
    torch.manual_seed(0)
    model, x, labels = Toy(), torch.randn(6, 6), torch.tensor([1, 0, 0, 1, 0, 1])
    loss = DFWF(lambda_kd=0.5, lambda_psa=2.0, temperature=2.0)
    loss.remember(nn.Identity(), model)
    old = model(x)
    with torch.no_grad():  # the new model moves away from the old one
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    new = model(x)
    terms = loss(new, labels, waveform=x)

    p_old = torch.softmax(old.logits / 2, -1)
    kd = 4 * (p_old * (p_old.log() - torch.log_softmax(new.logits / 2, -1))).sum(-1).mean()
    bona = labels == 1
    psa = (1 - F.cosine_similarity(new.embedding[bona], old.embedding[bona])).mean()
    ce = F.cross_entropy(new.logits, labels)
    for name, value in (("ce", ce), ("kd", kd), ("psa", psa)):
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-5), name
    assert terms["total"].item() == pytest.approx((ce + 0.5 * kd + 2.0 * psa).item(), rel=1e-5)

    # The old model is a frozen copy: no gradients, not a parameter of the loss.
    terms["total"].backward()
    assert all(p.grad is None for p in loss.old.model.parameters())
    assert all(p.grad is not None for p in model.parameters())
    assert not list(loss.parameters()) and not loss.state_dict()
    assert not loss.old.model.training


def test_finetuning_regime_skips_the_old_model():
    torch.manual_seed(0)
    model, x, labels = Toy(), torch.randn(4, 6), torch.tensor([1, 0, 1, 0])
    loss = DFWF(lambda_kd=0.0, lambda_psa=0.0)
    loss.remember(nn.Identity(), model)
    terms = loss(model(x), labels, waveform=x)
    assert set(terms) == {"total", "ce"}


def test_continual_metrics_from_a_hand_made_matrix():
    matrix = [
        [10.0, 40.0, 45.0],
        [12.0, 8.0, 41.0],
        [20.0, 9.0, 5.0],
    ]
    metrics = continual_metrics(matrix)
    assert metrics["average_eer_percent"] == pytest.approx((20 + 9 + 5) / 3)
    assert metrics["average_eer_seen_percent"] == pytest.approx([10.0, 10.0, 34 / 3])
    assert metrics["forgetting_percent"] == pytest.approx([20.0 - 10.0, 9.0 - 8.0])
    assert metrics["average_forgetting_percent"] == pytest.approx(5.5)
    results = {"experiences": ["a", "b", "c"], "regimes": {"dfwf": {**metrics}}}
    results["regimes"]["dfwf"]["eer_matrix_percent"] = matrix
    table = format_markdown(results)
    assert "| b | 12.00 | 8.00 | 41.00 |" in table and "| dfwf | 11.33 | 5.50 |" in table


def _config(experiences: dict) -> DictConfig:
    return OmegaConf.create(
        {
            "sample_rate": 16000,
            "data": {
                "_target_": "spoof_lightning.data.datamodule.AntiSpoofDataModule",
                "root": "/corpus",
                "sample_rate": "${sample_rate}",
                "batch_size": 8,
            },
            "experiences": experiences,
        }
    )


def test_experiences_are_the_data_config_with_overrides():
    cfg = _config(
        {
            "tts": {"attacks": {"train": ["A01"], "test": ["A16"]}},
            "other": {"data": {"root": "/other", "batch_size": 4}},
        }
    )
    first, second = experiences_from_config(cfg)
    assert first.name == "tts" and first.dirname(0) == "exp1-tts"
    assert first.data["_target_"] == "spoof_lightning.data.datamodule.AntiSpoofDataModule"
    assert first.data["attacks"] == {"train": ["A01"], "test": ["A16"]}
    assert first.data["sample_rate"] == 16000 and first.data["root"] == "/corpus"
    assert second.data["_target_"] == "spoof_lightning.data.datamodule.AntiSpoofDataModule"
    assert (second.data["root"], second.data["batch_size"]) == ("/other", 4)


def test_bad_experience_configs_are_refused():
    with pytest.raises(ConfigError, match="at least 2 entries"):
        experiences_from_config(_config({"only": {}}))
    with pytest.raises(ConfigError, match="experiences.b: unknown keys"):
        experiences_from_config(_config({"a": {}, "b": {"atacks": {}}}))
