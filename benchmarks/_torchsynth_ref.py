"""torchsynth's equivalent modules, timed beside ours (``envelopes.py``, ``fm.py``; issue #16).

torchsynth (1.0) is never a dependency of this package: it needs torchaudio, whose wheels are
tied to one torch build, so it is usually absent and the scripts then print our figures only.
It installs in a side environment next to torch 2.5.1 (see docs/envelopes.md, "Benchmark").

What is compared (same batch, duration, sample rate, device, dtype float32, thread count):

* ``ADSR``: torchsynth's ``ADSR`` (a note held ``note_on_duration`` seconds) rendered at a
  control rate and brought to audio rate by its ``ControlRateUpsample`` (how its ``Voice``
  uses it; timed against ours with ``resolution="frame"``, the same control-rate work), and
  the same module run at the audio rate (``control_rate = sample_rate``: one value per
  sample, against ours with ``resolution="sample"``);
* ``LFO``: torchsynth's ``LFO`` (it always computes its five shapes and mixes them; here all
  weight on the sine), at a control rate + upsampling and at the audio rate;
* FM: torchsynth's ``SineVCO`` modulating an ``FmVCO`` (its 2-operator FM), bare, and with the
  per-frame operator levels ours always takes (the modulator and the carrier each scaled by
  an upsampled per-frame control, as a ``ControlRateUpsample`` + ``VCA`` patch does).

torchsynth's parameters are ``nn.Parameter`` s in ``[0, 1]`` (mapped to their ranges inside the
forward), so forward+backward differentiates with respect to them (torchsynth 1.0 says its
gradients are "not explicitly tested"; they run). Timing: :func:`paired` alternates our call
and torchsynth's, one repeat at a time, so both see the same load on a shared machine, and
reports each side's median and range and the median and range of the per-repeat ratios.
"""

from __future__ import annotations

import statistics
from typing import Sequence

import torch
from _timing import call_once, clock_named


def load():
    """``(namespace, "")`` with torchsynth's config and modules, or ``(None, reason)``."""
    try:
        from torchsynth.config import SynthConfig
        from torchsynth.module import ADSR, LFO, VCA, ControlRateUpsample, FmVCO, SineVCO
        from torchsynth.signal import Signal
    except Exception as e:  # noqa: BLE001 - any import failure means "not comparable here"
        if isinstance(e, ModuleNotFoundError) and e.name == "torchsynth":
            return None, "not installed"
        if "torchaudio" in str(e):
            return None, "it needs torchaudio, which does not import here"
        return None, f"{type(e).__name__}: {e}"
    import torchsynth

    ns = dict(SynthConfig=SynthConfig, ADSR=ADSR, LFO=LFO, VCA=VCA, FmVCO=FmVCO,
              SineVCO=SineVCO, ControlRateUpsample=ControlRateUpsample, Signal=Signal,
              version=getattr(torchsynth, "__version__", "?"))
    return type("torchsynth", (), ns), ""


def config(ts, batch: int, sample_rate: int, seconds: float, control_rate: int, device):
    """A torchsynth ``SynthConfig`` (not reproducible: any batch size, no seeded noise)."""
    cfg = ts.SynthConfig(batch_size=batch, sample_rate=sample_rate,
                         buffer_size_seconds=seconds, control_rate=control_rate,
                         reproducible=False)
    cfg.to(device)
    return cfg


def _set(module, values: dict, batch: int, device):
    for name, v in values.items():
        module.set_parameter(name, torch.full((batch,), float(v), device=device))
    return module


def adsr(ts, cfg, batch: int, device, note_seconds: float, upsample: bool, **values):
    """``(fn, leaves)``: ``fn()`` -> ``(B, n_samples)`` envelope (control rate upsampled to
    audio rate if ``upsample``); ``values`` in seconds / level (``attack``, ``decay``,
    ``sustain``, ``release``, ``alpha``: 1 linear, > 1 a power curve)."""
    env = _set(ts.ADSR(cfg, device=device), values, batch, device).to(device)
    up = ts.ControlRateUpsample(cfg, device=device).to(device) if upsample else None
    dur = torch.full((batch,), note_seconds, device=device)

    def fn():
        y = env(dur)
        return up(y) if up is not None else y

    return fn, list(env.parameters())


