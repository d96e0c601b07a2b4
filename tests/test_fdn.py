"""FDNReverb (issue 16, item 1): the feedback delay network against independent references.

* its impulse response equals a per-sample numpy loop (circular buffers, the absorption
  filters designed by ``scipy.signal.bilinear``) to 1e-6 in float64 (mono and stereo,
  Householder, Hadamard and random orthogonal matrices, shelf and one-pole absorption);
* with unit absorption and an orthogonal matrix the loop is lossless: the energy stored in
  the lines stays constant to 1e-9 over 10,000 samples;
* the T60 measured per octave band (Schroeder backward integration, -5 to -35 dB) is within
  5 % of ``t60_low_s`` / ``t60_high_s`` in the bands three octaves or more from the crossover,
  and within 5 % of the filters' own T60 curve in every band but the crossover's;
* the absorption filters' gains at DC and Nyquist are the T60 parameters' exactly;
* ``mode="freq_sampling"`` equals the exact impulse response time-aliased modulo its length;
* gradcheck of the exact recursion on a short case (all parameters and the input).
The registry-driven contract tests (tests/test_contract.py) cover streaming, scripting and
round trips.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal
from scipy.linalg import hadamard

from ddsp_models.core.fdn import absorption_filters, feedback_matrix, matrix_factor, prime_delays
from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.fdn import FDNReverb

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _t(v) -> torch.Tensor:
    return torch.as_tensor(np.atleast_2d(np.asarray(v, dtype=np.float64)))


def reference_filters(kind, delays, sr, t60_low, t60_high, fc):
    """``(b (N, 2), a (N, 2))`` designed independently: the shelf by scipy's bilinear
    transform of the analog prototype ``(g_pi s + g_0 W) / (s + W)``, ``W`` pre-warped."""
    bs, as_ = [], []
    for m in delays:
        g0 = 10.0 ** (-3.0 * m / (sr * t60_low))
        gp = 10.0 ** (-3.0 * m / (sr * t60_high))
        if kind == "shelf":
            wa = 2 * sr * np.tan(np.pi * fc / sr)
            b, a = signal.bilinear([gp, g0 * wa], [1.0, wa], fs=sr)
        elif kind == "one_pole":  # Jot: g0 (1 - p) / (1 - p z^-1), p = (g0 - gp) / (g0 + gp)
            p = (g0 - gp) / (g0 + gp)
            b, a = np.array([g0 * (1 - p), 0.0]), np.array([1.0, -p])
        else:
            b, a = np.array([1.0, 0.0]), np.array([1.0, 0.0])
        bs.append(np.pad(b / a[0], (0, 2 - len(b))))
        as_.append(np.pad(a / a[0], (0, 2 - len(a))))
    return np.array(bs), np.array(as_)


def reference_matrix(kind, n, seed=0):
    if kind == "householder":
        return np.eye(n) - 2.0 / n * np.ones((n, n))
    if kind == "hadamard":
        return hadamard(n) / np.sqrt(n)
    m = feedback_matrix(kind, matrix_factor(kind, n, seed).double()).numpy()
    assert np.abs(m.T @ m - np.eye(n)).max() < 1e-14
    return m


def fdn_loop(u, b_in, c_out, A, delays, fb, fa):
    """The FDN one sample at a time: circular delay lines, first-order absorption at each
    line's output, ``v = b u + A a``, ``y = C a``."""
    n = len(delays)
    bufs = [np.zeros(m) for m in delays]
    ptr = [0] * n
    x1, y1 = np.zeros(n), np.zeros(n)
    y = np.zeros((c_out.shape[0], len(u)))
    for t in range(len(u)):
        s = np.array([bufs[i][ptr[i]] for i in range(n)])  # v_i[t - m_i]
        a = fb[:, 0] * s + fb[:, 1] * x1 - fa[:, 1] * y1
        x1, y1 = s, a
        y[:, t] = c_out @ a
        v = b_in * u[t] + A @ a
        for i in range(n):
            bufs[i][ptr[i]] = v[i]
            ptr[i] = (ptr[i] + 1) % delays[i]
    return y


LOOP_CASES = [
    dict(delays=[37, 41, 53, 61, 67, 79], matrix="householder", absorption="shelf"),
    dict(delays=[29, 31, 43, 47, 59, 71, 73, 89], matrix="hadamard", absorption="one_pole",
         stereo=True),
    dict(delays=[17, 23, 29, 31, 37], matrix="orthogonal", absorption="shelf", stereo=True),
]


