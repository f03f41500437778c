"""Distillation terms, self-distillation and teacher-student losses: values and gradients."""

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from spoof_lightning.contracts import ModelOutput
from spoof_lightning.lit.detector import Detector
from spoof_lightning.losses.dfwf import DFWF
from spoof_lightning.losses.distill_terms import (
    Projection,
    feature_loss,
    hard_loss,
    soft_loss,
)
from spoof_lightning.losses.self_distill import SelfDistillation, StageHead
from spoof_lightning.losses.teacher_student import TeacherStudent, load_teacher

LFCC = {
    "_target_": "spoof_lightning.frontends.lfcc.LFCCFrontEnd",
    "sample_rate": 16000,
    "n_lfcc": 10,
    "n_filter": 20,
}
RAW = {"_target_": "spoof_lightning.frontends.raw.RawFrontEnd"}
TINY_CNN_GRU = {
    "_target_": "spoof_lightning.models.cnn_gru.CNNGRU",
    "filts": [4, [4, 4], [4, 8], [8, 8]],
    "blocks_per_group": 1,
    "gru_hidden": 8,
}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
SELF_DISTILL = {
    "_target_": "spoof_lightning.losses.self_distill.SelfDistillation",
    "alpha": 0.4,
    "lambda_feature": 0.5,
    "temperature": 2.0,
    "class_weights": [0.3, 0.7],
    "bottleneck": 6,
}


def _kl(teacher: torch.Tensor, student: torch.Tensor, t: float) -> torch.Tensor:
    """T^2 * mean over the batch of sum_c p_t (log p_t - log p_s), written out."""
    p_t = torch.softmax(teacher / t, dim=-1)
    return t * t * (p_t * (p_t.log() - torch.log_softmax(student / t, dim=-1))).sum(-1).mean()


def _batch(n: int = 4, samples: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return 0.1 * torch.randn(n, samples), torch.tensor([1, 0, 0, 1, 0, 1][:n])


# ----------------------------------------------------------------------------- terms


def test_soft_loss_matches_hand_computed_kl():
    student = torch.tensor([[2.0, -1.0], [0.0, 0.5], [1.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [-2.0, 2.0], [0.3, -0.3]])
    value = soft_loss(student, teacher, temperature=3.0)
    # First row by hand: p_t = softmax([1/3, 0]), p_s = softmax([2/3, -1/3]).
    p_t1 = 1 / (1 + math.exp(-1 / 3))
    p_s1 = 1 / (1 + math.exp(-1))
    row1 = p_t1 * math.log(p_t1 / p_s1) + (1 - p_t1) * math.log((1 - p_t1) / (1 - p_s1))
    assert _kl(teacher[:1], student[:1], 3.0).item() == pytest.approx(9 * row1, rel=1e-5)
    assert value.item() == pytest.approx(_kl(teacher, student, 3.0).item(), rel=1e-5)
    assert soft_loss(teacher, teacher, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_soft_loss_teaches_only_the_student():
    student = torch.randn(5, 2, requires_grad=True)
    teacher = torch.randn(5, 2, requires_grad=True)
    soft_loss(student, teacher, 2.0).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_hard_and_feature_terms():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5]])
    labels = torch.tensor([0, 1, 1])
    weight = torch.tensor([0.2, 0.8])
    nll = -logits.log_softmax(-1)[torch.arange(3), labels]
    expected = (weight[labels] * nll).sum() / weight[labels].sum()
    assert hard_loss(logits, labels, weight).item() == pytest.approx(expected.item(), rel=1e-6)

    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, 2.0], [3.0, 2.0]], requires_grad=True)
    value = feature_loss(student, target)
    assert value.item() == pytest.approx((1 + 0 + 0 + 4) / 4)
    value.backward()
    assert target.grad is None
    with pytest.raises(ValueError, match="shapes differ"):
        feature_loss(student, target[:, :1])


def test_projection_takes_its_shape_from_a_state_dict():
    source = Projection()
    source.resize(3, 5)
    rebuilt = Projection()
    assert not rebuilt.is_sized
    rebuilt.load_state_dict(source.state_dict())
    x = torch.randn(2, 3)
    assert torch.equal(rebuilt(x), source(x)) and rebuilt(x).shape == (2, 5)


# ---------------------------------------------------------------- self-distillation


