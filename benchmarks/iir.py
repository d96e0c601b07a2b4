"""Recursive filters, forward + backward, side by side with the installed peers.

Setting: batch 16, 4 s of mono audio at 16 kHz (64000 samples), float32, CPU, 2 threads for
torch and numba. Every entry computes the output, ``out.square().mean()``, and the gradients
w.r.t. the audio and every parameter; entries of a group are timed round-robin (one run each
per round, so load drift on a shared machine hits all alike) and the median of the rounds is
printed, with the ratio
``peer / ours`` (> 1: the peer is slower) against our entry doing the *same* work (exact vs
exact, frequency sampling vs frequency sampling).

Groups:

1. order-2 time-varying all-pole: ``ddsp_models.core.allpole`` (numba, and the torch scan that
   is the GPU path) vs ``torchlpc.sample_wise_lpc`` (C++ extension);
2. static lowpass biquad: ``effects.Biquad`` (exact; and ``mode="freq_sampling"``) vs GRAFX
   ``LowPassFilter`` (backends ``ssm`` exact, ``fsm`` approximate) and dasp-pytorch
   (``signal.biquad`` coefficients + ``lfilter_via_fsm``, approximate);
3. 6-band parametric EQ (low shelf, 4 peaks, high shelf): ``effects.ParametricEQ(n_peaks=4)``
   vs GRAFX ``ParametricEqualizer(num_filters=6)`` and dasp ``functional.parametric_eq``;
4. time-varying lowpass biquad: ``Biquad(time_varying=True)`` (TPT SVF) vs per-sample
   direct form I by our ``lfilter`` and by ``torchlpc`` (GRAFX and dasp have none);
5. compressors: ``benchmarks/iir_dynamics.py:run()`` when that file exists (dynamics helper).

GRAFX imports torchaudio (unusable here: its wheels are tied to one CUDA build of torch).
This script installs a minimal fake ``torchaudio`` into ``sys.modules`` *for this process
only* and prints exactly what it shimmed. The fake ``functional.lfilter`` raises if called, so
GRAFX's ``lfilter`` backend is not timed (it would only measure the shim); its own ``ssm``
and ``fsm`` backends are. Timings on a shared machine are noisy: read the ratios.

Run: ``python benchmarks/iir.py [--repeats 5] [--seconds 4] [--batch 16]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import statistics
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from _grafx_shim import shim_grafx  # noqa: E402
from _timing import print_table, set_threads, time_fwd_bwd  # noqa: E402

SR = 16000


def leaf(shape, value=0.0):
    return torch.full(shape, float(value)).requires_grad_()


# --------------------------------------------------------------------------------------
# Group 1: time-varying all-pole
# --------------------------------------------------------------------------------------


def allpole_entries(batch, n):
    from ddsp_models.core.iir import allpole

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n, generator=g).requires_grad_()
    # slowly moving resonant poles, radius 0.95
    theta = 0.1 + 0.05 * torch.sin(torch.arange(n) / 2000.0)
    a = torch.stack([-2 * 0.95 * torch.cos(theta), torch.full_like(theta, 0.95**2)], -1)
    a = a.expand(batch, n, 2).contiguous().requires_grad_()
    out = [
        ("ours allpole (numba)", lambda: allpole(x, a).square().mean(), [x, a]),
        ("ours allpole (torch scan, GPU path)", lambda: allpole(x, a, backend="torch").square().mean(), [x, a]),
    ]
    try:
        import torchlpc

        out.append(("torchlpc.sample_wise_lpc", lambda: torchlpc.sample_wise_lpc(x, a).square().mean(), [x, a]))
    except ImportError as e:
        print(f"torchlpc skipped: {e}")
    return out


# --------------------------------------------------------------------------------------
# Group 2: static biquad (lowpass)
# --------------------------------------------------------------------------------------


def biquad_entries(batch, n, grafx_ok):
    from ddsp_models.effects import Biquad

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, n, generator=g).requires_grad_()
    cutoff, q = leaf((batch, 1), 1000.0), leaf((batch, 1), 0.7071)
    exact, fsm = Biquad(SR, "lowpass"), Biquad(SR, "lowpass", mode="freq_sampling")
    out = [
        ("ours Biquad (exact)", lambda: exact(x, cutoff_hz=cutoff, q=q).square().mean(), [x, cutoff, q]),
        ("ours Biquad (freq_sampling)", lambda: fsm(x, cutoff_hz=cutoff, q=q).square().mean(), [x, cutoff, q]),
    ]
    if grafx_ok:
        from grafx.processors.filter import LowPassFilter

        w0 = leaf((batch, 1), 0.0)  # GRAFX takes raw (pre-activation) parameters
        q_inv = leaf((batch, 1), 0.0)
        for backend in ("ssm", "fsm"):
            kw = {"flashfftconv": False} if backend == "fsm" else {}
            lp = LowPassFilter(backend=backend, **kw)
            out.append((f"GRAFX LowPassFilter ({backend})",
                        (lambda lp=lp: lp(x, w0, q_inv).square().mean()), [x, w0, q_inv]))
    try:
        from dasp_pytorch.signal import biquad, lfilter_via_fsm

        gain, fc, qq = leaf((batch, 1), 0.0), leaf((batch, 1), 1000.0), leaf((batch, 1), 0.7071)

        def dasp_lp():
            b, a = biquad(gain, fc, qq, SR, "low_pass")
            return lfilter_via_fsm(x, b, a).square().mean()

        out.append(("dasp biquad + lfilter_via_fsm", dasp_lp, [x, gain, fc, qq]))
    except ImportError as e:
        print(f"dasp-pytorch skipped: {e}")
    return out


# --------------------------------------------------------------------------------------
# Group 3: parametric EQ, 6 bands
# --------------------------------------------------------------------------------------


def peq_entries(batch, n, grafx_ok):
    from ddsp_models.effects import ParametricEQ

    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 1, n, generator=g).requires_grad_()
    ours = ParametricEQ(SR, n_peaks=4)
    ours_fsm = ParametricEQ(SR, n_peaks=4, mode="freq_sampling")
    raw = {s.name: torch.zeros(s.shape(batch, 1)).requires_grad_() for s in ours.param_specs()}

    def run_ours(proc):
        return lambda: proc(x, **proc.scale_params(raw)).square().mean()

    out = [
        ("ours ParametricEQ (exact)", run_ours(ours), [x, *raw.values()]),
        ("ours ParametricEQ (freq_sampling)", run_ours(ours_fsm), [x, *raw.values()]),
    ]
    if grafx_ok:
        from grafx.processors.eq import ParametricEqualizer

        p = [leaf((batch, 1, 6), 0.0) for _ in range(3)]  # w0, q_inv, log_gain (raw)
        for backend in ("ssm", "fsm"):
            kw = {"flashfftconv": False} if backend == "fsm" else {}
            peq = ParametricEqualizer(num_filters=6, backend=backend, **kw)
            out.append((f"GRAFX ParametricEqualizer ({backend})",
                        (lambda peq=peq: peq(x, *p).square().mean()), [x, *p]))
    try:
        from dasp_pytorch.functional import parametric_eq

        names = ["low_shelf"] + [f"band{i}" for i in range(4)] + ["high_shelf"]
        freqs = [100.0, 300.0, 1000.0, 2000.0, 4000.0, 6000.0]
        dp = {}
        for name, f in zip(names, freqs):
            dp[f"{name}_gain_db"] = leaf((batch, 1), 3.0)
            dp[f"{name}_cutoff_freq"] = leaf((batch, 1), f)
            dp[f"{name}_q_factor"] = leaf((batch, 1), 0.7071)
        out.append(("dasp parametric_eq (fsm)", lambda: parametric_eq(x, SR, **dp).square().mean(),
                    [x, *dp.values()]))
    except ImportError as e:
        print(f"dasp-pytorch skipped: {e}")
    return out


# --------------------------------------------------------------------------------------
# Group 4: time-varying lowpass biquad (cutoff and Q per frame)
# --------------------------------------------------------------------------------------


def tv_biquad_entries(batch, n):
    from ddsp_models.core import biquad_coefficients, fir_filter, lfilter, upsample_linear
    from ddsp_models.effects import Biquad

    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 1, n, generator=g).requires_grad_()
    frames = n // 256
    cutoff = (500 * 2 ** (2 * torch.rand(batch, frames, 1, generator=g))).requires_grad_()
    q = (0.5 + 4 * torch.rand(batch, frames, 1, generator=g)).requires_grad_()
    tpt = Biquad(SR, "lowpass", time_varying=True)

    def coefficients():
        return biquad_coefficients("lowpass", upsample_linear(cutoff, n)[..., 0],
                                   upsample_linear(q, n)[..., 0], 0.0, SR)

    def df1():
        b, a = coefficients()
        return lfilter(x[:, 0], b, a).square().mean()

    out = [
        ("ours Biquad(time_varying) (TPT SVF)", lambda: tpt(x, cutoff_hz=cutoff, q=q).square().mean(), [x, cutoff, q]),
        ("ours lfilter, per-sample DF-I", df1, [x, cutoff, q]),
    ]
    try:
        import torchlpc

        def lpc():
            b, a = coefficients()
            return torchlpc.sample_wise_lpc(fir_filter(x[:, 0], b), a[..., 1:]).square().mean()

        out.append(("torchlpc sample_wise_lpc, per-sample DF-I (FIR by torch)", lpc, [x, cutoff, q]))
    except ImportError as e:
        print(f"torchlpc skipped: {e}")
    return out


# --------------------------------------------------------------------------------------


def time_interleaved(entries, repeats, warmup=2):
    """Median forward+backward seconds per entry, timing the entries round-robin.

    The machine is shared and its load drifts over minutes; timing every entry once per round
    (instead of all runs of one entry, then the next) exposes all entries to the same drift,
    so their ratios stay meaningful."""
    runnable = []
    for name, fn, leaves in entries:
        try:
            time_fwd_bwd(fn, leaves, runs=1, warmup=warmup - 1)
            runnable.append((name, fn, leaves))
        except Exception as e:  # a peer failing must not hide the other figures
            print(f"{name}: could not run ({type(e).__name__}: {e})")
    samples = {name: [] for name, _, _ in runnable}
    for _ in range(repeats):
        for name, fn, leaves in runnable:
            samples[name].append(time_fwd_bwd(fn, leaves, runs=1, warmup=0))
    return {name: statistics.median(v) for name, v in samples.items()}


def time_group(title, entries, repeats, reference):
    """Time entries; ratios are against our entry of the same kind (exact / freq_sampling)."""
    times = time_interleaved(entries, repeats)
    rows = []
    for name, t in times.items():
        ref = reference(name)
        ratios = {f"vs {ref}": t / times[ref]} if ref in times and ref != name else {}
        rows.append((name, t, ratios))
    print_table(title, rows)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    try:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    n = int(args.seconds * SR)
    print(f"batch {args.batch}, {n} samples ({args.seconds} s at {SR} Hz), float32, "
          f"forward + backward, median of {args.repeats}, {args.threads} threads (torch, numba)")

    shimmed = shim_grafx()
    for s in shimmed:
        print("shim:", s)
    grafx_ok = True
    try:
        import grafx.processors.eq  # noqa: F401
        import grafx.processors.filter  # noqa: F401
    except Exception as e:
        grafx_ok = False
        print(f"GRAFX cannot run even with the shim: {type(e).__name__}: {e}")

    def ref_allpole(name):
        return "ours allpole (numba)"

    def ref_kind(prefix):
        return lambda name: f"{prefix} (freq_sampling)" if "fsm" in name or "freq_sampling" in name else f"{prefix} (exact)"

    time_group("Order-2 time-varying all-pole (B x L = %d x %d)" % (args.batch, n),
               allpole_entries(args.batch, n), args.repeats, ref_allpole)
    time_group("Static lowpass biquad", biquad_entries(args.batch, n, grafx_ok), args.repeats,
               ref_kind("ours Biquad"))
    time_group("Parametric EQ, 6 bands", peq_entries(args.batch, n, grafx_ok), args.repeats,
               ref_kind("ours ParametricEQ"))

    time_group("Time-varying lowpass biquad, cutoff and Q per 256-sample frame (no GRAFX/dasp "
               "equivalent; DF-I rows are the same filter in a structure that is not bounded "
               "under fast modulation)", tv_biquad_entries(args.batch, n), args.repeats,
               lambda name: "ours Biquad(time_varying) (TPT SVF)")

    dyn = pathlib.Path(__file__).with_name("iir_dynamics.py")
    if dyn.exists():
        spec = importlib.util.spec_from_file_location("iir_dynamics", dyn)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print("\n### Compressors (benchmarks/iir_dynamics.py)\n")
        mod.run(batch=args.batch, seconds=args.seconds, repeats=args.repeats, threads=args.threads)
    else:
        print("\n(benchmarks/iir_dynamics.py not found: no compressor rows)")


if __name__ == "__main__":
    main()
