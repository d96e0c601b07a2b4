"""Block (partitioned FFT) convolution against independent references (numpy / scipy), and the
streaming of the convolution-based processors (reverbs, FIR) with long IRs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

import ddsp_models.core.convolution as conv
from ddsp_models.core.convolution import (convolve_in_blocks, default_partition_size,
                                          init_partitioned_state, partition_ir,
                                          partitioned_convolve_step)
from ddsp_models.core.delay import delay_line_read, variable_delay
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.fir import FIRFilter
from ddsp_models.processors.moddelay import ModDelay
from ddsp_models.processors.reverb import ExpDecayReverb, FilteredNoiseReverb, Reverb


def _ref(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Causal convolution cut to the input's length, per (batch, channel) row."""
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[b, c] = np.convolve(x[b, c], h[b if h.shape[0] > 1 else 0, 0])[: x.shape[-1]]
    return out


@pytest.mark.parametrize("n_taps", [1, 5, 64, 65, 300, 2000])
@pytest.mark.parametrize("blocks", [[1] * 40 + [400], [29], [64], [100, 3, 250, 1], [2500]])
def test_partitioned_matches_numpy_convolve(n_taps, blocks):
    rng = np.random.default_rng(n_taps)
    x = rng.standard_normal((2, 3, 2500))
    h = rng.standard_normal((2, 1, n_taps))  # one IR per batch item
    got = convolve_in_blocks(torch.from_numpy(x), torch.from_numpy(h), blocks, partition=64)
    np.testing.assert_allclose(got.numpy(), _ref(x, h), atol=1e-9 * np.abs(h).sum())


@pytest.mark.parametrize("partition", [16, 32, 100])
def test_aligned_blocks_match_scipy_fftconvolve(partition):
    """Blocks of whole partitions (the processors' default: the partition divides the hop),
    an IR shared by the batch (1 s at 16 kHz)."""
    rng = np.random.default_rng(partition)
    x = rng.standard_normal((1, 2, 4000))
    h = rng.standard_normal(16000) * np.exp(-np.arange(16000) / 3000)
    sizes = [partition, 3 * partition, 7 * partition]
    got = convolve_in_blocks(torch.from_numpy(x), torch.from_numpy(h)[None, None], sizes,
                             partition=partition, aligned=True)
    ref = fftconvolve(x, h[None, None], axes=-1)[..., :4000]
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9)


def test_ir_shorter_than_partition_and_block_float32():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 1000)).astype(np.float32)
    h = rng.standard_normal((1, 1, 10)).astype(np.float32)
    got = convolve_in_blocks(torch.from_numpy(x), torch.from_numpy(h), [300, 17], partition=64)
    np.testing.assert_allclose(got.numpy(), _ref(x.astype(np.float64), h.astype(np.float64)),
                               atol=1e-4)


def test_step_is_scriptable_and_keeps_state_untouched():
    scripted = torch.jit.script(partitioned_convolve_step)
    x = torch.randn(1, 1, 96, dtype=torch.float64)
    head, spectra = partition_ir(torch.randn(1, 1, 200, dtype=torch.float64), 32)
    state = init_partitioned_state([1, 1], 200, 32, x)
    before = {k: v.clone() for k, v in state.items()}
    y1, s1 = partitioned_convolve_step(x, head, spectra, state)
    y2, s2 = scripted(x, head, spectra, state, True)
    torch.testing.assert_close(y1, y2)
    for k in state:
        assert torch.equal(state[k], before[k])
        torch.testing.assert_close(s1[k], s2[k])
    with pytest.raises(ValueError, match="aligned=False"):
        partitioned_convolve_step(x[..., :50], head, spectra, state, True)


def test_default_partition_divides_the_hop():
    assert default_partition_size(64) == 64
    assert default_partition_size(441) == 441
    assert default_partition_size(4096) == 1024
    assert default_partition_size(3000) == 1000


def _stream(proc, x, params, hop, sizes):
    with torch.no_grad():
        return render_in_blocks(proc, params, hop, [x], n_frames=x.shape[-1] // hop,
                                block_frames=sizes)


@pytest.mark.parametrize("hop,sizes", [(64, (1, 4, 7)), (256, (1,)), (32, (3, 16))])
def test_default_reverb_one_second_ir_streams_exactly(hop, sizes):
    """The default 16000-tap (1 s) trainable Reverb, 1.2 s of audio, against scipy."""
    torch.manual_seed(0)
    rv = Reverb(16000).double()
    n = (19200 // hop) * hop
    x = torch.randn(1, 2, n, dtype=torch.float64)
    got = _stream(rv, x, {}, hop, sizes)
    h = rv.ir.detach().numpy().copy()
    h[0] = 0.0
    ref = x.numpy() + fftconvolve(x.numpy(), h[None, None], axes=-1)[..., :n]
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)


