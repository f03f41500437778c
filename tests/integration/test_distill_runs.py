"""Short demo runs of the distillation regimes, from their experiment configs.

Self-distillation trains and its shallow heads beat chance; a teacher-student run saves
a student that loads without its teacher; DFWF and fine-tuning over two experiences
report their EER matrices and forgetting.
"""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from spoof_lightning.checkpoint import load_countermeasure
from spoof_lightning.continual_training import RESULTS_JSON, RESULTS_MD, run_continual
from spoof_lightning.contracts import scores_from_logits
from spoof_lightning.lit.detector import Detector
from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.training import detector_from_config

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[2] / "conf"


def _compose(name: str, demo_root: Path, tmp: Path, *overrides: str) -> DictConfig:
    """A composed config with tiny crops and every path under ``tmp``."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(
            name,
            overrides=[
                f"data.root={demo_root}",
                "data.demo=false",
                "data.train_crop=16000",
                "data.eval_crop=16000",
                "data.batch_size=16",
                f"paths.root_dir={tmp}",
                f"paths.run_dir={tmp}/run",
                "run_name=test",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "trainer.log_every_n_steps=1",
                *overrides,
            ],
        )


def _fit(module: Detector, cfg: DictConfig, epochs: int) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=instantiate(cfg.data, _convert_="all"))
    return trainer


@pytest.fixture(scope="module")
def self_distilled(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """experiment=self_distill_demo (LFCC + CNN-GRU), 10 short epochs."""
    tmp = tmp_path_factory.mktemp("self_distill")
    cfg = _compose("train", demo_root, tmp, "experiment=self_distill_demo", "optimizer.lr=3e-3")
    torch.manual_seed(0)
    detector = detector_from_config(cfg)
    trainer = _fit(detector, cfg, epochs=10)
    return detector, cfg, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_self_distillation_trains_and_its_shallow_heads_beat_chance(self_distilled):
    detector, cfg, metrics = self_distilled
    terms = {f"train/loss/{t}" for t in ("deep", "hard", "soft", "feature")}
    assert terms <= metrics.keys()

    data = instantiate(cfg.data, _convert_="all")
    data.setup("validate")
    heads: list[list[torch.Tensor]] = [[] for _ in range(4)]
    labels = []
    detector.eval()
    with torch.no_grad():
        for batch in data.val_dataloader():
            output = detector(batch["waveform"])
            shallow = [z for _, z in detector.loss_fn.shallow_outputs(output)]
            for scores, logits in zip(heads, [*shallow, output.logits], strict=True):
                scores.append(scores_from_logits(logits))
            labels.append(batch["label"])
    label = torch.cat(labels).numpy()
    eers = []
    for scores in heads:
        s = torch.cat(scores).numpy().astype(np.float64)
        eers.append(compute_eer(s[label == 1], s[label == 0])[0])
    # Chance is 50 % EER; every head, the shallowest included, is well below it.
    assert max(eers) <= 0.4, eers


def test_teacher_student_run_saves_a_student_that_loads_alone(
    self_distilled, demo_root: Path, tmp_path: Path
):
    teacher, _, _ = self_distilled
    teacher_path = tmp_path / "teacher.ckpt"
    torch.save(
        {"state_dict": teacher.state_dict(), "hyper_parameters": dict(teacher.hparams)},
        teacher_path,
    )
    cfg = _compose(
        "train",
        demo_root,
        tmp_path,
        "experiment=teacher_student_demo",
        f"loss.teacher={teacher_path}",
    )
    torch.manual_seed(0)
    student = detector_from_config(cfg)
    trainer = _fit(student, cfg, epochs=1)
    assert {
        f"train/loss/{t}" for t in ("hard", "soft", "feature")
    } <= trainer.callback_metrics.keys()
    frozen = student.loss_fn.teacher.model.state_dict()
    assert all(torch.equal(frozen[k], v) for k, v in teacher.model.state_dict().items())

    student_path = tmp_path / "student.ckpt"
    trainer.save_checkpoint(student_path)
    teacher_path.unlink()
    checkpoint = torch.load(student_path, map_location="cpu", weights_only=True)
    assert not any("teacher" in key for key in checkpoint["state_dict"])
    waveform = 0.1 * torch.randn(3, 16000)
    student.eval()
    expected = student.score(waveform)
    assert torch.allclose(load_countermeasure(student_path).net.score(waveform), expected)
    rebuilt = Detector(**checkpoint["hyper_parameters"])
    rebuilt.load_state_dict(checkpoint["state_dict"])
    assert torch.allclose(rebuilt.eval().score(waveform), expected)


def test_dfwf_and_finetuning_report_forgetting_over_two_experiences(
    demo_root: Path, tmp_path: Path
):
    cfg = _compose("continual", demo_root, tmp_path, "experiment=dfwf_demo", "trainer.max_epochs=1")
    results = run_continual(cfg)
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / RESULTS_JSON).read_text())["regimes"] == results["regimes"]
    table = (run_dir / RESULTS_MD).read_text()
    assert "## dfwf" in table and "## finetune" in table and "average forgetting" in table

    assert results["experiences"] == ["vocoders", "splicing"]
    dfwf, finetune = results["regimes"]["dfwf"], results["regimes"]["finetune"]
    assert finetune["loss"]["lambda_kd"] == 0 and dfwf["loss"]["lambda_kd"] > 0
    for result in (dfwf, finetune):
        matrix = np.array(result["eer_matrix_percent"])
        assert matrix.shape == (2, 2) and ((matrix >= 0) & (matrix <= 100)).all()
        assert result["forgetting_percent"] == pytest.approx([matrix[1, 0] - matrix[0, 0]])
        assert result["average_eer_percent"] == pytest.approx(matrix[1].mean())
        assert all(Path(path).is_file() for path in result["checkpoints"])
    # Experience 1 is shared; experience 2 is trained under each regime.
    assert dfwf["eer_matrix_percent"][0] == finetune["eer_matrix_percent"][0]
    assert dfwf["checkpoints"][0] == finetune["checkpoints"][0]
    logged = (run_dir / "dfwf" / "exp2-splicing" / "csv" / "metrics.csv").read_text()
    assert "train/loss/kd" in logged and "train/loss/psa" in logged
    logged = (run_dir / "finetune" / "exp2-splicing" / "csv" / "metrics.csv").read_text()
    assert "train/loss/kd" not in logged
    # A checkpoint of an experience tests that experience: its data config is stored.
    stored = torch.load(dfwf["checkpoints"][1], map_location="cpu", weights_only=True)
    assert stored["spoof_lightning_config"]["data"]["attacks"]["test"] == ["A04"]
