import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.dynamics import (
    Compressor,
    Limiter,
    NoiseGate,
    compressor_gain_db,
    expander_gain_db,
    gain_reduction_db,
)

SR = 16000
F64 = torch.float64


def params(**kw):
    """Static (1, 1) float64 parameter tensors."""
    return {k: torch.tensor([[float(v)]], dtype=F64) for k, v in kw.items()}


# --- numpy references of the static curves (Giannoulis et al. 2012, eq. 4 and its mirror) ---
def np_compressor_out_db(x, t, r, w):
    """Output level in dB of a downward compressor with a quadratic knee of width w."""
    below = x
    knee = x + (1 / r - 1) * (x - t + w / 2) ** 2 / (2 * w) if w > 0 else x
    above = t + (x - t) / r
    return np.select([2 * (x - t) < -w, 2 * np.abs(x - t) <= w], [below, knee], above)


def np_expander_out_db(x, t, r, w):
    """Output level in dB of a downward expander with a quadratic knee of width w."""
    above = x
    knee = x - (r - 1) * (t - x + w / 2) ** 2 / (2 * w) if w > 0 else x
    below = t + (x - t) * r
    return np.select([2 * (x - t) > w, 2 * np.abs(x - t) <= w], [above, knee], below)


LEVELS = np.linspace(-80, 10, 901)


@pytest.mark.parametrize("t,r,w", [(-20, 4, 0), (-20, 4, 10), (-35, 1.5, 24), (-10, 20, 6)])
def test_compressor_curve_matches_numpy(t, r, w):
    got = compressor_gain_db(torch.tensor(LEVELS), t, r, w).numpy()
    np.testing.assert_allclose(got, np_compressor_out_db(LEVELS, t, r, w) - LEVELS, atol=1e-9)


@pytest.mark.parametrize("t,r,w", [(-40, 10, 0), (-40, 10, 12), (-30, 2, 4)])
def test_expander_curve_matches_numpy(t, r, w):
    got = expander_gain_db(torch.tensor(LEVELS), t, r, w).numpy()
    np.testing.assert_allclose(got, np_expander_out_db(LEVELS, t, r, w) - LEVELS, atol=1e-9)
    floored = expander_gain_db(torch.tensor(LEVELS), t, r, w, max_attenuation_db=30).numpy()
    np.testing.assert_allclose(floored, np.maximum(got, -30), atol=1e-12)


