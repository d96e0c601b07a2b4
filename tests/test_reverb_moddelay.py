"""Effects: ModDelay (chorus / flanger / vibrato) and the convolution reverbs."""

import math

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.effects import ExpDecayReverb, FilteredNoiseReverb, ModDelay, Reverb
from ddsp_models.processors import processor_from_dict

SR = 16000


def _const(v, b=1, t=5, k=1):
    return torch.full((b, t, k), float(v), dtype=torch.float64)


# --- ModDelay --------------------------------------------------------------------------------
@pytest.mark.parametrize("delay_samples", [12.0, 12.4, 3.75])
def test_moddelay_constant_delay_is_a_shift(delay_samples):
    fx = ModDelay(SR, min_delay_s=0.0, max_delay_s=0.01)
    x = torch.randn(2, 2, 400, dtype=torch.float64)
    y = fx(x, delay_s=_const(delay_samples / SR, b=2), mix=_const(1.0, b=2))
    n = np.arange(400)
    for b in range(2):
        for c in range(2):
            ref = np.interp(n - delay_samples, n, x[b, c].numpy(), left=0.0)
            valid = n >= delay_samples
            np.testing.assert_allclose(y[b, c].numpy()[valid], ref[valid], atol=1e-12)
    # mix 0 is the dry signal, mix 0.5 the average
    torch.testing.assert_close(fx(x, delay_s=_const(0.001, b=2), mix=_const(0.0, b=2)), x)
    half = fx(x, delay_s=_const(delay_samples / SR, b=2), mix=_const(0.5, b=2))
    torch.testing.assert_close(half, 0.5 * (x + y))


def test_moddelay_feedback_matches_recursive_loop():
    sr, n, g = 1000.0, 300, 0.5
    fx = ModDelay(sr, min_delay_s=0.001, max_delay_s=0.01, max_feedback=0.9, feedback_taps=60)
    x = np.random.randn(n)
    t = 10
    delay_s = torch.from_numpy(0.004 + 0.002 * np.sin(np.arange(t) / 2.0))[None, :, None]
    y = fx(torch.from_numpy(x)[None, None], delay_s=delay_s, mix=_const(1.0, t=t),
           feedback=torch.full((1, 1), g, dtype=torch.float64))[0, 0].numpy()
    d = np.interp(np.arange(n), np.arange(t) * (n // t), delay_s[0, :, 0].numpy()) * sr
    line_in = np.zeros(n)  # v = x + g * wet, wet[i] = v(i - d[i]) (d >= 2: past samples only)
    wet = np.zeros(n)
    for i in range(n):
        p = i - d[i]
        i0 = int(np.floor(p))
        f = p - i0
        get = lambda j: line_in[j] if 0 <= j < n else 0.0  # noqa: E731
        wet[i] = (1 - f) * get(i0) + f * get(i0 + 1)
        line_in[i] = x[i] + g * wet[i]
    np.testing.assert_allclose(y, wet, atol=1e-12)


def test_moddelay_presets_have_sensible_ranges_and_rebuild():
    ch, fl, vib = ModDelay.chorus(SR), ModDelay.flanger(SR), ModDelay.vibrato(SR)
    assert 0.005 <= ch.min_delay_s < ch.max_delay_s <= 0.05 and ch.max_feedback == 0
    assert fl.max_delay_s <= 0.01 and fl.max_feedback > 0
    assert vib.wet_only and "mix" not in vib.specs_by_name()
    assert "feedback" in fl.specs_by_name() and "feedback" not in ch.specs_by_name()
    for fx in (ch, fl, vib, ModDelay.chorus(SR, max_delay_s=0.04)):
        clone = processor_from_dict({"type": "ModDelay", **fx.config()})
        assert clone.config() == fx.config()
    x = torch.randn(1, 1, 800)
    y = vib(x, **vib.random_params(1, 10))
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="unknown parameters \\['mix'\\]"):
        vib(x, delay_s=torch.zeros(1, 10, 1), mix=torch.zeros(1, 10, 1))
    with pytest.raises(ValueError, match="max_feedback"):
        ModDelay(SR, max_feedback=1.0)
    with pytest.raises(ValueError, match="ModDelay.delay_s has batch 3 but audio has batch 1"):
        vib(x, delay_s=torch.zeros(3, 10, 1))


def test_vibrato_modulates_pitch():
    """A sinusoidally moving delay shifts the frequency by -f dd/dt."""
    sr, n, f = 8000, 8000, 1000.0
    vib = ModDelay.vibrato(sr)
    x = torch.sin(2 * math.pi * f * torch.arange(n, dtype=torch.float64) / sr)[None, None]
    t = 200  # 40-sample hop; delay ramps up at 4 ms / s → frequency drops by 0.4 %
    delay = (0.001 + 0.004 * torch.arange(t, dtype=torch.float64) / t)[None, :, None]
    y = vib(x, delay_s=delay)[0, 0, 1000:].numpy()
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), 16 * len(y)))
    peak = np.fft.rfftfreq(16 * len(y), 1 / sr)[np.argmax(spec)]
    assert abs(peak - f * (1 - 0.004)) < 1.0


