import numpy as np
import pytest
import torch

from ddsp_models.core import upsample_linear, upsample_with_windows


def test_linear_hits_frame_centres_and_matches_numpy_interp():
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    hop, n = 16, 7 * 16 + 5
    y = upsample_linear(x, n)
    assert y.shape == (2, n, 3)
    centres = np.arange(7) * hop
    for b in range(2):
        for k in range(3):
            ref = np.interp(np.arange(n), centres, x[b, :, k].numpy())  # holds the last value
            np.testing.assert_allclose(y[b, :, k].numpy(), ref, rtol=1e-12, atol=1e-12)


def test_windowed_keeps_constants_and_centres():
    x = torch.full((1, 10, 2), 3.0, dtype=torch.float64)
    y = upsample_with_windows(x, 10 * 32)
    torch.testing.assert_close(y, torch.full((1, 320, 2), 3.0, dtype=torch.float64))
    # With 50% overlapping Hann windows a frame centre is dominated by its own frame.
    x = torch.randn(1, 10, 1, dtype=torch.float64)
    y = upsample_with_windows(x, 320)
    torch.testing.assert_close(y[0, ::32, 0], x[0, :, 0])


def test_windowed_is_linear_crossfade_of_hann_shape():
    # Between two frames the weight of the next frame is sin^2(pi * j / (2 hop)).
    x = torch.tensor([[[0.0], [1.0]]], dtype=torch.float64)
    hop = 8
    y = upsample_with_windows(x, 2 * hop)[0, :hop, 0]
    j = np.arange(hop)
    np.testing.assert_allclose(y.numpy(), np.sin(np.pi * j / (2 * hop)) ** 2, atol=1e-12)


@pytest.mark.parametrize("fn", [upsample_linear, upsample_with_windows])
def test_gradcheck_and_bad_shapes(fn):
    x = torch.randn(1, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fn(t, 4 * 5 + 3), (x,))
    with pytest.raises(ValueError, match="batch, frames, features"):
        fn(torch.zeros(4, 2), 16)
    with pytest.raises(ValueError, match="shorter than the number of frames"):
        fn(torch.zeros(1, 8, 1), 4)
