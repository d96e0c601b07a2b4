"""Block rendering of the synths (Harmonic, FilteredNoise, Sinusoidal, Wavetable) against
independent references: closed-form sines for constant controls, the counter noise itself for
a flat noise filter, and the flush cases the registry-driven contract tests may not reach.

``render_in_blocks`` returns the stream already lined up with the offline signal (the latency
dropped, the flush appended), so it compares sample for sample with a reference."""

from __future__ import annotations

import math

import pytest
import torch

from ddsp_models.core.noise import counter_noise, deterministic_noise
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.synths import FilteredNoise, Harmonic, Sinusoidal, Wavetable

SR = 16000

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: threads only add barriers


def _const(value, b, t, k=1, dtype=torch.float64):
    return torch.full((b, t, k), float(value), dtype=dtype)


def _error_db(a, b):
    return 20 * math.log10((a - b).abs().max().item() / b.abs().max().item() + 1e-30)


def test_harmonic_long_float32_stream_keeps_the_closed_form_phase():
    """4 s of a constant 441.3 Hz, float32, blocks of 8 frames: the float64 phase in the
    state keeps sample n at sin(2π k f0 n / sr) to float32 rounding of the last step only
    (a float32 running phase would be off by ~1e-2 rad by then)."""
    hop, t = 64, 1000
    f0 = float(torch.tensor(441.3, dtype=torch.float32))  # the f0 the synth sees
    synth = Harmonic(SR, n_harmonics=3).float()
    dist = torch.tensor([[[0.5, 0.0, 0.5]]]).expand(1, t, 3)
    params = {"f0_hz": _const(f0, 1, t, dtype=torch.float32),
              "amplitude": _const(1.0, 1, t, dtype=torch.float32), "harmonic_distribution": dist}
    with torch.no_grad():
        y = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(8,))[0, 0]
    n = torch.arange(t * hop, dtype=torch.float64)
    w = 2 * math.pi * f0 * n / SR
    ref = 0.5 * torch.sin(w) + 0.5 * torch.sin(3 * w)
    assert (y.double() - ref).abs().max() < 2e-5


def test_harmonic_flush_holds_the_nyquist_mask_of_the_last_two_frames():
    """A pitch drop in the last frame: offline holds the last frame's amplitudes masked over
    frames T-2 and T-1, so harmonics that the high f0 of frame T-2 pushed past Nyquist stay
    silent in the held tail. The flush (here one frame per call) must reproduce that."""
    hop, t = 32, 6
    synth = Harmonic(SR, n_harmonics=4).double()
    f0 = torch.tensor([300.0, 300.0, 300.0, 300.0, 3000.0, 250.0], dtype=torch.float64)
    params = {"f0_hz": f0.view(1, t, 1), "amplitude": _const(1.0, 1, t),
              "harmonic_distribution": _const(1.0, 1, t, 4)}
    ref = synth(**params, n_samples=t * hop)
    # the held tail really is masked: harmonics 3 and 4 of 250 Hz would be audible otherwise
    assert ref[0, 0, -hop:].abs().max() > 0.1
    for sizes in ((1,), (2,), (6,), (4, 1)):
        with torch.no_grad():
            got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=sizes)
        assert _error_db(got, ref) < -200, sizes


@pytest.mark.parametrize("t", [1, 2, 3])
def test_harmonic_short_streams(t):
    """Streams shorter than the latency: the whole output comes from the flush."""
    hop = 16
    synth = Harmonic(4000, n_harmonics=6).double()
    g = torch.Generator().manual_seed(t)
    params = synth.random_params(2, t, generator=g, dtype=torch.float64)
    ref = synth(**params, n_samples=t * hop)
    with torch.no_grad():
        got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(1,))
    assert _error_db(got, ref) < -200


def test_harmonic_chunked_phase_float32_blocks_match_whole():
    """phase_method="chunked" (float32 phase offline): the block path still carries float64."""
    hop, t = 32, 40
    synth = Harmonic(SR, n_harmonics=10, phase_method="chunked").float()
    params = synth.random_params(2, t, generator=torch.Generator().manual_seed(0))
    ref = synth(**params, n_samples=t * hop)
    with torch.no_grad():
        got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(3, 5))
    assert _error_db(got, ref) < -60


