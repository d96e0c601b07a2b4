"""Timbre-transfer and streaming-export speed (prints figures; not a test).

    python benchmarks/transfer.py [--seconds 60] [--threads 2] [--f0 yin,crepe-tiny]
                                  [--decoder ddsp|small] [--onnx]

1. Offline transfer of ``--seconds`` of audio (16 kHz melody), split into feature extraction
   (per f0 method, loudness included) and synthesis (decoder + DSP in 4 s chunks with carried
   state), as multiples of real time.
2. The scripted streaming export at 16 kHz with 256-sample blocks (4 frames) on ``--stream-threads``
   (default 1) thread(s), for the shipped ``violin``, a ``delay_iir``-graph model with the tiny
   decoder, and the model of part 1: time per block (median and 99th percentile over
   ``--repeats`` runs of ``--blocks`` blocks), its share of the block's duration, and the
   latency (block + the graph's declared look-ahead).

The model of part 1 is the DDSP default (60 harmonics, 65 noise bands, 1 s reverb) with DDSP's
decoder (GRU 512, MLPs 3 x 512) or ``--decoder small`` (GRU 128, MLPs 1 x 128); untrained
weights time the same as trained ones. Timings on a shared machine are noisy: report them as
such.
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
    ap.add_argument("--blocks", type=int, default=300, help="streaming blocks timed per run")
    ap.add_argument("--repeats", type=int, default=3, help="streaming runs (figures pool them)")
    ap.add_argument("--stream-threads", type=int, default=1,
                    help="torch threads for the streaming part (a plugin runs on one)")
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
    with torch.no_grad():
        _, wall_d, cpu_d = timed(lambda: [model.decoder(f0[None, c:c + 1000, None],
                                                        ld[None, c:c + 1000, None])
                                          for c in range(0, f0.shape[0], 1000)])
    print(f"{'  of which decoder (GRU + MLPs)':34s} {wall_d:8.2f} {cpu_d:8.2f} "
          f"{dur / wall_d:12.1f}")

    # ---- streaming export, 256-sample blocks
    torch.set_num_threads(args.stream_threads)
    block = args.block_frames  # frames; 4 * 64 = 256 samples = 16 ms
    print(f"\n# streaming TorchScript, {block * 64}-sample blocks ({block * 64 / sr * 1e3:.0f} ms)"
          f", {args.stream_threads} thread(s), {args.repeats} runs x {args.blocks} blocks")
    print(f"{'model':26s} {'median ms':>10s} {'% block':>8s} {'p99 ms':>8s} {'% block':>8s} "
          f"{'latency':>14s}")
    for label, m in stream_models(model, args.decoder):
        stream_row(label, m, block, args)
    if args.onnx:
        onnx_row(model, block, args)


def stream_models(model, decoder_name):
    from ddsp_models.registry import load_model

    yield "violin (shipped)", load_model("violin")
    torch.manual_seed(0)
    yield "delay_iir, tiny decoder", Autoencoder(
        graph=presets.delay_iir(16000).to_dict(), decoder=DECODERS["small"]).eval()
    yield f"ddsp_default, {decoder_name} decoder", model


def stream_row(label, model, block, args):
    scripted = torch.jit.script(StreamingSynth(model))
    hop = scripted.hop
    f0b = torch.full((1, block, 1), 330.0)
    ldb = torch.full((1, block, 1), -25.0)
    times = []
    with torch.no_grad():
        for _ in range(args.repeats):
            scripted.reset()
            for i in range(args.blocks + 20):
                t0 = time.perf_counter()
                scripted(f0b, ldb)
                if i >= 20:
                    times.append(time.perf_counter() - t0)
    block_s = block * hop / model.sample_rate
    med, p99 = statistics.median(times), float(np.quantile(times, 0.99))
    lat = block * hop + scripted.latency_samples
    print(f"{label:26s} {med * 1e3:10.2f} {100 * med / block_s:8.1f} {p99 * 1e3:8.2f} "
          f"{100 * p99 / block_s:8.1f} {lat:6d} ({lat / model.sample_rate * 1e3:.0f} ms)")


def onnx_row(model, block, args):
    import tempfile

    import onnxruntime as ort

    from ddsp_models.export.onnx import export_onnx, initial_state, onnx_names

    with tempfile.TemporaryDirectory() as d:
        path, info = export_onnx(model, f"{d}/m.onnx", block_frames=block)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.stream_threads
        sess = ort.InferenceSession(str(path), opts)
    engine = StreamingSynth(model, block_frames=block)
    names = onnx_names(engine)
    feed = {"f0_hz": np.full((1, block, 1), 330.0, np.float32),
            "loudness_db": np.full((1, block, 1), -25.0, np.float32),
            **{k: v.numpy() for k, v in zip(names, initial_state(engine))}}
    ts = []
    for i in range(args.blocks + 10):
        t0 = time.perf_counter()
        res = sess.run(None, feed)
        feed.update(zip(names, res[1:]))
        if i >= 10:
            ts.append(time.perf_counter() - t0)
    m = statistics.median(ts)
    block_s = block * engine.hop / model.sample_rate
    print(f"{'ddsp_default, onnxruntime':26s} {m * 1e3:10.2f} {100 * m / block_s:8.1f}")


if __name__ == "__main__":
    main()