def test_self_distillation_total_is_the_papers_weighted_sum():
    loss = SelfDistillation(alpha=0.4, lambda_feature=0.5, temperature=2.0, bottleneck=3)
    torch.manual_seed(0)
    stages = [torch.randn(4, 2, 6, 9), torch.randn(4, 3, 5, 7), torch.randn(4, 5, 3, 4)]
    # What build() makes for these shapes: shallow channels -> the deepest stage's 5.
    loss.heads = torch.nn.ModuleList([StageHead(2, 5, 3, dims=2), StageHead(3, 5, 3, dims=2)])
    output = ModelOutput(torch.randn(4, 2), torch.randn(4, 5), stage_features=stages)
    labels = torch.tensor([1, 0, 0, 1])
    terms = loss(output, labels)

    shallow = loss.shallow_outputs(output)
    hard = sum(F.cross_entropy(z, labels) for _, z in shallow)
    soft = sum(_kl(output.logits, z, 2.0) for _, z in shallow)
    feature = sum(((a - stages[-1]) ** 2).mean() for a, _ in shallow)
    deep = F.cross_entropy(output.logits, labels)
    for name, value in (("hard", hard), ("soft", soft), ("feature", feature), ("deep", deep)):
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-5), name
    expected = deep + 0.6 * hard + 0.4 * soft + 0.5 * feature
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert [tuple(z.shape) for z in output.stage_logits] == [(4, 2)] * 3
    assert output.stage_logits[-1] is output.logits


def _self_distill_detector() -> Detector:
    torch.manual_seed(0)
    return Detector(LFCC, TINY_CNN_GRU, SELF_DISTILL, ADAM)


def test_detector_builds_one_head_per_shallow_stage():
    detector = _self_distill_detector()
    heads = detector.loss_fn.heads
    assert len(heads) == 3  # CNN-GRU: 3 residual groups + the GRU sequence
    assert [h.adapter[0].in_channels for h in heads] == [4, 8, 8]
    assert {h.adapter[-1].out_channels for h in heads} == {8}  # the GRU width
    # Heads are trained: in the optimizer and the checkpoint.
    optimizer = detector.configure_optimizers()["optimizer"]
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_optimizer for p in heads.parameters())
    assert any(k.startswith("loss_fn.heads.") for k in detector.state_dict())


def test_self_distillation_gradients_reach_what_each_term_trains():
    detector = _self_distill_detector()
    waveform, labels = _batch()
    model = detector.model

    heads = detector.loss_fn.heads

    def trained(term: str) -> set[str]:
        """The parts that receive a gradient from ``term``."""
        detector.zero_grad(set_to_none=True)
        detector.loss_fn(detector(waveform), labels)[term].backward()
        parts = {
            "adapters": [p for h in heads for p in h.adapter.parameters()],
            "classifiers": [p for h in heads for p in h.classifier.parameters()],
            "shallow": [model.groups[0][0].conv1.weight],
            "gru": [model.gru.weight_ih_l0],
            "out": [model.out.weight],
        }
        return {name for name, ps in parts.items() if all(p.grad is not None for p in ps)}

    # The deepest stage is the teacher: the shallow terms never move it.
    assert trained("hard") == {"adapters", "classifiers", "shallow"}
    assert trained("soft") == {"adapters", "classifiers", "shallow"}
    assert trained("feature") == {"adapters", "shallow"}
    assert trained("deep") == {"shallow", "gru", "out"}
    assert trained("total") == {"adapters", "classifiers", "shallow", "gru", "out"}


def test_scoring_ignores_the_heads():
    detector = _self_distill_detector().eval()
    waveform, _ = _batch()
    before = detector.score(waveform)
    for p in detector.loss_fn.parameters():
        p.data.normal_()
    assert torch.equal(detector.score(waveform), before)


def test_self_distillation_refuses_single_stage_models():
    class OneStage(torch.nn.Module):
        def forward(self, x):
            return ModelOutput(x[:, :2, 0], x[:, :2, 0], stage_features=[x])

    with pytest.raises(ValueError, match="at least 2 stage_features"):
        SelfDistillation().build(torch.nn.Unflatten(1, (1, -1)), OneStage())


