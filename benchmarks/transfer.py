"""Timbre-transfer and streaming-export speed (prints figures; not a test).

    python benchmarks/transfer.py [--seconds 60] [--threads 2] [--f0 yin,crepe-tiny]
                                  [--decoder ddsp|small] [--onnx]

1. Offline transfer of ``--seconds`` of audio (16 kHz melody), split into feature extraction
   (per f0 method, loudness included) and synthesis (decoder + DSP in 4 s chunks with carried
   state), as multiples of real time.
2. The scripted streaming export at 16 kHz with 256-sample blocks (4 frames): time per block
   (median and 99th percentile), its share of the block's duration, and the latency (block +
   the renderer's 2-frame look-ahead).

The model is the DDSP default (60 harmonics, 65 noise bands, 1 s reverb) with DDSP's decoder
(GRU 512, MLPs 3 x 512) or ``--decoder small`` (GRU 128, MLPs 1 x 128); untrained weights
time the same as trained ones. Timings on a shared machine are noisy: report them as such.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ddsp_models.export.streaming import StreamingSynth
from ddsp_models.graph import presets
from ddsp_models.nn.autoencoder import Autoencoder
from ddsp_models.transfer.features import extract_features
from ddsp_models.transfer.synthesis import render

DECODERS = {"ddsp": dict(hidden_size=512, mlp_size=512, mlp_layers=3),
            "small": dict(hidden_size=128, mlp_size=128, mlp_layers=1)}


def melody(seconds: float, sr: int = 16000) -> torch.Tensor:
    t = np.arange(int(seconds * sr)) / sr
    notes = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    f0 = notes[(t * 2).astype(int) % 8] * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(f0) / sr
    env = np.minimum(1.0, 20 * (t * 2 % 1)) * np.exp(-1.5 * (t * 2 % 1))
    return torch.from_numpy((0.4 * env * sum(np.sin(k * ph) / k for k in (1, 2, 3)))
                            .astype(np.float32))


def timed(fn, clock=time.perf_counter):
    t0, c0 = clock(), time.process_time()
    out = fn()
    return out, clock() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--f0", default="yin,crepe-tiny", help="comma-separated f0 methods")
    ap.add_argument("--decoder", default="ddsp", choices=sorted(DECODERS))
    ap.add_argument("--blocks", type=int, default=300, help="streaming blocks timed")
    ap.add_argument("--block-frames", type=int, default=4,
                    help="frames per streaming block (4 = 256 samples at 16 kHz)")
    ap.add_argument("--onnx", action="store_true", help="also time the ONNX step (onnxruntime)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sr, fr = 16000, 250
    model = Autoencoder(graph=presets.ddsp_default(sr).to_dict(), sample_rate=sr, frame_rate=fr,
                        decoder=DECODERS[args.decoder]).eval()
    x = melody(args.seconds, sr)
    dur = x.shape[0] / sr
    print(f"# transfer of {dur:.0f} s at {sr} Hz, {args.threads} threads, decoder "
          f"{args.decoder} {DECODERS[args.decoder]}; shared machine: noisy figures")
    print(f"{'stage':34s} {'wall s':>8s} {'cpu s':>8s} {'x real time':>12s}  (wall)")
    feats = None
    for method in [m for m in args.f0.split(",") if m]:
        feats, wall, cpu = timed(lambda: extract_features(x, sr, fr, method))
        print(f"{'features (' + method + ' + loudness)':34s} {wall:8.2f} {cpu:8.2f} "
              f"{dur / wall:12.1f}")
    if feats is None:
        feats = extract_features(x, sr, fr, "yin")
    f0, ld = feats.f0_hz, feats.loudness_db
    render(model, f0[:250], ld[:250])  # warm-up
    _, wall, cpu = timed(lambda: render(model, f0, ld, chunk_frames=1000))
    print(f"{'synthesis (decoder + DSP, 4 s chunks)':34s} {wall:8.2f} {cpu:8.2f} "
          f"{dur / wall:12.1f}")
    raw = torch.randn(1, f0.shape[0], model.decoder.n_out)
    with torch.no_grad():
        eng = StreamingSynth(model)
        eng(f0[None, :4, None], ld[None, :4, None])
        _, wall_s, cpu_s = timed(lambda: [eng.synthesize(f0[None, c:c + 1000, None],
                                                         raw[:, c:c + 1000])
                                          for c in range(0, f0.shape[0], 1000)])
    print(f"{'  of which DSP (graph rendering)':34s} {wall_s:8.2f} {cpu_s:8.2f} "
          f"{dur / wall_s:12.1f}")
    eng = StreamingSynth(model)
    with torch.no_grad():
        eng(f0[None, :4, None], ld[None, :4, None])
        _, wall_d, cpu_d = timed(lambda: [eng._decode(f0[None, c:c + 1000, None],
                                                      ld[None, c:c + 1000, None])
                                          for c in range(0, f0.shape[0], 1000)])
    print(f"{'  of which decoder (GRU + MLPs)':34s} {wall_d:8.2f} {cpu_d:8.2f} "
          f"{dur / wall_d:12.1f}")

    # ---- streaming export, 256-sample blocks
    block = args.block_frames  # frames; 4 * 64 = 256 samples = 16 ms
    scripted = torch.jit.script(StreamingSynth(model))
    f0b = torch.full((1, block, 1), 330.0)
    ldb = torch.full((1, block, 1), -25.0)
    times, cpus = [], []
    with torch.no_grad():
        for i in range(args.blocks + 20):
            t0, c0 = time.perf_counter(), time.process_time()
            scripted(f0b, ldb)
            if i >= 20:
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
    block_s = block * 64 / sr
    med, p99 = statistics.median(times), float(np.quantile(times, 0.99))
    cmed = statistics.median(cpus)
    lat = block * 64 + scripted.latency_samples
    print(f"\n# streaming TorchScript, {block * 64}-sample blocks ({block_s * 1e3:.0f} ms), "
          f"{args.threads} threads")
    print(f"per block: median {med * 1e3:.2f} ms ({100 * med / block_s:.1f} % of the block), "
          f"p99 {p99 * 1e3:.2f} ms ({100 * p99 / block_s:.1f} %); median cpu time "
          f"{cmed * 1e3:.2f} ms ({100 * cmed / block_s:.1f} %)")
    print(f"latency: block {block * 64} + look-ahead {scripted.latency_samples} samples = "
          f"{lat} samples ({lat / sr * 1e3:.0f} ms) plus the host's buffering")
    if args.onnx:
        import tempfile

        import onnxruntime as ort

        from ddsp_models.export.onnx import STATE_NAMES, export_onnx, initial_state

        with tempfile.TemporaryDirectory() as d:
            path, _ = export_onnx(model, f"{d}/m.onnx", block_frames=block)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(path), opts)
        state = [s.numpy() for s in initial_state(StreamingSynth(model), 330.0)]
        feed = {"f0_hz": f0b.numpy(), "loudness_db": ldb.numpy(), **dict(zip(STATE_NAMES, state))}
        ts = []
        for i in range(args.blocks // 3 + 10):
            t0 = time.perf_counter()
            res = sess.run(None, feed)
            feed.update(zip(STATE_NAMES, res[1:]))
            if i >= 10:
                ts.append(time.perf_counter() - t0)
        m = statistics.median(ts)
        print(f"onnxruntime step: median {m * 1e3:.2f} ms "
              f"({100 * m / block_s:.1f} % of the block)")


if __name__ == "__main__":
    main()
