"""Block primitives of core.iir (lfilter_block, state_space_block, fir_block) against scipy /
numpy references, and the block path of Biquad, ParametricEQ and GraphicEQ beyond the
registry-driven contract tests (hard float32 cases, gradients through a stream, the
freq_sampling mode)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from ddsp_models.core.filter_design import biquad_coefficients, rbj_biquad, tpt_svf_system
from ddsp_models.core.iir import (
    fir_block,
    freq_sampling_response,
    lfilter,
    lfilter_block,
    linear_recurrence,
    state_space_block,
)
from ddsp_models.processors import Biquad, GraphicEQ, ParametricEQ
from ddsp_models.processors.blocks import render_in_blocks

FS = 16000
SCRIPTED = {
    "lfilter_block": torch.jit.script(lfilter_block),
    "state_space_block": torch.jit.script(state_space_block),
    "fir_block": torch.jit.script(fir_block),
}


def _blocks(length, sizes=(1, 5, 17, 64)):
    t0, i = 0, 0
    while t0 < length:
        t1 = min(length, t0 + sizes[i % len(sizes)])
        yield t0, t1
        t0, i = t1, i + 1


def _stable_denominator(rng, order):
    poles = []
    while len(poles) < order:
        r, th = rng.uniform(0.3, 0.97), rng.uniform(0.1, 3.0)
        if order - len(poles) >= 2:
            poles += [r * np.exp(1j * th), r * np.exp(-1j * th)]
        else:
            poles.append(rng.uniform(-0.9, 0.9))
    return np.atleast_1d(np.real(np.poly(poles)))


@pytest.mark.parametrize("scripted", [False, True])
@pytest.mark.parametrize("taps,order", [(3, 2), (4, 3), (1, 2), (3, 0)])
def test_lfilter_block_equals_scipy_with_zi(scripted, taps, order):
    rng = np.random.default_rng(taps * 10 + order)
    b = rng.normal(size=taps)
    a = 2.0 * _stable_denominator(rng, order)  # a[0] != 1: normalised inside
    x = rng.normal(size=(2, 3, 50))
    x_hist = rng.normal(size=(2, 3, taps - 1))
    y_hist = rng.normal(size=(2, 3, order))
    fn = SCRIPTED["lfilter_block"] if scripted else lfilter_block
    y, xh, yh = fn(torch.tensor(x), torch.tensor(b), torch.tensor(a), torch.tensor(x_hist),
                   torch.tensor(y_hist))
    for i in np.ndindex(2, 3):
        zi = scipy.signal.lfiltic(b, a, y_hist[i], x_hist[i])
        ref, _ = scipy.signal.lfilter(b, a, x[i], zi=zi)
        np.testing.assert_allclose(y[i].numpy(), ref, rtol=1e-10, atol=1e-10)
    full_x = np.concatenate([x_hist[..., ::-1], x], -1)
    np.testing.assert_array_equal(xh.numpy(), full_x[..., ::-1][..., : taps - 1])
    full_y = np.concatenate([y_hist[..., ::-1], y.numpy()], -1)
    np.testing.assert_allclose(yh.numpy(), full_y[..., ::-1][..., :order])


@pytest.mark.parametrize("scripted", [False, True])
def test_lfilter_block_chained_equals_whole_time_varying(scripted):
    g = torch.Generator().manual_seed(0)
    length = 120
    x = torch.randn(2, length, generator=g, dtype=torch.float64)
    fc = 300 + 2000 * torch.rand(2, length, generator=g, dtype=torch.float64)
    b, a = biquad_coefficients("lowpass", fc, 2.0, sample_rate=FS)  # (2, L, 3)
    ref = lfilter(x, b, a)
    fn = SCRIPTED["lfilter_block"] if scripted else lfilter_block
    xh, yh = torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)
    outs = []
    for t0, t1 in _blocks(length):
        y, xh, yh = fn(x[:, t0:t1], b[:, t0:t1], a[:, t0:t1], xh, yh)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, -1), ref, rtol=1e-10, atol=1e-12)


def test_lfilter_block_gradients():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 9, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(2, 9, 3, generator=g, dtype=torch.float64).requires_grad_()
    a = torch.tensor([1.0, -0.5, 0.2], dtype=torch.float64).requires_grad_()
    xh = torch.randn(2, 2, generator=g, dtype=torch.float64).requires_grad_()
    yh = torch.randn(2, 2, generator=g, dtype=torch.float64).requires_grad_()
    for fn in (lfilter_block, SCRIPTED["lfilter_block"]):
        assert torch.autograd.gradcheck(fn, (x, b, a, xh, yh))


def _numpy_state_space(a, b, c, d, x, s0):
    s, ys = s0.copy(), []
    for n in range(x.shape[-1]):
        ys.append((c[..., n, :] * s).sum(-1) + d[..., n] * x[..., n])
        s = np.einsum("...ij,...j->...i", a[..., n, :, :], s) + b[..., n, :] * x[..., n, None]
    return np.stack(ys, -1), s


@pytest.mark.parametrize("scripted", [False, True])
def test_state_space_block_chained_equals_numpy_loop(scripted):
    rng = np.random.default_rng(3)
    length, n = 90, 3
    a = 0.3 * rng.normal(size=(2, 1, length, n, n))
    b, c = rng.normal(size=(2, 1, length, n)), rng.normal(size=(2, 1, length, n))
    d = rng.normal(size=(2, 1, length))
    x = rng.normal(size=(2, 4, length))
    s0 = rng.normal(size=(2, 4, n))
    ref, s_ref = _numpy_state_space(a, b, c, d, x, s0)
    fn = SCRIPTED["state_space_block"] if scripted else state_space_block
    t = [torch.tensor(v) for v in (a, b, c, d, x)]
    s, outs = torch.tensor(s0), []
    for t0, t1 in _blocks(length):
        y, s = fn(t[0][:, :, t0:t1], t[1][:, :, t0:t1], t[2][:, :, t0:t1], t[3][:, :, t0:t1],
                  t[4][..., t0:t1], s)
        outs.append(y)
    np.testing.assert_allclose(torch.cat(outs, -1).numpy(), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s.numpy(), s_ref, rtol=1e-10, atol=1e-10)


def test_state_space_block_fixed_matrix_and_gradients():
    g = torch.Generator().manual_seed(4)
    a = (0.5 * torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.randn(1, 1, 2, generator=g, dtype=torch.float64).requires_grad_()
    c = torch.randn(1, 1, 2, generator=g, dtype=torch.float64)
    d = torch.randn(1, 1, generator=g, dtype=torch.float64)
    x = torch.randn(1, 12, generator=g, dtype=torch.float64).requires_grad_()
    s0 = torch.randn(1, 2, generator=g, dtype=torch.float64).requires_grad_()
    # one fixed matrix equals the same matrix repeated per sample (linear_recurrence)
    y, s = state_space_block(a, b, c, d, x, s0)
    states = linear_recurrence(a.expand(1, 12, 2, 2), b * x[..., None], s0)
    torch.testing.assert_close(s, states[:, -1])
    for fn in (state_space_block, SCRIPTED["state_space_block"]):
        assert torch.autograd.gradcheck(lambda a_, b_, x_, s_: fn(a_, b_, c, d, x_, s_),
                                        (a, b, x, s0))


@pytest.mark.parametrize("scripted", [False, True])
def test_fir_block_chained_equals_numpy_convolution(scripted):
    rng = np.random.default_rng(5)
    h = rng.normal(size=(2, 1, 37))
    x = rng.normal(size=(2, 3, 200))
    fn = SCRIPTED["fir_block"] if scripted else fir_block
    hist, outs = torch.zeros(2, 3, 36, dtype=torch.float64), []
    for t0, t1 in _blocks(200):
        y, hist = fn(torch.tensor(x[..., t0:t1]), torch.tensor(h), hist)
        outs.append(y)
    ref = np.stack([[np.convolve(x[i, j], h[i, 0])[:200] for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(torch.cat(outs, -1).numpy(), ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(hist.numpy(), x[..., -36:])


def test_freq_sampling_response_is_the_aliased_impulse_response():
    b, a = biquad_coefficients("peaking", torch.tensor([800.0, 3000.0], dtype=torch.float64),
                               2.0, 6.0, FS)
    h = freq_sampling_response(b, a, 64)
    imp = np.zeros(64 * 40)
    imp[0] = 1.0
    for i in range(2):
        full = scipy.signal.lfilter(b[i].numpy(), a[i].numpy(), imp)
        np.testing.assert_allclose(h[i].numpy(), full.reshape(40, 64).sum(0), atol=1e-10)
    both = freq_sampling_response(b[:, None], a[:, None], 64, cascade=True)  # one section each
    torch.testing.assert_close(both, h)


@pytest.mark.parametrize("kind", ["lowpass", "highpass", "bandpass", "notch", "allpass",
                                  "peaking", "lowshelf", "highshelf"])
def test_tpt_svf_system_has_the_rbj_response(kind):
    fc = torch.tensor(1234.0, dtype=torch.float64)
    q, gain = torch.tensor(1.7, dtype=torch.float64), torch.tensor(-7.5, dtype=torch.float64)
    a, b, c, d = tpt_svf_system(kind, fc, q, gain, FS)
    imp = torch.zeros(1, 400, dtype=torch.float64)
    imp[0, 0] = 1
    h, _ = state_space_block(a[None, None], b[None, None], c[None, None], d[None, None], imp,
                             torch.zeros(1, 2, dtype=torch.float64))
    bb, aa = rbj_biquad(kind, fc, q, gain, FS)
    ref = scipy.signal.lfilter(bb.numpy(), aa.numpy(), imp[0].numpy())
    np.testing.assert_allclose(h[0].numpy(), ref, atol=1e-12)
    torch.testing.assert_close(torch.stack(list(biquad_coefficients(kind, fc, q, gain, FS))),
                               torch.stack([bb, aa]))


# --- processors ------------------------------------------------------------------------


def _stream_error_db(proc, params, x, hop, sizes=(1, 3, 8)):
    with torch.no_grad():
        ref = proc(x, **params)
        got = render_in_blocks(proc, params, hop, [x], block_frames=sizes)
    return 20 * torch.log10((got - ref).abs().max() / ref.abs().max()).item()


def test_biquad_float32_resonant_low_cutoff_streams():
    """A sharp 25 Hz resonance (poles near z = 1) in float32: blocks still match whole."""
    hop, frames = 64, 40
    x = torch.randn(1, 2, hop * frames, generator=torch.Generator().manual_seed(6))
    for kind in ("lowpass", "peaking"):
        proc = Biquad(FS, kind, max_gain_db=12.0)
        p = {"cutoff_hz": torch.tensor([[25.0]]), "q": torch.tensor([[15.0]])}
        if kind == "peaking":
            p["gain_db"] = torch.tensor([[12.0]])
        assert _stream_error_db(proc, p, x, hop) < -60
        tv = Biquad(FS, kind, time_varying=True, max_gain_db=12.0)
        ptv = {k: v[:, None].expand(1, frames, 1) * torch.linspace(1, 3, frames)[None, :, None]
               for k, v in p.items()}
        assert _stream_error_db(tv, ptv, x, hop) < -60


def test_biquad_gradients_through_a_stream():
    """Gradients of a streamed render (state carried between blocks) equal the offline ones."""
    hop, frames = 8, 6
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 1, hop * frames, generator=g, dtype=torch.float64)
    for proc, shape in ((Biquad(FS, "peaking"), (1, 1)),
                        (Biquad(FS, "peaking", time_varying=True), (1, frames, 1))):
        p = {"cutoff_hz": (500 + 3000 * torch.rand(shape, generator=g, dtype=torch.float64)),
             "q": 0.5 + torch.rand(shape, generator=g, dtype=torch.float64),
             "gain_db": 6 * torch.randn(shape, generator=g, dtype=torch.float64)}
        p = {k: v.requires_grad_() for k, v in p.items()}
        w = torch.randn(1, 1, hop * frames, generator=g, dtype=torch.float64)
        ref = torch.autograd.grad((proc(x, **p) * w).sum(), list(p.values()))
        got = torch.autograd.grad((render_in_blocks(proc, p, hop, [x], block_frames=(2, 1, 3))
                                   * w).sum(), list(p.values()))
        for r, s in zip(ref, got):
            torch.testing.assert_close(s, r)


def test_eq_freq_sampling_mode_streams_its_own_fir():
    """freq_sampling is an FIR of n_fft taps: the stream carries n_fft - 1 inputs and equals
    the offline (approximate) render, not the exact recursion."""
    hop, frames = 32, 30
    x = torch.randn(1, 1, hop * frames, generator=torch.Generator().manual_seed(8),
                    dtype=torch.float64)
    proc = ParametricEQ(FS, n_peaks=1, mode="freq_sampling", n_fft=256).double()
    exact = ParametricEQ(FS, n_peaks=1).double()
    p = {"low_shelf_hz": [[60.0]], "low_shelf_gain_db": [[9.0]], "peak_hz": [[150.0]],
         "peak_q": [[8.0]], "peak_gain_db": [[10.0]], "high_shelf_hz": [[5000.0]],
         "high_shelf_gain_db": [[-6.0]]}
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in p.items()}
    assert _stream_error_db(proc, p, x, hop) < -200
    assert proc.init_state(1, [1], hop, x)["fir_history"].shape == (1, 1, 255)
    default = ParametricEQ(FS, mode="freq_sampling")  # n_fft=None: sosfilt's 4096 taps
    assert default.init_state(1, [2], hop, x)["fir_history"].shape == (1, 2, 4095)
    with torch.no_grad():  # a short FIR of a sharp low resonance: far from the recursion
        diff = (proc(x, **p) - exact(x, **p)).abs().max() / exact(x, **p).abs().max()
    assert diff > 1e-3
    geq = GraphicEQ(FS, mode="freq_sampling", n_fft=512)
    gains = torch.linspace(-12, 12, geq.n_bands, dtype=torch.float64)[None]
    assert _stream_error_db(geq.double(), {"gains_db": gains}, x, hop) < -200


def test_block_primitives_under_torch_export_use_the_torch_scan():
    """Tracers (torch.export, hence ONNX) cannot enter numba: the scans stand in, same values."""

    class Blocks(torch.nn.Module):
        def forward(self, x, b, a, xh, yh, am, bm, cm, dm, s0):
            return (*lfilter_block(x, b, a, xh, yh), *state_space_block(am, bm, cm, dm, x, s0))

    g = torch.Generator().manual_seed(10)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    args = (r(2, 3, 16), r(2, 1, 3), torch.tensor([1.0, -1.2, 0.5], dtype=torch.float64),
            r(2, 3, 2), r(2, 3, 2), 0.4 * r(2, 1, 16, 2, 2), r(2, 1, 16, 2), r(2, 1, 16, 2),
            r(2, 1, 16), r(2, 3, 2))
    exported = torch.export.export(Blocks(), args, strict=False).module()
    for got, ref in zip(exported(*args), Blocks()(*args)):
        torch.testing.assert_close(got, ref)
