"""``ddsp demo``: the page's logic without a browser, and the Gradio app when gradio is installed.

* ``ddsp demo --help`` imports neither torch nor gradio; without gradio the command prints one
  line naming the ``[demo]`` extra and exits 2.
* Uploads: not audio, too long, too short, silent and missing files give one-line messages
  naming the file (not gradio's temporary folder); a stereo file is accepted.
* The controls map onto ``transfer_with_features``'s arguments, with ``autotune``/``scale`` passed
  only where the installed version accepts them.
* A real transfer with a shipped model writes a playable WAV of the input's length and rate and
  the spectrogram PNG; models are loaded once.
* The Blocks app builds, and its handlers answer bad uploads with a message, not a traceback.

The end-to-end test in a real headless browser is ``tests/test_demo_browser.py`` (slow).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

import ddsp_models.cli
from ddsp_models.cli import main
from ddsp_models.demo import logic
from ddsp_models.errors import DDSPError, InvalidInputError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def registered(monkeypatch):
    """``demo`` in SUBCOMMANDS (until the lead registers it)."""
    monkeypatch.setitem(ddsp_models.cli.SUBCOMMANDS, "demo", "demo")


def _tone(path, seconds=0.5, sr=16000, f0=330.0, amp=0.3, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    sf.write(str(path), np.stack([x] * channels, 1) if channels > 1 else x, sr)
    return path


# ---------------------------------------------------------------------------------- the command

def test_help_imports_neither_torch_nor_gradio():
    code = textwrap.dedent("""
        import contextlib, io, json, sys
        import ddsp_models.cli as cli
        cli.SUBCOMMANDS.setdefault("demo", "demo")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                cli.main(["demo", "--help"])
            except SystemExit as e:
                code = e.code
        heavy = sorted(m for m in ("torch", "gradio", "lightning") if m in sys.modules)
        print(json.dumps({"code": code, "heavy": heavy, "help": out.getvalue()}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["heavy"] == [], got
    for opt in ("--host", "--port", "--model", "--f0", "--max-seconds", "ddsp-models[demo]"):
        assert opt in got["help"]


def test_without_gradio_one_line_and_status_2(registered, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # find_spec -> None: "not installed"
    assert main(["demo", "--port", "0"]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert cap.out == "" and len(lines) == 1, cap
    assert lines[0].startswith("ddsp demo: error: ")
    assert 'pip install "ddsp-models[demo]"' in lines[0]


def test_unknown_model_is_reported_before_serving(registered, monkeypatch, capsys):
    import ddsp_models.cli.demo as demo_cli

    monkeypatch.setattr(demo_cli, "gradio_available", lambda: True)  # checked first
    assert main(["demo", "--model", "no_such_model", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no_such_model'" in err and "violin" in err


# -------------------------------------------------------------------------------------- uploads

def test_read_upload_accepts_stereo(tmp_path):
    audio, sr = logic.read_upload(_tone(tmp_path / "duet.flac", channels=2))
    assert sr == 16000 and tuple(audio.shape) == (2, 8000)


@pytest.mark.parametrize("case,expected", [
    ("text", "is not an audio file this page can read"),
    ("empty", "is not an audio file this page can read"),
    ("long", "this page takes at most 60 s"),
    ("short", "is only 50 ms long"),
    ("silent", "is silent (peak below -80 dBFS)"),
    ("nan", "the file has 3 NaN or infinite samples"),
])
def test_read_upload_refuses_bad_files_with_one_line(tmp_path, case, expected):
    folder = tmp_path / "gradio_tmp_3f2a9c"  # gradio's random folder: not in the message
    folder.mkdir()
    p = folder / "melody.wav"
    if case == "text":
        p.write_text("these are my notes, not a recording\n" * 20)
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "long":
        sf.write(str(p), np.full(61 * 1000, 0.1, np.float32), 1000)  # 61 s at 1 kHz: small
    elif case == "short":
        _tone(p, seconds=0.05)
    elif case == "silent":
        sf.write(str(p), np.zeros(16000, np.float32), 16000)
    else:
        x = np.full(16000, 0.1, np.float32)
        x[[5, 50, 500]] = np.nan
        sf.write(str(p), x, 16000, subtype="FLOAT")
    with pytest.raises(InvalidInputError) as err:
        logic.read_upload(p)
    msg = str(err.value)
    assert expected in msg and "'melody.wav'" in msg, msg
    assert "\n" not in msg and str(folder) not in msg


def test_read_upload_limit_and_nothing(tmp_path):
    with pytest.raises(InvalidInputError, match="at most 0.25 s"):
        logic.read_upload(_tone(tmp_path / "a.wav", seconds=0.5), max_seconds=0.25)
    with pytest.raises(InvalidInputError, match="no audio yet"):
        logic.read_upload(None)


# ------------------------------------------------------------------------- settings and models

def test_settings_are_checked():
    logic.check_settings(logic.Settings(12.0, -6.0, 1.0, "major", False, "yin"), ["yin"])
    for bad, what in ((dict(pitch_shift=30.0), "pitch shift"),
                      (dict(loudness_shift=float("nan")), "loudness shift"),
                      (dict(autotune=1.5), "autotune"),
                      (dict(f0_method="pyin"), "pitch tracker"),
                      (dict(note_threshold=-1.0), "note threshold"),
                      (dict(quiet_db=100.0), "quiet level")):
        with pytest.raises(InvalidInputError, match=what):
            logic.check_settings(logic.Settings(**bad), ["yin", "crepe-tiny"])
    if "autotune" in logic.transfer_options():
        with pytest.raises(InvalidInputError, match="unknown scale 'H major'"):
            logic.check_settings(logic.Settings(autotune=0.5, scale="H major"))
        for name in logic.SCALES:  # every offered choice is understood
            logic.check_settings(logic.Settings(autotune=0.5,
                                                scale=logic.scale_argument(name)))
    assert logic.scale_argument(logic.AUTO_SCALE) is None
    assert logic.scale_argument(" D  minor ") == "D minor"
    assert logic.default_f0_method(["crepe-full", "crepe-tiny", "yin"]) == "crepe-tiny"
    assert logic.default_f0_method(["crepe-full", "yin"]) == "yin"


def test_transfer_kwargs_follow_the_installed_signature():
    s = logic.Settings(pitch_shift=2.0, loudness_shift=-3.0, autotune=0.5, scale="minor",
                       auto_adjust=False, f0_method="yin", quiet_db=12.0)

    def before(model, audio, sample_rate, pitch_shift=0.0, loudness_shift=0.0,
               auto_adjust=True, f0_method="crepe-full"):
        pass

    def after(model, audio, sample_rate, pitch_shift=0.0, loudness_shift=0.0,
              auto_adjust=True, f0_method="crepe-full", autotune=0.0, scale=None,
              note_threshold=1.0, quiet_db=20.0):
        pass

    kw, notes = logic.transfer_kwargs(s, logic.transfer_options(before))
    assert kw == {"pitch_shift": 2.0, "loudness_shift": -3.0, "auto_adjust": False,
                  "f0_method": "yin"}
    assert len(notes) == 2 and "autotune is not available" in notes[0]
    assert "quiet_db is not available" in notes[1]
    kw, notes = logic.transfer_kwargs(s, logic.transfer_options(after))
    assert kw["autotune"] == 0.5 and kw["scale"] == "minor" and kw["quiet_db"] == 12.0
    assert "note_threshold" not in kw and notes == []  # None: the library's default
    before(None, None, 1, **logic.transfer_kwargs(s, logic.transfer_options(before))[0])
    # the installed transfer_with_features accepts what is built for it
    from ddsp_models.transfer.core import transfer_with_features

    kw, _ = logic.transfer_kwargs(s, logic.transfer_options())
    assert set(kw) <= set(logic.transfer_options(transfer_with_features))


def test_model_choices_and_pick(tmp_path):
    shipped = logic.model_choices()
    assert {"violin", "flute", "trumpet"} <= set(shipped)
    mine = str(tmp_path / "mine")
    got = logic.model_choices([mine, "violin"])
    assert got[:2] == [mine, "violin"] and got.count("violin") == 1
    assert logic.pick_model("violin", "  ") == "violin"
    assert logic.pick_model("violin", f" {mine} ") == mine
    with pytest.raises(InvalidInputError, match="no model chosen"):
        logic.pick_model(None, "")


def test_model_cache_loads_once_and_keeps_the_recent(tmp_path):
    calls = []
    cache = logic.ModelCache(size=2, loader=lambda p: calls.append(p.name) or object())
    a = cache.get("violin")
    assert cache.get("violin") is a and calls == ["violin"]
    cache.get("flute")
    cache.get("violin")  # most recent again
    cache.get("trumpet")  # evicts flute
    cache.get("violin")
    cache.get("flute")
    assert calls == ["violin", "flute", "trumpet", "flute"] and len(cache) == 2
    with pytest.raises(DDSPError, match="is a folder but not a model"):
        cache.get(str(tmp_path))


def test_run_transfer_with_a_shipped_model(tmp_path):
    """A real transfer (yin: fast): the WAV has the input's rate and length, the plot exists;
    the result folder is pruned once old."""
    import os

    x = _tone(tmp_path / "in put.wav", seconds=0.6, sr=22050, f0=440.0)
    audio, sr = logic.read_upload(x)
    model = logic.ModelCache().get("violin")
    settings = logic.Settings(f0_method="yin", autotune=1.0, scale="A minor", quiet_db=30.0,
                              note_threshold=1.2)
    res = logic.run_transfer(model, audio, sr, settings,
                             tmp_path / "out", input_name=x.name, model_name="violin")
    y, sr_out = sf.read(str(res.audio_path))
    assert res.audio_path.name == "in_put_violin.wav"
    assert sr_out == 22050 and y.shape == (audio.shape[-1],)
    assert sf.info(str(res.audio_path)).subtype == "PCM_16"
    assert np.abs(y).max() > 1e-3  # a note was played
    assert res.plot_path.stat().st_size > 10_000 and res.seconds == pytest.approx(0.6)
    old = res.audio_path.parent
    os.utime(old, (0, 0))
    assert logic.prune_outputs(tmp_path / "out", max_age_s=60) == 1 and not old.exists()


# ------------------------------------------------------------------------------- the gradio app

def test_app_builds_and_handlers_show_messages(tmp_path):
    pytest.importorskip("gradio", reason="gradio (the [demo] extra) is not installed")
    from ddsp_models.demo.app import ELEM_IDS, build_app

    app = build_app(models=["flute"], f0_method="yin", out_dir=tmp_path / "out")
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert set(ELEM_IDS.values()) <= ids
    dropdown = next(b for b in app.blocks.values() if getattr(b, "elem_id", None)
                    == ELEM_IDS["model"])
    names = [c[0] if isinstance(c, (tuple, list)) else c for c in dropdown.choices]
    assert names[0] == "flute" and {"violin", "trumpet"} <= set(names)
    fns = {f.fn.__name__: f.fn for f in app.fns.values()}
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.warns(UserWarning):  # gr.Warning outside a page: a Python warning
        msg = fns["on_input"](str(bad))
    assert "Cannot use this audio" in msg and "'notes.wav' is not an audio file" in msg
    tone = _tone(tmp_path / "tone.wav")
    assert fns["on_input"](str(tone)).startswith("Input: tone.wav, 0.5 s at 16000 Hz")
    with pytest.warns(UserWarning):
        out = fns["on_transfer"](str(tone), "flute", str(tmp_path), "yin", 0, 0, 0,
                                 logic.AUTO_SCALE, True)
    assert out[:3] == (None, None, None)
    assert out[3].startswith("**Could not transfer:**") and "not a model" in out[3]
    assert "Traceback" not in out[3]


def test_served_to_the_network_only_listed_models_are_loaded(tmp_path):
    """Without ``allow_paths`` (``--host`` not loopback) the path box is hidden and ignored, and
    a model value that is not in the list is refused: a visitor cannot load the server's files."""
    pytest.importorskip("gradio", reason="gradio (the [demo] extra) is not installed")
    from ddsp_models.cli.demo import _loopback
    from ddsp_models.demo.app import ELEM_IDS, build_app

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.5")
    loaded = []

    class Cache:
        def get(self, ref):
            loaded.append(ref)
            raise DDSPError("stop here")

    app = build_app(models=["flute"], f0_method="yin", out_dir=tmp_path / "out", cache=Cache(),
                    allow_paths=False)
    box = next(b for b in app.blocks.values() if getattr(b, "elem_id", None)
               == ELEM_IDS["model_path"])
    assert box.visible is False
    fns = {f.fn.__name__: f.fn for f in app.fns.values()}
    tone = _tone(tmp_path / "tone.wav")
    with pytest.warns(UserWarning):
        fns["on_transfer"](str(tone), "flute", "/etc/secret_model", "yin", 0, 0, 0,
                           logic.AUTO_SCALE, True)
    with pytest.warns(UserWarning):
        out = fns["on_transfer"](str(tone), "/etc/other", "", "yin", 0, 0, 0,
                                 logic.AUTO_SCALE, True)
    assert loaded == ["flute"] and "no model chosen" in out[3]


def test_build_app_rejects_an_unknown_pitch_tracker():
    pytest.importorskip("gradio", reason="gradio (the [demo] extra) is not installed")
    from ddsp_models.demo.app import build_app

    with pytest.raises(DDSPError, match="unknown pitch tracker 'pyin'"):
        build_app(f0_method="pyin")


def test_a_port_in_use_is_one_line(registered, capsys):
    pytest.importorskip("gradio", reason="gradio (the [demo] extra) is not installed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["demo", "--port", str(port), "--f0", "yin"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}: the port is in use" in err[0]
