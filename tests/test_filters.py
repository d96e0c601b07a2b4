"""Filter processors: responses against scipy / analog prototypes, modulation against slow
per-sample loops, stability over random raw parameters (hypothesis)."""

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.core.filter_design import BIQUAD_KINDS, biquad_coefficients
from ddsp_models.core.iir import sosfreqz
from ddsp_models.effects import (
    AllPassCascade,
    Biquad,
    FIRFilter,
    GraphicEQ,
    LadderFilter,
    ParametricEQ,
    Phaser,
    StateVariableFilter,
)
from ddsp_models.processors import load_processor_class, processor_from_dict
from ddsp_models.processors.svf import svf_step

FS = 16000
F64 = torch.float64


def impulse(n=4096, batch=1, channels=1):
    x = torch.zeros(batch, channels, n, dtype=F64)
    x[..., 0] = 1.0
    return x


def spectrum(y):
    return np.fft.rfft(y.detach().numpy(), axis=-1)


def prewarped_s(n_bins, n_fft, cutoff):
    w = np.arange(n_bins) * 2 * np.pi / n_fft
    return 1j * np.tan(w / 2) / np.tan(math.pi * cutoff / FS)


def static(v, dtype=F64):
    return torch.tensor([[v]], dtype=dtype)


# --------------------------------------------------------------------------------------
# Biquad
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BIQUAD_KINDS)
def test_biquad_equals_scipy_lfilter_on_every_channel(kind):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((2, 3, 500)))
    p = {"cutoff_hz": torch.tensor([[300.0], [2500.0]], dtype=F64), "q": torch.tensor([[0.7], [3.0]], dtype=F64)}
    if kind in ("peaking", "lowshelf", "highshelf"):
        p["gain_db"] = torch.tensor([[6.0], [-10.0]], dtype=F64)
    y = Biquad(FS, kind)(x, **p)
    assert y.shape == x.shape
    for i in range(2):
        b, a = biquad_coefficients(kind, p["cutoff_hz"][i, 0], p["q"][i, 0], p.get("gain_db", torch.zeros(2, 1))[i, 0], FS)
        want = ss.lfilter(b.numpy(), a.numpy(), x[i].numpy(), axis=-1)
        np.testing.assert_allclose(y[i].numpy(), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", BIQUAD_KINDS)
def test_biquad_time_varying_with_constant_controls_equals_static(kind):
    """The time-varying path (TPT SVF mixes) and the static path (direct form) agree."""
    x = torch.randn(2, 1, 800, dtype=F64)
    tv = Biquad(FS, kind, time_varying=True)
    st_ = Biquad(FS, kind)
    values = {"cutoff_hz": 700.0, "q": 2.0, "gain_db": 5.0}
    names = [s.name for s in st_.param_specs()]
    y_tv = tv(x, **{k: torch.full((2, 8, 1), values[k], dtype=F64) for k in names})
    y_st = st_(x, **{k: torch.full((2, 1), values[k], dtype=F64) for k in names})
    torch.testing.assert_close(y_tv, y_st, rtol=1e-9, atol=1e-11)


def rbj_svf_stepper(kind: str):
    """SVF outputs mixed into the RBJ responses (A. Simper, "Linear trapezoidal integrated SVF"):
    ``y = m0 x + m1 bp + m2 lp`` with the ``m`` of each kind; ``amp = 10^(gain_db / 40)``."""

    def step(states, x, g, k, amp):
        (hp, bp, lp), new = svf_step(states, x, g, k)
        if kind == "lowpass":
            y = lp
        elif kind == "highpass":
            y = hp
        elif kind == "bandpass":
            y = k * bp
        elif kind == "notch":
            y = x - k * bp
        elif kind == "allpass":
            y = x - 2 * k * bp
        elif kind == "peaking":
            y = x + k * (amp * amp - 1) * bp
        elif kind == "lowshelf":
            y = x + k * (amp - 1) * bp + (amp * amp - 1) * lp
        else:  # highshelf
            y = amp * amp * x + k * (1 - amp) * amp * bp + (1 - amp * amp) * lp
        return y, new

    return step


@pytest.mark.parametrize("kind", BIQUAD_KINDS)
def test_rbj_svf_closed_form_equals_the_tpt_update_under_modulation(kind):
    """rbj_svf's closed-form matrices equal the per-sample TPT update (svf_step + mix) read
    off by run_state_space, with every parameter changing every sample."""
    from ddsp_models.processors.svf import rbj_svf, run_state_space

    g = torch.Generator().manual_seed(13)
    x = torch.randn(2, 2, 300, dtype=F64, generator=g)
    fc = 200 * 2 ** (4 * torch.rand(2, 1, 300, dtype=F64, generator=g))
    q = 0.3 + 5 * torch.rand(2, 1, 300, dtype=F64, generator=g)
    gain = 24 * torch.rand(2, 1, 300, dtype=F64, generator=g) - 12
    amp, gg, k = 10 ** (gain / 40), torch.tan(math.pi * fc / FS), 1 / q
    if kind == "peaking":
        k = k / amp
    elif kind == "lowshelf":
        gg = gg / amp.sqrt()
    elif kind == "highshelf":
        gg = gg * amp.sqrt()
    want = run_state_space(rbj_svf_stepper(kind), 2, x, (gg, k, amp))
    torch.testing.assert_close(rbj_svf(x, kind, fc, q, gain, FS), want, rtol=1e-10, atol=1e-12)


def test_biquad_errors_and_round_trip():
    with pytest.raises(ValueError, match="unknown biquad kind"):
        Biquad(FS, "lowpas")
    with pytest.raises(ValueError, match="no gain_db"):
        Biquad(FS, "lowpass")(torch.randn(1, 1, 10), cutoff_hz=static(100.0), q=static(1.0), gain_db=static(1.0))
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\)"):
        Biquad(FS)(torch.randn(10), cutoff_hz=static(100.0), q=static(1.0))
    f = Biquad(FS, "highshelf", time_varying=True, max_gain_db=6)
    g = processor_from_dict({"type": "Biquad", **f.config()})
    assert g.config() == f.config() and load_processor_class("Biquad") is Biquad