def test_ir_spectra_are_computed_once_per_stream(monkeypatch):
    """After the first block the IR is not transformed again (the cost of a block excludes
    an FFT of the whole IR) unless its inputs change."""
    import ddsp_models.processors.reverb as reverb_mod

    calls = []

    def counting(ir, partition):
        calls.append(ir.shape)
        return conv.partition_ir(ir, partition)

    monkeypatch.setattr(reverb_mod, "partition_ir", counting)
    fx = ExpDecayReverb(16000, length=4000, trainable=False).double()
    g = torch.Generator().manual_seed(0)
    params = fx.random_params(2, 40, generator=g, dtype=torch.float64)
    x = torch.randn(2, 1, 40 * 64, generator=g, dtype=torch.float64)
    got = _stream(fx, x, params, 64, (1, 3))
    assert len(calls) == 1
    torch.testing.assert_close(got, fx(x, **params))

    # a static parameter changed between blocks: the IR is rebuilt from that block on
    calls.clear()
    state = fx.init_state(2, [1], 64, x)
    y1, state = fx.step([x[..., :640]], params, state, 10, 640, False)
    p2 = {"gain": params["gain"] * 0.5, "decay_s": params["decay_s"]}
    y2, state = fx.step([x[..., 640:1280]], p2, state, 10, 640, False)
    assert len(calls) == 2
    full1 = fx(x[..., :1280], **params)
    full2 = fx(x[..., :1280], **p2)
    # two partitions (P = hop = 64) after the change, the output is the new IR applied to the
    # whole input history (the tail computed before the change still sounds before that)
    torch.testing.assert_close(y1, full1[..., :640])
    torch.testing.assert_close(y2[..., 128:], full2[..., 640 + 128:])
    assert not torch.allclose(y2[..., :128], full2[..., 640:640 + 128])


@pytest.mark.parametrize("make", [
    lambda: FilteredNoiseReverb(16000, length=3000, n_bands=5),
    lambda: ExpDecayReverb(16000, length=3000, add_dry=False),
    lambda: FIRFilter(n_taps=700, learnable=True),
])
def test_trainable_irs_stream_in_blocks_of_one_frame(make):
    torch.manual_seed(2)
    fx = make().double()
    with torch.no_grad():
        for p in fx.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 1, 50 * 40, dtype=torch.float64)
    torch.testing.assert_close(_stream(fx, x, {}, 40, (1,)), fx(x))


def test_fir_partition_not_dividing_the_hop_uses_the_general_path():
    fx = FIRFilter(n_taps=300).double()
    fx.partition_size = 48  # does not divide the hop of 40: offsets inside partitions
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 30 * 40, generator=g, dtype=torch.float64)
    taps = torch.randn(2, 300, generator=g, dtype=torch.float64)
    got = _stream(fx, x, {"taps": taps}, 40, (1, 5, 2))
    ref = np.stack([[np.convolve(x[b, 0].numpy(), taps[b].numpy())[:1200]] for b in range(2)])
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)


def test_delay_line_read_matches_variable_delay():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 500, generator=g, dtype=torch.float64)
    d = 40 * torch.rand(2, 1, 500, generator=g, dtype=torch.float64)
    for interp in ("linear", "cubic"):
        whole = variable_delay(x, d + (1.0 if interp == "cubic" else 0.0), interp)
        line = torch.cat([torch.zeros(2, 3, 43, dtype=torch.float64), x[..., :100]], -1)
        parts = []
        for t0 in range(0, 500, 100):
            parts.append(delay_line_read(line, d[..., t0:t0 + 100]
                                         + (1.0 if interp == "cubic" else 0.0), interp))
            if t0 + 100 < 500:
                line = torch.cat([line[..., -43:], x[..., t0 + 100:t0 + 200]], -1)
        torch.testing.assert_close(torch.cat(parts, -1), whole)


def test_moddelay_long_blocks_and_delays_at_the_maximum():
    """Blocks much longer than the delay line, and delays at max_delay_s exactly."""
    md = ModDelay(16000, min_delay_s=0.001, max_delay_s=0.004, max_feedback=0.6,
                  feedback_taps=4).double()
    g = torch.Generator().manual_seed(0)
    frames, hop = 12, 100
    x = torch.randn(1, 2, frames * hop, generator=g, dtype=torch.float64)
    delay = torch.full((1, frames, 1), 0.004, dtype=torch.float64)
    delay[:, ::3] = 0.001
    params = {"delay_s": delay, "mix": torch.rand(1, frames, 1, generator=g, dtype=torch.float64),
              "feedback": torch.tensor([[0.6]], dtype=torch.float64)}
    got = _stream(md, x, params, hop, (5, 7))
    torch.testing.assert_close(got, md(x, **params))
