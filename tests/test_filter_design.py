"""core.filter_design against scipy and the analog prototypes of the RBJ cookbook."""

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

from ddsp_models.core.filter_design import (
    BIQUAD_KINDS,
    allpass_coefficient,
    biquad_coefficients,
    butterworth_sos,
    first_order_allpass,
    linkwitz_riley_sos,
    second_order_allpass,
)
from ddsp_models.core.iir import freqz, sosfreqz

FS = 16000


def analog_prototype(kind, s, q, gain_db):
    """The cookbook's analog prototypes H(s), s normalised to the cutoff."""
    amp = 10 ** (gain_db / 40)
    den = s**2 + s / q + 1
    if kind == "lowpass":
        return 1 / den
    if kind == "highpass":
        return s**2 / den
    if kind == "bandpass":
        return (s / q) / den
    if kind == "notch":
        return (s**2 + 1) / den
    if kind == "allpass":
        return (s**2 - s / q + 1) / den
    if kind == "peaking":
        return (s**2 + s * amp / q + 1) / (s**2 + s / (amp * q) + 1)
    sa = math.sqrt(amp)
    if kind == "lowshelf":
        return amp * (s**2 + sa / q * s + amp) / (amp * s**2 + sa / q * s + 1)
    return amp * (amp * s**2 + sa / q * s + 1) / (s**2 + sa / q * s + amp)  # highshelf


def db(h):
    return 20 * np.log10(np.maximum(np.abs(h), 1e-12))


@pytest.mark.parametrize("kind", BIQUAD_KINDS)
@pytest.mark.parametrize("cutoff, q, gain_db", [(100.0, 0.5, 6.0), (1000.0, 0.7071, -9.0), (5500.0, 4.0, 12.0)])
def test_rbj_matches_cookbook_prototype_and_scipy(kind, cutoff, q, gain_db):
    b, a = biquad_coefficients(kind, torch.tensor(cutoff, dtype=torch.float64), q, gain_db, FS)
    assert b.shape == (3,) and a.shape == (3,) and a[0] == 1
    n = 512
    w, h_scipy = ss.freqz(b.numpy(), a.numpy(), worN=n)
    h_ours = freqz(b, a, n).numpy()
    # analog prototype at the pre-warped frequency (bilinear transform)
    s = 1j * np.tan(w / 2) / np.tan(math.pi * cutoff / FS)
    h_ref = analog_prototype(kind, s, q, gain_db)
    passband = db(h_ref) > -20  # skip the deep stop band / notch, where dB differences explode
    assert passband.sum() > 10
    np.testing.assert_array_less(np.abs(db(h_scipy) - db(h_ref))[passband], 0.1)
    np.testing.assert_array_less(np.abs(db(h_ours) - db(h_ref))[passband], 0.1)
    # the poles are inside the unit circle
    assert np.all(np.abs(np.roots(a.numpy())) < 1)