# --------------------------------------------------------------------------------------
# State-variable and ladder filters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["lowpass", "bandpass", "highpass", "notch", "allpass"])
def test_svf_static_response_is_bilinear_of_analog_prototype(output):
    cutoff, q, n = 1500.0, 3.0, 4096
    y = StateVariableFilter(FS, output=output, time_varying=False)(impulse(n), cutoff_hz=static(cutoff), q=static(q))
    h = spectrum(y)[0, 0]
    s = prewarped_s(len(h), n, cutoff)
    den = s**2 + s / q + 1
    ref = {"lowpass": 1 / den, "highpass": s**2 / den, "bandpass": (s / q) / den,
           "notch": (s**2 + 1) / den, "allpass": (s**2 - s / q + 1) / den}[output]
    np.testing.assert_allclose(h, ref, atol=1e-9)


def naive_tpt_svf(x, g, k):
    """The TPT SVF written sample by sample (lowpass output)."""
    s1 = s2 = 0.0
    y = np.zeros_like(x)
    for n in range(len(x)):
        hp = (x[n] - (k[n] + g[n]) * s1 - s2) / (1 + k[n] * g[n] + g[n] ** 2)
        bp = g[n] * hp + s1
        lp = g[n] * bp + s2
        s1, s2 = bp + g[n] * hp, lp + g[n] * bp
        y[n] = lp
    return y


def test_svf_under_fast_modulation_equals_per_sample_tpt_loop():
    rng = np.random.default_rng(1)
    n, frames = 400, 40
    cutoff = torch.tensor(np.exp(rng.uniform(np.log(50), np.log(7000), (1, frames, 1))))
    q = torch.tensor(rng.uniform(0.3, 15, (1, frames, 1)))
    x = torch.tensor(rng.standard_normal((1, 1, n)))
    y = StateVariableFilter(FS)(x, cutoff_hz=cutoff, q=q)
    from ddsp_models.core.upsample import upsample_linear

    g = np.tan(np.pi * upsample_linear(cutoff, n)[0, :, 0].numpy() / FS)
    k = 1 / upsample_linear(q, n)[0, :, 0].numpy()
    np.testing.assert_allclose(y[0, 0].numpy(), naive_tpt_svf(x[0, 0].numpy(), g, k), rtol=1e-9, atol=1e-12)


