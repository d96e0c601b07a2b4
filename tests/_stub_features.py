"""Cheap stand-ins for the feature extractors of ``prepare_dataset`` in training tests (the
tests are about training, not pitch tracking): a constant 220 Hz f0 with confidence 1, and the
frame RMS in dB as loudness. Both take and return what ``f0_fn`` / ``loudness_fn`` do."""

from __future__ import annotations

import torch


def constant_f0(audio, sample_rate, frame_rate, method, viterbi):
    """``(f0_hz, confidence)`` each ``(1, frames)``: 220 Hz, confidence 1."""
    n = audio.shape[-1] // (sample_rate // frame_rate)
    return torch.full((1, n), 220.0), torch.ones(1, n)


def rms_loudness_db(audio, sample_rate, frame_rate):
    """``(1, frames)`` frame RMS in dB, floored at -100 dB."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    x = audio[..., : n * hop].reshape(1, n, hop)
    return 20 * torch.log10(x.square().mean(-1).sqrt().clamp_min(1e-5))
