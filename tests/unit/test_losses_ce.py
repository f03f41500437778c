import pytest
import torch

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.losses.ce import CrossEntropy


def _output(logits: torch.Tensor) -> ModelOutput:
    return ModelOutput(logits=logits, embedding=torch.zeros(logits.shape[0], 4))


def test_weighted_ce_matches_manual_formula():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5]])
    labels = torch.tensor([0, 1, 1])
    weights = torch.tensor([0.1, 0.9])
    log_probs = logits.log_softmax(-1)
    nll = -log_probs[torch.arange(3), labels]
    expected = (weights[labels] * nll).sum() / weights[labels].sum()
    terms = CrossEntropy(class_weights=[0.1, 0.9])(_output(logits), labels)
    assert torch.allclose(terms["total"], expected)
    assert torch.equal(terms["total"], terms["ce"])


def test_unweighted_ce_is_plain_mean():
    logits = torch.randn(5, 2)
    labels = torch.tensor([0, 1, 0, 0, 1])
    terms = CrossEntropy()(_output(logits), labels)
    assert torch.allclose(terms["total"], torch.nn.functional.cross_entropy(logits, labels))


def test_bad_class_weights_name_the_key():
    with pytest.raises(ValueError, match="loss.class_weights"):
        CrossEntropy(class_weights=[0.1, 0.2, 0.7])
