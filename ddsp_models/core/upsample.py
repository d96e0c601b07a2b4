"""Frame-rate controls to audio rate.

Convention (DESIGN.md): controls are ``(batch, frames, features)``; with
``hop = n_samples // frames``, frame ``t`` is centred on sample ``t * hop``. Samples after
the last frame centre hold the last frame's value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hop_size", "upsample_linear", "upsample_with_windows", "check_controls",
           "interpolate_frames", "crossfade_frames", "frame_hop", "control_to_audio_rate",
           "control_per_sample"]


def hop_size(n_frames: int, n_samples: int) -> int:
    """Whole number of samples per frame, ``n_samples // n_frames``; errors name the fix."""
    if n_frames < 1:
        raise ValueError(f"controls need at least one frame, got {n_frames}")
    if n_samples < n_frames:
        raise ValueError(
            f"n_samples={n_samples} is shorter than the number of frames ({n_frames}); "
            "pass n_samples = frames * hop"
        )
    return n_samples // n_frames


def check_controls(x: Tensor, name: str, features: int | None = None) -> None:
    """Raise a clear error unless ``x`` is a ``(batch, frames, features)`` tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(
            f"{name} must be (batch, frames, features), got shape {tuple(x.shape)}; "
            "add the missing axes with x[None] or x[..., None]"
        )
    if features is not None and x.shape[-1] != features:
        raise ValueError(f"{name} must have {features} features (last axis), got {x.shape[-1]}")


def interpolate_frames(frames: Tensor, hop: int) -> Tensor:
    """Linear interpolation from each frame to the next, ``hop`` samples per frame.

    The block primitive behind :func:`upsample_linear` (and every streamed control).

    Args:
        frames: ``(batch, N + 1, features)``; the last frame is only interpolated towards.
        hop: samples per frame.

    Returns:
        ``(batch, N * hop, features)``: sample ``i * hop + r`` is
        ``frames[i] + (frames[i + 1] - frames[i]) * r / hop``.
    """
    b, n1, k = frames.shape
    n = n1 - 1
    w = torch.arange(hop, device=frames.device, dtype=frames.dtype) / hop
    cur = frames[:, :n]
    y = cur[:, :, None, :] + (frames[:, 1:] - cur)[:, :, None, :] * w[None, None, :, None]
    return y.reshape(b, n * hop, k)


def crossfade_frames(frames: Tensor, hop: int) -> Tensor:
    """Hann cross-fade from each frame to the next, ``hop`` samples per frame.

    The block primitive of :func:`upsample_with_windows`: at sample ``i * hop + r`` frame
    ``i`` weighs ``0.5 + 0.5 cos(π r / hop)`` and frame ``i + 1`` the rest.

    Args:
        frames: ``(batch, N + 1, features)``.
        hop: samples per frame.

    Returns:
        ``(batch, N * hop, features)``.
    """
    b, n1, k = frames.shape
    n = n1 - 1
    r = torch.arange(hop, device=frames.device, dtype=torch.float64)
    w_cur = (0.5 + 0.5 * torch.cos(torch.pi * r / hop)).to(frames.dtype)[None, None, :, None]
    cur = frames[:, :n, None, :]
    y = cur * w_cur + frames[:, 1:, None, :] * (1.0 - w_cur)
    return y.reshape(b, n * hop, k)


def upsample_linear(x: Tensor, n_samples: int) -> Tensor:
    """Linear interpolation between frame centres.

    Args:
        x: ``(batch, frames, features)`` controls.
        n_samples: output length; ``hop = n_samples // frames``.

    Returns:
        ``(batch, n_samples, features)``. Sample ``t * hop`` equals frame ``t`` exactly.
    """
    check_controls(x, "x")
    b, t, k = x.shape
    hop = hop_size(t, n_samples)
    y = interpolate_frames(torch.cat([x, x[:, -1:]], dim=1), hop)  # last frame held
    rest = n_samples - t * hop
    if rest:
        y = torch.cat([y, x[:, -1:, :].expand(b, rest, k)], dim=1)
    return y


def control_to_audio_rate(value: Tensor, n_samples: int) -> Tensor:
    """A parameter value as ``(batch, size, samples_or_1)``, ready to multiply audio.

    The one control-rate-to-audio-rate helper of the processors: time-varying ``(batch,
    frames, size)`` values are linearly interpolated to ``n_samples``
    (:func:`upsample_linear`); static ``(batch, size)`` values become ``(batch, size, 1)`` and
    broadcast over time.
    """
    if value.dim() == 3:
        return upsample_linear(value, n_samples).transpose(1, 2)
    return value[:, :, None]


def control_per_sample(value: Tensor, n_samples: int) -> Tensor:
    """:func:`control_to_audio_rate` laid out for per-sample filter coefficients:
    ``(batch, 1, samples_or_1, size)``, broadcasting against ``(B, C, L)`` audio's channels."""
    return control_to_audio_rate(value, n_samples).transpose(1, 2)[:, None]


