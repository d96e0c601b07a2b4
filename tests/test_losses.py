"""MultiResolutionSpectralLoss against an independent numpy reference and auraloss."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from ddsp_models.losses import MultiResolutionSpectralLoss


def numpy_spectral_loss(x, y, sizes, overlap=0.75, mag_w=1.0, log_w=1.0, eps=1e-5):
    """DDSP SpectralLoss written out by hand: explicit frames, periodic Hann, np.fft.rfft."""
    total = 0.0
    for n in sizes:
        hop = int(n * (1 - overlap))
        win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann

        def mag(a):
            frames = math.ceil(a.shape[-1] / hop)
            padded = np.zeros(a.shape[:-1] + ((frames - 1) * hop + n,))
            padded[..., : a.shape[-1]] = a
            out = []
            for f in range(frames):
                out.append(np.abs(np.fft.rfft(padded[..., f * hop : f * hop + n] * win)))
            return np.stack(out, -1)

        mx, my = mag(x), mag(y)
        total += mag_w * np.mean(np.abs(mx - my))
        total += log_w * np.mean(
            np.abs(np.log(np.maximum(mx, eps)) - np.log(np.maximum(my, eps)))
        )
    return total


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.5, 2.0)])
def test_matches_numpy_reference(weights):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 3000)) * 0.3
    t = np.arange(3000) / 16000
    y = np.sin(2 * np.pi * 440 * t)[None, None].repeat(2, 0) * 0.5
    y[1] *= 0.0  # an all-silent target exercises the log floor
    sizes = (2048, 1024, 512, 256, 128, 64)
    ref = numpy_spectral_loss(x, y, sizes, mag_w=weights[0], log_w=weights[1])
    loss = MultiResolutionSpectralLoss(sizes, mag_weight=weights[0], logmag_weight=weights[1])
    got = loss(torch.tensor(x), torch.tensor(y)).item()
    assert got == pytest.approx(ref, rel=1e-9)
    got32 = loss(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    assert got32.item() == pytest.approx(ref, rel=1e-4)


def test_matches_auraloss_in_centered_mode():
    auraloss = pytest.importorskip("auraloss")
    torch.manual_seed(3)
    x, y = torch.randn(3, 1, 4000, dtype=torch.float64), torch.randn(3, 1, 4000, dtype=torch.float64)
    sizes = [1024, 256, 64]
    ours = MultiResolutionSpectralLoss(sizes, center=True)(x, y)
    ref = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=sizes, hop_sizes=[n // 4 for n in sizes], win_lengths=sizes,
        w_sc=0.0, w_log_mag=1.0, w_lin_mag=1.0, eps=1e-10,
    )
    for f in ref.stft_losses:  # auraloss builds float32 windows
        f.window = f.window.double()
    # auraloss averages over resolutions; DDSP (and we) sum.
    assert ours.item() == pytest.approx(len(sizes) * ref(x, y).item(), rel=1e-6)


def test_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 40, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 1, 40, dtype=torch.float64)
    loss = MultiResolutionSpectralLoss((16, 8), eps=1e-5)
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,), eps=1e-6, atol=1e-5)


def test_target_gets_no_gradient_and_zero_for_identical():
    x = torch.randn(2, 1, 2048, requires_grad=True)
    t = torch.randn(2, 1, 2048, requires_grad=True)
    loss = MultiResolutionSpectralLoss()
    loss(x, t).backward()
    assert t.grad is None and x.grad is not None
    assert loss(t.detach(), t.detach()).item() == 0.0


@given(
    n=st.integers(64, 700),
    scale=st.floats(1e-6, 10.0),
    seed=st.integers(0, 2**16),
)
def test_properties_finite_nonneg_symmetric(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 1, n, generator=g) * scale
    y = torch.randn(1, 1, n, generator=g)
    loss = MultiResolutionSpectralLoss((256, 64))
    a, b = loss(x, y), loss(y, x)
    assert torch.isfinite(a) and a.item() >= 0
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_bad_input_errors():
    loss = MultiResolutionSpectralLoss()
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 101))
    with pytest.raises(ValueError, match="loudness_weight"):
        MultiResolutionSpectralLoss(loudness_weight=1.0)
    with pytest.raises(ValueError, match="overlap"):
        MultiResolutionSpectralLoss(overlap=1.0)


def test_loudness_term_adds_weighted_loudness_l1():
    from ddsp_models.features import compute_loudness

    torch.manual_seed(2)
    t = torch.arange(16000) / 16000
    y = (0.5 * torch.sin(2 * math.pi * 440 * t))[None, None]
    x = (0.1 * torch.sin(2 * math.pi * 440 * t))[None, None].requires_grad_(True)
    base = MultiResolutionSpectralLoss()(x, y)
    with_ld = MultiResolutionSpectralLoss(loudness_weight=0.5, sample_rate=16000, frame_rate=250)
    got = with_ld(x, y)
    ld = (compute_loudness(x[:, 0], 16000, 250) - compute_loudness(y[:, 0], 16000, 250)).abs().mean()
    assert got.item() == pytest.approx(base.item() + 0.5 * ld.item(), rel=1e-5)
    assert ld.item() == pytest.approx(20 * math.log10(5), abs=0.5)  # 5x quieter ≈ 14 dB
    got.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
