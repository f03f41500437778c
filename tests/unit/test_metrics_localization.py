"""Frame-level and range-based EER for partially fake audio."""

import numpy as np
import pytest

from spoof_lightning.metrics.localization import frame_eer, frame_labels, frame_overlaps, range_eer

# 1 s utterance, 0.2 s frames: genuine 0-0.35, fake 0.35-0.6, genuine 0.6-1.0
SEGMENTS = [(0.0, 0.35, 1), (0.35, 0.6, 0), (0.6, 1.0, 1)]


def test_overlaps_and_labels() -> None:
    genuine, fake = frame_overlaps(SEGMENTS, 5, 0.2)
    np.testing.assert_allclose(genuine, [0.2, 0.15, 0, 0.2, 0.2], atol=1e-12)
    np.testing.assert_allclose(fake, [0, 0.05, 0.2, 0, 0], atol=1e-12)
    assert frame_labels(SEGMENTS, 6, 0.2).tolist() == [1, 1, 0, 1, 1, -1]  # last frame uncovered


def test_frame_and_range_eer_by_hand() -> None:
    scores = np.array([0.9, 0.2, 0.1, 0.8, 0.7])
    # frames: only frame 2 is fake and it scores lowest -> frame EER 0
    assert frame_eer([scores], [frame_labels(SEGMENTS, 5, 0.2)]) == (0.0, 0.1)
    # duration view: frame 1 holds 0.05 s of fake and 0.15 s of genuine speech.
    # threshold 0.2 (frame 2 called fake): miss 0, false alarm 0.05/0.25 = 0.2 -> EER 0.1
    eer, threshold = range_eer([scores], [SEGMENTS], 0.2)
    assert eer == pytest.approx(0.1) and threshold == 0.2


def test_range_eer_pools_utterances_and_is_zero_when_separable() -> None:
    second = [(0.0, 0.4, 0), (0.4, 0.8, 1)]
    scores = [np.array([1.0, 1.0, -1.0, 1.0, 1.0]), np.array([-2.0, -1.5, 3.0, 2.0])]
    # frame 1 of utterance 1 straddles a boundary: scored genuine, 0.05 s of fake accepted
    eer, _ = range_eer(scores, [SEGMENTS, second], 0.2)
    assert eer == pytest.approx(0.05 / 0.65 / 2)
    assert range_eer([np.array([1.0, -1.0])], [[(0, 0.2, 1), (0.2, 0.4, 0)]], 0.2)[0] == 0.0


def test_errors() -> None:
    with pytest.raises(ValueError, match="no fake speech"):
        range_eer([np.array([0.1, 0.2])], [[(0.0, 0.4, 1)]], 0.2)
    with pytest.raises(ValueError, match="utterance 0: 2 frame scores, 3 labels"):
        frame_eer([np.zeros(2)], [np.ones(3)])
    with pytest.raises(ValueError, match="label 1 genuine / 0 fake"):
        frame_labels([(0.0, 1.0, 2)], 3, 0.2)