@pytest.mark.parametrize("cfg", LOOP_CASES, ids=lambda c: f"{c['matrix']}-{c['absorption']}")
def test_impulse_response_equals_per_sample_loop(cfg):
    sr, length = 16000, 3000
    p = FDNReverb(sample_rate=sr, add_dry=False, **cfg).double()
    n, ch = len(cfg["delays"]), 2 if cfg.get("stereo") else 1
    rng = np.random.default_rng(0)
    b_in, c_out = rng.standard_normal(n), rng.standard_normal((ch, n))
    low, high, fc = 0.4, 0.15, 1500.0
    params = {"input_gains": _t(b_in), "output_gains": _t(c_out.reshape(1, -1)),
              "t60_low_s": _t(low), "t60_high_s": _t(high)}
    if cfg["absorption"] == "shelf":
        params["crossover_hz"] = _t(fc)
    x = torch.zeros(1, 1, length, dtype=F64)
    x[..., 0] = 1.0
    got = p(x, **params)[0].numpy()

    fb, fa = reference_filters(cfg["absorption"], cfg["delays"], sr, low, high, fc)
    ref = fdn_loop(x[0, 0].numpy(), b_in, c_out, reference_matrix(cfg["matrix"], n),
                   cfg["delays"], fb, fa)
    assert got.shape == ref.shape
    assert np.abs(ref).max() > 0.1  # the tail is there
    assert np.abs(got - ref).max() < 1e-6 * np.abs(ref).max()


def test_random_input_and_dry_path_equal_the_loop():
    sr, length = 16000, 1500
    delays = [13, 19, 23, 29]
    p = FDNReverb(sample_rate=sr, delays=delays).double()  # add_dry=True
    rng = np.random.default_rng(1)
    b_in, c_out = rng.standard_normal(4), rng.standard_normal((1, 4))
    x = rng.standard_normal((1, 2, length))  # stereo in: mixed to mono into the lines
    params = {"input_gains": _t(b_in), "output_gains": _t(c_out), "t60_low_s": _t(0.3),
              "t60_high_s": _t(0.1), "crossover_hz": _t(800.0)}
    got = p(torch.from_numpy(x), **params)[0].numpy()
    fb, fa = reference_filters("shelf", delays, sr, 0.3, 0.1, 800.0)
    wet = fdn_loop(x[0].mean(0), b_in, c_out, reference_matrix("householder", 4), delays, fb, fa)
    assert got.shape == (2, length)
    np.testing.assert_allclose(got, x[0] + wet, rtol=0, atol=1e-9)


@pytest.mark.parametrize("matrix,n", [("householder", 8), ("householder", 6), ("hadamard", 8),
                                      ("hadamard", 16), ("orthogonal", 8)])
def test_lossless_with_unit_absorption(matrix, n):
    delays = prime_delays(n, 16000, 5.0, 12.0)  # 80 .. 192 samples
    p = FDNReverb(sample_rate=16000, delays=delays, matrix=matrix, absorption="none",
                  add_dry=False).double()
    g = torch.Generator().manual_seed(0)
    params = {"input_gains": torch.randn(1, n, generator=g, dtype=F64),
              "output_gains": torch.randn(1, n, generator=g, dtype=F64)}
    state = p.init_state(1, [1], 1, torch.zeros((), dtype=F64))
    mask = torch.zeros(n, max(delays), dtype=F64)  # the samples each line holds
    for i, m in enumerate(delays):
        mask[i, max(delays) - m:] = 1.0

    def energy(st):
        return float((st["lines"][0] ** 2 * mask).sum())

    burst = torch.randn(1, 1, 64, generator=g, dtype=F64)
    _, state = p.step([burst], params, state, 1, 64, False)
    e0 = energy(state)
    assert e0 > 1.0
    zeros = torch.zeros(1, 1, 1000, dtype=F64)
    for _ in range(10):  # 10,000 samples, about 70 round trips through the matrix
        _, state = p.step([zeros], params, state, 1, 1000, False)
        assert abs(energy(state) - e0) < 1e-9 * e0


