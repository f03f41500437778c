"""The scoring core: batches scored without padding, with frame scores on the data's grid,
into a score set unique by utterance (training's validation/test and eval.py alike)."""

import numpy as np
import pytest
import torch

from spoof_lightning.lit.detector import Detector
from spoof_lightning.scoring import ScoreSet, UttScore, score_batch
from tests.unit.test_detector import CONFIG
from tests.unit.test_evaluation import HOP, energy_net


def test_score_set_deduplicates_and_gathers_sorted_by_utterance():
    scored = ScoreSet([UttScore("b", 0.5, 0, "A01"), UttScore("a", 1.5, 1, "-")])
    # A distributed sampler pads with repeats: the same utterance again must not count twice.
    scored.add([UttScore("a", 1.5, 1, "-"), UttScore("c", -2.0, 0, "A02")])
    scores = scored.gather()
    assert scores.utt_ids == ["a", "b", "c"]
    assert scores.scores == {"a": 1.5, "b": 0.5, "c": -2.0}
    bonafide, spoof = scores.split()
    np.testing.assert_array_equal(bonafide, [1.5])
    np.testing.assert_array_equal(spoof, [0.5, -2.0])
    assert [(r["utt_id"], r["attack"]) for r in scores.rows()] == [
        ("a", "-"), ("b", "A01"), ("c", "A02"),
    ]  # fmt: skip


def test_a_new_score_set_forgets_the_previous_epoch():
    assert len(ScoreSet().gather()) == 0


def test_variable_length_batches_are_scored_without_padding():
    net = energy_net(frame_head=False)
    rng = np.random.default_rng(0)
    waves = [torch.from_numpy(rng.uniform(-0.5, 0.5, n).astype(np.float32)) for n in (3200, 6400)]
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    batch = {"waveform": padded, "length": torch.tensor([3200, 6400]), "utt_id": ["a", "b"]}
    with torch.no_grad():
        scored = score_batch(net, batch)
        alone = [net.score(w[None]).item() for w in waves]
        padded_score = net.score(padded[:1]).item()
    assert [s.utt_id for s in scored] == ["a", "b"]
    assert [s.score for s in scored] == pytest.approx(alone, abs=0)
    assert padded_score != pytest.approx(alone[0])  # the model does see zero padding


def test_frame_scores_come_with_their_labels_and_must_share_the_grid():
    net = energy_net()
    x = torch.zeros(1, 4 * HOP)
    x[0, HOP : 2 * HOP] = 0.5
    labels = torch.tensor([[1, 0, 1, 1, -1, -1]])  # padded with -1 beyond the utterance
    with torch.no_grad():
        (item,) = score_batch(net, {"waveform": x, "utt_id": ["u"], "frame_labels": labels})
    np.testing.assert_allclose(item.frame_scores, [0, -1.0, 0, 0])  # -2 * energy
    np.testing.assert_array_equal(item.frame_labels, [1, 0, 1, 1])
    short = torch.tensor([[1, 0, 1]])
    with pytest.raises(ValueError, match="u: the model gives 4 frame scores but the data has 3"):
        score_batch(net, {"waveform": x, "utt_id": ["u"], "frame_labels": short})


def test_detector_variable_length_batch_scores_each_utterance_on_its_own_samples():
    torch.manual_seed(0)
    detector = Detector(**CONFIG).eval()
    short, long = torch.randn(8000), torch.randn(12000)
    padded = torch.zeros(2, 12000)
    padded[0, :8000], padded[1] = short, long
    batch = {"waveform": padded, "length": torch.tensor([8000, 12000]), "utt_id": ["s", "l"]}
    batch |= {"label": torch.tensor([1, 0]), "attack": ["-", "A01"]}
    with torch.no_grad():
        scores = torch.tensor([item.score for item in score_batch(detector, batch)])
        alone = [detector.score(short[None]), detector.score(long[None])]
    torch.testing.assert_close(scores, torch.cat(alone))
    assert [(i.label, i.attack) for i in score_batch(detector, batch)] == [(1, "-"), (0, "A01")]


def test_detector_equal_length_batch_is_scored_at_once():
    torch.manual_seed(0)
    detector = Detector(**CONFIG).eval()
    waveform = torch.randn(3, 8000)
    batch = {"waveform": waveform, "length": torch.full((3,), 8000), "utt_id": ["a", "b", "c"]}
    with torch.no_grad():
        batched = torch.tensor([item.score for item in score_batch(detector, batch)])
        direct = detector.score(waveform)
    torch.testing.assert_close(batched, direct)
