"""ADSR and LFO against closed forms, per sample.

* ADSR: a single note of any length (full ADSR; a release during the decay; a release during
  the attack) equals the analytic piecewise curve in absolute time, linear and exponential; a
  note retriggered during its release attacks from the level it had; exponential stages end
  exactly at their times.
* LFO: every shape equals scipy's closed forms (sine, triangle, square, sawtooth) over 10 s
  with the phase in float64; a linear rate ramp gives the quadratic phase.
* resolution="frame" (the control-rate mode): the ADSR and the LFO (static and per-frame rate)
  equal their closed forms at the frame centres (knots) and the straight line between them,
  also block by block.
(Blocks == whole, gradients, scripting: the registry-driven tests/test_contract.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from ddsp_models.processors.adsr import ADSR
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.lfo import LFO

SR, HOP = 16000, 32
A, D, S, R = 0.010, 0.020, 0.6, 0.030
RATIO = 0.1


def on_curve(t, shape):
    """The gate-on curve from level 0 at t = 0 (seconds), in absolute time."""
    if shape == "linear":
        return np.where(t < A, t / A, np.maximum(S, 1 - (1 - S) * (t - A) / D))
    k = math.log((1 + RATIO) / RATIO)
    base = S - RATIO * (1 - S)
    attack = (1 + RATIO) * (1 - np.exp(-k * t / A))
    decay = base + (1 - base) * np.exp(-k * np.maximum(t - A, 0) / D)
    return np.where(t < A, attack, np.maximum(S, decay))


def release(level, t, shape):
    if shape == "linear":
        return np.maximum(0.0, level - t / R)
    k = math.log((1 + RATIO) / RATIO)
    return np.maximum(0.0, -RATIO + (level + RATIO) * np.exp(-k * t / R))


def single_note(n_samples, on_samples, shape):
    t = np.arange(n_samples) / SR
    g = on_samples / SR
    held = on_curve(t, shape)
    top = on_curve(np.array(g), shape)
    return np.where(t < g, held, release(top, t - g, shape))


def render(gate_frames, shape, **kw):
    env = ADSR(SR, shape=shape, ratio=RATIO, **kw).double()
    gate = torch.tensor(gate_frames, dtype=torch.float64)[None, :, None]
    p = {k: torch.full((1, 1), v, dtype=torch.float64)
         for k, v in (("attack", A), ("decay", D), ("sustain", S), ("release", R))}
    return env(gate=gate, n_samples=len(gate_frames) * HOP, **p)[0, 0].numpy(), env, gate, p


@pytest.mark.parametrize("shape", ["linear", "exponential"])
@pytest.mark.parametrize("on_frames", [30, 10, 3], ids=["sustained", "release-in-decay",
                                                          "release-in-attack"])
def test_single_note_matches_analytic_curve(shape, on_frames):
    frames = 60  # 120 ms; A + D = 30 ms = 15 frames
    gate = [1.0] * on_frames + [0.0] * (frames - on_frames)
    got, *_ = render(gate, shape)
    want = single_note(frames * HOP, on_frames * HOP, shape)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    last_on = got[on_frames * HOP - 1]
    if on_frames == 30:  # the sustain is reached and held
        assert abs(got[int(0.04 * SR)] - S) < 1e-12 and abs(last_on - S) < 1e-12
    elif on_frames == 10:  # released in the decay, above the sustain level
        assert S < last_on < 1.0
    else:  # released in the attack: the peak is never reached
        assert got.max() < 0.95
    assert np.all(np.diff(got[on_frames * HOP:]) <= 0)  # the release only falls
    assert got[-1] == 0.0


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_retrigger_attacks_from_the_current_level(shape):
    # note 1: 8 frames (16 ms, in the decay); release 4 frames (8 ms, not to 0); note 2 held
    gate = [1.0] * 8 + [0.0] * 4 + [1.0] * 30 + [0.0] * 10
    got, *_ = render(gate, shape)
    n1, n2 = 8 * HOP, 12 * HOP
    first = single_note(n2, n1, shape)
    np.testing.assert_allclose(got[:n2], first, rtol=0, atol=1e-12)
    level = release(on_curve(np.array(n1 / SR), shape), (n2 - n1) / SR, shape)
    assert 0.05 < level < 0.95  # neither silent nor at the peak
    t = np.arange(30 * HOP) / SR
    if shape == "linear":
        t_top = (1 - level) * A
        attack = level + t / A
    else:
        k = math.log((1 + RATIO) / RATIO)
        t_top = A / k * math.log((1 + RATIO - level) / RATIO)
        attack = (1 + RATIO) - (1 + RATIO - level) * np.exp(-k * t / A)
    assert t_top < A  # a shorter attack from a raised level
    want = np.where(t < t_top, attack, on_curve(t - t_top + A, shape))
    np.testing.assert_allclose(got[n2:n2 + 30 * HOP], want, rtol=0, atol=1e-12)


def test_exponential_stages_end_at_their_times():
    frames = 40
    got, *_ = render([1.0] * frames, "exponential")
    i_a, i_ad = int(round(A * SR)), int(round((A + D) * SR))
    assert abs(got[i_a] - 1.0) < 1e-12 and got[:i_a].max() < 1.0
    assert abs(got[i_ad] - S) < 1e-12 and got[i_ad - 1] > S
    # curved, not straight: at half the attack time it is above half way
    assert got[i_a // 2] > 0.6


def test_gate_threshold_and_blocks():
    gate = [0.2, 0.7, 0.9, 0.51, 0.4, 0.3] * 5
    got, env, g, p = render(gate, "linear")
    ref, *_ = render([float(x > 0.5) for x in gate], "linear")
    np.testing.assert_array_equal(got, ref)
    blocks = render_in_blocks(env, {"gate": g, **p}, HOP, block_frames=(1, 3))
    np.testing.assert_allclose(blocks[0, 0].numpy(), got, rtol=0, atol=1e-13)


def lerp_knots(knots, hop, n):
    """The straight line between ``knots`` (values at samples ``k * hop``), ``n`` samples."""
    i = np.arange(n)
    return np.interp(i, np.arange(len(knots)) * hop, knots)


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_adsr_frame_resolution_is_the_closed_form_at_frame_centres(shape):
    frames = 60
    gate = [1.0] * 10 + [0.0] * 4 + [1.0] * 30 + [0.0] * 16
    got, env, g, p = render(gate, shape, resolution="frame")
    per_sample, *_ = render(gate, shape)
    n = frames * HOP
    # the knots: the closed form (single note up to the retrigger) at samples k * HOP
    knots_closed = single_note(12 * HOP + 1, 10 * HOP, shape)[::HOP]
    np.testing.assert_allclose(got[::HOP][:13], knots_closed, rtol=0, atol=1e-12)
    # every frame centre equals the per-sample render there, and the rest is linear between
    np.testing.assert_allclose(got[::HOP], per_sample[::HOP], rtol=0, atol=1e-12)
    knots = np.append(per_sample[::HOP], render(gate + [0.0], shape)[0][n])
    np.testing.assert_allclose(got, lerp_knots(knots, HOP, n), rtol=0, atol=1e-12)
    blocks = render_in_blocks(env, {"gate": g, **p}, HOP, block_frames=(1, 3, 7))
    np.testing.assert_allclose(blocks[0, 0].numpy(), got, rtol=0, atol=1e-13)


def test_adsr_errors():
    with pytest.raises(ValueError, match="resolution"):
        ADSR(SR, resolution="block")
    with pytest.raises(ValueError, match="shape"):
        ADSR(SR, shape="log")
    with pytest.raises(ValueError, match="ratio"):
        ADSR(SR, shape="exponential", ratio=0.0)


# ------------------------------------------------------------------------------------ LFO
def scipy_wave(phase, wave):
    x = 2 * np.pi * phase
    if wave == "sine":
        return np.sin(x)
    if wave == "triangle":
        return signal.sawtooth(x + np.pi / 2, width=0.5)
    if wave == "square":
        return signal.square(x)
    return signal.sawtooth(x + np.pi)


@pytest.mark.parametrize("wave", ["sine", "triangle", "square", "saw"])
def test_lfo_shapes_match_closed_forms_over_10_s(wave):
    n = 10 * SR
    rate, depth, phase0 = 5.3, 0.8, 0.1234567
    lfo = LFO(SR, wave=wave).double()
    y = lfo(rate_hz=torch.tensor([[rate]], dtype=torch.float64),
            depth=torch.tensor([[depth]], dtype=torch.float64),
            phase=torch.tensor([[phase0]], dtype=torch.float64), n_samples=n)[0, 0].numpy()
    phase = phase0 + np.arange(n) * (rate / SR)
    np.testing.assert_allclose(y, depth * scipy_wave(phase, wave), rtol=0, atol=1e-9)


def test_lfo_unipolar_and_rate_ramp():
    frames = 50
    lfo = LFO(SR, wave="sine", time_varying=True, bipolar=False, max_rate_hz=200.0).double()
    f1, f2 = 20.0, 120.0
    rate = torch.linspace(f1, f2, frames, dtype=torch.float64)[None, :, None]
    depth = torch.full((1, frames, 1), 0.5, dtype=torch.float64)
    y = lfo(rate_hz=rate, depth=depth, phase=torch.zeros(1, 1, dtype=torch.float64),
            n_samples=frames * HOP)[0, 0].numpy()
    n = np.arange((frames - 1) * HOP + 1)
    span = (frames - 1) * HOP  # the rate rises linearly per sample up to the last frame
    phase = (n * f1 + (f2 - f1) * n * (n - 1) / (2 * span)) / SR
    np.testing.assert_allclose(y[:n.size], 0.5 * 0.5 * (np.sin(2 * np.pi * phase) + 1),
                               rtol=0, atol=1e-9)
    assert y.min() >= 0.0


def test_lfo_phase_is_float64_across_blocks():
    lfo = LFO(SR, wave="saw").float()
    n_frames = 2000  # 4 s
    p = {"rate_hz": torch.tensor([[7.77]]), "depth": torch.ones(1, 1),
         "phase": torch.tensor([[0.3]])}
    state = lfo.init_state(1, [], HOP, torch.zeros(()))
    assert state["phase"].dtype == torch.float64
    y = render_in_blocks(lfo, p, HOP, n_frames=n_frames, block_frames=(7, 64, 1))
    phase = 0.3 + np.arange(n_frames * HOP) * (7.77 / SR)
    ref = signal.sawtooth(2 * np.pi * phase + np.pi)
    err = np.abs(y[0, 0].numpy() - ref)
    err = err[np.abs(ref) < 0.99]  # away from the jumps
    assert err.max() < 1e-5


@pytest.mark.parametrize("wave", ["sine", "square"])
def test_lfo_frame_resolution_static_rate(wave):
    control_rate = 500.0  # knots every 32 samples
    hop = int(SR / control_rate)
    n = 4000  # not a whole number of knots: the last line runs towards the next knot
    rate, depth, phase0 = 7.3, 0.8, 0.3
    lfo = LFO(SR, wave=wave, resolution="frame", control_rate=control_rate).double()
    p = {"rate_hz": torch.tensor([[rate]], dtype=torch.float64),
         "depth": torch.tensor([[depth]], dtype=torch.float64),
         "phase": torch.tensor([[phase0]], dtype=torch.float64)}
    y = lfo(n_samples=n, **p)[0, 0].numpy()
    k = np.arange(-(-n // hop) + 1) * hop
    knots = depth * scipy_wave(phase0 + k * (rate / SR), wave)
    np.testing.assert_allclose(y, lerp_knots(knots, hop, n), rtol=0, atol=1e-12)
    # streamed with another hop than the knots' (blocks cut between knots)
    blocks = render_in_blocks(lfo, p, 20, n_frames=n // 20, block_frames=(1, 3, 7))
    np.testing.assert_allclose(blocks[0, 0].numpy(), y, rtol=0, atol=1e-12)


def test_lfo_frame_resolution_rate_per_frame():
    frames = 50
    kw = {"wave": "sine", "time_varying": True, "max_rate_hz": 200.0}
    f1, f2 = 20.0, 120.0
    p = {"rate_hz": torch.linspace(f1, f2, frames, dtype=torch.float64)[None, :, None],
         "depth": torch.linspace(0.2, 0.9, frames, dtype=torch.float64)[None, :, None],
         "phase": torch.full((1, 1), 0.25, dtype=torch.float64)}
    lfo = LFO(SR, resolution="frame", **kw).double()
    y = lfo(n_samples=frames * HOP, **p)[0, 0].numpy()
    per_sample = LFO(SR, **kw).double()(n_samples=frames * HOP, **p)[0, 0].numpy()
    # the knots: the quadratic phase of the linear rate ramp at the frame centres (the rate
    # and the depth held after the last frame)
    n = np.arange(frames + 1) * HOP
    span = (frames - 1) * HOP
    m = np.minimum(n, span)
    phase = 0.25 + (m * f1 + (f2 - f1) * m * (m - 1) / (2 * span) + (n - m) * f2) / SR
    depth = np.append(p["depth"][0, :, 0].numpy(), 0.9)
    knots = depth * np.sin(2 * np.pi * phase)
    np.testing.assert_allclose(y[::HOP], per_sample[::HOP], rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, lerp_knots(knots, HOP, frames * HOP), rtol=0, atol=1e-9)
    blocks = render_in_blocks(lfo, p, HOP, block_frames=(1, 4, 7))
    np.testing.assert_allclose(blocks[0, 0].numpy(), y, rtol=0, atol=1e-12)


def test_lfo_errors():
    with pytest.raises(ValueError, match="resolution"):
        LFO(SR, resolution="block")
    with pytest.raises(ValueError, match="does not divide"):
        LFO(SR, resolution="frame", control_rate=300.0)
    with pytest.raises(ValueError, match="wave"):
        LFO(SR, wave="noise")
