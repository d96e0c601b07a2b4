"""FMSynth against closed forms and a per-operator numpy reference; NoiseBandSynth's bands
against their declared edges. (The registry contract tests cover streaming and gradients.)"""

import math

import numpy as np
import pytest
import torch

from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.fm import ALGORITHMS, FMSynth, NoiseBandSynth, fm_routing

SR, HOP = 16000, 64
D = torch.float64


def const(frames, *values):
    return torch.tensor(values, dtype=D).expand(1, frames, len(values)).clone()


def test_two_operator_patch_is_the_closed_form_over_10_s():
    fc, ratio, index, amp = 440.0, 1.5, 2.0, 0.8
    frames = 10 * SR // HOP
    n = frames * HOP
    fm = FMSynth(SR, n_operators=2, routing="stack", ratios=[1.0, ratio]).double()
    params = {"f0_hz": const(frames, fc), "amplitudes": const(frames, amp),
              "mod_indices": const(frames, index)}
    tt = np.arange(n) / SR
    ref = amp * np.sin(2 * np.pi * fc * tt + index * np.sin(2 * np.pi * fc * ratio * tt))
    y = fm(**params, n_samples=n)[0, 0].numpy()
    assert np.abs(y - ref).max() < 1e-6
    # streamed: the carried float64 phases stay as exact
    s = render_in_blocks(fm, params, HOP, n_frames=frames, block_frames=(16, 7, 25))
    assert np.abs(s[0, 0].numpy() - ref).max() < 1e-6
    # float32 output, float64 phase: no drift after 10 s either
    y32 = FMSynth(SR, ratios=[1.0, ratio])(
        **{k: v.float() for k, v in params.items()}, n_samples=n)[0, 0].double().numpy()
    assert np.abs(y32[-SR:] - ref[-SR:]).max() < 1e-4


def numpy_fm(edges, n_ops, ratios, f0, amps, indices, n):
    """Slow reference: operators evaluated recursively from the edge list."""
    mods = sorted({a for a, _ in edges})
    cars = [i for i in range(n_ops) if i not in mods]
    tt = np.arange(n)
    memo = {}

    def out(op):  # modulators' output (index * sine)
        if op not in memo:
            arg = 2 * np.pi * f0 * ratios[op] * tt / SR + sum(out(a) for a, b in edges if b == op)
            memo[op] = indices[mods.index(op)] * np.sin(arg)
        return memo[op]

    y = 0.0
    for c in cars:
        arg = 2 * np.pi * f0 * ratios[c] * tt / SR + sum(out(a) for a, b in edges if b == c)
        y = y + amps[cars.index(c)] * np.sin(arg)
    return y


@pytest.mark.parametrize("routing,n_ops", [("stack", 4), ("pairs", 6), ("parallel", 3),
                                           ("dx7_1", 6), ("dx7_16", 6), ("dx7_22", 6),
                                           ([[3, 0], [3, 1], [2, 1]], 4)])
def test_routings_match_a_numpy_reference(routing, n_ops):
    edges, cars, mods, _ = fm_routing(routing, n_ops)
    rng = np.random.default_rng(1)
    ratios = list(rng.choice([0.5, 1.0, 2.0, 3.0, 1.41], n_ops))
    amps, indices = rng.uniform(0.2, 1.0, len(cars)), rng.uniform(0.3, 2.5, len(mods))
    fm = FMSynth(SR, n_operators=n_ops, routing=routing, ratios=ratios).double()
    frames = 50
    params = {"f0_hz": const(frames, 220.0), "amplitudes": const(frames, *amps)}
    if mods:
        params["mod_indices"] = const(frames, *indices)
    y = fm(**params, n_samples=frames * HOP)[0, 0].numpy()
    ref = numpy_fm(edges, n_ops, ratios, 220.0, amps, indices, frames * HOP)
    np.testing.assert_allclose(y, ref, atol=1e-9)


def test_learned_ratios_stream_and_have_gradients():
    fm = FMSynth(SR, n_operators=3, routing="stack", learn_ratios=True).double()
    assert [p.name for p in fm.param_specs()] == ["f0_hz", "amplitudes", "mod_indices", "ratios"]
    g = torch.Generator().manual_seed(0)
    params = fm.random_params(2, 23, generator=g, dtype=D)
    ref = fm(**params, n_samples=23 * 32)
    got = render_in_blocks(fm, params, 32, n_frames=23, block_frames=(1, 4, 7, 16))
    assert (got - ref).abs().max() < 1e-10 * ref.abs().max()
    small = {k: (v[:1, :3] if v.dim() == 3 else v[:1]).clone() for k, v in params.items()}
    ratios = small["ratios"].requires_grad_()
    assert torch.autograd.gradcheck(
        lambda r: fm(**{**small, "ratios": r}, n_samples=96), (ratios,), eps=1e-7, atol=1e-5)