def test_bad_loss_settings_name_their_key():
    with pytest.raises(ValueError, match="loss.alpha"):
        SelfDistillation(alpha=1.5)
    with pytest.raises(ValueError, match="loss.temperature"):
        SelfDistillation(temperature=0)
    with pytest.raises(ValueError, match="loss.class_weights"):
        SelfDistillation(class_weights=[1.0])
    with pytest.raises(ValueError, match="loss.teacher"):
        TeacherStudent(teacher="")
    with pytest.raises(ValueError, match=r"loss.lambda_feature must be >= 0"):
        TeacherStudent(teacher="t.ckpt", lambda_feature=-1.0)
    with pytest.raises(ValueError, match=r"loss.lambda_psa must be >= 0"):
        DFWF(lambda_psa=-0.5)


# ------------------------------------------------------------------ teacher-student


@pytest.fixture()
def teacher_ckpt(tmp_path: Path) -> Path:
    """A spoof-lightning checkpoint of an LFCC + CNN-GRU trained with self-distillation."""
    teacher = Detector(LFCC, {**TINY_CNN_GRU, "gru_hidden": 12}, SELF_DISTILL, ADAM)
    path = tmp_path / "teacher.ckpt"
    torch.save(
        {"state_dict": teacher.state_dict(), "hyper_parameters": dict(teacher.hparams)}, path
    )
    return path


def _student(teacher: Path, **loss: object) -> Detector:
    torch.manual_seed(1)
    config = {
        "_target_": "spoof_lightning.losses.teacher_student.TeacherStudent",
        "teacher": str(teacher),
        "alpha": 0.3,
        "lambda_feature": 2.0,
        "temperature": 4.0,
        **loss,
    }
    return Detector(RAW, TINY_CNN_GRU, config, ADAM)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_teacher_is_frozen_and_outside_the_student(teacher_ckpt: Path):
    student = _student(teacher_ckpt)
    student.setup("fit")  # loads the teacher, sizes the adapter, before the optimizer
    teacher = student.loss_fn.teacher
    assert tuple(student.loss_fn.adapter.weight.shape) == (12, 8)  # student GRU -> teacher GRU
    teacher_params = {id(p) for p in [*teacher.frontend.parameters(), *teacher.model.parameters()]}
    assert teacher_params and not teacher_params & {id(p) for p in student.parameters()}
    prefixes = {k.split(".")[0] for k in student.state_dict()}
    assert prefixes == {"model", "loss_fn", "eer_threshold"}  # the raw front-end has no weights
    assert {k for k in student.state_dict() if k.startswith("loss_fn.")} == {
        "loss_fn.adapter.weight",
        "loss_fn.adapter.bias",
    }
    student.train()
    assert not teacher.model.training and not teacher.frontend.training

    waveform, labels = _batch()
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    total = student.training_step({"waveform": waveform, "label": labels}, 0)
    total.backward()
    assert all(p.grad is None for p in teacher.model.parameters())
    assert student.loss_fn.adapter.weight.grad.abs().sum() > 0
    assert student.model.out.weight.grad.abs().sum() > 0
    after = teacher.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_teacher_student_terms_match_the_formula(teacher_ckpt: Path):
    student = _student(teacher_ckpt)
    student.setup("fit")
    waveform, labels = _batch()
    output = student(waveform)
    terms = student.loss_fn(output, labels, waveform=waveform)
    teacher = load_teacher(teacher_ckpt)(waveform)  # an independent copy of the teacher
    hard = F.cross_entropy(output.logits, labels)
    soft = _kl(teacher.logits, output.logits, 4.0)
    projected = output.embedding @ student.loss_fn.adapter.weight.T + student.loss_fn.adapter.bias
    feature = ((projected - teacher.embedding) ** 2).mean()
    for name, value in (("hard", hard), ("soft", soft), ("feature", feature)):
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), name
    expected = 0.7 * hard + 0.3 * soft + 2.0 * feature
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_student_checkpoint_rebuilds_without_its_teacher(teacher_ckpt: Path):
    student = _student(teacher_ckpt)
    student.setup("fit")
    state, hparams = student.state_dict(), dict(student.hparams)
    teacher_ckpt.unlink()
    rebuilt = Detector(**hparams)  # as eval code may: no teacher file needed
    rebuilt.load_state_dict(state)
    waveform, _ = _batch()
    student.eval()
    rebuilt.eval()
    assert torch.equal(rebuilt.score(waveform), student.score(waveform))
    with pytest.raises(FileNotFoundError, match="loss.teacher"):
        rebuilt.setup("fit")