def lfo(ts, cfg, batch: int, device, upsample: bool, frequency: float, phase: float):
    """``(fn, leaves)``: a sine-selected torchsynth ``LFO`` -> ``(B, n_samples)``."""
    values = {"frequency": frequency, "initial_phase": phase, "sin": 1.0, "tri": 0.0,
              "saw": 0.0, "rsaw": 0.0, "sqr": 0.0}
    osc = _set(ts.LFO(cfg, device=device), values, batch, device).to(device)
    up = ts.ControlRateUpsample(cfg, device=device).to(device) if upsample else None

    def fn():
        y = osc()
        return up(y) if up is not None else y

    return fn, list(osc.parameters())


def fm_pair(ts, cfg, batch: int, device, midi: float, levels_frames: int | None = None,
            generator: torch.Generator | None = None):
    """``(fn, leaves)``: ``SineVCO`` -> ``FmVCO`` at ``midi``, ``(B, n_samples)``.

    With ``levels_frames``, the modulator's output and the carrier's are each scaled by a
    per-frame level ``(B, levels_frames)`` (leaves), upsampled linearly to audio rate, as our
    ``FMSynth`` scales its operators by per-frame ``mod_indices`` / ``amplitudes``.
    """
    mod = _set(ts.SineVCO(cfg, device=device), {"tuning": 0.0, "initial_phase": 0.0},
               batch, device).to(device)
    car = _set(ts.FmVCO(cfg, device=device), {"tuning": 0.0, "mod_depth": 2.0,
                                               "initial_phase": 0.0}, batch, device).to(device)
    f0 = torch.full((batch,), midi, device=device)
    leaves = list(mod.parameters()) + list(car.parameters())
    if levels_frames is None:
        return (lambda: car(f0, mod(f0))), leaves
    up = ts.ControlRateUpsample(cfg, device=device).to(device)
    vca = ts.VCA(cfg, device=device).to(device)
    g = [(0.5 + 0.1 * torch.rand(batch, levels_frames, generator=generator)).to(device)
         .requires_grad_() for _ in range(2)]

    def fn():
        levels = [up(x.as_subclass(ts.Signal)) for x in g]
        return vca(car(f0, vca(mod(f0), levels[0])), levels[1])

    return fn, leaves + g


def paired(ours, theirs, runs: int, device: str, backward: bool, clock: str = "wall") -> dict:
    """Time ``ours = (fn, leaves)`` and ``theirs`` alternately (one warm-up call each, then
    ``runs`` repeats, the order swapped every repeat); ``fn()`` returns the output tensor.

    Returns ``{"ours": [s], "theirs": [s], "ratio": [ours / theirs per repeat]}``.
    """
    now = clock_named(clock)
    out = {"ours": [], "theirs": [], "ratio": []}
    for side in (ours, theirs):
        call_once(*side, backward, device, now)
    for i in range(runs):
        order = (("ours", ours), ("theirs", theirs))
        got = {k: call_once(*side, backward, device, now) for k, side in order[:: 1 - 2 * (i % 2)]}
        out["ours"].append(got["ours"])
        out["theirs"].append(got["theirs"])
        out["ratio"].append(got["ours"] / got["theirs"])
    return out


def stats(xs: Sequence[float], scale: float = 1e3, fmt: str = "{:.0f}") -> str:
    """``"median (min..max)"`` of ``xs`` times ``scale``."""
    med, lo, hi = (scale * v for v in (statistics.median(xs), min(xs), max(xs)))
    return f"{fmt.format(med)} ({fmt.format(lo)}..{fmt.format(hi)})"


def print_comparison(rows, header: str) -> None:
    """Rows ``(ours_name, theirs_name, pass_name, paired_result)`` as a Markdown table."""
    print(header)
    print("| ours | torchsynth | pass | ours ms | torchsynth ms | ours / torchsynth |")
    print("|---|---|---|---|---|---|")
    for ours_name, theirs_name, pass_name, r in rows:
        print(f"| {ours_name} | {theirs_name} | {pass_name} | {stats(r['ours'])} | "
              f"{stats(r['theirs'])} | {stats(r['ratio'], 1.0, '{:.2f}')} |")