@pytest.mark.parametrize("below,cap", [(False, math.inf), (True, 30.0)])
def test_fused_gain_computer_matches_the_curves_and_the_torch_path(below, cap):
    g = torch.Generator().manual_seed(2)
    amp = (10 ** (torch.rand(3, 2, 300, dtype=F64, generator=g) * 7 - 6.5))  # -130..+10 dB
    amp[0, 0, :5] = 0.0
    thr = torch.tensor([-30.0, -12.0, -50.0], dtype=F64)[:, None, None]
    ratio = torch.tensor([4.0, 1.5, 12.0], dtype=F64)[:, None, None]
    knee = torch.tensor([0.0, 6.0, 20.0], dtype=F64)[:, None, None]
    slope = ratio - 1 if below else 1 - 1 / ratio
    fused = gain_reduction_db(amp, thr, slope, knee, below=below, max_reduction_db=cap)
    level = 20 * torch.log10(amp.clamp_min(1e-6))
    curve = (expander_gain_db(level, thr, ratio, knee, max_attenuation_db=cap) if below
             else compressor_gain_db(level, thr, ratio, knee))
    torch.testing.assert_close(fused, -curve, rtol=1e-12, atol=1e-9)
    # Gradients of the fused kernels equal autograd through the torch composition.
    grads = []
    for backend in ["auto", "torch"]:
        leaves = [t.clone().requires_grad_() for t in (amp, thr, slope, knee)]
        out = gain_reduction_db(*leaves, below=below, max_reduction_db=cap, backend=backend)
        (out * torch.linspace(-1, 2, 300, dtype=F64)).sum().backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_fused_gain_computer_gradcheck():
    g = torch.Generator().manual_seed(4)
    amp = (10 ** (torch.rand(2, 1, 50, dtype=F64, generator=g) * 3 - 2.5)).requires_grad_()
    thr = torch.tensor([[[-20.0]], [[-35.0]]], dtype=F64, requires_grad=True)
    slope = torch.tensor([[[0.7]], [[0.3]]], dtype=F64, requires_grad=True)
    knee = torch.tensor([[[9.0]], [[30.0]]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(gain_reduction_db, (amp, thr, slope, knee))


@pytest.mark.parametrize("cls", [Compressor, NoiseGate, Limiter])
@pytest.mark.parametrize("link,signal", [(True, "stereo"), (False, "stereo"), (True, "dual-mono"),
                                         (True, "mono")])
def test_processors_numba_and_torch_backends_agree(cls, link, signal):
    # "auto" on CPU runs the fused numba kernels; "torch" is the composition of torch ops.
    proc = cls(SR, stereo_link=link) if cls is Limiter else cls(SR, knee="soft", stereo_link=link)
    raw = {s.name: torch.randn(2, 1, dtype=F64) for s in proc.param_specs()}
    x = 0.5 * torch.randn(2, 2, 3000, dtype=F64)
    if signal == "dual-mono":  # tied channels: the max's gradient is shared
        x[:, 1] = -x[:, 0]
    elif signal == "mono":
        x = x[:, :1]
    outs = []
    for backend in ["auto", "torch"]:
        proc.backend = backend
        leaves = {k: v.clone().requires_grad_() for k, v in raw.items()}
        xi = x.clone().requires_grad_()
        y = proc(xi, **proc.scale_params(leaves))
        y.square().sum().backward()
        outs.append([y, xi.grad, *(leaves[k].grad for k in raw)])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def dc_steps(levels_db, seconds):
    """A positive DC signal stepping through levels (dB), each held for seconds: (1, 1, L)."""
    parts = [np.full(int(s * SR), 10 ** (lv / 20)) for lv, s in zip(levels_db, seconds)]
    return torch.tensor(np.concatenate(parts), dtype=F64)[None, None]


def time_to_cover(gain_db, start, g0, g1):
    """Seconds after sample `start` until the gain has covered 1 - 1/e of g0 -> g1."""
    target = g0 + (g1 - g0) * (1 - math.exp(-1))
    seg = gain_db[start:]
    hit = np.nonzero(seg <= target)[0] if g1 < g0 else np.nonzero(seg >= target)[0]
    return (hit[0] + 1) / SR


@pytest.mark.parametrize("knee", ["hard", "soft"])
@pytest.mark.parametrize("attack_s,release_s", [(0.005, 0.05), (0.02, 0.2)])
def test_compressor_step_follows_time_constants(knee, attack_s, release_s):
    comp = Compressor(SR, knee=knee)
    p = params(threshold_db=-20, ratio=4, attack_s=attack_s, release_s=release_s, makeup_db=0)
    if knee == "soft":
        p["knee_db"] = torch.tensor([[6.0]], dtype=F64)
    x = dc_steps([-40, -10, -40], [0.2, 1.0, 2.0])
    y = comp(x, **p)
    gain = 20 * np.log10((y / x)[0, 0].numpy())
    g_loud = -(1 - 1 / 4) * (-10 - -20)  # -7.5 dB, the knee (6 dB) is not reached at -10 dB
    on, off = int(0.2 * SR), int(1.2 * SR)
    assert abs(gain[on - 1]) < 1e-9  # below threshold: no reduction
    assert gain[off - 1] == pytest.approx(g_loud, abs=1e-6)
    assert time_to_cover(gain, on, 0.0, g_loud) == pytest.approx(attack_s, rel=0.1)
    assert time_to_cover(gain, off, g_loud, 0.0) == pytest.approx(release_s, rel=0.1)


@pytest.mark.parametrize("knee_db", [0.0, 12.0])
@pytest.mark.parametrize("level_db", [-50, -26, -21, -18, -12, 0])
def test_compressor_steady_state_follows_static_curve(knee_db, level_db):
    comp = Compressor(SR, knee="soft")
    p = params(threshold_db=-20, ratio=3, knee_db=knee_db, attack_s=0.002, release_s=0.02,
               makeup_db=4)
    x = dc_steps([level_db], [0.1])
    gain = 20 * np.log10((comp(x, **p) / x)[0, 0, -1].item())
    want = np_compressor_out_db(np.array(level_db, float), -20, 3, knee_db) - level_db + 4
    assert gain == pytest.approx(float(want), abs=1e-6)


def test_compressor_on_a_sine_reduces_to_the_peak_curve():
    # With a fast attack and a slow release the reduction holds near the peak level's value.
    comp = Compressor(SR, knee="hard")
    p = params(threshold_db=-20, ratio=4, attack_s=1e-4, release_s=0.5, makeup_db=0)
    t = torch.arange(SR // 2, dtype=F64) / SR
    x = (10 ** (-6 / 20) * torch.sin(2 * math.pi * 500 * t))[None, None]
    g = comp.gain_db(x, **p)[0, 0, -SR // 10:]
    assert float(g.max() - g.min()) < 0.2
    assert float(g.mean()) == pytest.approx(-(1 - 1 / 4) * 14, abs=0.3)


def test_stereo_link():
    x = torch.zeros(1, 2, 4000, dtype=F64)
    x[:, 0] = 0.5
    x[:, 1] = 0.01
    p = params(threshold_db=-30, ratio=4, knee_db=0, attack_s=1e-3, release_s=0.1, makeup_db=0)
    linked = Compressor(SR).gain_db(x, **p)
    assert linked.shape == (1, 1, 4000)
    free = Compressor(SR, stereo_link=False).gain_db(x, **p)
    assert free.shape == (1, 2, 4000)
    assert free[0, 1, -1].abs() < 1e-9 < free[0, 0, -1].abs()
    torch.testing.assert_close(linked[0, 0], free[0, 0])


def test_noise_gate_attenuates_below_threshold_only():
    gate = NoiseGate(SR, knee="hard", max_attenuation_db=60)
    p = params(threshold_db=-40, ratio=10, attack_s=0.001, release_s=0.01)
    x = dc_steps([-20, -55, -20], [0.2, 0.3, 0.2])
    gain = 20 * np.log10((gate(x, **p) / x)[0, 0].numpy())
    q, loud = int(0.5 * SR), int(0.7 * SR)
    assert abs(gain[int(0.2 * SR) - 1]) < 1e-9  # open above the threshold
    assert gain[q - 1] == pytest.approx(-60, abs=1e-6)  # 9 * 15 dB > range: floored at -60
    assert abs(gain[loud - 1]) < 1e-6  # opens again
    # Closing follows the release time constant, opening the attack one.
    assert time_to_cover(gain, int(0.2 * SR), 0.0, -60.0) == pytest.approx(0.01, rel=0.1)
    assert time_to_cover(gain, q, -60.0, 0.0) == pytest.approx(0.001, rel=0.1)


def test_noise_gate_ratio_below_threshold():
    gate = NoiseGate(SR, knee="hard")
    p = params(threshold_db=-40, ratio=3, attack_s=0.001, release_s=0.005)
    x = dc_steps([-50], [0.2])
    gain = 20 * math.log10((gate(x, **p) / x)[0, 0, -1].item())
    assert gain == pytest.approx(-(3 - 1) * 10, abs=1e-6)


@pytest.mark.parametrize("attack_s", [1e-5, 5e-4])
def test_limiter_keeps_peaks_under_the_ceiling_after_the_attack(attack_s):
    g = torch.Generator().manual_seed(3)
    n = SR
    t = torch.arange(n, dtype=F64) / SR
    # A 440 Hz tone whose amplitude jumps every 100 ms between -30 dB and +6 dB.
    amp_db = torch.rand(10, dtype=F64, generator=g) * 36 - 30
    amp = (10 ** (amp_db / 20)).repeat_interleave(n // 10)
    x = torch.stack([amp * torch.sin(2 * math.pi * 440 * t),
                     0.5 * amp * torch.sin(2 * math.pi * 660 * t)])
    lim = Limiter(SR)
    p = params(threshold_db=-6, attack_s=attack_s, release_s=0.1)
    y = lim(x[None], **p)[0]
    ceiling = 10 ** (-6 / 20)
    settle = int(10 * attack_s * SR) + 1  # "after the attack": 10 time constants per onset
    ok = torch.ones(n, dtype=torch.bool)
    for k in range(10):
        ok[k * n // 10 : k * n // 10 + settle] = False
    peak_db = 20 * torch.log10(y.abs().amax(0)[ok].max() / ceiling)
    assert peak_db < 0.5
    # Quiet passages (under the ceiling) pass unchanged once the gain has recovered: with a
    # 10 ms release, the second half of a quiet segment that follows a quiet one.
    y = lim(x[None], **params(threshold_db=-6, attack_s=attack_s, release_s=0.01))[0]
    quiet = [k for k in range(1, 10) if amp_db[k] < -6 and amp_db[k - 1] < -6]
    assert quiet
    for k in quiet:
        seg = slice(k * n // 10 + n // 20, (k + 1) * n // 10)
        torch.testing.assert_close(y[:, seg], x[:, seg], rtol=1e-6, atol=0)


def test_gradients_reach_every_parameter():
    comp = Compressor(SR)
    raw = {s.name: torch.zeros(2, 1, dtype=F64, requires_grad=True) for s in comp.param_specs()}
    x = (0.5 * torch.randn(2, 2, 2000, dtype=F64)).requires_grad_()
    y = comp(x, **comp.scale_params(raw))
    (y ** 2).sum().backward()
    for name, r in raw.items():
        assert r.grad is not None and torch.isfinite(r.grad).all() and r.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_config_round_trip_and_errors():
    for proc in [Compressor(8000, knee="hard", stereo_link=False),
                 NoiseGate(22050, "soft", True, 40), Limiter(44100, stereo_link=False)]:
        again = processor_from_dict({"type": type(proc).__name__, **proc.config()})
        assert type(again) is type(proc) and again.config() == proc.config()
        assert [s.name for s in again.param_specs()] == [s.name for s in proc.param_specs()]
    assert "knee_db" not in Compressor(knee="hard").specs_by_name()
    with pytest.raises(ValueError, match="knee must be 'hard' or 'soft'"):
        Compressor(knee="quadratic")
    comp = Compressor()
    p = comp.random_params(1, 1)
    with pytest.raises(ValueError, match=r"expects audio \(batch, channels, samples\)"):
        comp(torch.zeros(100), **p)
    with pytest.raises(ValueError, match="missing parameters"):
        comp(torch.zeros(1, 1, 100), threshold_db=p["threshold_db"])


@pytest.mark.parametrize("cls", [Compressor, NoiseGate, Limiter])
@settings(max_examples=200)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0, 30),
       amp=st.sampled_from([0, 1e-6, 0.1, 3]))
def test_random_raw_parameters_give_finite_outputs_and_gradients(cls, seed, scale, amp):
    g = torch.Generator().manual_seed(seed)
    proc = cls(SR, stereo_link=bool(seed % 2)) if cls is Limiter else cls(
        SR, knee=("hard", "soft")[seed % 2], stereo_link=bool(seed % 3))
    raw = {s.name: (scale * torch.randn(s.shape(2, 1), generator=g)).requires_grad_()
           for s in proc.param_specs()}
    x = (amp * torch.randn(2, 2, 64, generator=g)).requires_grad_()
    y = proc(x, **proc.scale_params(raw))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(r.grad).all() for r in raw.values())
