"""FrameLocalizer + frame_ce: frame logits on the data's grid, learning, HAD localisation."""

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from spoof_lightning.checkpoint import Countermeasure
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.data.corpora.had import parse_segments
from spoof_lightning.losses.frame_ce import FrameCrossEntropy
from spoof_lightning.metrics.summary import join_rows, localization_metrics
from spoof_lightning.scoring import ScoreSet, score_batch
from spoof_lightning.training import detector_from_config
from tests.corpora import make_had

CONF = Path(__file__).resolve().parents[2] / "conf"
HOP = 320  # 20 ms at 16 kHz


def loud_fake_had(root: Path) -> Path:
    """The fixtures' tiny HAD corpus with its fake segments 8x louder: learnable in seconds."""
    make_had(root, counts={"train": (6, 6), "dev": (1, 1), "test": (3, 3)})
    for labels in root.glob("HAD/HAD_*/HAD_*_label.txt"):
        for line in labels.read_text().splitlines():
            utt, segments, _ = line.split()
            (path,) = labels.parent.glob(f"*/{utt}.wav")
            x, sr = sf.read(path, dtype="float32")
            for start, end, genuine in parse_segments(segments):
                if not genuine:
                    x[round(start * sr) : round(end * sr)] *= 8
            sf.write(path, x / 8, sr)
    return root


def tiny_config(root: Path, run_dir: Path) -> DictConfig:
    overrides = [
        "experiment=frame_localizer_had",
        f"data.root={root}",
        f"paths.run_dir={run_dir}",
        "data.train_crop=8000",
        "data.eval_crop=null",
        "data.batch_size=6",
        "data.num_workers=0",
        "data.persistent_workers=false",
        "data.pin_memory=false",
        "data.preflight=off",
        "model.backbone.filts=[8,[8,8],[8,8]]",
        "model.backbone.blocks_per_group=1",
        "model.backbone.gru_hidden=16",
        "model.probe_frames=2000",
        "optimizer.lr=0.01",
        "optimizer.weight_decay=0",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # resolves ${hydra:...} as in a real run
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


class FrameLoss(L.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(trainer.callback_metrics["train/loss/frame"]))


def test_frame_localizer_learns_had_and_evaluation_localises(tmp_path: Path):
    torch.manual_seed(0)
    cfg = tiny_config(loud_fake_had(tmp_path / "had"), tmp_path / "run")
    detector = detector_from_config(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    with torch.no_grad():
        frame_logits = detector(batch["waveform"]).frame_logits
    assert frame_logits.shape == (6, math.ceil(8000 / HOP), 2)
    assert frame_logits.shape[:2] == batch["frame_labels"].shape

    frame_loss = FrameLoss()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=20,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[frame_loss],
    )
    trainer.fit(detector, datamodule=datamodule)
    assert len(frame_loss.values) == 20
    assert np.mean(frame_loss.values[-5:]) < 0.5 * np.mean(frame_loss.values[:5])

    # Evaluation's own scoring path: whole test utterances, one frame score per 20 ms.
    net = Countermeasure(detector.frontend, detector.model).eval()
    datamodule.setup("test")
    scored = ScoreSet()
    with torch.no_grad():
        for test_batch in datamodule.test_dataloader():
            scored.add(score_batch(net, test_batch))
    utterances = datamodule.utterances("test")
    for utt, n in zip(test_batch["utt_id"], test_batch["length"], strict=True):
        assert scored.frame_scores[utt].size == math.ceil(int(n) / HOP)
        assert scored.frame_labels[utt].size == scored.frame_scores[utt].size
    rows, _ = join_rows(scored.scores, utterances, "HAD test", skip_unscored=False)
    located = localization_metrics(scored, rows, cfg.data.frame_hop)
    assert located["available"] and located["n_utterances"] == 6
    assert 0 <= located["frame_eer"] < 0.2 and 0 <= located["range_eer"] < 0.2  # loud = fake


def test_frame_ce_ignores_padding_and_refuses_another_grid():
    torch.manual_seed(0)
    logits, frame_logits = torch.randn(2, 2), torch.randn(2, 4, 2)
    output = ModelOutput(logits, torch.zeros(2, 1), frame_logits=frame_logits)
    frame_labels = torch.tensor([[1, 0, 1, -1], [0, 0, -1, -1]])
    terms = FrameCrossEntropy(lambda_frame=0.5)(output, torch.tensor([1, 0]), frame_labels)
    keep = frame_labels != -1
    frame = torch.nn.functional.cross_entropy(frame_logits[keep], frame_labels[keep])
    utt = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0]))
    assert torch.allclose(terms["frame"], frame) and torch.allclose(terms["utt"], utt)
    assert torch.allclose(terms["total"], utt + 0.5 * frame)
    with pytest.raises(ValueError, match=r"frame_logits \[2, 4, 2\] do not match frame_labels"):
        FrameCrossEntropy()(output, torch.tensor([1, 0]), frame_labels[:, :3])
    with pytest.raises(ValueError, match="set data.frame_hop"):
        FrameCrossEntropy()(output, torch.tensor([1, 0]))
