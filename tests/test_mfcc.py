"""MFCC against a numpy/scipy reference, and the MfccEncoder."""

import math

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from ddsp_models.features import compute_f0, compute_loudness, compute_mfcc
from ddsp_models.features.mfcc import dct_matrix, mel_filterbank
from ddsp_models.nn.encoders import MfccEncoder


def _mel_fb_numpy(n_fft, sr, n_mels, fmin, fmax):
    """Loop version: triangle m rises from edge m to edge m+1 and falls to edge m+2 (HTK mel)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = inv(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if lo < f <= mid:
                fb[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                fb[k, m] = (hi - f) / (hi - mid)
    return fb


def _mfcc_numpy(x, sr, fr, n_mfcc, n_fft, n_mels, fmin, fmax, eps=1e-5):
    hop = sr // fr
    xp = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2))
    n = len(x) // hop
    win = scipy.signal.get_window("hann", n_fft)
    mag = np.abs(np.fft.rfft(np.stack([xp[t * hop : t * hop + n_fft] * win for t in range(n)]), axis=-1))
    logmel = np.log(mag @ _mel_fb_numpy(n_fft, sr, n_mels, fmin, fmax) + eps)
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=-1)[:, :n_mfcc]


def test_filterbank_matches_loop_reference():
    got = mel_filterbank(512, 16000, 40, 20.0, 8000.0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(got, _mel_fb_numpy(512, 16000, 40, 20.0, 8000.0), atol=1e-12)


def test_dct_matrix_is_scipy_ortho_dct():
    x = np.random.default_rng(0).standard_normal((5, 32))
    got = torch.from_numpy(x) @ dct_matrix(32, 32, dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), scipy.fft.dct(x, type=2, norm="ortho"), atol=1e-12)


@pytest.mark.parametrize("sr,fr,n_fft", [(16000, 250, 1024), (22050, 50, 512), (44100, 100, 2048)])
def test_mfcc_matches_numpy_scipy_reference(sr, fr, n_fft):
    g = torch.Generator().manual_seed(0)
    x = 0.2 * torch.randn(int(0.2 * sr), generator=g, dtype=torch.float64)
    got = compute_mfcc(x, sr, fr, n_mfcc=30, n_fft=n_fft, n_mels=64)
    ref = _mfcc_numpy(x.numpy(), sr, fr, 30, n_fft, 64, 20.0, 8000.0)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-8)


def test_mfcc_gradient_is_finite_even_on_silence():
    x = torch.zeros(1, 1600, dtype=torch.float64, requires_grad=True)
    compute_mfcc(x, 16000, 100).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_gain_moves_only_the_first_coefficient():
    """log(g * mel) = log g + log mel: a gain shifts c0 by sqrt(n_mels) * log g (ortho DCT)
    and leaves the rest (up to eps)."""
    x = 0.1 * torch.randn(8000, dtype=torch.float64)
    a = compute_mfcc(x, 16000, 100, n_mels=128, eps=1e-12)
    b = compute_mfcc(4 * x, 16000, 100, n_mels=128, eps=1e-12)
    np.testing.assert_allclose((b - a)[:, 0].numpy(), math.sqrt(128) * math.log(4), rtol=1e-6)
    np.testing.assert_allclose((b - a)[:, 1:].numpy(), 0.0, atol=1e-6)


def test_bad_n_mfcc():
    with pytest.raises(ValueError, match="n_mfcc"):
        compute_mfcc(torch.zeros(1600), 16000, 100, n_mfcc=200, n_mels=128)


# --- encoder -----------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["instance", "layer"])
def test_encoder_shapes_alignment_and_gradients(norm):
    sr, fr = 16000, 250
    enc = MfccEncoder(sr, fr, z_dims=8, hidden_size=16, norm=norm)
    x = (0.1 * torch.randn(2, 4000)).requires_grad_()
    z = enc(x)
    f0, _ = compute_f0(x.detach(), sr, fr, method="yin")
    assert z.shape == (2, f0.shape[1], 8) == (2, compute_loudness(x.detach(), sr, fr).shape[1], 8)
    assert enc(x[:, None]).shape == z.shape  # (batch, 1, samples) too
    z.pow(2).mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())


def test_instance_norm_makes_z_gain_invariant():
    enc = MfccEncoder(16000, 250, z_dims=4, hidden_size=8, norm="instance", mfcc_kwargs={"eps": 1e-12})
    x = 0.1 * torch.randn(1, 4000, dtype=torch.float64)
    enc = enc.double()
    torch.testing.assert_close(enc(x), enc(3 * x), atol=1e-6, rtol=1e-5)


def test_encoder_is_causal_in_time():
    """The GRU runs forward: changing late audio leaves early z unchanged (frames whose MFCC
    windows end before the change)."""
    enc = MfccEncoder(16000, 250, z_dims=4, hidden_size=8, norm="layer")
    x = 0.1 * torch.randn(1, 8000)
    y = x.clone()
    y[:, 6000:] = 0.5 * torch.randn(1, 2000)
    za, zb = enc(x), enc(y)
    last_clean = (6000 - 512) // 64 - 1  # frame centre + half window < 6000
    torch.testing.assert_close(za[:, :last_clean], zb[:, :last_clean])
    assert not torch.allclose(za[:, -5:], zb[:, -5:])


def test_encoder_errors():
    with pytest.raises(ValueError, match="does not divide"):
        MfccEncoder(44100, 250)
    with pytest.raises(ValueError, match="norm"):
        MfccEncoder(norm="batch")
    with pytest.raises(ValueError, match="batched"):
        MfccEncoder(hidden_size=8)(torch.zeros(16000))
