"""Audio decoding, resampling, mix-down and crop/pad policies."""

import io

import numpy as np
import pytest
import soundfile as sf

from spoof_lightning.data.audio import (
    AudioError,
    check_audio,
    decode_audio,
    fix_length,
    load_audio,
    random_crop,
    repeat_pad,
    zero_pad,
)
from tests.corpora import synth, write_audio


def test_repeat_and_zero_pad():
    x = np.arange(1, 4, dtype=np.float32)
    np.testing.assert_array_equal(repeat_pad(x, 7), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(zero_pad(x, 5), [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(repeat_pad(x, 2), [1, 2])


def test_random_crop_is_a_window_and_seeded():
    x = np.arange(100, dtype=np.float32)
    a = random_crop(x, 10, np.random.default_rng(3))
    b = random_crop(x, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.diff(a), np.ones(9))
    starts = {int(random_crop(x, 10, np.random.default_rng(s))[0]) for s in range(50)}
    assert len(starts) > 10 and max(starts) <= 90


def test_fix_length_policies():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(x, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(fix_length(x, 12, pad="zero")[-2:], [0, 0])
    np.testing.assert_array_equal(fix_length(x, 12)[-2:], [0, 1])
    assert len(fix_length(x, 4, crop="random", rng=np.random.default_rng(0))) == 4
    with pytest.raises(ValueError, match="needs an rng"):
        fix_length(x, 4, crop="random")


def test_load_flac_mono_stereo_and_resample(tmp_path):
    x = synth(8000, 16000, seed=1)
    np.testing.assert_allclose(load_audio(write_audio(tmp_path / "a.flac", x), 16000), x, atol=1e-4)
    st = np.stack([x, 0.5 * x], axis=1)
    y = load_audio(write_audio(tmp_path / "s.wav", st), 16000)
    assert y.shape == (8000,) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.75 * x, atol=1e-4)
    t = np.arange(4000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    up = load_audio(write_audio(tmp_path / "n.wav", tone, 8000), 16000)
    assert up.shape == (8000,)
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    np.testing.assert_allclose(up[200:-200], ref[200:-200], atol=2e-3)


def test_bad_files_raise_audio_error_naming_file(tmp_path):
    with pytest.raises(AudioError, match="missing.flac: file not found"):
        load_audio(tmp_path / "missing.flac")
    (tmp_path / "junk.flac").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="junk.flac: cannot decode"):
        load_audio(tmp_path / "junk.flac")
    write_audio(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="empty.wav"):
        load_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_truncated_files_are_errors(tmp_path, suffix):
    path = write_audio(tmp_path / f"t{suffix}", synth(16000, seed=2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=f"t{suffix}: (truncated|cannot decode)"):
        load_audio(path)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_compressed_formats_decode(tmp_path, suffix):
    x = synth(8000, seed=3)
    y = load_audio(write_audio(tmp_path / f"c{suffix}", x), 16000)
    assert y.dtype == np.float32 and abs(len(y) - 8000) < 2000
    assert 0.05 < np.sqrt(np.mean(y**2)) < 0.5  # the tone survives lossy coding


def test_decode_from_bytes_matches_file(tmp_path):
    path = write_audio(tmp_path / "b.flac", synth(4000, seed=4), 8000)
    from_bytes = decode_audio(io.BytesIO(path.read_bytes()), 16000, "mem")
    np.testing.assert_array_equal(from_bytes, load_audio(path, 16000))
    assert len(from_bytes) == 8000
    with pytest.raises(AudioError, match="^mem: cannot decode"):
        decode_audio(io.BytesIO(b"RIFF0000WAVEjunk"), 16000, "mem")


def test_stacked_crop_keeps_rows_aligned():
    x = np.stack([np.arange(10.0), -np.arange(10.0)])
    y = fix_length(x, 25, crop="random", rng=np.random.default_rng(0))
    assert y.shape == (2, 25)
    np.testing.assert_array_equal(y[0], -y[1])
    z = fix_length(x, 4, crop="random", pad="zero", rng=np.random.default_rng(1))
    np.testing.assert_array_equal(z[0], -z[1])


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_the_header_check_finds_a_missing_end(tmp_path, suffix, keep):
    path = write_audio(tmp_path / f"t{suffix}", synth(16000, seed=2))
    assert check_audio(path) == 16000
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AudioError, match=f"t{suffix}: truncated file"):
        check_audio(path)


def test_the_header_check_finds_non_finite_float_samples(tmp_path):
    x = synth(4000, seed=3)
    sf.write(tmp_path / "ok.wav", x, 16000, subtype="FLOAT")
    assert check_audio(tmp_path / "ok.wav") == 4000
    x[-1] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN or infinite samples"):
        check_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN or infinite samples"):
        load_audio(tmp_path / "nan.wav")
