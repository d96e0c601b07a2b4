"""The timbre distance (ddsp_models.metrics): Fréchet distance against closed forms, and the
MFCC-based distance's invariances on synthetic tones."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.metrics import frechet_distance, timbre_distance, timbre_frames

SR = 16000


def test_frechet_1d_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, size=(4000, 1))
    b = rng.normal(-0.5, 0.5, size=(3000, 1))
    ma, mb, sa, sb = a.mean(), b.mean(), a.std(ddof=1), b.std(ddof=1)
    assert frechet_distance(a, b) == pytest.approx((ma - mb) ** 2 + (sa - sb) ** 2, rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_frechet_diagonal_closed_form_and_symmetry(seed, dims):
    # independent coordinates with diagonal covariances: the sum of the 1-D closed forms
    rng = np.random.default_rng(seed)
    a = rng.normal(rng.normal(size=dims), rng.uniform(0.5, 2, dims), size=(50, dims))
    b = rng.normal(rng.normal(size=dims), rng.uniform(0.5, 2, dims), size=(60, dims))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # closed form for commuting (here: general) PSD pairs checked via eigen-decomposition
    w, v = np.linalg.eigh(ca)
    ra = v @ np.diag(np.sqrt(w)) @ v.T
    w2, v2 = np.linalg.eigh(ra @ cb @ ra)
    cross = np.sum(np.sqrt(np.clip(w2, 0, None)))  # tr((Sa^1/2 Sb Sa^1/2)^1/2) = tr((Sa Sb)^1/2)
    mu = a.mean(0) - b.mean(0)
    expected = mu @ mu + np.trace(ca) + np.trace(cb) - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6, abs=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="N, M >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 2)))


def tone(decay: float, seconds: float = 3.0, f0: float = 220.0) -> torch.Tensor:
    """A vibrato tone whose k-th harmonic has amplitude k**-decay, with a slow swell."""
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    f = f0 * 2 ** (0.02 * torch.sin(2 * math.pi * 5 * t))
    phase = 2 * math.pi * torch.cumsum(f, 0) / SR
    k_max = int(SR / 2 / (f0 * 1.03))
    x = sum(torch.sin(k * phase) / k**decay for k in range(1, k_max))
    return (0.1 * x * (1 + 0.5 * torch.sin(2 * math.pi * 0.5 * t))).float()


def test_timbre_distance_zero_for_same_and_level_free():
    x = tone(1.0)
    assert timbre_distance(x, x, SR) == pytest.approx(0.0, abs=1e-6)
    # a gain changes only c0, which is left out (eps in the log makes it not exactly 0)
    assert timbre_distance(0.25 * x, x, SR) < 0.05


def test_timbre_distance_grows_with_the_change_of_spectral_slope():
    ref = tone(1.0)
    near, far = timbre_distance(tone(1.3), ref, SR), timbre_distance(tone(2.0), ref, SR)
    assert 0.05 < near < far


def test_timbre_frames_keep_the_sounding_frames_only():
    x = tone(1.0, seconds=2.0)
    silence = torch.zeros(SR)  # 1 s of silence: 50 frames, all below the loudness range
    frames = timbre_frames(torch.cat([x, silence]), SR, frame_rate=50)
    assert frames.shape[1] == 19
    assert 90 <= len(frames) <= 101  # the 2 s tone's ~100 frames, not the silence
    # lists of signals pool their frames
    assert timbre_distance([x, x], x, SR) == pytest.approx(0.0, abs=1e-3)  # ddof only


BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "timbre.py"
TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None or not all(
    os.path.exists(p) for p in (TIMGM, "/usr/share/sounds/sf2/FluidR3_GM.sf2")),
    reason="needs fluidsynth, fluid-soundfont-gm and timgm6mb-soundfont")
def test_timbre_benchmark_end_to_end(tmp_path):
    out = tmp_path / "timbre.json"
    subprocess.run([sys.executable, str(BENCH), "--instruments", "flute", "--minutes", "0.2",
                    "--references", TIMGM, "--threads", "1", "--out", str(out)], check=True)
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [r["reference"] for r in rows] == ["TimGM6mb.sf2"]
    d = rows[0]["models"]["flute"]
    assert d["distance"] > 0 and rows[0]["training_instrument"] > 0
    assert d["ratio"] == pytest.approx(d["distance"] / rows[0]["training_instrument"])
    # driven by another flute, the model still sounds more like the flute it learnt from
    assert 0 < d["to_training_instrument"] < d["distance"]
    # its resynthesis of the flute it learnt from is closer still (auto-adjust transparent)
    (t,) = data["transparency"]
    assert (t["instrument"], t["model"]) == ("flute", "flute")
    assert 0 < t["distance"] < d["distance"]
    assert (data["auto_adjust"], data["loudness_map"]) == (True, "level")


def test_timbre_benchmark_rejects_bad_arguments():
    for args in (["--instruments", "oboe"], ["--model", "x=violin"],
                 ["--instruments", "violin", "--model", "novalue"]):
        r = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and "error:" in last and "Traceback" not in r.stderr, last
