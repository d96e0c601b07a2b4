"""FDNReverb forward + backward: the exact block recursion and the frequency-sampled mode
against a per-sample torch loop (the same network, autograd through every sample), and
flamo's frequency-sampled FDN where flamo imports (never a dependency of this package).

    python3 benchmarks/fdn.py            # about a minute, one CPU thread

Setting: 16 kHz, batch 4, 1 s of noise, 8 lines (the default prime delays 401..953 samples),
Householder matrix, shelf absorption, T60 1.2 s low / 0.5 s high. The per-sample loop runs
0.25 s of audio (its time grows linearly; the table scales it to 1 s and says so).
``freq_sampling`` uses a 32768-tap FIR (2 s); flamo the same FFT size and its homogeneous
(frequency-independent) attenuation, so it does a little less work per bin.

Each figure is the median of the runs and the range (min-max) over them. Where flamo
imports, the script also checks that its impulse response equals ours for the same network
(homogeneous decay: t60_low = t60_high).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddsp_models.core.fdn import feedback_matrix, matrix_factor  # noqa: E402
from ddsp_models.processors.fdn import FDNReverb  # noqa: E402

SR, BATCH, SECONDS, LOOP_SECONDS, N_FFT = 16000, 4, 1.0, 0.25, 32768


def timed(fn, leaves, runs, warmup=1):
    times = []
    for i in range(warmup + runs):
        for t in leaves:
            t.grad = None
        t0 = time.perf_counter()
        out = fn()
        out.square().sum().backward()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return statistics.median(times), min(times), max(times)


def leaves_of(n, batch, length, g):
    x = 0.1 * torch.randn(batch, 1, length, generator=g)
    params = {
        "input_gains": torch.randn(batch, n, generator=g) / n ** 0.5,
        "output_gains": torch.randn(batch, n, generator=g) / n ** 0.5,
        "t60_low_s": torch.full((batch, 1), 1.2),
        "t60_high_s": torch.full((batch, 1), 0.5),
        "crossover_hz": torch.full((batch, 1), 2000.0),
    }
    return x.requires_grad_(), {k: v.requires_grad_() for k, v in params.items()}


def per_sample_loop(proc, x, params):
    """The same FDN one sample at a time in torch (the slow exact reference)."""
    gi, go, mat, b, a = proc.coefficients(params, x)
    u = x.mean(1)
    delays = proc.delays
    n, length = len(delays), u.shape[-1]
    zero = u.new_zeros(u.shape[0], n)
    v_hist, x1, y1, out = [], zero, zero, []
    for t in range(length):
        s = torch.stack([v_hist[t - m][:, i] if t >= m else zero[:, i]
                         for i, m in enumerate(delays)], dim=1)
        absorbed = b[..., 0] * s + b[..., 1] * x1 - a[..., 1] * y1
        x1, y1 = s, absorbed
        out.append(torch.einsum("bcn,bn->bc", go, absorbed))
        v_hist.append(gi * u[:, t:t + 1] + absorbed @ mat.T)
    return x + torch.stack(out, dim=-1)


def flamo_fdn(delays, nfft, matrix, gains_in, gains_out, line_gains):
    from collections import OrderedDict

    from flamo.processor import dsp, system

    n = len(delays)
    kw = dict(nfft=nfft, requires_grad=True, device="cpu")
    inp = dsp.Gain(size=(n, 1), **kw)
    outp = dsp.Gain(size=(1, n), **kw)
    dl = dsp.parallelDelay(size=(n,), max_len=max(delays), nfft=nfft, isint=True, fs=SR,
                            device="cpu")
    dl.assign_value(dl.sample2s(torch.tensor(delays)))
    fb = dsp.Gain(size=(n, n), **kw)
    att = dsp.parallelGain(size=(n,), **kw)
    with torch.no_grad():
        inp.assign_value(gains_in[:, None])
        outp.assign_value(gains_out[None, :])
        fb.assign_value(matrix)
        att.assign_value(line_gains)
    loop = system.Recursion(fF=system.Series(OrderedDict({"delays": dl, "attenuation": att})),
                            fB=fb)
    core = system.Series(OrderedDict({"input_gain": inp, "loop": loop, "output_gain": outp}))
    return system.Shell(core=core, input_layer=dsp.FFT(nfft), output_layer=dsp.iFFT(nfft))


def check_against_flamo(n_lines=8):
    """flamo's frequency-sampled IR of the same homogeneous FDN against ours (float64 math
    here, float32 in flamo: agreement to float32 rounding)."""
    proc = FDNReverb(SR, mode="freq_sampling", fir_length=8192, add_dry=False)
    g = torch.Generator().manual_seed(1)
    x, params = leaves_of(n_lines, 1, 8192, g)
    params = {k: v.detach() for k, v in params.items()}
    params["t60_high_s"] = params["t60_low_s"]  # homogeneous: frequency-independent gains
    ours = proc.double().impulse_response({k: v.double() for k, v in params.items()},
                                          torch.zeros((), dtype=torch.float64))[0, 0]
    m = torch.tensor(proc.delays, dtype=torch.float64)
    line_gains = 10.0 ** (-3.0 * m / (SR * params["t60_low_s"][0, 0].double()))
    mat = feedback_matrix("householder", matrix_factor("householder", n_lines))
    shell = flamo_fdn(proc.delays, 8192, mat, params["input_gains"][0],
                      params["output_gains"][0], line_gains.float())
    impulse = torch.zeros(1, 8192, 1)
    impulse[:, 0] = 1
    with torch.no_grad():
        theirs = shell(impulse)[0, :, 0].double()
    return float((theirs - ours).abs().max() / ours.abs().max())


def main():
    torch.set_num_threads(1)  # tiny ops: one thread is fastest, and steadier on a shared machine
    g = torch.Generator().manual_seed(0)
    length, loop_length = int(SR * SECONDS), int(SR * LOOP_SECONDS)
    exact = FDNReverb(SR)
    fast = FDNReverb(SR, mode="freq_sampling", fir_length=N_FFT)
    n = exact.n_lines
    x, params = leaves_of(n, BATCH, length, g)
    leaves = [x, *params.values()]
    rows = []

    t = timed(lambda: exact(x, **params), leaves, runs=5)
    rows.append(("FDNReverb recursive (exact, block recursion)", t, 1.0))
    t = timed(lambda: fast(x, **params), leaves, runs=5)
    rows.append((f"FDNReverb freq_sampling ({N_FFT}-tap FIR; Householder: O(N) per bin)", t,
                 1.0))
    general = FDNReverb(SR, mode="freq_sampling", fir_length=N_FFT, matrix="orthogonal")
    t = timed(lambda: general(x, **params), leaves, runs=3)
    rows.append((f"FDNReverb freq_sampling ({N_FFT}-tap FIR; orthogonal: N x N solve per bin)",
                 t, 1.0))
    xl = x[..., :loop_length].detach().requires_grad_()
    t = timed(lambda: per_sample_loop(exact, xl, params), [xl, *params.values()], runs=2,
              warmup=0)
    scale = SECONDS / LOOP_SECONDS
    rows.append((f"per-sample torch loop (exact; {LOOP_SECONDS} s run, x{scale:g})", t, scale))

    flamo_note = ""
    try:
        import flamo  # noqa: F401
    except Exception as e:  # not installed, or its optional dependencies missing
        flamo_note = f"flamo: not importable here ({type(e).__name__}: {e})"
    else:
        mat = feedback_matrix("householder", matrix_factor("householder", n))
        m = torch.tensor(exact.delays, dtype=torch.float32)
        shell = flamo_fdn(exact.delays, N_FFT, mat, params["input_gains"][0].detach(),
                          params["output_gains"][0].detach(), 10.0 ** (-3.0 * m / (SR * 1.0)))
        xf = x.detach()[:, 0, :, None].requires_grad_()  # flamo: (B, T, channels)
        t = timed(lambda: shell(xf), [xf, *shell.parameters()], runs=5)
        rows.append((f"flamo Shell FDN ({N_FFT}-point FFT, homogeneous decay)", t, 1.0))
        from importlib.metadata import version

        flamo_note = (f"flamo {version('flamo')}: IR of the same homogeneous "
                      f"FDN vs ours, max rel. difference {check_against_flamo(n):.1e}; "
                      f"flamo / our freq_sampling time: {t[0] / rows[1][1][0]:.2f}x, "
                      f"flamo / our exact recursion: {t[0] / rows[0][1][0]:.2f}x")

    exact_ms = rows[0][1][0] * 1e3
    print(f"FDNReverb, forward + backward, {SR} Hz, batch {BATCH}, {SECONDS:g} s, {n} lines, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads (CPU)\n")
    print("| method | ms per 1 s of audio (median) | range over runs | vs exact recursion |")
    print("|---|---|---|---|")
    for name, (med, lo, hi), scale in rows:
        print(f"| {name} | {med * scale * 1e3:.1f} | {lo * scale * 1e3:.1f}-"
              f"{hi * scale * 1e3:.1f} | {med * scale * 1e3 / exact_ms:.2f}x |")
    if flamo_note:
        print("\n" + flamo_note)


if __name__ == "__main__":
    main()
