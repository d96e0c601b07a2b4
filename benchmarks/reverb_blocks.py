"""Per-block cost of streaming a convolution reverb: partitioned FFT convolution vs naive.

Setting: 16 kHz, mono, batch 1, float32, 256-sample blocks (one frame of hop 256), 1 torch
thread, IRs of 0.5, 1 and 3 s (8000, 16000, 48000 taps). Each entry renders ``--blocks``
consecutive blocks of a stream (after ``--warmup`` untimed ones) and reports the median and
90th percentile of the time per block:

* ``Reverb.step`` — the processor's block path: zero-latency uniformly partitioned FFT
  convolution (:mod:`ddsp_models.core.convolution`), partition = hop = 256 samples: per block
  one FFT of the block's head convolution, one FFT of the completed partition, one
  multiply-accumulate over the IR's partitions and one inverse FFT; the IR's spectra are
  carried in the state (computed in the first block only);
* ``Reverb.step P=64`` — the same with 64-sample partitions (4 partitions per block);
* ``naive`` — an FFT of the whole IR every block: the block and the last ``N - 1`` input
  samples are convolved with the IR by one FFT of size ``>= N + 256`` (overlap-save), the
  approach whose cost grows with the IR inside every block.

The real-time budget of a 256-sample block at 16 kHz is 16 ms. Timings on a shared machine
are noisy: read the ratios. Run: ``python benchmarks/reverb_blocks.py [--blocks 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ddsp_models.processors.reverb import Reverb

SR = 16000
BLOCK = 256


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def time_blocks(step, state, blocks: torch.Tensor, warmup: int) -> list[float]:
    """Seconds per call of ``state = step(block, state)`` for each block after ``warmup``."""
    times = []
    for i in range(blocks.shape[0]):
        t0 = time.perf_counter()
        _, state = step(blocks[i], state)
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return times


def partitioned(rv: Reverb, partition: int):
    rv.partition_size = partition
    state = rv.init_state(1, [1], BLOCK, torch.zeros(()))

    def step(x, st):
        return rv.step([x], {}, st, 1, BLOCK, False)

    return step, state


def naive(rv: Reverb):
    """Overlap-save with a transform of the whole IR in every block."""
    ir = rv.ir.detach().clone()
    ir[0] = 0.0
    n_taps = ir.shape[-1]
    n_fft = 1 << (n_taps + BLOCK - 1 - 1).bit_length()
    state = torch.zeros(1, 1, n_taps - 1)

    def step(x, hist):
        buf = torch.cat([hist, x], dim=-1)  # (1, 1, N - 1 + M)
        y = torch.fft.irfft(torch.fft.rfft(buf, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)
        return x + y[..., n_taps - 1:n_taps - 1 + BLOCK], buf[..., BLOCK:]

    return step, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=200, help="timed blocks per entry")
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = args.blocks + args.warmup
    blocks = 0.1 * torch.randn(n, 1, 1, BLOCK)
    print(f"per-block time, {BLOCK}-sample blocks at {SR} Hz (budget {1e3 * BLOCK / SR:.0f} ms), "
          f"1 thread, {args.blocks} blocks; median / p90 in ms")
    print(f"{'IR':>6} {'method':<22} {'median':>8} {'p90':>8} {'naive/this':>11}")
    for seconds in (0.5, 1.0, 3.0):
        rv = Reverb(SR, length=int(seconds * SR))
        with torch.no_grad():
            # check once that both give the same audio
            s1, st1 = partitioned(rv, BLOCK)
            s2, st2 = naive(rv)
            a, _ = s1(blocks[0], st1)
            b, _ = s2(blocks[0], st2)
            assert torch.allclose(a, b, atol=1e-5), "partitioned and naive disagree"
            results = {}
            for name, (step, state) in {
                f"Reverb.step P={BLOCK}": partitioned(rv, BLOCK),
                "Reverb.step P=64": partitioned(rv, 64),
                "naive (FFT of IR)": naive(rv),
            }.items():
                t = time_blocks(step, state, blocks, args.warmup)
                results[name] = (statistics.median(t), _percentile(t, 0.9))
        ref = results["naive (FFT of IR)"][0]
        for name, (med, p90) in results.items():
            print(f"{seconds:>5}s {name:<22} {1e3 * med:>8.3f} {1e3 * p90:>8.3f} "
                  f"{ref / med:>10.1f}x")


if __name__ == "__main__":
    main()