# --- reverbs ---------------------------------------------------------------------------------
def test_unit_impulse_ir_returns_input():
    x = torch.randn(2, 2, 500, dtype=torch.float64)
    ir = torch.zeros(2, 64, dtype=torch.float64)
    ir[:, 0] = 1.0
    for add_dry in (True, False):
        fx = Reverb(SR, length=64, trainable=False, add_dry=add_dry)
        torch.testing.assert_close(fx(x, ir=ir), x)


def test_reverb_matches_scipy_convolution():
    x = torch.randn(1, 1, 500, dtype=torch.float64)
    ir = torch.randn(1, 100, dtype=torch.float64)
    wet_only = Reverb(SR, length=100, trainable=False, add_dry=False)(x, ir=ir)[0, 0].numpy()
    np.testing.assert_allclose(wet_only, scipy.signal.fftconvolve(x[0, 0], ir[0])[:500], atol=1e-10)
    # add_dry: tap 0 replaced by the dry path
    ir2 = ir.clone()
    ir2[:, 0] = 0
    dry = Reverb(SR, length=100, trainable=False)(x, ir=ir)[0, 0].numpy()
    ref = x[0, 0].numpy() + scipy.signal.fftconvolve(x[0, 0], ir2[0])[:500]
    np.testing.assert_allclose(dry, ref, atol=1e-10)


def test_trainable_reverb_owns_its_ir():
    fx = Reverb(SR, length=200)
    assert fx.param_specs() == () and fx.ir.shape == (200,)
    x = torch.randn(2, 1, 300)
    fx(x).square().sum().backward()
    assert fx.ir.grad[1:].abs().sum() > 0 and fx.ir.grad[0] == 0  # tap 0 is the dry path
    with pytest.raises(ValueError, match="trainable=False"):
        fx(x, ir=torch.zeros(2, 200))
    with pytest.raises(ValueError, match="Reverb.ir must be \\(batch, 200\\)"):
        Reverb(SR, length=200, trainable=False)(x, ir=torch.zeros(2, 100))
    with pytest.raises(ValueError, match="batch 3 but audio has batch 2"):
        Reverb(SR, length=200, trainable=False)(x, ir=torch.zeros(3, 200))


def test_exp_decay_reverb_decays_60_db_in_decay_s():
    fx = ExpDecayReverb(SR, length=SR, trainable=False)
    ir = fx.impulse_response(torch.ones(1, 1), torch.full((1, 1), 0.5))[0].numpy()
    energy = lambda a, b: np.mean(ir[int(a * SR) : int(b * SR)] ** 2)  # noqa: E731
    # 0.5 s later the envelope is 60 dB (power 1e-6) down
    ratio_db = 10 * np.log10(energy(0.5, 0.55) / energy(0.0, 0.05))
    assert abs(ratio_db + 60) < 1.5
    x = torch.zeros(1, 1, 2000)
    x[..., 0] = 1
    gain, decay = torch.full((1, 1), 0.3), torch.full((1, 1), 0.2)
    y = fx(x, gain=gain, decay_s=decay)[0, 0]
    expect = fx.impulse_response(gain, decay)[0, :2000].clone()
    expect[0] = 1.0  # dry path
    torch.testing.assert_close(y, expect)