def test_filtered_noise_flat_filter_streams_the_counter_noise():
    """All-pass magnitudes make each frame's FIR a unit impulse at its centre tap, so the
    stream is the counter noise of the state's seed (row b: seed + b), whatever the blocks."""
    hop, t = 32, 20
    synth = FilteredNoise(SR, n_bands=33).double()
    params = {"magnitudes": _const(1.0, 2, t, 33)}
    state = synth.init_state(2, [], hop, torch.zeros((), dtype=torch.float64))
    state["seed"] = torch.tensor(5, dtype=torch.int64)
    ref = counter_noise(2, 0, t * hop, 5, params["magnitudes"])
    for sizes in ((1, 4, 7), (20,)):
        with torch.no_grad():
            got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=sizes,
                                   state=dict(state))
        assert (got[:, 0] - ref).abs().max() < 1e-12


def test_filtered_noise_latency_follows_the_hop():
    synth = FilteredNoise(SR, n_bands=65)  # 128 taps: 64 + hop // 2 samples of look-ahead
    assert [synth.latency_frames(h) for h in (64, 32, 16, 128)] == [2, 3, 5, 1]
    odd = FilteredNoise(SR, n_bands=65, window_size=31)  # 31 taps
    assert odd.latency_frames(64) == 1 and odd.latency_frames(16) == 2


def test_filtered_noise_seed_zero_stream_equals_deterministic_forward_at_hop_64():
    """The DDSP default (65 bands) at 16 kHz / 250 frames/s, float32: latency 2 frames."""
    hop, t = 64, 30
    synth = FilteredNoise(SR).float()
    params = synth.random_params(1, t, generator=torch.Generator().manual_seed(2))
    with deterministic_noise(seed=0):
        ref = synth(**params, n_samples=t * hop)
    with torch.no_grad():
        got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(4,))
    assert synth.latency_frames(hop) == 2
    assert _error_db(got, ref) < -100


def test_sinusoidal_constant_controls_give_closed_form_sines():
    hop, t = 32, 50
    freqs = torch.tensor([110.0, 1234.5, 7000.0], dtype=torch.float64)
    amps = torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64)
    synth = Sinusoidal(SR, n_sinusoids=3).double()
    params = {"frequencies_hz": freqs.expand(1, t, 3).clone(),
              "amplitudes": amps.expand(1, t, 3).clone()}
    with torch.no_grad():
        got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(1, 4, 7))[0, 0]
    n = torch.arange(t * hop, dtype=torch.float64)[:, None]
    ref = (amps * torch.sin(2 * math.pi * freqs * n / SR)).sum(-1)
    assert (got - ref).abs().max() < 1e-9


def test_wavetable_sine_table_constant_f0_is_a_sine():
    """A 2048-point sine table (float32 values) read with linear interpolation: error <=
    (2π/2048)² / 8 plus the table's rounding."""
    hop, t = 32, 50
    f0 = 523.25
    synth = Wavetable(SR, n_tables=1, table_size=2048, initial="sine").double()
    params = {"f0_hz": _const(f0, 1, t), "amplitude": _const(0.8, 1, t),
              "table_weights": _const(1.0, 1, t)}
    with torch.no_grad():
        got = render_in_blocks(synth, params, hop, n_frames=t, block_frames=(3, 1))[0, 0]
    n = torch.arange(t * hop, dtype=torch.float64)
    ref = 0.8 * torch.sin(2 * math.pi * f0 * n / SR)
    assert (got - ref).abs().max() < 0.8 * ((2 * math.pi / 2048) ** 2 / 8 + 1e-7)


@pytest.mark.parametrize("cls,kw", [
    (Harmonic, {"n_harmonics": 5}), (FilteredNoise, {"n_bands": 9}),
    (Sinusoidal, {"n_sinusoids": 4}), (Wavetable, {"table_size": 64}),
])
def test_step_returns_a_new_state_and_leaves_the_old_one(cls, kw):
    synth = cls(SR, **kw).double()
    params = synth.random_params(1, 3, generator=torch.Generator().manual_seed(0),
                                 dtype=torch.float64)
    state = synth.init_state(1, [], 16, torch.zeros((), dtype=torch.float64))
    before = {k: v.clone() for k, v in state.items()}
    y, new = synth.step([], params, state, 3, 48, False)
    assert y.shape == (1, 1, 48)
    for k in before:
        assert torch.equal(state[k], before[k]), k
    assert int(new["position"]) == 3
