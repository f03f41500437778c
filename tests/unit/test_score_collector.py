import numpy as np
import torch

from spoof_lightning.lit.score_collector import ScoreCollector


def test_collector_deduplicates_and_sorts_by_utterance():
    collector = ScoreCollector()
    collector.update(["b", "a"], torch.tensor([0.5, 1.5]), torch.tensor([0, 1]), ["A01", "-"])
    # A distributed sampler pads with repeats: the same utterance again must not count twice.
    collector.update(["a", "c"], torch.tensor([1.5, -2.0]), torch.tensor([1, 0]), ["-", "A02"])
    scores = collector.gather()
    assert scores.utt_ids == ["a", "b", "c"]
    assert scores.scores == [1.5, 0.5, -2.0]
    bonafide, spoof = scores.split()
    np.testing.assert_array_equal(bonafide, [1.5])
    np.testing.assert_array_equal(spoof, [0.5, -2.0])
    assert {k: v.tolist() for k, v in scores.by_attack().items()} == {"A01": [0.5], "A02": [-2.0]}


def test_reset_forgets_previous_epoch():
    collector = ScoreCollector()
    collector.update(["a"], torch.tensor([1.0]), torch.tensor([1]), ["-"])
    collector.reset()
    assert len(collector.gather()) == 0