def test_operator_feedback_matches_a_per_sample_loop():
    f0, amp, index, b0, b1 = 330.0, 0.7, 1.3, 0.4, 0.8
    frames = SR // HOP
    n = frames * HOP
    fm = FMSynth(SR, n_operators=2, routing="stack", ratios=[1.0, 2.0], feedback=[1, 0]).double()
    params = {"f0_hz": const(frames, f0), "amplitudes": const(frames, amp),
              "mod_indices": const(frames, index), "feedback": torch.tensor([[b0, b1]], dtype=D)}
    ref = np.zeros(n)
    s0 = s1 = 0.0
    for i in range(n):
        s1 = math.sin(2 * math.pi * 2 * f0 * i / SR + b1 * s1)
        s0 = math.sin(2 * math.pi * f0 * i / SR + index * s1 + b0 * s0)
        ref[i] = amp * s0
    y = fm(**params, n_samples=n)[0, 0].numpy()
    assert np.abs(y - ref).max() < 1e-9
    s = render_in_blocks(fm, params, HOP, n_frames=frames, block_frames=(16, 7, 25))
    assert np.abs(s[0, 0].numpy() - ref).max() < 1e-9


@pytest.mark.parametrize("numba", [True, False])
def test_feedback_sine_has_exact_gradients(numba, monkeypatch):
    from ddsp_models.core.fm_feedback import feedback_sine

    if not numba:
        monkeypatch.setenv("DDSP_MODELS_NO_NUMBA", "1")
    g = torch.Generator().manual_seed(0)
    p = torch.randn(2, 40, generator=g, dtype=D).requires_grad_()
    beta = (0.9 * torch.rand(2, generator=g, dtype=D)).requires_grad_()
    s0 = torch.randn(2, generator=g, dtype=D).requires_grad_()
    assert torch.autograd.gradcheck(feedback_sine, (p, beta, s0))


def test_routing_errors_are_clear():
    with pytest.raises(ValueError, match="cycle"):
        fm_routing([[0, 1], [1, 0]], 2)
    with pytest.raises(ValueError, match="self-feedback"):
        fm_routing([[1, 1]], 2)
    with pytest.raises(ValueError, match="unknown FM routing"):
        fm_routing("dx7_99", 6)
    with pytest.raises(ValueError, match="needs n_operators=6"):
        FMSynth(n_operators=4, routing="dx7_1")
    with pytest.raises(ValueError, match="feedback operators"):
        FMSynth(n_operators=2, feedback=[2])
    with pytest.raises(ValueError, match="2 to 6"):
        FMSynth(n_operators=7, routing="parallel")
    assert set(ALGORITHMS) >= {"stack", "parallel", "dx7_1", "dx7_32"}


# --- NoiseBandSynth -----------------------------------------------------------------
def band_fraction(y, lo, hi):
    p = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return p[(f >= lo) & (f <= hi)].sum() / p.sum()


def test_each_noise_band_holds_its_energy_where_it_should_be():
    nb = NoiseBandSynth(SR, n_bands=128, min_hz=40.0).double()  # the defaults, 4 s loop
    edges = np.geomspace(40.0, SR / 2, 129)
    np.testing.assert_allclose(nb.band_edges_hz.numpy(), edges, rtol=1e-12)
    frames = nb.loop_length // HOP  # exactly one loop: every band is exactly periodic
    for k in (0, 1, 40, 87, 127):
        a = torch.zeros(1, frames, 128, dtype=D)
        a[..., k] = 1.0
        y = nb(a, n_samples=frames * HOP)[0, 0].numpy()
        assert band_fraction(y, edges[k], edges[k + 1]) > 1 - 1e-12, k
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(1 / math.sqrt(128), rel=1e-9)
    # all bands at one: white noise between the edges, unit RMS
    y = nb(torch.ones(1, frames, 128, dtype=D), n_samples=frames * HOP)[0, 0].numpy()
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(1.0, rel=0.05)


def test_noise_band_envelope_and_loop():
    nb = NoiseBandSynth(SR, n_bands=16, min_hz=100.0, loop_length=4096).double()
    # a swell (sin² envelope) on one band: still inside its band up to the envelope's spreading
    frames = 3 * 4096 // HOP
    a = torch.zeros(1, frames, 16, dtype=D)
    a[..., 9] = torch.sin(torch.linspace(0, math.pi, frames, dtype=D)) ** 2
    y = nb(a, n_samples=frames * HOP)[0, 0].numpy()
    lo, hi = nb.band_edges_hz[9].item(), nb.band_edges_hz[10].item()
    assert band_fraction(y, lo * 0.98, hi * 1.02) > 1 - 1e-6
    # constant amplitudes: the output repeats with the loop
    y = nb(torch.ones(1, frames, 16, dtype=D), n_samples=frames * HOP)[0, 0].numpy()
    np.testing.assert_allclose(y[4096:8192], y[:4096], atol=1e-14)


def test_noise_band_errors_and_learned_bank():
    with pytest.raises(ValueError, match="no FFT bin"):
        NoiseBandSynth(SR, n_bands=300, min_hz=20.0, loop_length=1024)
    nb = NoiseBandSynth(SR, n_bands=8, min_hz=200.0, loop_length=2048, learn_bank=True)
    assert [n for n, _ in nb.named_parameters()] == ["bank"]
    y = nb(torch.ones(1, 4, 8), n_samples=4 * HOP)
    y.square().sum().backward()
    assert nb.bank.grad is not None and nb.bank.grad.abs().sum() > 0
