"""load_audio / save_audio / resample: round trips, resampling, errors, atomic writes."""

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from ddsp_models.audio_io import AudioFileError, load_audio, resample, save_audio, supported_extensions


def sine(f, sr, seconds=0.25, amp=0.5):
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * f * t)).float()


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x.double().numpy() * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize("ext,tol", [("wav", 1e-4), ("flac", 1e-4), ("ogg", 0.05), ("mp3", 0.1)])
def test_round_trip(tmp_path, ext, tol):
    if ext.upper() not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no {ext}")
    stereo = torch.stack([sine(440, 22050), sine(660, 22050, amp=0.25)])
    path = save_audio(tmp_path / f"a.{ext}", stereo, 22050)
    y, sr = load_audio(path, mono=False)
    assert sr == 22050 and y.dtype == torch.float32 and y.shape[0] == 2
    if ext in ("wav", "flac"):
        assert y.shape == stereo.shape
        assert (y - stereo).abs().max() < tol
    else:  # lossy codecs: same pitch per channel, similar level
        assert abs(peak_hz(y[0, :5000], sr) - 440) < 10 and abs(peak_hz(y[1, :5000], sr) - 660) < 10
    mono, _ = load_audio(path)
    assert mono.dim() == 1
    torch.testing.assert_close(mono, y.mean(0))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_load_with_resampling_keeps_pitch_and_duration(tmp_path):
    path = save_audio(tmp_path / "a.wav", sine(1000, 44100, 0.5), 44100, subtype="FLOAT")
    y, sr = load_audio(path, sample_rate=16000)
    assert sr == 16000 and abs(y.shape[-1] - 8000) <= 1
    assert abs(peak_hz(y, sr) - 1000) < 3


def test_resample_tensor_shapes_dtype_and_timing():
    x = torch.zeros(2, 3, 4410, dtype=torch.float64)
    x[..., 2205] = 1.0  # an impulse at 50 ms
    y = resample(x, 44100, 16000)
    assert y.shape[:2] == (2, 3) and y.dtype == torch.float64 and abs(y.shape[-1] - 1600) <= 1
    assert int(y[0, 0].abs().argmax()) in (799, 800, 801)  # still at 50 ms: no filter delay
    assert resample(x, 16000, 16000) is x
    with pytest.raises(TypeError, match="floating"):
        resample(torch.zeros(10, dtype=torch.int16), 16000, 8000)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no audio file"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk and more junk")
    with pytest.raises(AudioFileError, match="cannot decode"):
        load_audio(bad)
    text = tmp_path / "notes.flac"
    text.write_text("this is not audio")
    with pytest.raises(AudioFileError, match="ffmpeg"):
        load_audio(text)
    with pytest.raises(AudioFileError, match="folder"):
        load_audio(tmp_path)


def test_truncated_file_still_loads_or_fails_clearly(tmp_path):
    path = save_audio(tmp_path / "t.flac", sine(440, 16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    try:
        y, _ = load_audio(path)
    except AudioFileError:
        return
    assert torch.isfinite(y).all()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioFileError, match="no audio samples"):
        load_audio(path)


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros((100, 1), np.float32)
    x[10] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN"):
        load_audio(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    """A failing write leaves the old file intact and no temporary file behind."""
    path = save_audio(tmp_path / "keep.wav", sine(440, 16000), 16000)
    before = path.read_bytes()

    def broken_write(file, data, *a, **k):
        with open(file, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        save_audio(path, sine(220, 16000), 16000)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.wav"]


def test_save_errors_and_clipping_warning(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        save_audio(tmp_path / "a.xyz", sine(440, 16000), 16000)
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "a.wav", torch.tensor([0.0, float("nan")]), 16000)
    with pytest.raises(ValueError, match="transpose"):
        save_audio(tmp_path / "a.wav", torch.zeros(1000, 2), 16000)
    with pytest.warns(UserWarning, match="clip"):
        save_audio(tmp_path / "loud.wav", 3 * sine(440, 16000), 16000)
    save_audio(tmp_path / "sub" / "batched.wav", sine(440, 16000)[None, None], 16000)
    assert load_audio(tmp_path / "sub" / "batched.wav")[0].shape == (4000,)


def test_supported_extensions_lists_the_basics():
    exts = supported_extensions()
    assert {".wav", ".flac", ".ogg"} <= set(exts)
