import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.distortion import Distortion
from ddsp_models.processors.gain import Gain, StereoGain, StereoWidener
from ddsp_models.processors.multitap import MultitapDelay

from _effect_properties import check_random_raw_params_finite

F64 = torch.float64


def np_frames_to_samples(frames, n):
    """Reference control interpolation: frame t at sample t * hop, held after the last."""
    hop = n // len(frames)
    return np.interp(np.arange(n), np.arange(len(frames)) * hop, frames)


def test_gain_time_varying_matches_numpy():
    x = torch.randn(2, 3, 400, dtype=F64)
    g_db = torch.randn(2, 8, 1, dtype=F64) * 10
    y = Gain()(x, gain_db=g_db)
    for b in range(2):
        want = x[b].numpy() * 10 ** (np_frames_to_samples(g_db[b, :, 0].numpy(), 400) / 20)
        np.testing.assert_allclose(y[b].numpy(), want, rtol=1e-12)


def test_gain_static():
    x = torch.randn(2, 1, 100, dtype=F64)
    y = Gain(time_varying=False)(x, gain_db=torch.tensor([[-6.0], [20.0]], dtype=F64))
    gains = 10 ** (np.array([-6, 20.0]) / 20)[:, None, None]
    np.testing.assert_allclose(y.numpy(), x.numpy() * gains)


@pytest.mark.parametrize("channels", [1, 2])
def test_stereo_gain_constant_power_pan(channels):
    x = torch.randn(3, channels, 300, dtype=F64)
    pan = torch.tensor([[-1.0], [0.0], [0.5]], dtype=F64)
    g_db = torch.tensor([[0.0], [-6.0], [3.0]], dtype=F64)
    sg = StereoGain(time_varying=False)
    y = sg(x, gain_db=g_db, pan=pan)
    assert y.shape == (3, 2, 300) and sg.n_output_channels((channels,)) == 2
    theta = (pan.numpy()[:, 0] + 1) * np.pi / 4
    g = 10 ** (g_db.numpy()[:, 0] / 20)
    xl, xr = x[:, 0].numpy(), x[:, -1].numpy()
    np.testing.assert_allclose(y[:, 0].numpy(), (g * np.cos(theta))[:, None] * xl, atol=1e-12)
    np.testing.assert_allclose(y[:, 1].numpy(), (g * np.sin(theta))[:, None] * xr, atol=1e-12)
    if channels == 1:  # constant power: L^2 + R^2 = (g x)^2 whatever the pan
        np.testing.assert_allclose((y**2).sum(1).numpy(), (g[:, None] * xl) ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="needs 1 or 2 channels"):
        sg(torch.zeros(1, 3, 10, dtype=F64), gain_db=g_db[:1], pan=pan[:1])


def test_stereo_gain_time_varying_pan_sweeps():
    x = torch.ones(1, 1, 1000, dtype=F64)
    pan = torch.linspace(-1, 1, 10, dtype=F64)[None, :, None]
    y = StereoGain()(x, gain_db=torch.zeros(1, 10, 1, dtype=F64), pan=pan)
    p = np_frames_to_samples(pan[0, :, 0].numpy(), 1000)
    np.testing.assert_allclose(y[0, 1].numpy(), np.sin((p + 1) * np.pi / 4), atol=1e-12)


def test_stereo_widener_mid_side():
    x = torch.randn(3, 2, 200, dtype=F64)
    w = torch.tensor([[0.0], [1.0], [1.7]], dtype=F64)
    y = StereoWidener()(x, width=w).numpy()
    left, right = x[:, 0].numpy(), x[:, 1].numpy()
    mid, side = (left + right) / 2, (left - right) / 2 * w.numpy()
    np.testing.assert_allclose(y[:, 0], mid + side, atol=1e-12)
    np.testing.assert_allclose(y[:, 1], mid - side, atol=1e-12)
    np.testing.assert_allclose(y[1], x[1].numpy(), atol=1e-12)  # width 1: unchanged
    with pytest.raises(ValueError, match="needs 2 channels"):
        StereoWidener()(torch.zeros(1, 1, 10), width=torch.ones(1, 1))


NP_SHAPES = {
    "tanh": np.tanh,
    "soft": lambda u: np.where(np.abs(u) <= 1, 1.5 * u - 0.5 * u**3, np.sign(u)),
    "hard": lambda u: np.clip(u, -1, 1),
}


@pytest.mark.parametrize("mode", sorted(NP_SHAPES))
def test_distortion_matches_numpy(mode):
    x = torch.linspace(-2, 2, 801, dtype=F64).repeat(2, 1, 1)
    drive = torch.tensor([[0.0], [12.0]], dtype=F64)
    out = torch.tensor([[-3.0], [6.0]], dtype=F64)
    y = Distortion(mode)(x, drive_db=drive, output_db=out).numpy()
    for b in range(2):
        u = 10 ** (drive[b, 0].item() / 20) * x[b].numpy()
        want = 10 ** (out[b, 0].item() / 20) * NP_SHAPES[mode](u)
        np.testing.assert_allclose(y[b], want, atol=1e-12)


