"""Seconds per training step of the DDSP autoencoder, and where the time goes.

Runs one optimiser step (forward + backward + Adam) of ``recipes/solo_instrument.yaml``
(GRU 512, 60 harmonics, 65 noise bands, 1 s trainable reverb, 6-resolution spectral loss) on a
batch of B examples of S seconds, three ways:

* ``ddsp-models``: the Autoencoder as trained by ``ddsp train`` (float32);
* ``ddsp-models, bf16-mixed``: the same under ``--trainer.precision bf16-mixed``: the decoder
  in bfloat16 (CPU autocast), synths, effects and loss still in float32;
* ``obvious``: the same decoder (written out again in this script, as one would), the same
  noise and reverb, but the harmonic synth written the obvious
  way (harmonic frequencies upsampled to audio rate, one float32 cumsum per harmonic, linear
  amplitude interpolation) and the loss computed by ``auraloss.freq.MultiResolutionSTFTLoss``
  set to the same math (FFT 2048..64, hop n/4, w_sc=0, w_lin_mag=1, w_log_mag=1; it averages
  where DDSP sums, which does not change the cost);
* ``obvious + auraloss defaults``: as ``obvious`` but ``MultiResolutionSTFTLoss()`` with its
  default settings (3 resolutions, small hops, spectral convergence + log magnitude);
* ``obvious, bf16 autocast``: ``obvious`` with bfloat16 autocast around the whole step.

It also times each part alone (forward + backward): decoder, synth graph, loss.
Figures depend on the machine and on what else runs; they are printed, never asserted.

    python benchmarks/train_step.py [--batch 16] [--seconds 4] [--steps 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddsp_models.core.upsample import upsample_linear  # noqa: E402
from ddsp_models.nn.autoencoder import Autoencoder  # noqa: E402
from ddsp_models.nn.decoder import scale_f0, scale_loudness  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, steps, warmup=1):
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def make_batch(b, seconds, sr, fr, device):
    n = int(seconds * sr)
    t = torch.arange(n, device=device) / sr
    f0 = (220 + 220 * torch.rand(b, 1, device=device)) * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t))
    phase = 2 * math.pi * torch.cumsum(f0.double() / sr, -1)
    audio = sum(torch.sin(k * phase).float() / k for k in range(1, 8)) * 0.2
    audio = audio + 0.01 * torch.randn_like(audio)
    hop = sr // fr
    f0_frames = f0[:, ::hop][..., None]
    loud = 20 * torch.log10(audio.reshape(b, -1, hop).square().mean(-1).sqrt() + 1e-5)[..., None]
    return {"audio": audio[:, None], "f0_hz": f0_frames.float(), "loudness_db": loud}


def obvious_harmonic(f0_hz, amplitude, distribution, n_samples, sample_rate):
    """The textbook harmonic synth: everything at audio rate, in float32."""
    k = torch.arange(1, distribution.shape[-1] + 1, device=f0_hz.device, dtype=f0_hz.dtype)
    freqs = f0_hz * k  # (B, T, K)
    dist = distribution * (freqs < sample_rate / 2)
    dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
    amps = amplitude * dist
    freqs_up = upsample_linear(freqs, n_samples)  # (B, L, K)
    amps_up = upsample_linear(amps, n_samples)
    phases = 2 * math.pi * torch.cumsum(freqs_up / sample_rate, dim=1)
    return (amps_up * torch.sin(phases)).sum(-1)[:, None]


def obvious_decoder(dec, f0_hz, loudness_db):
    """``RnnFcDecoder.forward`` (no z) with the plain ``nn.GRU`` call."""
    stacks = [dec.f0_mlp(scale_f0(f0_hz, dec.f0_scaling)),
              dec.loudness_mlp(scale_loudness(loudness_db, dec.loudness_db_range))]
    h, _ = dec.gru(torch.cat(stacks, dim=-1))
    return dec.head(dec.out_mlp(torch.cat(stacks + [h], dim=-1)))


class ObviousStep:
    """Same decoder/noise/reverb as ``model``; obvious harmonic synth; auraloss loss."""

    def __init__(self, model, loss):
        self.model, self.loss = model, loss
        g = model.graph
        self.noise, self.reverb = g.nodes["noise"], g.nodes["reverb"]
        self.harm = g.nodes["harmonic"]

    def render(self, raw, f0, n):
        p = self.model.graph.split_params(raw)
        h = obvious_harmonic(f0, p["harmonic"]["amplitude"], p["harmonic"]["harmonic_distribution"],
                             n, self.model.sample_rate)
        noise = self.noise(n_samples=n, **p["noise"])
        return self.reverb(h + noise, **p["reverb"])

    def __call__(self, batch):
        f0, ld = batch["f0_hz"], batch["loudness_db"]
        raw = obvious_decoder(self.model.decoder, f0, ld)
        out = self.render(raw, f0, batch["audio"].shape[-1])
        return self.loss(out, batch["audio"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "solo_instrument.yaml"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import auraloss

    device = torch.device(args.device)
    cfg = yaml.safe_load(Path(args.recipe).read_text())["model"]
    torch.manual_seed(0)
    model = Autoencoder(**cfg).to(device)
    if model.loss_fn.warmup_fft_sizes is not None:  # time the full loss, after any warm-up
        model.loss_fn.set_step(model.loss_fn.warmup_steps)
    sr, fr = model.sample_rate, model.frame_rate
    batch = make_batch(args.batch, args.seconds, sr, fr, device)
    n = batch["audio"].shape[-1]
    sizes = list(model.loss_fn.fft_sizes)
    aura_same = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=sizes, hop_sizes=[s // 4 for s in sizes], win_lengths=sizes,
        w_sc=0.0, w_lin_mag=1.0, w_log_mag=1.0, eps=1e-10).to(device)
    aura_default = auraloss.freq.MultiResolutionSTFTLoss().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(loss_fn):
        def run():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(batch)
            loss.backward()
            opt.step()
        return run

    ours = step(lambda b: model._step(b)[0])

    def bf16_step(b):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return model._step(b)[0]

    ours_bf16 = step(bf16_step)
    obvious_same = ObviousStep(model, aura_same)
    obvious = step(obvious_same)

    def obvious_bf16_step(b):  # autocast over the whole step, as one would add it
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return obvious_same(b).float()

    obvious_bf16 = step(obvious_bf16_step)
    obvious_default = step(ObviousStep(model, aura_default))

    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} x {args.seconds} s "
          f"@ {sr} Hz, recipe={Path(args.recipe).name}, {args.steps} timed steps")
    rows = [("ddsp-models", timed(ours, device, args.steps, args.warmup)),
            ("ddsp-models, bf16-mixed", timed(ours_bf16, device, args.steps, args.warmup)),
            ("obvious (same loss math via auraloss)", timed(obvious, device, args.steps, args.warmup)),
            ("obvious + auraloss defaults", timed(obvious_default, device, args.steps, args.warmup)),
            ("obvious, bf16 autocast", timed(obvious_bf16, device, args.steps, args.warmup))]
    for name, s in rows:
        print(f"  {name:40s} {s:8.3f} s/step   ({s / rows[0][1]:.2f}x ours)", flush=True)
    obvious_s = rows[2][1]
    print(f"  obvious / ours: {obvious_s / rows[0][1]:.2f}x (both float32), "
          f"{obvious_s / rows[1][1]:.2f}x (ours bf16-mixed); "
          f"obvious bf16 / ours bf16-mixed: {rows[4][1] / rows[1][1]:.2f}x")

    # parts, each forward + backward alone
    f0, ld = batch["f0_hz"], batch["loudness_db"]
    with torch.no_grad():
        raw0 = model.decoder(f0, ld)
        audio0 = model.graph.render(model.graph.split_params(raw0), n, controls={"f0_hz": f0})
    g_raw, g_audio = torch.randn_like(raw0), torch.randn_like(audio0)

    def dec():
        model.decoder(f0, ld).backward(g_raw)

    def dec_obvious():
        obvious_decoder(model.decoder, f0, ld).backward(g_raw)

    def graph_ours():
        r = raw0.clone().requires_grad_(True)
        model.graph.render(model.graph.split_params(r), n, controls={"f0_hz": f0}).backward(g_audio)

    def graph_obvious():
        r = raw0.clone().requires_grad_(True)
        obvious_same.render(r, f0, n).backward(g_audio)

    def loss_part(fn):
        def run():
            a = audio0.clone().requires_grad_(True)
            fn(a, batch["audio"]).backward()
        return run

    parts = {
        "decoder": (timed(dec, device, args.steps, args.warmup),
                    timed(dec_obvious, device, args.steps, args.warmup)),
        "synth graph": (timed(graph_ours, device, args.steps, args.warmup),
                        timed(graph_obvious, device, args.steps, args.warmup)),
        "loss": (timed(loss_part(model.loss_fn), device, args.steps, args.warmup),
                 timed(loss_part(aura_same), device, args.steps, args.warmup)),
    }
    tot = [sum(v[i] for v in parts.values()) for i in range(2)]
    print("  parts (forward + backward each)      ddsp-models           obvious")
    for name, (a, b) in parts.items():
        print(f"    {name:34s} {a:7.3f} s ({100 * a / tot[0]:4.1f} %)  {b:7.3f} s ({100 * b / tot[1]:4.1f} %)")
    print(f"    {'sum':34s} {tot[0]:7.3f} s           {tot[1]:7.3f} s")

    def dec_bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model.decoder(f0, ld)
        out.float().backward(g_raw)

    print(f"    {'decoder under bf16 autocast':34s} {timed(dec_bf16, device, args.steps, args.warmup):7.3f} s")
    sl = [parts["synth graph"][i] + parts["loss"][i] for i in range(2)]
    print(f"    synth graph + loss: obvious / ours = {sl[1] / sl[0]:.2f}x")


if __name__ == "__main__":
    main()
