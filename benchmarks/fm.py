"""FMSynth (and NoiseBandSynth) timings at batch 128, 4 s at 16 kHz, 250 frames/s (issue #16).

Rows: forward (no grad) and forward+backward of FMSynth with 2 operators ("stack") and 6
operators ("dx7_1", without and with feedback on operator 5), NoiseBandSynth with 128 bands, and a floor: a bare ``torch.sin`` over
``B × n_operators × L`` (forward+backward), the least any sum of sines over all samples and
operators costs in PyTorch. Each row gives the median and the range (min..max) over
``--runs`` repeats. torchsynth (``FmVCO`` modulated by a ``SineVCO``, its 2-operator
equivalent) is timed only if it imports; it is never a dependency of this package.

    python benchmarks/fm.py [--runs 2] [--threads 2] [--device cpu|cuda] [--batch 128]

Figures on a shared machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ddsp_models.processors.fm import FMSynth, NoiseBandSynth

SR, FR, SECONDS = 16000, 250, 4.0


def timed(fn, runs: int, device: str, backward: bool, leaves=()):
    times = []
    for i in range(runs + 1):
        for x in leaves:
            x.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if backward:
            fn().square().mean().backward()
        else:
            with torch.no_grad():
                fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # the first call warms up
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def row(name, stats):
    med, lo, hi = stats
    print(f"| {name} | {med * 1e3:.0f} | {lo * 1e3:.0f} .. {hi * 1e3:.0f} |")


def torchsynth_rows(batch, runs, device):
    try:
        import torchsynth  # noqa: F401
        from torchsynth.config import SynthConfig
        from torchsynth.module import FmVCO, SineVCO
    except Exception as e:  # noqa: BLE001 - any import failure means "not comparable here"
        reason = "needs torchaudio" if "torchaudio" in str(e) else str(e) or type(e).__name__
        if isinstance(e, ModuleNotFoundError) and e.name == "torchsynth":
            reason = "not installed"
        print(f"torchsynth: not importable ({reason})")
        return
    try:
        cfg = SynthConfig(batch_size=batch, sample_rate=SR, buffer_size_seconds=SECONDS,
                          reproducible=False)
        mod, car = SineVCO(cfg).to(device), FmVCO(cfg).to(device)
        midi = torch.full((batch,), 69.0, device=device)

        def fn():
            return car(midi, mod(midi, torch.zeros(batch, int(SR * SECONDS), device=device)))

        row("torchsynth SineVCO -> FmVCO, forward", timed(fn, runs, device, False))
        row("torchsynth SineVCO -> FmVCO, forward+backward",
            timed(fn, runs, device, True, list(mod.parameters()) + list(car.parameters())))
    except Exception as e:  # noqa: BLE001
        print(f"torchsynth: imported, but the comparison failed: {type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev, b = a.device, a.batch
    frames = int(SECONDS * FR)
    n = frames * (SR // FR)
    g = torch.Generator().manual_seed(0)
    print(f"batch {b}, {SECONDS:g} s at {SR} Hz ({n} samples), {frames} frames, float32, "
          f"device {dev}, {a.threads} threads, {a.runs} runs (median, range)\n")
    print("| what | median ms | range ms |\n|---|---|---|")
    for n_ops, routing, fb in ((2, "stack", []), (6, "dx7_1", []), (6, "dx7_1", [5])):
        fm = FMSynth(SR, n_operators=n_ops, routing=routing, feedback=fb).to(dev)
        params = {k: v.to(dev) for k, v in fm.random_params(b, frames, generator=g).items()}
        leaves = [v.requires_grad_() for k, v in params.items() if k != "f0_hz"]
        fn = lambda fm=fm, params=params: fm(**params, n_samples=n)  # noqa: E731
        what = f"FMSynth {n_ops} ops ({routing}{', feedback on op 5' if fb else ''})"
        if not fb:
            row(f"{what}, forward", timed(fn, a.runs, dev, False))
        row(f"{what}, forward+backward", timed(fn, a.runs, dev, True, leaves))
        if fb:
            continue
        x = torch.rand(b, n_ops, n, device=dev, requires_grad=True)
        row(f"floor: torch.sin over {b}x{n_ops}x{n}, forward+backward",
            timed(lambda x=x: torch.sin(x), a.runs, dev, True, [x]))
    nb = NoiseBandSynth(SR, n_bands=128).to(dev)
    amps = nb.random_params(b, frames, generator=g)["amplitudes"].to(dev).requires_grad_()
    fn = lambda: nb(amps, n_samples=n)  # noqa: E731
    row("NoiseBandSynth 128 bands, forward", timed(fn, a.runs, dev, False))
    row("NoiseBandSynth 128 bands, forward+backward", timed(fn, a.runs, dev, True, [amps]))
    print()
    torchsynth_rows(b, a.runs, dev)


if __name__ == "__main__":
    main()
