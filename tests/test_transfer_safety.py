"""``ddsp transfer`` and the transfer API under careless and adversarial use (issue #18 items
2, 3, 6, 9, 10-13 for transfer).

CLI user errors exit 2 with ONE line on stderr naming the problem (and the allowed range),
never a traceback; output problems are found before any work (the model is not even loaded:
``load_model`` is patched to fail); no input is ever overwritten.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from ddsp_models.cli import main
from ddsp_models.errors import InvalidInputError
from _stub_stats import stub_dataset_stats

SR, FR = 16000, 250

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(stats: bool = True):
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 4}},
             "edges": ["harmonic -> out"]}
    m = Autoencoder(graph=graph, sample_rate=SR, frame_rate=FR,
                    decoder={"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1})
    if stats:  # the structure ddsp prepare writes (validated when a model folder is read)
        m.dataset_stats = stub_dataset_stats()
    return m.eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "tiny"
    _tiny().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def model():
    return _tiny()


def _write(path, x, sr=SR):
    sf.write(path, np.asarray(x, np.float32), sr, subtype="FLOAT")
    return path


def _tone(seconds=0.5, amp=0.5, f=220.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * math.pi * f * t)


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("ddsp transfer: error:"), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the model is loaded (i.e. if work starts)."""
    import ddsp_models.registry as reg

    def boom(*a, **k):
        raise AssertionError("work started before the output was validated")

    monkeypatch.setattr(reg, "load_model", boom)


# ------------------------------------------------------------------ item 2: never overwrite
def test_output_equal_to_the_input_is_refused_and_the_input_unchanged(tmp_path, model_dir,
                                                                      capsys, no_work):
    wav = _write(tmp_path / "a.wav", _tone())
    before = wav.read_bytes()
    for out in (str(wav), str(tmp_path / "." / "a.wav"), str(tmp_path / "sub" / ".." / "a.wav")):
        assert main(["transfer", str(wav), "--model", str(model_dir), "-o", out]) == 2
        _one_line(capsys, "never overwrites", "a.wav")
    link = tmp_path / "link.wav"
    link.symlink_to(wav)
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(link)]) == 2
    _one_line(capsys, "never overwrites")
    assert wav.read_bytes() == before


def test_output_folder_holding_the_inputs_is_refused(tmp_path, model_dir, capsys, no_work):
    d = tmp_path / "dir"
    d.mkdir()
    a, b = _write(d / "a.wav", _tone()), _write(d / "b.wav", _tone(f=330))
    before = (a.read_bytes(), b.read_bytes())
    assert main(["transfer", str(a), str(b), "--model", str(model_dir), "-o", f"{d}/"]) == 2
    _one_line(capsys, "never overwrites")
    assert main(["transfer", str(a), "--model", str(model_dir), "-o", f"{d}/"]) == 2
    _one_line(capsys, "never overwrites")
    # the plot may not overwrite an input either
    assert main(["transfer", str(a), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
                 "--plot", str(a)]) == 2
    _one_line(capsys, "plot")
    assert (a.read_bytes(), b.read_bytes()) == before


# -------------------------------------------------------- item 9: outputs checked before work
@pytest.mark.parametrize("out,needle", [
    ("o.xyz", "unknown extension '.xyz'"),
    ("o", "unknown extension"),
    ("/proc/ddsp-h3-test/o.wav", "/proc"),  # not writable, even for root
    ("afile/o.wav", "afile"),  # a file where a folder is needed
])
def test_bad_output_is_reported_before_any_work(tmp_path, model_dir, capsys, no_work, out,
                                                needle):
    wav = _write(tmp_path / "in.wav", _tone())
    (tmp_path / "afile").write_text("x")
    target = out if out.startswith("/") else str(tmp_path / out)
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", target]) == 2
    _one_line(capsys, needle)


def test_bad_plot_path_is_reported_before_any_work(tmp_path, model_dir, capsys, no_work):
    wav = _write(tmp_path / "in.wav", _tone())
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
                 "--plot", str(tmp_path / "p.bmpx")]) == 2
    _one_line(capsys, "unknown extension", ".png")


# ------------------------------------------------------- items 6, 11, 12: option values
@pytest.mark.parametrize("flag,value,needles", [
    ("--pitch-shift", "nan", ["--pitch-shift", "finite", "-48 to 48"]),
    ("--loudness-shift", "inf", ["--loudness-shift", "finite", "-60 to 60"]),
    ("--pitch-shift", "200", ["--pitch-shift 200", "out of range", "-48 to 48 semitones"]),
    ("--pitch-shift", "-200", ["out of range", "-48 to 48"]),
    ("--loudness-shift", "1000", ["--loudness-shift 1000", "-60 to 60 dB"]),
    ("--loudness-shift", "-1000", ["-60 to 60 dB"]),
    ("--chunk-seconds", "inf", ["--chunk-seconds", "finite"]),
    ("--chunk-seconds", "0", ["--chunk-seconds", "out of range"]),
    ("--autotune", "1.5", ["--autotune", "0 to 1"]),
    ("--autotune", "nan", ["--autotune", "finite"]),
    ("--note-threshold", "-1", ["--note-threshold", "0 to 10"]),
    ("--quiet-db", "inf", ["--quiet-db", "finite"]),
])
def test_option_values_out_of_range_name_the_range(tmp_path, model_dir, capsys, no_work, flag,
                                                   value, needles):
    wav = _write(tmp_path / "in.wav", _tone())
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
                 f"{flag}={value}"]) == 2
    line = _one_line(capsys, *needles)
    assert "NaN samples" not in line and "convert float" not in line


