"""The Detector scores what it is given, and nothing of the padding around it."""

import torch

from spoof_lightning.lit.detector import Detector

CONFIG = {
    "frontend": {"_target_": "spoof_lightning.frontends.lfcc.LFCCFrontEnd", "deltas": 0},
    "model": {
        "_target_": "spoof_lightning.models.cnn_gru.CNNGRU",
        "filts": [8, [8, 8], [8, 16], [16, 16]],
        "gru_hidden": 16,
    },
    "loss": {"_target_": "spoof_lightning.losses.ce.CrossEntropy"},
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
}


def test_variable_length_batch_scores_each_utterance_on_its_own_samples():
    torch.manual_seed(0)
    detector = Detector(**CONFIG).eval()
    short, long = torch.randn(8000), torch.randn(12000)
    padded = torch.zeros(2, 12000)
    padded[0, :8000], padded[1] = short, long
    batch = {"waveform": padded, "length": torch.tensor([8000, 12000])}
    with torch.no_grad():
        scores = detector.batch_scores(batch)
        alone = [detector.score(short[None]), detector.score(long[None])]
    torch.testing.assert_close(scores, torch.cat(alone))


def test_equal_length_batch_is_scored_at_once():
    torch.manual_seed(0)
    detector = Detector(**CONFIG).eval()
    waveform = torch.randn(3, 8000)
    with torch.no_grad():
        batched = detector.batch_scores({"waveform": waveform, "length": torch.full((3,), 8000)})
        direct = detector.score(waveform)
    torch.testing.assert_close(batched, direct)
