"""Block rendering of the TPT / lattice filters and the subtractive synth against independent
references: a numpy TPT loop, the analog ladder prototype, exact rational LFO and oscillator
phases, and the state-space recursion run whole."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from ddsp_models.core.noise import deterministic_noise
from ddsp_models.effects import AllPassCascade, LadderFilter, Phaser, StateVariableFilter
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.svf import run_system, state_space_block
from ddsp_models.synths import Subtractive

FS = 16000
F64 = torch.float64


def _random_system(length, n, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(2, 1, length, n, n, dtype=F64, generator=g))
    a = 0.95 * q  # contraction: stable for any per-sample switching
    b = torch.randn(2, 1, length, n, dtype=F64, generator=g)
    c = torch.randn(2, 1, length, n, dtype=F64, generator=g)
    d = torch.randn(2, 1, length, dtype=F64, generator=g)
    x = torch.randn(2, 3, length, dtype=F64, generator=g)
    return a, b, c, d, x


@pytest.mark.parametrize("scripted", [False, True])
def test_state_space_block_chained_equals_whole(scripted):
    """The block runner the filters stream through (Python: compiled recursion; TorchScript:
    per-sample loop) chained over uneven blocks equals the whole-signal run_system."""
    runner = torch.jit.script(state_space_block) if scripted else state_space_block
    a, b, c, d, x = _random_system(90, 3, 0)
    whole = run_system(a, b, c, d, x)
    s = torch.zeros(2, 3, 3, dtype=F64)
    outs, t0 = [], 0
    for m in (1, 7, 30, 2, 50):
        t1 = t0 + m
        y, s = runner(a[..., t0:t1, :, :], b[..., t0:t1, :], c[..., t0:t1, :], d[..., t0:t1],
                      x[..., t0:t1], s)
        outs.append(y)
        t0 = t1
    torch.testing.assert_close(torch.cat(outs, -1), whole, rtol=1e-12, atol=1e-12)


def _frames_to_samples(frames, hop):
    """Independent linear interpolation between frame centres ``t * hop``, last frame held."""
    t = np.arange(len(frames) * hop) / hop
    return np.interp(t, np.arange(len(frames)), frames)


def _numpy_tpt_lowpass(x, g, k):
    s1 = s2 = 0.0
    y = np.zeros_like(x)
    for n in range(len(x)):
        hp = (x[n] - (k[n] + g[n]) * s1 - s2) / (1 + k[n] * g[n] + g[n] ** 2)
        bp = g[n] * hp + s1
        lp = g[n] * bp + s2
        s1, s2 = bp + g[n] * hp, lp + g[n] * bp
        y[n] = lp
    return y


def test_streamed_svf_equals_a_numpy_tpt_loop():
    hop, frames = 16, 30
    rng = np.random.default_rng(3)
    cutoff = np.exp(rng.uniform(np.log(60), np.log(6000), frames))
    q = rng.uniform(0.4, 12, frames)
    x = rng.standard_normal((1, 2, frames * hop))
    f = StateVariableFilter(FS)
    params = {"cutoff_hz": torch.tensor(cutoff)[None, :, None], "q": torch.tensor(q)[None, :, None]}
    with torch.no_grad():
        y = render_in_blocks(f, params, hop, [torch.tensor(x)], block_frames=(2, 5, 1, 9))
    g = np.tan(np.pi * _frames_to_samples(cutoff, hop) / FS)
    k = 1 / _frames_to_samples(q, hop)
    for ch in range(2):
        np.testing.assert_allclose(y[0, ch].numpy(), _numpy_tpt_lowpass(x[0, ch], g, k),
                                   rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("resonance", [0.0, 0.8])
def test_streamed_static_ladder_has_the_analog_ladder_response(resonance):
    n, hop, cutoff = 4096, 64, 700.0
    f = LadderFilter(FS, time_varying=False, compensate=False)
    impulse = torch.zeros(1, 1, n, dtype=F64)
    impulse[..., 0] = 1
    p = {"cutoff_hz": torch.tensor([[cutoff]], dtype=F64),
         "resonance": torch.tensor([[resonance]], dtype=F64)}
    with torch.no_grad():
        y = render_in_blocks(f, p, hop, [impulse], n_frames=n // hop, block_frames=(3, 1, 8))
    h = np.fft.rfft(y[0, 0].numpy())
    w = np.arange(len(h)) * 2 * np.pi / n
    s = 1j * np.tan(w / 2) / np.tan(np.pi * cutoff / FS)
    np.testing.assert_allclose(h, 1 / ((1 + s) ** 4 + 4 * resonance), atol=1e-8)


def test_phaser_lfo_phase_is_exact_far_into_a_stream():
    """The LFO is read from the carried sample position in float64: after 2**32 samples its
    break frequencies equal those of the exact rational phase."""
    f = Phaser(FS, n_stages=2, max_octaves=2.0)
    rate, depth, centre = 0.375, 0.5, 800.0  # exactly representable
    start = 2**32 + 12345
    one = torch.ones(1, 1, dtype=F64)
    got = f.break_frequencies(rate * one, depth * one, centre * one, 64, start=start)[0].numpy()
    cycles = [float((Fraction(rate) * (start + i) / FS) % 1) for i in range(64)]
    want = centre * 2.0 ** (2.0 * depth * np.sin(2 * np.pi * np.array(cycles)))
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_subtractive_oscillator_phase_stays_exact_over_many_blocks():
    """The carried float64 phase after 8 s of blocks equals the exact fraction f0 * n / fs."""
    hop, frames, f0 = 64, 2000, 261.63
    synth = Subtractive(FS)
    ones = torch.ones(1, frames, 1, dtype=F64)
    params = {"f0_hz": f0 * ones, "amplitude": ones, "cutoff_hz": 3000 * ones,
              "resonance": 0.2 * ones}
    state = synth.init_state(1, [], hop, ones)
    with torch.no_grad():
        for t0 in range(0, frames, 50):
            p = {k: v[:, t0:t0 + 50] for k, v in params.items()}
            _, state = synth.step([], p, state, 50, 50 * hop, False)
    n = (frames - 1) * hop  # latency one frame: the next output sample is this one
    want = float((Fraction(f0) * n / FS) % 1)
    assert abs(state["phase"].item() - want) < 1e-9
    assert int(state["position"]) == frames


def _cases():
    return [
        (StateVariableFilter(FS, output="notch"), 1),
        (LadderFilter(FS), 1),
        (AllPassCascade(FS, n_stages=2, order=2, warped=True, stretch=3, time_varying=True), 1),
        (AllPassCascade(FS, n_stages=2, order=1, warped=True, stretch=2), 1),
        (Phaser(FS, n_stages=3), 1),
        (Subtractive(FS, waveform="pulse", filter="ladder"), 0),
    ]


@pytest.mark.parametrize("index", range(6))
def test_scripted_float32_stream_equals_forward_and_state_is_not_mutated(index):
    proc, n_inputs = _cases()[index]
    hop, frames = 16, 12
    g = torch.Generator().manual_seed(index)
    params = proc.random_params(2, frames, generator=g)
    xs = [0.5 * torch.randn(2, 1, frames * hop, generator=g) for _ in range(n_inputs)]
    with torch.no_grad(), deterministic_noise(seed=0):
        ref = proc(*xs, **params) if n_inputs else proc(**params, n_samples=frames * hop)
    scripted = torch.jit.script(proc)
    state = proc.init_state(2, [1] * n_inputs, hop, ref)
    before = {k: v.clone() for k, v in state.items()}
    with torch.no_grad():
        got = render_in_blocks(proc, params, hop, xs, n_frames=frames, block_frames=(3, 1, 4),
                               step=scripted.step, state=state)
    err = (got - ref).abs().max() / ref.abs().max()
    assert 20 * math.log10(max(err.item(), 1e-30)) < -80
    for k, v in state.items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
