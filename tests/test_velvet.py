"""VelvetNoiseReverb and the velvet-noise core (issue #16 item 2).

* pulse density and sign balance: one pulse per grid period (inside its period), the pulse
  count per second equals ``density_hz``, signs balanced within binomial bounds, positions
  determined by the seed;
* sparse rendering equals ``numpy.convolve`` of the dense IR (built here in numpy from the
  pulses, the band gains/decays and the band FIRs) to 1e-6, whole-signal (numba and torch
  backends) and block by block;
* band-wise decay: each band's pulses decay by exactly 60 dB in its T60; the band FIRs sum to
  a pure delay (equal decays give the plain velvet IR delayed);
* gradcheck of the core sparse convolution (both backends) and of the processor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddsp_models.core.velvet import (complementary_fir_bands, sparse_convolve,
                                     sparse_convolve_block, velvet_pulses)
from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.velvet import VelvetNoiseReverb

SR = 16000
BACKENDS = ["numba", "torch"]


# --- pulses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("density", [2000.0, 1500.0, 441.0])
def test_one_pulse_per_grid_period_and_density(density):
    seconds = 10
    pos, signs = velvet_pulses(seconds * SR, density, SR, seed=7)
    period = SR / density
    m = np.arange(len(pos))
    k = pos.numpy()
    assert len(pos) == int(np.floor(seconds * SR / period + 1e-9))
    # each pulse inside its own grid period [round(m Td), round((m + 1) Td) - 1]
    assert (k >= np.round(m * period)).all()
    assert (k <= np.round((m + 1) * period) - 1).all()
    assert (np.diff(k) > 0).all() and k[-1] < seconds * SR
    # pulses per second == density (to one pulse when the period is fractional)
    per_second = np.bincount(k // SR, minlength=seconds)
    assert np.abs(per_second - density).max() <= (0 if period.is_integer() else 1)
    # the offset inside the period is uniform over [0, Td - 1]: mean (Td - 1) / 2
    offsets = k - np.round(m * period)
    assert abs(offsets.mean() - (period - 1) / 2) < 0.05 * period
    assert set(np.unique(signs.numpy())) == {-1.0, 1.0}


def test_sign_balance():
    # binomial: the fraction of + signs is 1/2 within 4 sigma, for every seed
    for seed in range(5):
        _, signs = velvet_pulses(20 * SR, 2000.0, SR, seed=seed)
        n = len(signs)
        frac = float((signs > 0).double().mean())
        assert abs(frac - 0.5) < 4 * 0.5 / np.sqrt(n), (seed, frac)
        # no long-run bias either: the running sum stays within a random walk's reach
        assert abs(float(signs.sum())) < 4 * np.sqrt(n)


def test_pulses_are_determined_by_the_seed():
    a = velvet_pulses(SR, 2000.0, SR, seed=3)
    b = velvet_pulses(SR, 2000.0, SR, seed=3)
    c = velvet_pulses(SR, 2000.0, SR, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    p = VelvetNoiseReverb(SR, length_s=0.5, density_hz=1000.0, seed=3)
    q = processor_from_dict({"type": "VelvetNoiseReverb", **p.config()})
    assert torch.equal(p.positions, q.positions) and torch.equal(p.signs, q.signs)
    pos, signs = velvet_pulses(SR // 2, 1000.0, SR, seed=3)
    assert torch.equal(p.positions, pos) and torch.equal(p.signs, signs)
    assert p.n_pulses == 500


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="density_hz"):
        VelvetNoiseReverb(SR, density_hz=2 * SR)
    with pytest.raises(ValueError, match="grid period"):
        VelvetNoiseReverb(SR, length_s=0.001, density_hz=100.0)
    with pytest.raises(ValueError, match="crossovers_hz"):
        VelvetNoiseReverb(SR, n_bands=3, crossovers_hz=[1000.0])
    with pytest.raises(ValueError, match="odd"):
        VelvetNoiseReverb(SR, filter_taps=64)
    with pytest.raises(ValueError, match="dry"):
        VelvetNoiseReverb(SR, dry="wet")
    with pytest.raises(ValueError, match="delays"):
        sparse_convolve(torch.zeros(1, 1, 8), torch.tensor([-1, 2]), torch.ones(1, 1, 2))
    assert VelvetNoiseReverb(SR, n_bands=1, filter_taps=129).filter_taps == 1  # no filter


# --- sparse == dense ----------------------------------------------------------------------
def numpy_ir(p: VelvetNoiseReverb, gains: np.ndarray, decays: np.ndarray) -> np.ndarray:
    """The dense IR of one example, built in numpy: band velvet sequences, each through its
    FIR (``np.convolve``), summed."""
    k, s = p.positions.numpy(), p.signs.numpy()
    fir = p.fir[0].flip(-1).numpy()  # (K, taps), causal
    h = np.zeros(p.max_delay + p.filter_taps)
    for band in range(p.n_bands):
        v = np.zeros(p.max_delay + 1)
        v[k] = gains[band] * s * 10.0 ** (-3.0 * (k / SR) / decays[band])
        h += np.convolve(v, fir[band])
    return h


def reference(p, x: np.ndarray, gains, decays, mix=None) -> np.ndarray:
    """``(B, C, L)`` output of ``np.convolve`` with the dense IR plus the dry path."""
    out = np.zeros_like(x)
    for b in range(x.shape[0]):
        h = numpy_ir(p, gains[b], decays[b])
        for c in range(x.shape[1]):
            wet = np.convolve(x[b, c], h)[: x.shape[-1]]
            if p.dry == "add":
                out[b, c] = x[b, c] + wet
            elif p.dry == "none":
                out[b, c] = wet
            else:
                out[b, c] = (1 - mix[b, 0]) * x[b, c] + mix[b, 0] * wet
    return out


CONFIGS = [
    dict(length_s=0.25, density_hz=2000.0, n_bands=3),
    dict(length_s=0.2, density_hz=1500.0, n_bands=1, dry="none", seed=5),
    dict(length_s=0.1, density_hz=3000.0, n_bands=4, filter_taps=31, dry="mix", seed=2),
]


def params_of(p, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    gains = 0.2 + torch.rand(batch, p.n_bands, generator=g, dtype=torch.float64)
    decays = 0.05 + 0.5 * torch.rand(batch, p.n_bands, generator=g, dtype=torch.float64)
    params = {"band_gains": gains, "band_decays_s": decays}
    if p.dry == "mix":
        params["mix"] = torch.rand(batch, 1, generator=g, dtype=torch.float64)
    return params


@pytest.mark.parametrize("cfg", CONFIGS, ids=["3bands", "1band-wet", "4bands-mix"])
def test_sparse_rendering_equals_dense_convolution(cfg, monkeypatch):
    p = VelvetNoiseReverb(SR, **cfg).double()
    x = torch.randn(2, 2, 6016, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    params = params_of(p, 2)
    ref = reference(p, x.numpy(), params["band_gains"].numpy(), params["band_decays_s"].numpy(),
                    params.get("mix", torch.zeros(2, 1)).numpy())
    scale = np.abs(ref).max()
    # the dense IR the processor reports is the same IR
    np.testing.assert_allclose(
        p.impulse_response(params["band_gains"], params["band_decays_s"])[0].numpy(),
        numpy_ir(p, params["band_gains"][0].numpy(), params["band_decays_s"][0].numpy()),
        atol=1e-12)
    with torch.no_grad():
        y = p(x, **params)  # numba on CPU
        assert np.abs(y.numpy() - ref).max() < 1e-6 * scale
        monkeypatch.setenv("DDSP_MODELS_NO_NUMBA", "1")  # torch gathers
        y = p(x, **params)
        assert np.abs(y.numpy() - ref).max() < 1e-6 * scale
        monkeypatch.delenv("DDSP_MODELS_NO_NUMBA")
        # block by block (the delay line carried), blocks of 64-sample frames
        y = render_in_blocks(p, params, 64, [x], block_frames=(1, 5, 2, 17))
        assert np.abs(y.numpy() - ref).max() < 1e-6 * scale


@pytest.mark.parametrize("backend", BACKENDS)
def test_core_sparse_convolve_equals_numpy(backend):
    g = torch.Generator().manual_seed(2)
    delays = torch.tensor([0, 3, 4, 17, 40, 41, 99])
    x = torch.randn(3, 2, 150, generator=g, dtype=torch.float64)
    gains = torch.randn(3, 2, 7, generator=g, dtype=torch.float64)
    y = sparse_convolve(x, delays, gains, backend=backend)
    assert y.shape == (3, 2, 2, 150)
    for b in range(3):
        for k in range(2):
            h = np.zeros(100)
            np.add.at(h, delays.numpy(), gains[b, k].numpy())
            for c in range(2):
                ref = np.convolve(x[b, c].numpy(), h)[:150]
                np.testing.assert_allclose(y[b, c, k].numpy(), ref, atol=1e-12)
    # causal, and delays past the signal's end add nothing
    torch.testing.assert_close(sparse_convolve(x[..., :50], delays, gains, backend=backend),
                               y[..., :50])
    # the block form: the last n samples of a line
    line = torch.cat([torch.zeros(3, 2, 99, dtype=torch.float64), x], -1)
    blk = sparse_convolve_block(line[..., :99 + 60], delays, gains, 60, chunk_elements=100)
    torch.testing.assert_close(blk, y[..., :60])


# --- band-wise decay ------------------------------------------------------------------------
def test_each_band_decays_by_60_db_in_its_t60():
    p = VelvetNoiseReverb(SR, length_s=1.0, n_bands=3).double()
    gains = torch.tensor([[1.0, 0.5, 0.25]], dtype=torch.float64)
    decays = torch.tensor([[0.9, 0.4, 0.15]], dtype=torch.float64)
    g = p.pulse_gains(gains, decays)[0]  # (K, M)
    t = p.time_s
    level_db = 20 * torch.log10(g.abs() / gains[0, :, None])
    expected = -60.0 * t[None, :] / decays[0, :, None]
    torch.testing.assert_close(level_db, expected, atol=1e-9, rtol=0)
    # one band, no filter: the IR itself decays by 60 dB in T60
    q = VelvetNoiseReverb(SR, length_s=1.0, n_bands=1).double()
    h = q.impulse_response(gains[:, :1], decays[:, :1])[0]
    k = q.positions
    torch.testing.assert_close(h[k].abs(), 10.0 ** (-3.0 * k.double() / SR / 0.9), atol=1e-12,
                               rtol=0)
    assert int((h != 0).sum()) == q.n_pulses  # sparse: exactly the pulses


def test_band_filters_sum_to_a_delay():
    fir = complementary_fir_bands([300.0, 1200.0, 4000.0], SR, 257)
    delta = np.zeros(257)
    delta[128] = 1.0
    np.testing.assert_allclose(fir.sum(0).numpy(), delta, atol=1e-12)
    # each band passes its own range: magnitude near 1 mid-band, small far outside it
    w = np.fft.rfftfreq(8192, 1 / SR)
    mag = np.abs(np.fft.rfft(fir.numpy(), 8192, axis=-1))
    for band, (lo, hi) in enumerate([(0, 300), (300, 1200), (1200, 4000), (4000, 8000)]):
        centre = np.sqrt(max(lo, 50) * hi)
        assert abs(mag[band, np.argmin(np.abs(w - centre))] - 1) < 0.05
    assert mag[0, w > 1500].max() < 0.01 and mag[3, w < 2000].max() < 0.01
    # equal decays in every band: the plain velvet IR, delayed by (taps - 1) / 2
    p = VelvetNoiseReverb(SR, length_s=0.2, n_bands=3, filter_taps=65).double()
    h = p.impulse_response(torch.full((1, 3), 0.7, dtype=torch.float64),
                           torch.full((1, 3), 0.3, dtype=torch.float64))[0]
    q = VelvetNoiseReverb(SR, length_s=0.2, n_bands=1).double()
    v = q.impulse_response(torch.full((1, 1), 0.7, dtype=torch.float64),
                           torch.full((1, 1), 0.3, dtype=torch.float64))[0]
    torch.testing.assert_close(h[32:32 + v.shape[0]], v, atol=1e-12, rtol=0)
    assert h[:32].abs().max() < 1e-12


# --- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_core(backend):
    g = torch.Generator().manual_seed(4)
    delays = torch.tensor([0, 2, 5, 11, 27])  # 27: past the end
    x = torch.randn(2, 2, 20, generator=g, dtype=torch.float64, requires_grad=True)
    gains = torch.randn(2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    shared = torch.randn(1, 1, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: sparse_convolve(a, delays, b, backend=backend), (x, gains), fast_mode=True)
    assert torch.autograd.gradcheck(
        lambda a, b: sparse_convolve(a, delays, b, backend=backend), (x, shared), fast_mode=True)


def test_gradcheck_processor():
    p = VelvetNoiseReverb(SR, length_s=0.004, density_hz=2000.0, n_bands=2, filter_taps=5,
                          dry="mix").double()
    params = params_of(p, 1, seed=3)
    x = torch.randn(1, 1, 90, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    leaves = [x.requires_grad_(), *[v.clone().requires_grad_() for v in params.values()]]
    assert torch.autograd.gradcheck(
        lambda a, gains, decays, mix: p(a, band_gains=gains, band_decays_s=decays, mix=mix),
        leaves)


def test_default_construction_streams_a_long_ir():
    p = processor_from_dict({"type": "VelvetNoiseReverb", "sample_rate": SR}).double()
    assert p.n_pulses == 2000 and p.filter_taps == 129 and p.crossovers_hz == [300.0, 4000.0]
    params = params_of(p, 1, seed=6)
    x = torch.randn(1, 1, 20480, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = p(x, **params)
        got = render_in_blocks(p, params, 256, [x], block_frames=(3, 1, 8))
    assert float((got - ref).abs().max() / ref.abs().max()) < 1e-10