def test_distortion_soft_clip_is_smooth_at_the_corner():
    u = torch.tensor([0.999999, 1.0, 1.000001], dtype=F64)
    from ddsp_models.processors.distortion import waveshape

    y = waveshape(u, "soft")
    assert torch.allclose(y, torch.ones(3, dtype=F64), atol=1e-11)


def test_hard_clip_gradient_is_one_inside_zero_outside():
    x = torch.tensor([[[-3.0, -0.5, 0.2, 0.9, 2.5]]], dtype=F64, requires_grad=True)
    drive = torch.tensor([[6.0]], dtype=F64, requires_grad=True)
    y = Distortion("hard")(x, drive_db=drive, output_db=torch.zeros(1, 1, dtype=F64))
    y.sum().backward()
    d = 10 ** (6 / 20)
    inside = (x.detach().abs() * d < 1).double()
    torch.testing.assert_close(x.grad, d * inside)
    # drive gets gradient only from the unclipped samples: d/d(drive_db) of d*x.
    want = (x.detach() * inside).sum() * d * np.log(10) / 20
    torch.testing.assert_close(drive.grad[0, 0], want)


def np_multitap(x, delays, gains, dry):
    """Reference: linear-interpolated fractional delays of a 1-D signal, zero before start."""
    n = np.arange(len(x))
    y = x.copy() if dry else np.zeros_like(x)
    for d, g in zip(delays, gains):
        # x[-1] = 0: the signal is silent before it starts, interpolation sees that zero.
        y += g * np.interp(n - d, np.arange(-1, len(x)), np.concatenate([[0.0], x]), left=0.0)
    return y


@pytest.mark.parametrize("dry", [True, False])
def test_multitap_matches_numpy(dry):
    sr = 1000
    x = torch.randn(2, 2, 500, dtype=F64)
    delays = torch.tensor([[0.0, 0.0105, 0.2, 0.4], [0.05, 0.0503, 0.3337, 0.6]], dtype=F64)
    gains = torch.tensor([[0.5, -0.3, 0.2, 0.9], [1.0, 0.25, -0.75, 0.5]], dtype=F64)
    md = MultitapDelay(sr, n_taps=4, max_delay_s=0.7, dry=dry)
    y = md(x, delay_s=delays, gains=gains).numpy()
    for b in range(2):
        for c in range(2):
            want = np_multitap(x[b, c].numpy(), delays[b].numpy() * sr, gains[b].numpy(), dry)
            np.testing.assert_allclose(y[b, c], want, atol=1e-10)


def test_multitap_gradcheck_wrt_delays_and_gains():
    md = MultitapDelay(100, n_taps=2, max_delay_s=0.3, dry=False)
    x = torch.randn(1, 1, 40, dtype=F64)
    d = torch.tensor([[0.0333, 0.1777]], dtype=F64, requires_grad=True)
    g = torch.tensor([[0.7, -0.4]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, g: md(x, delay_s=d, gains=g), (d, g))
    with pytest.raises(ValueError, match="delay_s must lie in"):
        md(x, delay_s=torch.tensor([[0.1, 0.5]], dtype=F64), gains=g)


@pytest.mark.parametrize("proc", [Gain(-30, 6, False), StereoGain(), StereoWidener(3.0, True),
                                  Distortion("soft", True), MultitapDelay(8000, 3, 0.5, False)])
def test_config_round_trip(proc):
    again = processor_from_dict({"type": type(proc).__name__, **proc.config()})
    assert type(again) is type(proc) and again.config() == proc.config()
    assert again.param_specs() == proc.param_specs()


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="distortion mode must be one of"):
        Distortion("fuzz")
    with pytest.raises(ValueError, match="high > low"):
        Gain(min_db=10, max_db=-10)
    with pytest.raises(ValueError, match="n_taps must be >= 1"):
        MultitapDelay(n_taps=0)


PROCS = [Gain(), StereoGain(), StereoWidener(), Distortion("tanh"), Distortion("soft", True),
         Distortion("hard"), MultitapDelay(1000, 3, 0.05)]


@pytest.mark.parametrize("proc", PROCS,
                         ids=lambda p: type(p).__name__ + str(p.config().get("mode", "")))
@settings(max_examples=200)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0, 30),
       amp=st.sampled_from([0, 1e-6, 0.1, 3]))
def test_random_raw_parameters_give_finite_outputs_and_gradients(proc, seed, scale, amp):
    check_random_raw_params_finite(proc, seed, scale, amp)