def test_svf_step_is_the_documented_update():
    (hp, bp, lp), (s1, s2) = svf_step((0.0, 0.0), 1.0, 1.0, 1.0)
    assert (hp, bp, lp) == (1 / 3, 1 / 3, 1 / 3) and (s1, s2) == (2 / 3, 2 / 3)


@pytest.mark.parametrize("resonance", [0.0, 0.5, 0.9])
def test_ladder_static_response_is_bilinear_of_analog_ladder(resonance):
    cutoff, n = 900.0, 8192
    f = LadderFilter(FS, time_varying=False, compensate=False)
    h = spectrum(f(impulse(n), cutoff_hz=static(cutoff), resonance=static(resonance)))[0, 0]
    s = prewarped_s(len(h), n, cutoff)
    np.testing.assert_allclose(h, 1 / ((1 + s) ** 4 + 4 * resonance), atol=1e-9)
    # with compensation the pass band is at 0 dB
    hc = spectrum(LadderFilter(FS, time_varying=False)(impulse(n), cutoff_hz=static(cutoff), resonance=static(resonance)))[0, 0]
    assert abs(abs(hc[0]) - 1) < 1e-9


@pytest.mark.parametrize("cls", [StateVariableFilter, LadderFilter])
def test_modulated_filters_stay_finite_and_gradcheck(cls):
    f = cls(FS)
    g = torch.Generator().manual_seed(3)
    raw = {s.name: 4 * torch.randn(s.shape(1, 5), generator=g, dtype=F64) for s in f.param_specs()}
    phys = {k: v.requires_grad_() for k, v in f.scale_params(raw).items()}
    x = torch.randn(1, 2, 40, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: f(x, **dict(zip(phys, p))), (x, *phys.values()))
    long_x = torch.randn(2, 1, 16000)
    sweep = {k: f.scale_params({k: 6 * torch.randn(s.shape(2, 400), generator=g)})[k] for k, s in f.specs_by_name().items()}
    assert torch.isfinite(f(long_x, **sweep)).all()


# --------------------------------------------------------------------------------------
# Allpass cascades and phaser
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(order=1), dict(order=2), dict(order=1, warped=True, stretch=3),
                                dict(order=2, warped=True, stretch=2)])
def test_allpass_cascade_static_has_unit_magnitude(kw):
    f = AllPassCascade(FS, n_stages=3, **kw)
    p = f.random_params(2, 1, generator=torch.Generator().manual_seed(4), dtype=F64)
    mag = np.abs(spectrum(f(impulse(8192, batch=2), **p)))
    np.testing.assert_allclose(mag, 1.0, atol=1e-6)


def test_allpass_cascade_time_varying_with_constant_controls_equals_static():
    f_tv = AllPassCascade(FS, n_stages=2, order=2, warped=True, time_varying=True)
    f_st = AllPassCascade(FS, n_stages=2, order=2, warped=True)
    p = f_st.random_params(1, 1, generator=torch.Generator().manual_seed(5), dtype=F64)
    x = torch.randn(1, 1, 300, dtype=F64)
    y_tv = f_tv(x, **{k: v[:, None, :].expand(1, 6, v.shape[-1]) for k, v in p.items()})
    torch.testing.assert_close(y_tv, f_st(x, **p), rtol=1e-9, atol=1e-12)


def naive_phaser(x, c, fb, mix, n_stages):
    """Feedback around first-order normalised-lattice allpass stages, sample by sample."""
    states = [0.0] * n_stages
    prev = 0.0
    out = np.zeros_like(x)
    for n in range(len(x)):
        u = x[n] + fb * prev
        rot = math.sqrt(1 - c[n] ** 2)
        for i in range(n_stages):
            y = c[n] * u + rot * states[i]
            states[i] = rot * u - c[n] * states[i]
            u = y
        prev = u
        out[n] = (1 - mix) * x[n] + mix * u
    return out


