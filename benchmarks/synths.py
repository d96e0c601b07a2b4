"""Forward+backward timings of Harmonic, FilteredNoise and Reverb against two baselines.

Setting (issue #2): batch 16, 4 s at 16 kHz (64 000 samples), 250 frames/s (hop 64),
Harmonic with 100 harmonics, FilteredNoise with 65 bands, Reverb with a 1 s IR.

Baselines:
  (a) floor: a bare ``torch.sin`` over a ``B × L × K`` tensor (K = 100), forward + backward —
      the least any sum-of-sines over all samples and harmonics can cost in PyTorch;
  (b) obvious: the straightforward implementation (controls upsampled to audio rate, phase
      cumsum, sum of sines; direct convolution for the filters).

    python benchmarks/synths.py [--runs 3] [--threads 2] [--clock wall|cpu] [--quick]

Figures on a shared machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import print_table, set_threads  # noqa: E402
from _timing import time_fwd_bwd as _time_fwd_bwd  # noqa: E402

from ddsp_models.core import frequency_impulse_response, upsample_linear, upsample_with_windows  # noqa: E402
from ddsp_models.core.oscillators import harmonic_synthesis_reference  # noqa: E402
from ddsp_models.effects import Reverb  # noqa: E402
from ddsp_models.synths import FilteredNoise, Harmonic  # noqa: E402


def obvious_harmonic(f0_hz, amplitude, dist, n_samples, sr):
    """DDSP-style: audio-rate frequencies and amplitudes of every harmonic, float32 cumsum."""
    k = dist.shape[-1]
    harmonics = torch.arange(1, k + 1, dtype=f0_hz.dtype)
    dist = dist * (f0_hz * harmonics < sr / 2)
    dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
    amps = upsample_with_windows(amplitude * dist, n_samples)  # (B, L, K)
    freqs = upsample_linear(f0_hz, n_samples) * harmonics  # (B, L, K)
    phases = torch.cumsum(2 * math.pi * freqs / sr, dim=1)
    return (amps * torch.sin(phases)).sum(-1)


def obvious_filtered_noise(noise, magnitudes):
    """Per-block direct convolution (grouped conv1d) of each block with its IR, overlap-add.

    Same blocks as ours (centred on the frames, the last frame's IR held to the end)."""
    b, t, _ = magnitudes.shape
    n = noise.shape[-1]
    hop = n // t
    ir = frequency_impulse_response(magnitudes)  # (B, T, N)
    taps = ir.shape[-1]
    off = hop // 2
    nb = -(-(n + off) // hop)
    ir = torch.cat([ir, ir[:, -1:].expand(b, nb - t, taps)], dim=1)
    x = F.pad(noise, (off, nb * hop - n - off)).unfold(-1, hop, hop)  # (B, nb, hop)
    x = F.pad(x.reshape(1, b * nb, hop), (taps - 1, taps - 1))
    y = F.conv1d(x, ir.reshape(b * nb, 1, taps).flip(-1), groups=b * nb)  # (1, B*nb, hop+N-1)
    y = y.reshape(b, nb, hop + taps - 1).transpose(1, 2)
    total = (nb - 1) * hop + hop + taps - 1
    y = F.fold(y, (1, total), (1, hop + taps - 1), stride=(1, hop)).reshape(b, total)
    start = off + taps // 2
    return y[:, start : start + n]


def obvious_reverb(audio, ir):
    """Direct (time-domain) convolution with conv1d."""
    n, taps = audio.shape[-1], ir.shape[-1]
    x = F.pad(audio.reshape(-1, 1, n), (taps - 1, 0))
    return audio + F.conv1d(x, ir.flip(-1).reshape(1, 1, taps)).reshape(audio.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="batch 4 instead of 16 (smoke run)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or process CPU time (steadier on a shared machine)")
    ap.add_argument("--skip-direct-conv", action="store_true",
                    help="skip the direct-convolution reverb baseline (minutes on 2 cores)")
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    sr, seconds, frame_rate = 16000, 4, 250
    b = 4 if args.quick else 16
    n, t, k, bands = sr * seconds, seconds * frame_rate, 100, 65
    runs = args.runs

    def time_fwd_bwd(fn, leaves, runs, warmup=1):
        return _time_fwd_bwd(fn, leaves, runs=runs, warmup=warmup, clock=args.clock)

    print(f"batch {b}, {n} samples ({seconds} s at {sr} Hz), {t} frames, "
          f"{torch.get_num_threads()} threads, {args.clock} clock, torch {torch.__version__}")

    # (a) the floor: bare sin over B x L x K, forward + backward
    x = torch.randn(b, n, k, requires_grad=True)
    floor = time_fwd_bwd(lambda: torch.sin(x), [x], runs=runs)
    del x

    # Harmonic
    f0 = (100 + 300 * torch.rand(b, t, 1)).requires_grad_()
    amp = torch.rand(b, t, 1).requires_grad_()
    dist = torch.rand(b, t, k).requires_grad_()
    synth = Harmonic(sr, n_harmonics=k)
    leaves = [f0, amp, dist]
    t_ours = time_fwd_bwd(lambda: synth(f0, amp, dist, n_samples=n), leaves, runs=runs)
    t_obv = time_fwd_bwd(lambda: obvious_harmonic(f0, amp, dist, n, sr), leaves, runs=runs)
    hamps = lambda: synth.harmonic_amplitudes(f0, amp, dist)  # noqa: E731
    t_ref64 = time_fwd_bwd(lambda: harmonic_synthesis_reference(f0, hamps(), n, sr), leaves,
                           runs=max(1, runs - 2))
    rows = [
        ("floor: torch.sin on B×L×K", floor, {"÷ floor": 1.0}),
        ("Harmonic (ours)", t_ours, {"÷ floor": t_ours / floor, "obvious ÷ ours": 1.0}),
        ("obvious, float32 phase per harmonic (DDSP-style)", t_obv,
         {"÷ floor": t_obv / floor, "obvious ÷ ours": t_obv / t_ours}),
        ("obvious, float64 phase (our reference)", t_ref64,
         {"÷ floor": t_ref64 / floor, "obvious ÷ ours": t_ref64 / t_ours}),
    ]
    print_table(f"Harmonic, {k} harmonics, fwd+bwd", rows)

    # FilteredNoise
    mags = torch.rand(b, t, bands).requires_grad_()
    noise = torch.rand(b, n) * 2 - 1
    fn = FilteredNoise(sr, n_bands=bands)
    t_ours = time_fwd_bwd(lambda: fn(mags, n_samples=n, noise=noise), [mags], runs=runs)
    t_obv = time_fwd_bwd(lambda: obvious_filtered_noise(noise, mags), [mags], runs=runs)
    with torch.no_grad():
        err = (fn(mags, n_samples=n, noise=noise)[:, 0] - obvious_filtered_noise(noise, mags)).abs().max()
    print_table(f"FilteredNoise, {bands} bands, fwd+bwd (max |ours - obvious| = {err:.1e})", [
        ("FilteredNoise (ours, FFT blocks)", t_ours, {"÷ floor": t_ours / floor, "obvious ÷ ours": 1.0}),
        ("obvious: grouped conv1d per block", t_obv,
         {"÷ floor": t_obv / floor, "obvious ÷ ours": t_obv / t_ours}),
    ])

    # Reverb, 1 s IR
    audio = torch.randn(b, 1, n, requires_grad=True)
    rev = Reverb(sr, length=sr)
    t_ours = time_fwd_bwd(lambda: rev(audio), [audio, rev.ir], runs=runs)
    ir = torch.cat([torch.zeros(1), rev.ir[1:]])
    rows = [("Reverb (ours, one FFT)", t_ours, {"÷ floor": t_ours / floor, "obvious ÷ ours": 1.0})]
    title = f"Reverb, {sr}-tap IR, fwd+bwd"
    if not args.skip_direct_conv:
        t_obv = time_fwd_bwd(lambda: obvious_reverb(audio, torch.cat([rev.ir[:1] * 0, rev.ir[1:]])),
                             [audio, rev.ir], runs=1, warmup=0)
        with torch.no_grad():
            err = (rev(audio) - obvious_reverb(audio, ir)).abs().max()
        title += f" (max |ours - obvious| = {err:.1e})"
        rows.append(("obvious: direct conv1d (1 run)", t_obv,
                     {"÷ floor": t_obv / floor, "obvious ÷ ours": t_obv / t_ours}))
    print_table(title, rows)


if __name__ == "__main__":
    main()