def _octave_t60(h, sr, fc):
    """T60 of ``h`` in the octave band around ``fc``: Schroeder's backward integral of the
    band-filtered response, a line fitted from -5 to -35 dB."""
    sos = signal.butter(4, [fc / np.sqrt(2), min(fc * np.sqrt(2), 0.499 * sr)], "bandpass",
                        output="sos", fs=sr)
    hb = signal.sosfilt(sos, h)
    edc = np.cumsum((hb ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    i0, i1 = int(np.argmax(edc_db <= -5)), int(np.argmax(edc_db <= -35))
    slope = np.polyfit(np.arange(i0, i1) / sr, edc_db[i0:i1], 1)[0]
    return -60.0 / slope


def test_t60_per_octave_band():
    sr, low, high, fc = 48000, 2.0, 0.8, 1000.0
    p = FDNReverb(sample_rate=sr, matrix="hadamard", add_dry=False).double()  # 8 lines
    n = p.n_lines
    g = torch.Generator().manual_seed(0)
    signs = lambda: torch.where(torch.rand(1, n, generator=g) < 0.5, -1.0, 1.0).to(F64)  # noqa
    params = {"input_gains": signs(), "output_gains": signs(), "t60_low_s": _t(low),
              "t60_high_s": _t(high), "crossover_hz": _t(fc)}
    x = torch.zeros(1, 1, int(low * sr), dtype=F64)
    x[..., 0] = 1.0
    with torch.no_grad():
        h = p(x, **params)[0, 0].numpy()
    fb, fa = reference_filters("shelf", p.delays, sr, low, high, fc)
    for band in (31.5, 63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000):
        measured = _octave_t60(h, sr, band)
        if band <= fc / 8:
            assert abs(measured / low - 1) < 0.05, (band, measured)
        if band >= fc * 8:
            assert abs(measured / high - 1) < 0.05, (band, measured)
        if band != fc:  # the filters' own T60 curve at the band centre (mean over the lines)
            t60 = np.mean([-3.0 * m / (sr * np.log10(np.abs(signal.freqz(
                b, a, worN=[band], fs=sr)[1][0]))) for m, b, a in zip(p.delays, fb, fa)])
            assert abs(measured / t60 - 1) < 0.05, (band, measured, t60)


@pytest.mark.parametrize("kind", ["shelf", "one_pole"])
def test_absorption_gains_at_dc_and_nyquist(kind):
    sr, delays = 44100, [1009, 1499, 2003]
    low, high = torch.tensor([[1.7], [0.6]], dtype=F64), torch.tensor([[0.4], [2.5]], dtype=F64)
    b, a = absorption_filters(kind, torch.tensor(delays, dtype=F64), sr, low, high,
                              torch.full((2, 1), 2000.0, dtype=F64))
    for r in range(2):
        for i, m in enumerate(delays):
            _, resp = signal.freqz(b[r, i].numpy(), a[r, i].numpy(), worN=[0.0, sr / 2], fs=sr)
            want = 10.0 ** (-3.0 * m / (sr * np.array([low[r, 0], high[r, 0]])))
            np.testing.assert_allclose(np.abs(resp), want, rtol=1e-12)
            assert abs(a[r, i, 1]) < 1  # stable


@pytest.mark.parametrize("matrix", ["householder", "orthogonal"])  # rank-one / general solve
def test_freq_sampling_is_the_time_aliased_exact_response(matrix):
    sr, n_fft = 16000, 2048
    cfg = dict(sample_rate=sr, delays=[31, 37, 43, 53], stereo=True, add_dry=False,
               matrix=matrix)
    exact = FDNReverb(**cfg).double()
    fast = FDNReverb(mode="freq_sampling", fir_length=n_fft, **cfg).double()
    g = torch.Generator().manual_seed(2)
    params = {"input_gains": torch.randn(1, 4, generator=g, dtype=F64),
              "output_gains": torch.randn(1, 8, generator=g, dtype=F64),
              "t60_low_s": _t(0.3), "t60_high_s": _t(0.1), "crossover_hz": _t(1000.0)}
    x = torch.zeros(1, 1, 8 * n_fft, dtype=F64)
    x[..., 0] = 1.0
    h = exact(x, **params)[0]  # (2, 8 n_fft): the tail is below -180 dB at the end
    aliased = h.reshape(2, 8, n_fft).sum(1)
    fir = fast.impulse_response(params, x)[0]
    assert (fir - aliased).abs().max() < 1e-9 * aliased.abs().max()
    # applied to a signal, the fast mode is the long FIR of that response
    y = fast(x[..., :n_fft], **params)[0]
    torch.testing.assert_close(y, fir)


def test_gradcheck_short_recursion():
    p = FDNReverb(sample_rate=16000, delays=[3, 4, 5, 7], matrix="orthogonal", stereo=True,
                  min_t60_s=0.001, max_t60_s=0.01).double()
    g = torch.Generator().manual_seed(3)
    leaves = [torch.randn(1, 1, 40, generator=g, dtype=F64),
              torch.randn(1, 4, generator=g, dtype=F64),
              torch.randn(1, 8, generator=g, dtype=F64), _t(0.004), _t(0.0015), _t(2000.0)]
    leaves = [v.requires_grad_() for v in leaves]

    def fn(x, gi, go, low, high, fc):
        return p(x, input_gains=gi, output_gains=go, t60_low_s=low, t60_high_s=high,
                 crossover_hz=fc)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_defaults_and_errors():
    p = processor_from_dict({"type": "FDNReverb", "sample_rate": 48000})
    assert p.n_lines == 8 and len(set(p.delays)) == 8
    assert 0.025 * 48000 * 0.95 < min(p.delays) and max(p.delays) < 0.06 * 48000 * 1.05
    assert p.n_output_channels((1,)) == 1 and p.n_output_channels((2,)) == 2
    assert FDNReverb(stereo=True).n_output_channels((1,)) == 2
    with pytest.raises(ValueError, match="power of two"):
        FDNReverb(n_lines=6, matrix="hadamard")
    with pytest.raises(ValueError, match="freq_sampling"):
        FDNReverb(mode="freq_sampling", absorption="none")
    with pytest.raises(ValueError, match="n_lines"):
        FDNReverb(n_lines=4, delays=[5, 7, 11])
    q = FDNReverb(absorption="one_pole")
    assert [s.name for s in q.param_specs()] == ["input_gains", "output_gains", "t60_low_s",
                                                 "t60_high_s"]
    with pytest.raises(ValueError, match="crossover_hz"):
        q(torch.zeros(1, 1, 10), torch.zeros(1, 8), torch.zeros(1, 8), torch.ones(1, 1),
          torch.ones(1, 1), crossover_hz=torch.ones(1, 1))