def _hann(length: int, device, dtype) -> Tensor:
    """Periodic Hann window: overlap-adds to exactly one at 50% overlap."""
    return torch.hann_window(length, periodic=True, device=device, dtype=dtype)


def upsample_with_windows(x: Tensor, n_samples: int) -> Tensor:
    """Hann-windowed overlap-add upsampling (DDSP's ``upsample_with_windows``).

    Each frame contributes a Hann window of length ``2 * hop`` centred on its sample; windows
    sum to one, so a constant control stays constant. Smoother than linear interpolation for
    amplitudes of harmonics and noise bands.

    Args:
        x: ``(batch, frames, features)``.
        n_samples: output length; ``hop = n_samples // frames``.

    Returns:
        ``(batch, n_samples, features)``.
    """
    check_controls(x, "x")
    b, t, k = x.shape
    hop = hop_size(t, n_samples)
    # Two copies of the last frame at the end keep the tail at full level.
    xe = torch.cat([x, x[:, -1:], x[:, -1:]], dim=1)  # (b, t+2, k)
    frames = xe.permute(0, 2, 1).reshape(b * k, 1, t + 2)
    kernel = _hann(2 * hop, x.device, x.dtype).view(1, 1, 2 * hop)
    # Window of frame j spans output samples [j*hop, j*hop + 2*hop), centred at j*hop + hop.
    y = F.conv_transpose1d(frames, kernel, stride=hop)  # (b*k, 1, (t+3)*hop)
    y = y[:, 0, hop : hop + n_samples]  # sample n sits at output index n + hop
    return y.reshape(b, k, n_samples).permute(0, 2, 1)


def frame_hop(sample_rate: float, frame_rate: float) -> int:
    """THE hop rule: samples per control frame, ``sample_rate / frame_rate``, a whole number.

    Every layer that turns a rate pair into a hop (features, data preparation, the
    autoencoder, transfer, the CLI) calls this, so the rule and its error are the same
    everywhere.

    Args:
        sample_rate: audio rate in Hz (positive, finite).
        frame_rate: control rate in frames per second (positive, finite).

    Returns:
        ``hop`` in samples (``>= 1``).

    Raises:
        ddsp_models.errors.InvalidInputError (a ``ValueError``): a rate that is not a positive
            finite number, or a ``frame_rate`` that does not divide ``sample_rate``; the
            message names both numbers and lists nearby frame rates that divide it.
    """
    import math
    import numbers

    from ..errors import InvalidInputError

    for name, value, unit in (("sample_rate", sample_rate, "Hz"),
                              ("frame_rate", frame_rate, "frames/s")):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value <= 0):
            raise InvalidInputError(f"{name} must be a positive number of {unit}, got {value!r}")
    hop = sample_rate / frame_rate
    if abs(hop - round(hop)) > 1e-9 * hop or round(hop) < 1:
        hint = ""
        if float(sample_rate).is_integer():
            sr = int(sample_rate)
            divs = [d for d in range(1, math.isqrt(sr) + 1) if sr % d == 0]
            divs = sorted(set(divs + [sr // d for d in divs]))
            good = sorted(sorted(divs, key=lambda d: abs(d - frame_rate))[:4])
            hint = f" Frame rates that divide {sr} Hz near it: {good}."
        raise InvalidInputError(
            f"frame_rate={frame_rate:g} does not divide sample_rate={sample_rate:g}: the hop "
            f"would be {hop:g} samples, not a whole number. Pick a frame rate that divides the "
            f"sample rate, or resample the audio first.{hint}")
    return int(round(hop))
