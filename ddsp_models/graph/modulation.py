"""Modulation edges: one node's output changing another node's parameter, at frame rate.

A :class:`~ddsp_models.graph.types.Modulation` ``src ~> dst.param`` (added with
:meth:`ProcessorGraph.modulate`, or a ``modulations:`` entry of a graph dict) reads the mono
output ``y (B, 1, L)`` of ``src`` — a control source such as
:class:`~ddsp_models.processors.lfo.LFO` or :class:`~ddsp_models.processors.adsr.ADSR`, or
any processor — at each frame's centre sample, ``m[t] = y[t · hop]`` ``(B, T, 1)``, and
combines it with the time-varying parameter ``p (B, T, size)`` of ``dst`` (each feature
alike) before ``dst`` renders:

* ``"add"``: ``p + amount · m`` (in the parameter's unit: Hz for a cutoff);
* ``"multiply"``: ``p · (1 - amount + amount · m)`` (a VCA: ``amount = 1`` gives ``p · m``);
* ``"octaves"``: ``p · 2 ** (amount · m)`` (musical for frequencies).

Several modulations of one parameter apply in the order they were added. The modulated value
is a frame-rate control like any other: ``dst`` interpolates it as it does its own parameters,
so modulation costs nothing per sample and works for every processor unchanged. (Modulating at
audio rate would need each processor to take per-sample parameters; frame rate is what the
block contract carries.) Static parameters cannot be modulated. Externals (``f0_hz``) can: the
modulated copy goes to that node alone (vibrato).

Streaming (:class:`~ddsp_models.graph.stream.GraphStream`): a modulation edge counts like an
audio edge for latency (``dst`` waits for its sources), the frames of ``m`` are delayed to
line up with ``dst``'s delayed parameters, and during ``dst``'s own flush the last modulated
frame is held, as offline rendering holds it.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from .types import MOD_MODES, GraphError, Modulation

__all__ = ["apply_modulation", "frame_values", "modulation_to_dict", "modulation_from_dict",
           "MOD_MODES"]


def apply_modulation(value: Tensor, mod: Tensor, amount: float, mode: str) -> Tensor:
    """``value`` ``(B, T, size)`` modulated by ``mod`` ``(B, T, 1)`` (see the module docstring).
    Scriptable."""
    m = mod.to(value.dtype)
    if mode == "add":
        return value + amount * m
    if mode == "multiply":
        return value * (1.0 - amount + amount * m)
    return value * torch.exp2(amount * m)


def frame_values(y: Tensor, hop: int, n_frames: int) -> Tensor:
    """The mono signal ``y`` ``(B, 1, >= n_frames * hop)`` at each frame's centre sample
    ``t · hop``: ``(B, n_frames, 1)``. Scriptable."""
    b = y.shape[0]
    return y[:, 0, :n_frames * hop].reshape(b, n_frames, hop)[:, :, 0:1]


def modulation_to_dict(m: Modulation) -> dict:
    """``{from: src, to: "dst.param", mode: ..., amount: ...}`` (the YAML form)."""
    return {"from": m.src, "to": f"{m.dst}.{m.param}", "mode": m.mode, "amount": m.amount}


def modulation_from_dict(d: Mapping) -> dict:
    """A modulation entry → keyword arguments of :meth:`ProcessorGraph.modulate`.

    Accepts ``{from: src, to: dst.param, mode:, amount:}`` (mode defaults to ``add``, amount
    to 1) and ``{src:, dst:, param:, ...}``."""
    if not isinstance(d, Mapping):
        raise GraphError(f"modulation {d!r} must be a mapping like "
                         "{from: lfo, to: filter.cutoff_hz, mode: add, amount: 1.0}")
    d = dict(d)
    if "from" in d or "to" in d:
        if not {"from", "to"} <= set(d) or not isinstance(d["to"], str) or "." not in d["to"]:
            raise GraphError(f"modulation {d} needs 'from: NODE' and 'to: NODE.PARAM'")
        dst, param = d.pop("to").split(".", 1)
        kw = {"src": d.pop("from"), "dst": dst, "param": param}
    else:
        if not {"src", "dst", "param"} <= set(d):
            raise GraphError(f"modulation {d} needs from/to (or src, dst, param)")
        kw = {k: d.pop(k) for k in ("src", "dst", "param")}
    for k in ("mode", "amount"):
        if k in d:
            kw[k] = d.pop(k)
    if d:
        raise GraphError(f"modulation has unexpected keys {sorted(d)}; expected from, to, mode, "
                         "amount")
    return kw


def check_mode(mode: str, amount) -> float:
    if mode not in MOD_MODES:
        raise GraphError(f"modulation mode must be one of {MOD_MODES}, got {mode!r}")
    try:
        return float(amount)
    except (TypeError, ValueError):
        raise GraphError(f"modulation amount must be a number, got {amount!r}") from None