def test_phaser_equals_per_sample_loop():
    f = Phaser(FS, n_stages=3)
    p = dict(rate_hz=static(3.0), depth=static(0.8), centre_hz=static(600.0), feedback=static(-0.7), mix=static(0.4))
    x = torch.randn(1, 1, 600, dtype=F64)
    from ddsp_models.core.filter_design import allpass_coefficient

    c = allpass_coefficient(f.break_frequencies(p["rate_hz"], p["depth"], p["centre_hz"], 600), FS)[0].numpy()
    want = naive_phaser(x[0, 0].numpy(), c, -0.7, 0.4, 3)
    np.testing.assert_allclose(f(x, **p)[0, 0].numpy(), want, rtol=1e-9, atol=1e-12)


def test_phaser_notches_move_with_the_lfo():
    """Short-time spectra of phased noise at the LFO's maximum and minimum: the first notch
    sits where each of the 4 stages turns the phase by -45 deg (total -180 deg)."""
    f = Phaser(FS, n_stages=4)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(32, 1, FS, generator=g)
    ones = torch.ones(32, 1)
    p = dict(rate_hz=ones, depth=0.5 * ones, centre_hz=800 * ones, feedback=0 * ones, mix=0.5 * ones)
    y = f(x, **p)
    breaks = f.break_frequencies(p["rate_hz"], p["depth"], p["centre_hz"], FS)[0]
    notches = []
    for centre in (FS // 4, 3 * FS // 4):  # LFO at +1 (break 1600 Hz) and -1 (400 Hz)
        win = torch.hann_window(2048)
        seg = slice(centre - 1024, centre + 1024)
        ratio = (torch.fft.rfft(y[:, 0, seg] * win).abs() ** 2).mean(0) / (torch.fft.rfft(x[:, 0, seg] * win).abs() ** 2).mean(0)
        t = math.tan(math.pi * breaks[centre].item() / FS)
        predicted = FS / math.pi * math.atan(t * math.tan(math.pi / 8))
        k_pred = predicted * 2048 / FS
        lo, hi = int(k_pred * 0.7), int(k_pred * 1.3) + 1
        k = lo + int(ratio[lo:hi].argmin())
        measured = k * FS / 2048
        assert abs(measured - predicted) < 0.08 * predicted + FS / 2048, (measured, predicted)
        assert 10 * math.log10(ratio[k]) < -15  # a real notch, not a ripple
        notches.append(measured)
    assert notches[0] > 3 * notches[1]  # the sweep spans two octaves between the extremes


# --------------------------------------------------------------------------------------
# Equalisers and FIR
# --------------------------------------------------------------------------------------


def test_parametric_eq_response_is_product_of_bands_and_freq_sampling_agrees():
    f = ParametricEQ(FS, n_peaks=2)
    p = f.random_params(1, 1, generator=torch.Generator().manual_seed(7), dtype=F64)
    n = 8192
    h = spectrum(f(impulse(n), **p))[0, 0]
    w = np.arange(n // 2 + 1) * 2 * np.pi / n
    _, want = ss.sosfreqz(f.sos(n, **p)[0, 0].numpy(), worN=w)
    np.testing.assert_allclose(h, want, atol=1e-6)
    # our sosfreqz agrees with scipy's at its own grid
    _, want_grid = ss.sosfreqz(f.sos(n, **p)[0, 0].numpy(), worN=256)
    np.testing.assert_allclose(sosfreqz(f.sos(n, **p)[0, 0], 256).numpy(), want_grid, rtol=1e-9, atol=1e-12)
    fast = ParametricEQ(FS, n_peaks=2, mode="freq_sampling", n_fft=8192)
    x = torch.randn(1, 2, 3000, dtype=F64)
    torch.testing.assert_close(fast(x, **p), f(x, **p), atol=1e-4 * x.abs().max().item(), rtol=0)


def test_parametric_eq_time_varying_runs_and_matches_static_when_constant():
    f_tv = ParametricEQ(FS, n_peaks=1, time_varying=True)
    f_st = ParametricEQ(FS, n_peaks=1)
    p = f_st.random_params(2, 1, generator=torch.Generator().manual_seed(8), dtype=F64)
    x = torch.randn(2, 1, 400, dtype=F64)
    y_tv = f_tv(x, **{k: v[:, None, :].expand(2, 4, v.shape[-1]) for k, v in p.items()})
    torch.testing.assert_close(y_tv, f_st(x, **p), rtol=1e-9, atol=1e-12)


def test_graphic_eq_bands_and_gains():
    f = GraphicEQ(FS)
    assert f.centres_hz[0] == pytest.approx(31.25) and f.centres_hz[-1] == pytest.approx(4000.0)
    x = torch.randn(1, 1, 500, dtype=F64)
    flat = f(x, gains_db=torch.zeros(1, f.n_bands, dtype=F64))
    torch.testing.assert_close(flat, x)  # 0 dB peaking filters are identities
    gains = torch.zeros(1, f.n_bands, dtype=F64)
    band = f.centres_hz.index(1000.0)
    gains[0, band] = 6.0
    n = 16384
    h = np.abs(spectrum(f(impulse(n), gains_db=gains))[0, 0])
    assert 20 * np.log10(h[int(1000 * n / FS)]) == pytest.approx(6.0, abs=0.05)
    assert abs(20 * np.log10(h[int(8000 * n / FS) - 1])) < 0.5  # far bands untouched
    third = GraphicEQ(FS, bands_per_octave=3)
    assert third.n_bands == 3 * (f.n_bands - 1) + 1 + 2  # 25 Hz..7.2 kHz in third octaves


def test_fir_filter_predicted_and_learnable():
    rng = np.random.default_rng(9)
    x = torch.tensor(rng.standard_normal((2, 2, 300)))
    taps = torch.tensor(rng.standard_normal((2, 16)))
    y = FIRFilter(16)(x, taps=taps)
    for i in range(2):
        want = ss.lfilter(taps[i].numpy(), [1.0], x[i].numpy(), axis=-1)
        np.testing.assert_allclose(y[i].numpy(), want, atol=1e-10)
    learn = FIRFilter(8, learnable=True).double()
    torch.testing.assert_close(learn(x), x)  # starts as a pass-through
    learn(x).pow(2).sum().backward()
    assert learn.taps.grad is not None and torch.isfinite(learn.taps.grad).all()
    with pytest.raises(ValueError, match="needs taps"):
        FIRFilter(4)(x)


# --------------------------------------------------------------------------------------
# Stability for any raw network output (hypothesis, 200 draws per processor)
# --------------------------------------------------------------------------------------

PROCESSORS = {
    "biquad_lp_tv": lambda: Biquad(FS, "lowpass", time_varying=True),
    "biquad_peak": lambda: Biquad(FS, "peaking"),
    "biquad_hs_tv": lambda: Biquad(FS, "highshelf", time_varying=True),
    "svf_bp": lambda: StateVariableFilter(FS, output="bandpass"),
    "ladder": lambda: LadderFilter(FS),
    "allpass_tv_warped": lambda: AllPassCascade(FS, n_stages=2, order=2, warped=True, stretch=2, time_varying=True),
    "phaser": lambda: Phaser(FS, n_stages=4),
    "peq_tv": lambda: ParametricEQ(FS, n_peaks=2, time_varying=True),
    "geq": lambda: GraphicEQ(FS),
    "fir": lambda: FIRFilter(8),
}


@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_any_raw_parameters_give_finite_output_and_gradients(name):
    proc = PROCESSORS[name]()

    @settings(max_examples=200, deadline=None)
    @given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    def check(seed, scale):
        g = torch.Generator().manual_seed(seed)
        raw = {s.name: (scale * torch.randn(s.shape(1, 4), generator=g)).requires_grad_() for s in proc.param_specs()}
        x = torch.randn(1, 1, 48, generator=g, requires_grad=True)
        y = proc(x, **proc.scale_params(raw))
        assert torch.isfinite(y).all()
        y.pow(2).sum().backward()
        for v in [x, *raw.values()]:
            assert v.grad is not None and torch.isfinite(v.grad).all()

    check()


def test_processors_agree_on_the_device_agnostic_torch_path(monkeypatch):
    """Without the numba kernels (as on a GPU) every processor runs on torch scans; outputs
    and gradients must match the compiled CPU path."""
    procs = [Biquad(FS, "peaking", time_varying=True), StateVariableFilter(FS), LadderFilter(FS),
             Phaser(FS, n_stages=2), ParametricEQ(FS, n_peaks=1),
             AllPassCascade(FS, n_stages=2, order=2, warped=True, time_varying=True)]
    g = torch.Generator().manual_seed(10)
    x = torch.randn(2, 2, 200, dtype=F64, generator=g)
    for proc in procs:
        p = proc.random_params(2, 5, generator=g, dtype=F64)
        results = []
        for use_numba in (True, False):
            if not use_numba:
                monkeypatch.setenv("DDSP_MODELS_NO_NUMBA", "1")  # the torch paths
            xi = x.clone().requires_grad_()
            pi = {k: v.clone().requires_grad_() for k, v in p.items()}
            y = proc(xi, **pi)
            y.square().sum().backward()
            results.append((y.detach(), xi.grad, [v.grad for v in pi.values()]))
            monkeypatch.undo()
        (y0, gx0, gp0), (y1, gx1, gp1) = results
        torch.testing.assert_close(y1, y0, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(gx1, gx0, rtol=1e-8, atol=1e-9)
        for a, b in zip(gp1, gp0):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8)


def _extreme_sweep(proc, batch, n, seed):
    """Raw parameters jumping between extremes at every sample."""
    g = torch.Generator().manual_seed(seed)
    raw = {s.name: 10 * torch.randn(s.shape(batch, n), generator=g) for s in proc.param_specs()}
    return proc.scale_params(raw)


@pytest.mark.parametrize("kw", [dict(order=1), dict(order=1, warped=True, stretch=2),
                                dict(order=2), dict(order=2, warped=True, stretch=3)])
def test_time_varying_allpass_cascade_is_lossless_under_any_modulation(kw):
    """Normalised lattices: output energy never exceeds input energy, however the cells move."""
    f = AllPassCascade(FS, n_stages=3, time_varying=True, **kw)
    x = torch.randn(4, 1, 4000, dtype=F64)
    y = f(x, **_extreme_sweep(f, 4, 4000, 11))
    energy_in, energy_out = x.square().sum(-1), y.square().sum(-1)
    assert torch.all(energy_out <= energy_in * (1 + 1e-9))
    assert torch.all(energy_out >= 0.9 * energy_in)  # what stays in the states is small


def test_phaser_wet_path_gain_is_bounded_by_the_feedback():
    """Lossless stages in a loop with gain |fb| < 1: ||wet|| <= ||x|| / (1 - |fb|)."""
    f = Phaser(FS)
    x = torch.randn(4, 1, 4000, dtype=F64)
    ones = torch.ones(4, 1, dtype=F64)
    fb = 0.9
    p = dict(rate_hz=9.0 * ones, depth=ones, centre_hz=3000 * ones, feedback=fb * ones, mix=ones)
    wet = f(x, **p)
    assert torch.all(wet.square().sum(-1).sqrt() <= x.square().sum(-1).sqrt() / (1 - fb) + 1e-9)


@pytest.mark.parametrize("make", [lambda: Biquad(FS, "lowpass", time_varying=True),
                                  lambda: Biquad(FS, "highshelf", time_varying=True),
                                  lambda: Biquad(FS, "peaking", time_varying=True),
                                  lambda: ParametricEQ(FS, n_peaks=2, time_varying=True),
                                  lambda: StateVariableFilter(FS, output="bandpass"),
                                  lambda: LadderFilter(FS)])
def test_time_varying_filters_do_not_blow_up_under_per_sample_jumps(make):
    """TPT forms under raw parameters jumping between extremes every sample: the output level
    does not grow over time (a direct form with per-sample coefficients does: it overflows)."""
    f = make()
    n = 8000
    x = torch.randn(4, 1, n, dtype=F64)
    y = f(x, **_extreme_sweep(f, 4, n, 12))
    assert torch.isfinite(y).all()
    early, late = y[..., n // 4 : n // 2].square().mean(), y[..., 3 * n // 4 :].square().mean()
    assert late < 10 * early
