"""Block rendering of the dynamics processors and the distortion, and the ballistics' block path.

The contract tests (tests/test_contract.py) drive mono inputs and random parameters; here:
stereo (linked and unlinked), signals with bursts and silences so every branch of the curves
and both ballistics poles act, an independent numpy reference for a linked stereo compressor
streamed in blocks, the scripted step, and gradients through ``step``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddsp_models.core.ballistics import attack_release, attack_release_block
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.distortion import Distortion
from ddsp_models.processors.dynamics import Compressor, Limiter, NoiseGate

SR = 8000
HOP = 16
FRAMES = 30


def bursts(batch=2, channels=2, frames=FRAMES, seed=0, dtype=torch.float64):
    """Noise whose level jumps between -80 dB and about 0 dB every few frames, per channel."""
    g = torch.Generator().manual_seed(seed)
    n = frames * HOP
    x = torch.randn(batch, channels, n, generator=g, dtype=dtype)
    env = 10 ** (torch.where((torch.arange(n) // (5 * HOP)) % 2 == 0, -3.0, -80.0) / 20)
    # channel c lags by 2 c frames: the channels' levels differ, linking matters
    env = torch.stack([torch.roll(env, 2 * HOP * c) for c in range(channels)]).to(dtype)
    return x * env


def static(batch, dtype, **values):
    return {k: torch.full((batch, 1), float(v), dtype=dtype) for k, v in values.items()}


PROCS = {
    "compressor": (Compressor, dict(threshold_db=-20, ratio=4, knee_db=6, attack_s=2e-3,
                                    release_s=2e-2, makeup_db=3)),
    "gate": (NoiseGate, dict(threshold_db=-40, ratio=10, attack_s=1e-3, release_s=1e-2)),
    "limiter": (Limiter, dict(threshold_db=-6, attack_s=1e-4, release_s=1e-2)),
}


@pytest.mark.parametrize("stereo_link", [True, False])
@pytest.mark.parametrize("kind", list(PROCS))
@pytest.mark.parametrize("dtype,limit_db", [(torch.float64, -100.0), (torch.float32, -60.0)])
def test_stereo_blocks_equal_whole(kind, stereo_link, dtype, limit_db):
    cls, values = PROCS[kind]
    proc = cls(sample_rate=SR, stereo_link=stereo_link).to(dtype)
    x = bursts(dtype=dtype)
    params = static(2, dtype, **{k: v for k, v in values.items()
                                 if k in proc.specs_by_name()})
    ref = proc(x, **params)
    assert (ref - x).abs().max() > 0.05 * x.abs().max()  # the processor acts
    assert proc.latency_frames(HOP) == 0
    scripted = torch.jit.script(proc)
    for sizes, step in (((1, 4, 7, 16), None), ((3,), None), ((5, 2), scripted.step)):
        got = render_in_blocks(proc, params, HOP, [x], n_frames=FRAMES, block_frames=sizes,
                               step=step)
        err = (got - ref).abs().max() / ref.abs().max()
        assert 20 * math.log10(max(err.item(), 1e-30)) < limit_db, (sizes, err)
    state = proc.init_state(2, [2], HOP, x)
    assert state["envelope"].shape == (2, 1 if stereo_link else 2)


def numpy_linked_compressor(x, thr, ratio, knee, att_s, rel_s, makeup, sr):
    """Independent per-sample reference: linked peak detector, soft knee, ballistics, gain."""
    b, c, n = x.shape
    y = np.empty_like(x)
    a_att, a_rel = math.exp(-1 / (att_s * sr)), math.exp(-1 / (rel_s * sr))
    for i in range(b):
        s = 0.0
        for t in range(n):
            level = 20 * math.log10(max(np.abs(x[i, :, t]).max(), 1e-6))
            o = level - thr
            if 2 * o <= -knee:
                ramp = 0.0
            elif 2 * o >= knee:
                ramp = o
            else:
                ramp = (o + knee / 2) ** 2 / (2 * knee)
            r = (1 - 1 / ratio) * ramp
            a = a_att if r > s else a_rel
            s = a * s + (1 - a) * r
            y[i, :, t] = x[i, :, t] * 10 ** ((makeup - s) / 20)
    return y


def test_linked_stereo_compressor_in_blocks_matches_numpy_reference():
    v = PROCS["compressor"][1]
    proc = Compressor(sample_rate=SR).double()
    x = bursts(frames=12)
    params = static(2, torch.float64, **v)
    got = render_in_blocks(proc, params, HOP, [x], n_frames=12, block_frames=(1, 3, 5))
    ref = numpy_linked_compressor(x.numpy(), v["threshold_db"], v["ratio"], v["knee_db"],
                                  v["attack_s"], v["release_s"], v["makeup_db"], SR)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12, rtol=1e-10)


def test_step_gradients_equal_forward_gradients():
    """The Python step path keeps the offline exact gradients (one block = whole signal)."""
    v = PROCS["compressor"][1]
    proc = Compressor(sample_rate=SR).double()
    x = bursts(batch=1, frames=4)
    grads = []
    for use_step in (False, True):
        params = {k: t.requires_grad_() for k, t in static(1, torch.float64, **v).items()}
        xi = x.clone().requires_grad_()
        if use_step:
            y, _ = proc.step([xi], params, proc.init_state(1, [2], HOP, x), 4, 4 * HOP, False)
        else:
            y = proc(xi, **params)
        (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum().backward()
        grads.append([xi.grad] + [params[k].grad for k in sorted(params)])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("time_varying", [False, True])
def test_ballistics_block_on_split_signal(time_varying):
    g = torch.Generator().manual_seed(3)
    n, cut = 90, (0, 1, 31, 32, 70, 90)
    x = torch.randn(3, n, generator=g, dtype=torch.float64).cumsum(-1)
    att = torch.rand(3, n if time_varying else 1, generator=g, dtype=torch.float64) * 0.5
    rel = 0.5 + 0.5 * torch.rand(3, n if time_varying else 1, generator=g, dtype=torch.float64)
    y0 = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    ref = attack_release(x, att, rel, initial=y0)
    scripted = torch.jit.script(attack_release_block)
    for fn in (attack_release_block, scripted):
        state, parts = y0, []
        for t0, t1 in zip(cut[:-1], cut[1:]):
            sl = slice(t0, t1) if time_varying else slice(0, 1)
            y, state = fn(x[:, t0:t1], att[:, sl], rel[:, sl], state)
            parts.append(y)
            torch.testing.assert_close(state, y[:, -1])
        torch.testing.assert_close(torch.cat(parts, -1), ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("mode", ["tanh", "soft", "hard"])
@pytest.mark.parametrize("time_varying", [False, True])
def test_distortion_stereo_blocks(mode, time_varying):
    proc = Distortion(mode, time_varying).double()
    x = bursts(frames=20)
    g = torch.Generator().manual_seed(1)
    params = proc.random_params(2, 20, generator=g, dtype=torch.float64)
    ref = proc(x, **params)
    assert proc.latency_frames(HOP) == (1 if time_varying else 0)
    for step in (None, torch.jit.script(proc).step):
        got = render_in_blocks(proc, params, HOP, [x], block_frames=(1, 6, 3), step=step)
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
