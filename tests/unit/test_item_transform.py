"""ItemTransform: HAD crop labels follow the frames kept, padding carries no frame label, and
utterances shorter than the front-end + model need are padded to it."""

from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.data.dataset import ItemTransform, item_rng
from spoof_lightning.data.protocols import Utterance

SR = 16000
HOP = 320  # data.frame_hop=0.02


def had(segments: str, label: int) -> Utterance:
    return Utterance("HAD_x", Path("x.wav"), label, meta={"segments": segments})


# 3 s: genuine 0-1 s, fake 1-2 s, genuine 2-3 s (label 0: partially fake)
PARTIAL = had("0.00-1.00-T/1.00-2.00-F/2.00-3.00-T", 0)


@pytest.mark.parametrize("frame_hop", [0.02, None])
def test_a_random_crop_is_fake_exactly_when_it_keeps_a_fake_sample(frame_hop):
    x = np.arange(3 * SR, dtype=np.float32)  # the value is the sample index
    transform = ItemTransform(SR, crop=SR // 2, train=True, frame_hop=frame_hop)
    labels = set()
    for i in range(40):
        item = transform(PARTIAL, x, item_rng(0, 0, i))
        kept = item["waveform"].numpy()
        fake = bool(((kept >= SR) & (kept < 2 * SR)).any())
        assert item["label"] == (0 if fake else 1)
        labels.add(item["label"])
        if frame_hop is not None:
            frames = item["frame_labels"].numpy()
            assert frames.shape == (SR // 2 // HOP,) and (frames != -1).all()
            assert (frames == 0).any() == fake  # the label follows the frame targets
    assert labels == {0, 1}  # both kinds of crop were drawn


def test_the_first_crop_of_eval_cuts_the_fake_segment_away():
    x = np.zeros(3 * SR, dtype=np.float32)
    item = ItemTransform(SR, crop=SR // 2, frame_hop=0.02)(PARTIAL, x, item_rng(0, 0, 0))
    assert item["label"] == 1 and (item["frame_labels"].numpy() == 1).all()
    whole = ItemTransform(SR, crop=None, frame_hop=0.02)(PARTIAL, x, item_rng(0, 0, 0))
    assert whole["label"] == 0  # the whole utterance keeps its fake second


def test_utterances_without_segments_keep_their_label():
    plain = Utterance("LA_x", Path("x.flac"), 0)
    item = ItemTransform(SR, crop=SR // 2)(plain, np.zeros(SR, np.float32), item_rng(0, 0, 0))
    assert item["label"] == 0 and "frame_labels" not in item


@pytest.mark.parametrize("pad", ["repeat", "zero"])
def test_padded_frames_carry_no_label_even_when_the_waveform_repeats(pad):
    # 0.3 s: 0.1 s genuine, 0.1 s fake, 0.1 s genuine, cropped/padded to 1 s
    short = had("0.00-0.10-T/0.10-0.20-F/0.20-0.30-T", 0)
    x = np.random.default_rng(0).uniform(-1, 1, 3 * SR // 10).astype(np.float32)
    item = ItemTransform(SR, crop=SR, pad=pad, frame_hop=0.02)(short, x, item_rng(0, 0, 0))
    wave, frames = item["waveform"].numpy(), item["frame_labels"].numpy()
    assert wave.shape == (SR,) and frames.shape == (50,)
    padding = wave[len(x) :]
    if pad == "repeat":
        np.testing.assert_array_equal(padding[: len(x)], x)  # the fake part is copied...
    else:
        assert not padding.any()
    np.testing.assert_array_equal(frames[:15], [1] * 5 + [0] * 5 + [1] * 5)
    assert (frames[15:] == -1).all()  # ...but its frames are no trial
    assert item["label"] == 0


def test_short_utterances_are_padded_to_the_minimum_length():
    clip = Utterance("tiny.wav", Path("tiny.wav"), -1)
    x = np.arange(1, 11, dtype=np.float32)  # 10 samples
    for pad, tail in (("repeat", [1, 2, 3]), ("zero", [0, 0, 0])):
        item = ItemTransform(SR, crop=None, pad=pad, min_samples=257)(clip, x, item_rng(0, 0, 0))
        wave = item["waveform"].numpy()
        assert wave.shape == (257,)
        np.testing.assert_array_equal(wave[10:13], tail)
    long = np.ones(1000, dtype=np.float32)
    transform = ItemTransform(SR, crop=None, min_samples=257)
    assert transform(clip, long, item_rng(0, 0, 0))["waveform"].shape == (1000,)  # untouched
    with pytest.raises(ValueError, match="a crop of 100 samples is shorter than the 257"):
        ItemTransform(SR, crop=100, min_samples=257)