def test_rbj_broadcasts_and_is_differentiable():
    cutoff = torch.tensor([[200.0], [3000.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.5, 1.0, 8.0], dtype=torch.float64, requires_grad=True)
    gain = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    b, a = biquad_coefficients("peaking", cutoff, q, gain, FS)
    assert b.shape == (2, 3, 3) and a.shape == (2, 3, 3)
    for kind in BIQUAD_KINDS:
        assert torch.autograd.gradcheck(
            lambda c, q, g: torch.cat(biquad_coefficients(kind, c, q, g, FS), -1), (cutoff, q, gain)
        )


@pytest.mark.parametrize("order", [1, 2, 3, 4, 7, 10])
@pytest.mark.parametrize("btype", ["lowpass", "highpass"])
def test_butterworth_matches_scipy(order, btype):
    cutoff = 1234.0
    sos = butterworth_sos(order, torch.tensor(cutoff, dtype=torch.float64), FS, btype)
    assert sos.shape == ((order + 1) // 2, 6)
    ref = ss.butter(order, cutoff, btype=btype, fs=FS, output="sos")
    _, h_ref = ss.sosfreqz(ref, worN=1024)
    h = sosfreqz(sos, 1024).numpy()
    passband = db(h_ref) > -40
    np.testing.assert_array_less(np.abs(db(h) - db(h_ref))[passband], 0.1)
    np.testing.assert_allclose(h, h_ref, atol=1e-9)  # in fact the same response to rounding


def test_butterworth_batched_cutoffs_and_gradient():
    cutoff = torch.tensor([300.0, 2000.0], dtype=torch.float64, requires_grad=True)
    sos = butterworth_sos(5, cutoff, FS)
    assert sos.shape == (2, 3, 6)
    for i, c in enumerate([300.0, 2000.0]):
        _, h_ref = ss.sosfreqz(ss.butter(5, c, fs=FS, output="sos"), worN=256)
        np.testing.assert_allclose(sosfreqz(sos[i].detach(), 256).numpy(), h_ref, atol=1e-9)
    assert torch.autograd.gradcheck(lambda c: butterworth_sos(5, c, FS), (cutoff,))


@pytest.mark.parametrize("order", [2, 4, 8])
def test_linkwitz_riley_is_squared_butterworth(order):
    cutoff = torch.tensor(800.0, dtype=torch.float64)
    low = sosfreqz(linkwitz_riley_sos(order, cutoff, FS, "lowpass"), 512).numpy()
    _, bw = ss.sosfreqz(ss.butter(order // 2, 800.0, fs=FS, output="sos"), worN=512)
    np.testing.assert_allclose(low, bw**2, atol=1e-9)
    k = int(round(800 / (FS / 2) * 512))
    w_k = k * FS / 2 / 512
    assert w_k == pytest.approx(800, abs=20)
    # -6 dB near the cutoff
    assert db(low[k]) == pytest.approx(-6.02, abs=0.3)


def test_allpass_cells_have_unit_magnitude_and_expected_phase():
    c = allpass_coefficient(torch.tensor(1000.0, dtype=torch.float64), FS)
    b, a = first_order_allpass(c)
    _, h = ss.freqz(b.numpy(), a.numpy(), worN=[2 * math.pi * 1000 / FS])
    assert np.angle(h[0]) == pytest.approx(-math.pi / 2, abs=1e-9)
    theta = 2 * math.pi * 2000 / FS
    for warp in (None, 0.4, -0.7):
        for stretch in (1, 3):
            b1, a1 = first_order_allpass(torch.tensor(0.3, dtype=torch.float64), warp=warp, stretch=stretch)
            b2, a2 = second_order_allpass(torch.tensor(0.9, dtype=torch.float64), theta, warp=warp, stretch=stretch)
            for bb, aa in ((b1, a1), (b2, a2)):
                mag = freqz(bb, aa, 256).abs()
                assert torch.allclose(mag, torch.ones_like(mag), atol=1e-12)
                assert np.all(np.abs(np.roots(aa.numpy())) < 1)
    # second-order cell: phase -pi where cos(w) = 2 R cos(theta) / (1 + R^2)
    b, a = second_order_allpass(torch.tensor(0.8, dtype=torch.float64), theta)
    w_pi = math.acos(2 * 0.8 * math.cos(theta) / (1 + 0.8**2))
    _, h = ss.freqz(b.numpy(), a.numpy(), worN=[w_pi])
    assert abs(abs(np.angle(h[0])) - math.pi) < 1e-9


def test_warped_cell_equals_substitution():
    """Warping replaces z^-1 by D(z) = (g + z^-1)/(1 + g z^-1): check H_w(z) = H(D(z)) on the circle."""
    g, r, theta = 0.35, 0.85, 0.7
    b, a = second_order_allpass(torch.tensor(r, dtype=torch.float64), theta)
    bw, aw = second_order_allpass(torch.tensor(r, dtype=torch.float64), theta, warp=g)
    w = np.linspace(0.01, 3.1, 50)
    zinv = np.exp(-1j * w)
    d = (g + zinv) / (1 + g * zinv)
    want = np.polyval(b.numpy()[::-1], d) / np.polyval(a.numpy()[::-1], d)
    got = np.polyval(bw.numpy()[::-1], zinv) / np.polyval(aw.numpy()[::-1], zinv)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # first order: warped coefficient is (c + g) / (1 + c g); stretched: z^-1 -> z^-3
    b1, a1 = first_order_allpass(torch.tensor(0.3, dtype=torch.float64), warp=g, stretch=3)
    c = (0.3 + g) / (1 + 0.3 * g)
    np.testing.assert_allclose(a1.numpy(), [1, 0, 0, c], rtol=1e-12)
    np.testing.assert_allclose(b1.numpy(), [c, 0, 0, 1], rtol=1e-12)


def test_design_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown biquad kind"):
        biquad_coefficients("lowpas", 100.0, sample_rate=FS)
    with pytest.raises(ValueError, match="below Nyquist"):
        biquad_coefficients("lowpass", 9000.0, sample_rate=FS)
    with pytest.raises(ValueError, match="even"):
        linkwitz_riley_sos(3, 100.0, FS)
    with pytest.raises(ValueError, match="stretch"):
        first_order_allpass(0.2, stretch=0)