def test_filtered_noise_reverb_bands_partition_the_noise_and_decay_separately():
    fx = FilteredNoiseReverb(SR, length=SR, n_bands=8, trainable=False)
    from ddsp_models.processors.reverb import _noise

    torch.testing.assert_close(fx.band_noise.sum(0), _noise(SR, 0).float(), atol=1e-5, rtol=0)
    gains = torch.ones(1, 8)
    decays = torch.full((1, 8), 2.0)
    decays[0, -1] = 0.1  # the top band (above ~4 kHz) dies fast
    ir = fx.impulse_response(gains, decays)[0].numpy()
    f, t, s = scipy.signal.spectrogram(ir, SR, nperseg=512)
    late = s[:, (t > 0.3) & (t < 0.5)].mean(1)
    early = s[:, t < 0.05].mean(1)
    hi, lo = f > 6000, (f > 500) & (f < 2000)
    drop_hi = 10 * np.log10(late[hi].mean() / early[hi].mean())
    drop_lo = 10 * np.log10(late[lo].mean() / early[lo].mean())
    assert drop_hi < -80 and -15 < drop_lo < 0


def test_trainable_decay_reverbs_get_gradients():
    for fx in (ExpDecayReverb(SR, length=300), FilteredNoiseReverb(SR, length=300, n_bands=4)):
        assert fx.param_specs() == ()
        fx(torch.randn(2, 1, 400)).square().sum().backward()
        for name, p in fx.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- contract for all effects ----------------------------------------------------------------
EFFECTS = [
    lambda: ModDelay.chorus(2000),
    lambda: ModDelay.flanger(2000, feedback_taps=4),
    lambda: ModDelay.vibrato(2000),
    lambda: Reverb(2000, length=12, trainable=False),
    lambda: Reverb(2000, length=12),
    lambda: ExpDecayReverb(2000, length=12, trainable=False),
    lambda: ExpDecayReverb(2000, length=12),
    lambda: FilteredNoiseReverb(2000, length=12, n_bands=3, trainable=False),
    lambda: FilteredNoiseReverb(2000, length=12, n_bands=3),
]


@pytest.mark.parametrize("make", EFFECTS)
def test_effect_gradcheck_reaches_every_parameter(make):
    fx = make().double()
    b, t, n = 1, 3, 30
    params = fx.random_params(b, t, dtype=torch.float64)
    names = list(params)
    x = torch.randn(b, 1, n, dtype=torch.float64, requires_grad=True)
    leaves = [params[k].clone().requires_grad_() for k in names]

    def fn(audio, *vals):
        return fx(audio, **dict(zip(names, vals)))

    assert torch.autograd.gradcheck(fn, (x, *leaves))
    fn(x, *leaves).square().sum().backward()
    for name, p in fx.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("make", EFFECTS)
def test_effect_config_rebuilds_and_shapes_are_checked(make):
    fx = make()
    clone = processor_from_dict({"type": type(fx).__name__, **fx.config()})
    assert clone.config() == fx.config() and clone.param_specs() == fx.param_specs()
    x = torch.randn(2, 1, 64)
    params = fx.random_params(2, 4)
    for spec in fx.param_specs():
        bad = dict(params)
        bad[spec.name] = params[spec.name][..., :1].repeat(*([1] * (params[spec.name].dim() - 1)), spec.size + 1)
        with pytest.raises(ValueError, match=f"{type(fx).__name__}.{spec.name} must be"):
            fx(x, **bad)
    with pytest.raises(ValueError, match="batch, channels, samples"):
        fx(x[0], **params)


@settings(max_examples=15)
@given(
    which=st.integers(0, len(EFFECTS) - 1),
    scale=st.floats(0.1, 30.0),
    seed=st.integers(0, 2**31 - 1),
    frames=st.integers(1, 6),
)
def test_random_raw_params_give_finite_audio_and_grads(which, scale, seed, frames):
    fx = EFFECTS[which]()
    gen = torch.Generator().manual_seed(seed)
    n = frames * 16 + seed % 5
    x = torch.randn(2, 2, n, generator=gen)
    raw = {p.name: (torch.randn(p.shape(2, frames), generator=gen) * scale).requires_grad_()
           for p in fx.param_specs()}
    y = fx(x, **fx.scale_params(raw))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    for name, v in raw.items():
        assert torch.isfinite(v.grad).all(), name
    for name, p in fx.named_parameters():
        assert torch.isfinite(p.grad).all(), name
