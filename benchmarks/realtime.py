"""Real-time cost of the live (audio-in) model per host buffer (prints figures; not a test).

    python benchmarks/realtime.py [--rate 48000] [--buffers 64,512,2048] [--seconds 4]
                                  [--models violin,flute,trumpet,ddsp] [--device cpu|cuda]
                                  [--frames-per-step 1,4]

For each model, the scripted :class:`~ddsp_models.export.live.LiveModel` processes
``--seconds`` of a melody (plus a warm-up second, not timed) in host buffers of each size at
``--rate`` Hz, on one torch thread (a plugin's audio thread). Printed per buffer size: the
median, 99th-percentile and mean time per buffer, as a share of the buffer's duration (100 %
= just real time), the median and 99th-percentile CPU time of the process per buffer
(``time.process_time``: not inflated by other jobs preempting this one on shared cores, so
``p99`` wall >> ``p99`` CPU means the machine, not the model) and the declared latency.
``--frames-per-step`` lists values of :class:`LiveModel`'s option (frames rendered per synth
call at least; each value above 1 adds latency), one table block each.
``ddsp`` is an untrained model of DDSP's size (GRU 512, MLPs 3 x 512, 60 harmonics, 65
noise bands, 1 s reverb): untrained weights time the same as trained ones. ``--device cuda``
runs the model on the GPU (features and resamplers too).
Timings on a shared machine are noisy: report them as such.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def melody(seconds: float, sr: int) -> torch.Tensor:
    """(1, L) a vibrato melody of harmonic notes with short gaps."""
    t = np.arange(int(seconds * sr)) / sr
    notes = 196.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    f0 = notes[(t * 3).astype(int) % 8] * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(f0) / sr
    env = np.clip((t * 3 % 1) / 0.05, 0, 1) * np.clip((1 - t * 3 % 1) / 0.05, 0, 1)
    x = 0.3 * env * sum(np.sin(k * ph) * 0.6 ** k for k in range(1, 6))
    return torch.from_numpy(x.astype(np.float32))[None]


def models(names):
    from ddsp_models.registry import load_model

    for name in names:
        if name == "ddsp":
            from ddsp_models.graph import presets
            from ddsp_models.nn.autoencoder import Autoencoder

            torch.manual_seed(0)
            yield "ddsp-size (untrained)", Autoencoder(
                graph=presets.ddsp_default(16000).to_dict(), sample_rate=16000, frame_rate=250,
                decoder=dict(hidden_size=512, mlp_size=512, mlp_layers=3)).eval()
        else:
            yield name, load_model(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--buffers", default="64,512,2048")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--models", default="violin,flute,trumpet,ddsp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames-per-step", default="1")
    args = ap.parse_args()
    from ddsp_models.export.live import LiveModel

    torch.set_num_threads(args.threads)
    sr = args.rate
    x = melody(args.seconds + 1.0, sr).to(args.device)
    buffers = [int(b) for b in args.buffers.split(",")]
    print(f"# live model at {sr} Hz, {args.threads} thread(s), device {args.device}, "
          f"{args.seconds:g} s timed per buffer size; shared machine: noisy figures")
    print(f"{'model':24s} {'k':>2s} {'buffer':>6s} {'median ms':>10s} {'% buffer':>9s} "
          f"{'p99 ms':>8s} {'% buffer':>9s} {'mean %':>7s} {'cpu med %':>9s} {'cpu p99 %':>9s} "
          f"{'latency':>16s}")
    steps = [int(k) for k in args.frames_per_step.split(",")]
    for label, model in models(args.models.split(",")):
        for k in steps:
            live = torch.jit.script(LiveModel(model.to(args.device), host_rate=sr,
                                              frames_per_step=k))
            if args.device != "cpu":
                live = live.to(args.device)
            lat = live.get_latency()
            for b in buffers:
                live.reset()
                times, cpu = [], []
                warm = sr  # one second untimed
                with torch.inference_mode():
                    for i in range(0, x.shape[1] - b + 1, b):
                        blk = x[:, i:i + b]
                        t0, c0 = time.perf_counter(), time.process_time()
                        live.process(blk)
                        if args.device != "cpu":
                            torch.cuda.synchronize()
                        if i >= warm:
                            times.append(time.perf_counter() - t0)
                            cpu.append(time.process_time() - c0)
                dur = b / sr
                med, p99 = statistics.median(times), float(np.quantile(times, 0.99))
                print(f"{label:24s} {k:2d} {b:6d} {med * 1e3:10.3f} {100 * med / dur:9.1f} "
                      f"{p99 * 1e3:8.3f} {100 * p99 / dur:9.1f} "
                      f"{100 * statistics.mean(times) / dur:7.1f} "
                      f"{100 * statistics.median(cpu) / dur:9.1f} "
                      f"{100 * float(np.quantile(cpu, 0.99)) / dur:9.1f} {lat:6d} "
                      f"({lat / sr * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