def test_unknown_scale_is_one_line(tmp_path, model_dir, capsys, no_work):
    wav = _write(tmp_path / "in.wav", _tone())
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
                 "--autotune", "1", "--scale", "H lydian"]) == 2
    _one_line(capsys, "unknown scale", "C#minor")


# ------------------------------------------------------------- items 6, 10, 12, 13: inputs
@pytest.mark.parametrize("seconds", [0.01, 0.05, 0.1, 0.15])
def test_short_inputs_pass_auto_adjust(model, seconds):
    from ddsp_models.transfer import transfer_with_features

    x = torch.from_numpy(_tone(seconds)).float()
    res = transfer_with_features(model, x, SR, f0_method="yin", auto_adjust=True)
    assert res.audio.shape == x.shape and torch.isfinite(res.audio).all()


def test_huge_peak_is_refused_not_nan(model):
    from ddsp_models.transfer import transfer

    x = torch.from_numpy(_tone(0.3)).float() * 2e18  # finite, +366 dBFS
    with pytest.raises(InvalidInputError, match=r"dBFS.*expected in \[-1, 1\]"):
        transfer(model, x, SR, f0_method="yin")


def test_plus_50_dbfs_warns_clearly_and_stays_finite(model):
    from ddsp_models.transfer import transfer

    x = torch.from_numpy(_tone(0.3)).float() * 10 ** (50 / 20) / 0.5
    with pytest.warns(UserWarning, match=r"\+50\.0 dBFS \(above full scale\)"):
        y = transfer(model, x, SR, f0_method="yin")
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("sr", [1, 0, -16000, 999, 800_000, float("nan"), 44100.5])
def test_implausible_sample_rates_are_refused(model, sr):
    from ddsp_models.transfer import transfer

    with pytest.raises(InvalidInputError, match="sample_rate"):
        transfer(model, torch.zeros(32000) + 0.1, sr, f0_method="yin")


@pytest.mark.parametrize("kw,needle", [
    ({"pitch_shift": float("nan")}, "pitch_shift must be a finite"),
    ({"loudness_shift": float("inf")}, "loudness_shift must be a finite"),
    ({"pitch_shift": 200}, "-48 to 48 semitones"),
    ({"loudness_shift": -1000}, "-60 to 60 dB"),
    ({"chunk_seconds": float("inf")}, "chunk_seconds"),
    ({"autotune": 2.0}, "autotune"),
    ({"f0_method": "pyin"}, "f0_method"),
])
def test_api_options_are_validated(model, kw, needle):
    from ddsp_models.transfer import transfer

    with pytest.raises(InvalidInputError, match=needle):
        transfer(model, torch.from_numpy(_tone(0.2)).float(), SR, **kw)


def test_one_sample_file_is_one_line(tmp_path, model_dir, capsys):
    wav = _write(tmp_path / "one.wav", [0.5])
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav")]) == 2
    _one_line(capsys, "one.wav", "shorter than one frame")
    stereo = tmp_path / "one2.wav"
    sf.write(stereo, np.array([[0.5, -0.5]], np.float32), SR)
    assert main(["transfer", str(stereo), "--model", str(model_dir), "-o",
                 str(tmp_path / "o2.wav")]) == 2
    _one_line(capsys, "shorter than one frame")
    assert not (tmp_path / "o.wav").exists()


def test_loud_file_through_the_cli_warns_on_one_line_and_writes(tmp_path, model_dir, capsys):
    wav = _write(tmp_path / "loud.wav", _tone(0.3, amp=10 ** (50 / 20)))
    out = tmp_path / "o.wav"
    assert main(["transfer", str(wav), "--model", str(model_dir), "-o", str(out),
                 "--f0", "yin"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "dBFS" in err and "Traceback" not in err
    y, _ = sf.read(out)
    assert np.isfinite(y).all()


# ------------------------------------------------------------ item 3: --plot memory bounded
def test_plot_memory_does_not_grow_with_the_length(tmp_path):
    """The plot keeps a fixed number of columns: plotting 20 s or 200 s of audio allocates
    about the same (tracemalloc sees numpy's buffers; the audio itself is made beforehand)."""
    from ddsp_models.transfer.plot import plot_transfer

    sr = 8000
    peaks = []
    for seconds in (20, 200):
        x = np.sin(2 * np.pi * 440 * np.arange(seconds * sr) / sr).astype(np.float32)
        f0 = np.full(seconds * 100, 440.0, np.float32)
        tracemalloc.start()
        plot_transfer(tmp_path / f"p{seconds}.png", x, x, sr, f0, f0, 100)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0] + 2e6, peaks
    assert peaks[1] < 60e6


def test_plot_columns_keep_short_events():
    """A 20 ms click in 200 s is still visible after reduction (max over frames)."""
    from ddsp_models.transfer.plot import decimate_curve, spectrogram_columns

    sr = 8000
    x = np.zeros(200 * sr, np.float32)
    x[100 * sr: 100 * sr + 160] = 0.5
    s, dt = spectrogram_columns(x, sr, 512, max_columns=500)
    assert s.shape[1] <= 500 and dt > 0
    col = int(100 / dt)
    assert s[:, col - 1: col + 2].max() > s[:, :col - 5].max() + 40
    t, v = decimate_curve(np.arange(1000.0), 100, max_points=100)
    assert v.shape == (100,) and np.allclose(v[0], 4.5) and np.isclose(t[0], 0.045)
