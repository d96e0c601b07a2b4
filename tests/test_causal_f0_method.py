"""``--f0 causal-yin``: the live model's causal tracker as a dataset feature, realigned by its
latency so that frame ``t`` describes the audio at ``t * hop`` like every other method."""

from __future__ import annotations

import math

import torch

from ddsp_models.features.causal import CausalFeatures, causal_features
from ddsp_models.features.f0 import F0_METHODS, compute_f0

SR, FR = 16000, 250
HOP = SR // FR


def _tone_after_silence(onset_s: float = 0.5, seconds: float = 1.5, hz: float = 220.0):
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    x = 0.5 * torch.sin(2 * math.pi * hz * t)
    x[: int(SR * onset_s)] = 0.0
    return x


def test_causal_yin_is_the_causal_tracker_shifted_by_its_latency():
    assert "causal-yin" in F0_METHODS
    x = _tone_after_silence()
    f0, conf = compute_f0(x, SR, FR, method="causal-yin")
    lag = -(-CausalFeatures(SR, HOP).latency_samples // HOP)
    ref_f0, ref_conf, _ = causal_features(torch.nn.functional.pad(x, (0, lag * HOP)), SR, FR)
    n = x.shape[0] // HOP
    assert f0.shape == (n,) and conf.shape == (n,)
    torch.testing.assert_close(f0, ref_f0[lag:lag + n].float())
    torch.testing.assert_close(conf, ref_conf[lag:lag + n].float())


def test_causal_yin_frames_line_up_with_the_audio():
    """The voiced onset lands within two frames of the true onset (the causal tracker's own
    frames lag by its latency, 16 ms = 4 frames here), and the pitch is right."""
    x = _tone_after_silence(onset_s=0.5)
    f0, conf = compute_f0(x, SR, FR, method="causal-yin")
    onset = int((conf > 0.5).nonzero()[0])
    assert abs(onset - int(0.5 * FR)) <= 2, onset
    cents = 1200 * torch.log2(f0[onset + 10:] / 220.0).abs()
    assert float(cents.max()) < 5.0
