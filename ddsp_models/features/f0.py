"""``compute_f0``: fundamental frequency and confidence per frame, with CREPE or YIN.

Frame ``t`` is centred on input sample ``t * hop`` (``hop = sample_rate / frame_rate``) and
there are ``samples // hop`` frames, at any input sample rate. CREPE runs at 16 kHz: the audio
is resampled with soxr (delay-compensated) and CREPE's frames are centred on the same instants
``t / frame_rate`` seconds. YIN runs at the input rate.

Unvoiced frames (confidence below ``voicing_threshold``) keep a plausible f0: it is linearly
interpolated, in cents, between the neighbouring voiced frames and held before the first and
after the last one, so a synthesiser driven by it never jumps to a random pitch; their
confidence stays low, so downstream code can still gate on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError
from .checks import check_audio
from .crepe import SILENT_STD, crepe_activations, decode_activations
from .crepe_net import CREPE_SAMPLE_RATE
from .resample import resample
from .yin import cmnd, parabolic_minimum, yin

__all__ = ["compute_f0", "fill_unvoiced", "refine_f0", "auto_crepe_stride", "F0_METHODS"]

#: method → default confidence below which a frame counts as unvoiced.
F0_METHODS = {"crepe-full": 0.5, "crepe-tiny": 0.5, "yin": 0.5, "causal-yin": 0.5}


def fill_unvoiced(f0_hz: Tensor, voiced: Tensor) -> Tensor:
    """Replace f0 of unvoiced frames by interpolation (in log frequency) between voiced ones.

    Args:
        f0_hz: ``(batch, frames)`` positive.
        voiced: ``(batch, frames)`` bool.

    Returns:
        ``(batch, frames)``; rows with no voiced frame are returned unchanged.
    """
    out = f0_hz.clone()
    logf = torch.log2(f0_hz.detach().double().clamp_min(1e-3)).cpu().numpy()
    v = voiced.cpu().numpy()
    t = np.arange(f0_hz.shape[-1])
    for i in range(f0_hz.shape[0]):
        if v[i].all() or not v[i].any():
            continue
        filled = np.interp(t, t[v[i]], logf[i, v[i]])  # holds the end values
        out[i] = torch.from_numpy(2.0**filled).to(out)
    return out


def auto_crepe_stride(frame_rate: float, min_rate: float = 100.0) -> int:
    """The largest stride (1..4) that keeps CREPE at ``min_rate`` frames/s or more (its
    training rate, 100) with a hop that stays a whole multiple of 4 samples at 16 kHz (for
    the shared first layer)."""
    hop16 = CREPE_SAMPLE_RATE / float(frame_rate)
    best = 1
    for k in range(2, 5):
        h = hop16 * k
        if frame_rate / k >= min_rate and abs(h - round(h)) < 1e-9 and round(h) % 4 == 0:
            best = k
    return best


def _interpolate_frames(acts: Tensor, std: Tensor, n_frames: int, stride: int
                        ) -> tuple[Tensor, Tensor]:
    """Activations ``(B, coarse, 360)`` and stds ``(B, coarse)`` at every ``stride``-th frame
    → ``n_frames`` frames, linearly interpolated (frame ``t`` lies at ``t / stride``)."""
    pos = torch.arange(n_frames, device=acts.device, dtype=torch.float64) / stride
    k0 = pos.floor().long().clamp_max(acts.shape[1] - 1)
    k1 = (k0 + 1).clamp_max(acts.shape[1] - 1)
    w = (pos - k0.double()).float()
    a = acts[:, k0] * (1.0 - w)[None, :, None] + acts[:, k1] * w[None, :, None]
    s = std[:, k0] * (1.0 - w)[None] + std[:, k1] * w[None]
    return a, s


def refine_f0(
    audio: Tensor,
    sample_rate: float,
    hop: int,
    f0_hz: Tensor,
    search_cents: float = 100.0,
    max_dprime: float = 0.3,
    fmin: float = 30.0,
) -> tuple[Tensor, Tensor]:
    """Sharpen an f0 track with YIN's difference function, searched near the given f0 only.

    For each frame, the lag minimising YIN's ``d'`` within ``±search_cents`` of the period of
    ``f0_hz`` is found and interpolated (parabola through the raw difference ``d``). Frames
    whose minimum ``d'`` exceeds ``max_dprime`` (not clearly periodic) keep their f0. The
    coarse track decides the octave; this only removes the estimator's fine bias. The analysis
    window (``sample_rate / fmin`` samples, centred on ``t * hop``) does not depend on the data,
    so batch items are independent.

    Returns:
        ``(refined f0_hz, refined mask)`` each ``(batch, frames)``.
    """
    b, t = f0_hz.shape
    tau_max = int(math.ceil(sample_rate / fmin * 2 ** (search_cents / 1200))) + 2
    from .framing import frame_centred

    x = audio.to(torch.float64)
    period = sample_rate / f0_hz.to(torch.float64).to(x.device)
    lo = period * 2 ** (-search_cents / 1200)
    hi = period * 2 ** (search_cents / 1200)
    out = f0_hz.clone().to(torch.float64).to(x.device)
    used = torch.zeros(b, t, dtype=torch.bool, device=x.device)
    chunk = max(1, 2**22 // (2 * tau_max))
    lags = torch.arange(tau_max + 1, device=x.device, dtype=torch.float64)
    for t0 in range(0, t, chunk):
        n = min(chunk, t - t0)
        frames = frame_centred(x, 2 * tau_max, hop, n, t0, lead=tau_max // 2)
        dn, d = cmnd(frames, tau_max, return_difference=True)
        sl = slice(t0, t0 + n)
        window = (lags >= lo[:, sl, None].floor()) & (lags <= hi[:, sl, None].ceil()) & (lags >= 2)
        lag = dn.masked_fill(~window, torch.inf).argmin(-1)
        pos, _ = parabolic_minimum(d, lag)
        best = dn.gather(-1, lag[..., None])[..., 0]
        ok = (best <= max_dprime) & (pos >= lo[:, sl] - 1) & (pos <= hi[:, sl] + 1)
        out[:, sl] = torch.where(ok, sample_rate / pos.clamp_min(1.0), out[:, sl])
        used[:, sl] = ok
    return out.to(f0_hz), used


def compute_f0(
    audio,
    sample_rate: float,
    frame_rate: float,
    method: str = "crepe-full",
    viterbi: bool = True,
    voicing_threshold: float | None = None,
    fill: bool = True,
    refine: bool = True,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    fmin: float = 40.0,
    fmax: float | None = None,
    crepe_stride: int = 1,
) -> tuple[Tensor, Tensor]:
    """Fundamental frequency in Hz and its confidence, per frame.

    Args:
        audio: ``(samples,)``, ``(batch, samples)`` or mono ``(batch, 1, samples)``, any rate.
        sample_rate: Hz. frame_rate: frames per second; ``sample_rate / frame_rate`` must be
            a whole number of samples (the hop).
        method: ``"crepe-full"`` (most accurate, ~22M-parameter network), ``"crepe-tiny"``
            (~30× cheaper) or ``"yin"`` (no network; good on clean monophonic audio).
        viterbi: CREPE only: decode the pitch bins along a Viterbi path (smooth, few octave
            jumps) instead of the per-frame argmax. Ignored by YIN.
        voicing_threshold: confidence below which a frame is unvoiced (default 0.5).
        fill: give unvoiced frames an f0 interpolated from their voiced neighbours.
        refine: sharpen the f0 of clearly periodic frames with YIN's difference function
            searched within ±1 semitone of the estimate (removes the CREPE weights' bias of
            up to ~15-30 cents on clean tones; the octave stays CREPE's). Default True;
            ``refine=False`` gives the plain CREPE estimate. YIN already ends with this step.
        batch_size: CREPE frames per network call (bounded memory for long files).
        device: where CREPE runs (default: the audio's device).
        progress: show a tqdm progress bar for CREPE.
        fmin, fmax: YIN's search range in Hz; ``fmax=None`` means ``min(2100, sample_rate / 4)``
            (YIN needs two periods inside its window).
        crepe_stride: CREPE only: run the network on every ``crepe_stride``-th frame (at
            ``frame_rate / crepe_stride``) and interpolate its activations linearly to the
            frames between before decoding (the YIN refinement then runs at every frame).
            CREPE was trained at 100 frames/s; at 250 frames/s a stride of 2 halves the cost.
            :func:`auto_crepe_stride` picks it. Default 1 (every frame).

    Returns:
        ``f0_hz, confidence``: ``(batch, frames)`` for batched input, ``(frames,)`` for
        ``(samples,)`` input; ``frames = samples // hop``; float32 (YIN: the audio's dtype).
        Confidence is in ``[0, 1]``: CREPE's largest bin activation, or YIN's ``1 - d'``.
    """
    if method not in F0_METHODS:
        raise InvalidInputError(f"method must be one of {sorted(F0_METHODS)}, got {method!r}")
    inp = check_audio(audio, sample_rate, frame_rate)
    x = inp.audio
    threshold = F0_METHODS[method] if voicing_threshold is None else voicing_threshold
    if method == "causal-yin":
        return _causal_f0(x, inp, sample_rate, frame_rate)
    if method == "yin":
        fmax = min(2100.0, sample_rate / 4.0) if fmax is None else fmax
        f0, conf, _ = yin(x, sample_rate, inp.hop, inp.n_frames, fmin=fmin, fmax=fmax)
    else:
        x16 = resample(x, sample_rate, CREPE_SAMPLE_RATE) if sample_rate != CREPE_SAMPLE_RATE else x
        hop16 = CREPE_SAMPLE_RATE / frame_rate
        stride = max(1, int(crepe_stride))
        n_coarse = (inp.n_frames - 1) // stride + 1
        acts, std = crepe_activations(
            x16,
            n_coarse,
            hop16 * stride,
            capacity=method.split("-")[1],
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
        if stride > 1:
            acts, std = _interpolate_frames(acts, std, inp.n_frames, stride)
        f0, conf = decode_activations(acts, viterbi=viterbi)
        conf = conf.masked_fill(std < SILENT_STD, 0.0)
    if refine and method != "yin":
        f0r, _ = refine_f0(x, sample_rate, inp.hop, f0.to(x.device), fmin=min(30.0, fmin))
        f0 = f0r.to(f0)
    if fill:
        f0 = fill_unvoiced(f0, conf >= threshold)
    return inp.unbatch(f0), inp.unbatch(conf)


def _causal_f0(x: Tensor, inp, sample_rate: float, frame_rate: float) -> tuple[Tensor, Tensor]:
    """The live model's causal tracker (:mod:`ddsp_models.features.causal`) on a whole file,
    realigned by its latency (rounded to whole frames) so frame ``t`` describes the audio at
    ``t * hop`` like the other methods: a model trained on these features sees at training
    what it will see live, and the live model's output lags by the declared latency. Unvoiced
    frames already hold the last voiced f0 (no fill, no refinement)."""
    from .causal import CausalFeatures, causal_features

    hop = inp.hop
    lag = -(-CausalFeatures(int(sample_rate), int(hop)).latency_samples // hop)  # frames
    padded = torch.nn.functional.pad(x, (0, lag * hop))
    f0, conf, _ = causal_features(padded, int(sample_rate), int(frame_rate))
    n = inp.n_frames
    return inp.unbatch(f0[:, lag:lag + n].float()), inp.unbatch(conf[:, lag:lag + n].float())

