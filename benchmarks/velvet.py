"""Velvet-noise reverb (sparse convolution) against dense FFT convolution of the same IR.

Setting: 16 kHz, float32, mono, ``--batch`` (2) examples of ``--seconds`` (2 s: longer than
every IR, so that every pulse counts) of audio, 3 bands (FIR band split of 129 taps),
``--threads`` (1) torch threads; the numba kernels run single-threaded then (see
:func:`ddsp_models.core.velvet._run`). For each IR length and pulse density:

* ``velvet`` — ``VelvetNoiseReverb.forward``: the signed, decayed pulse gains from the band
  levels and T60s, the sparse convolution (numba loops on CPU: ``M`` multiply-adds per sample
  and band for ``M`` pulses), then the band FIRs;
* ``fft`` — the same output through the dense IR: ``impulse_response`` (the pulses scattered
  and band-filtered) and one ``torch.fft.rfft``/``irfft`` convolution of size ``>= L + N - 1``
  (what :class:`~ddsp_models.processors.reverb.FilteredNoiseReverb` does); both include
  building the IR from the parameters, since a decoder changes them every step.

``fwd`` is the forward alone (no grad), ``fwd+bwd`` forward and backward with gradients for
the input and both parameters. Then the per-block cost of streaming (``step``, one 32- or
256-sample block per call) against the partitioned FFT convolution of :class:`Reverb`
(``trainable=False``) with the dense IR. Times are process CPU time, medians over ``--runs``
repeats with the [min, max] range, velvet and FFT runs alternated; on a shared machine they
are noisy, read the ratios. Run: ``python benchmarks/velvet.py`` (about 15 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ddsp_models.core.filtering import fft_convolve
from ddsp_models.processors.reverb import Reverb
from ddsp_models.processors.velvet import VelvetNoiseReverb

SR = 16000


def timed_pair(fa, fb, runs: int, warmup: int = 1):
    """(median, min, max) process CPU seconds of each of two callables, run in alternation so
    that both see the same load on a shared machine (their ratio is the robust figure).
    Process CPU time is less disturbed by other jobs than wall time (equal for one thread)."""
    ta, tb = [], []
    for i in range(warmup + runs):
        for fn, ts in ((fa, ta), (fb, tb)):
            t0 = time.process_time()
            fn()
            if i >= warmup:
                ts.append(time.process_time() - t0)
    return ((statistics.median(ta), min(ta), max(ta)),
            (statistics.median(tb), min(tb), max(tb)))


def fmt(t: tuple[float, float, float], digits: int = 1) -> str:
    return f"{t[0] * 1e3:.{digits}f} [{t[1] * 1e3:.{digits}f}, {t[2] * 1e3:.{digits}f}]"


def offline(lengths, densities, batch, seconds, runs):
    g = torch.Generator().manual_seed(0)
    n = int(seconds * SR)
    print(f"\n### Whole signal: batch {batch}, {seconds} s, 3 bands, float32 "
          f"(ms: median [min, max] over {runs} runs)\n")
    print("| IR s | pulses/s | pulses | velvet fwd | fft fwd | fft/velvet | velvet fwd+bwd | "
          "fft fwd+bwd | fft/velvet |")
    print("|---|---|---|---|---|---|---|---|---|")
    for length in lengths:
        for density in densities:
            p = VelvetNoiseReverb(SR, length_s=length, density_hz=density, n_bands=3)
            x = torch.randn(batch, 1, n, generator=g)
            gains = torch.rand(batch, 3, generator=g) + 0.1
            decays = 0.3 + torch.rand(batch, 3, generator=g)

            def velvet(x=x, gains=gains, decays=decays, p=p):
                return p(x, gains, decays)

            def fft(x=x, gains=gains, decays=decays, p=p):
                ir = p.impulse_response(gains, decays)  # (B, N)
                return x + fft_convolve(x, ir[:, None], padding="same", delay_compensation=0)

            def backward(fn):
                leaves = [x.clone().requires_grad_(), gains.clone().requires_grad_(),
                          decays.clone().requires_grad_()]

                def run():
                    fn(*leaves).square().mean().backward()
                return run

            with torch.no_grad():
                torch.testing.assert_close(velvet(), fft(), atol=1e-4, rtol=1e-4)
                vf, ff = timed_pair(velvet, fft, runs)
            vb, fb = timed_pair(backward(velvet), backward(fft), runs)
            print(f"| {length} | {density:.0f} | {p.n_pulses} | {fmt(vf)} | {fmt(ff)} | "
                  f"{ff[0] / vf[0]:.2f} | {fmt(vb)} | {fmt(fb)} | {fb[0] / vb[0]:.2f} |")


def streaming(lengths, densities, blocks, block_sizes=(32, 256)):
    print(f"\n### Streaming: batch 1, one block per step, float32, 1 thread "
          f"(ms per block: median [min, max] over {blocks} blocks; real time: "
          f"{1e3 / SR:.4f} ms per sample)\n")
    print("| block | IR s | pulses/s | velvet step | partitioned FFT step (Reverb) | "
          "FFT/velvet |")
    print("|---|---|---|---|---|---|")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    for block, length, density in [(b, ln, d) for b in block_sizes for ln in lengths
                                   for d in densities]:
        p = VelvetNoiseReverb(SR, length_s=length, density_hz=density, n_bands=3)
        params = {"band_gains": torch.full((1, 3), 0.5), "band_decays_s": torch.ones(1, 3)}
        ir = p.impulse_response(params["band_gains"], params["band_decays_s"])
        rv = Reverb(SR, length=ir.shape[-1], trainable=False)
        xs = torch.randn(blocks + 2, 1, 1, block, generator=g)

        def run(step, state, xs=xs):
            it = iter(range(xs.shape[0]))

            def one():
                nonlocal state
                _, state = step(xs[next(it)], state)
            return one

        with torch.no_grad():
            sv = p.init_state(1, [1], block, xs)
            sr = rv.init_state(1, [1], block, xs)
            tv, tr = timed_pair(run(lambda x, s: p.step([x], params, s, 1, block, False), sv),
                                run(lambda x, s: rv.step([x], {"ir": ir}, s, 1, block, False),
                                    sr), blocks, warmup=2)
        print(f"| {block} | {length} | {density:.0f} | {fmt(tv, 3)} | {fmt(tr, 3)} | "
              f"{tr[0] / tv[0]:.2f} |")
    torch.set_num_threads(threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--blocks", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads")
    offline([0.25, 0.5, 1.0, 2.0], [500.0, 1000.0, 2000.0, 4000.0], a.batch, a.seconds, a.runs)
    streaming([0.5, 2.0], [1000.0, 2000.0], a.blocks)


if __name__ == "__main__":
    main()
