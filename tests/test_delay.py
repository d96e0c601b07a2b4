"""core.delay.variable_delay vs numpy references."""

import numpy as np
import pytest
import torch

from ddsp_models.core import variable_delay


def test_integer_and_fractional_constant_delay_match_numpy():
    x = torch.randn(2, 3, 200, dtype=torch.float64)
    n = np.arange(200)
    for d in (0.0, 7.0, 7.25, 31.9):
        y = variable_delay(x, torch.full((1, 1, 200), d, dtype=torch.float64))
        for b in range(2):
            for c in range(3):
                ref = np.interp(n - d, n, x[b, c].numpy(), left=0.0)
                ref[n - d < -1] = 0.0
                # between sample -1 (zero) and 0 np.interp holds x[0]; the line ramps from 0
                mask = (n - d) >= 0
                np.testing.assert_allclose(y[b, c].numpy()[mask], ref[mask], atol=1e-12)
                assert np.all(y[b, c].numpy()[n - d <= -1] == 0)
    # integer delay is an exact shift
    y = variable_delay(x, torch.full((200,), 7.0, dtype=torch.float64))
    torch.testing.assert_close(y[..., 7:], x[..., :-7])
    assert torch.all(y[..., :7] == 0)


def test_time_varying_delay_matches_loop():
    x = np.random.randn(300)
    d = 5 + 4 * np.sin(np.arange(300) / 20.0)
    y = variable_delay(torch.from_numpy(x), torch.from_numpy(d)).numpy()
    ref = np.zeros(300)
    for i in range(300):
        p = i - d[i]
        i0 = int(np.floor(p))
        f = p - i0
        get = lambda j: x[j] if 0 <= j < 300 else 0.0  # noqa: E731
        ref[i] = (1 - f) * get(i0) + f * get(i0 + 1)
    np.testing.assert_allclose(y, ref, atol=1e-12)


def test_cubic_is_exact_on_cubic_polynomials():
    t = torch.arange(100, dtype=torch.float64)
    x = 0.001 * t**3 - 0.05 * t**2 + t
    d = torch.full((100,), 3.3, dtype=torch.float64)
    y = variable_delay(x, d, interpolation="cubic")
    ref = 0.001 * (t - 3.3) ** 3 - 0.05 * (t - 3.3) ** 2 + (t - 3.3)
    torch.testing.assert_close(y[10:], ref[10:])


def test_variable_delay_gradcheck():
    x = torch.randn(1, 30, dtype=torch.float64, requires_grad=True)
    d = (2.3 + torch.rand(1, 30, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(variable_delay, (x, d))
    assert torch.autograd.gradcheck(lambda a, b: variable_delay(a, b, "cubic"), (x, d))


def test_variable_delay_errors():
    x = torch.randn(1, 30)
    with pytest.raises(ValueError, match=">= 0"):
        variable_delay(x, -torch.ones(1, 30))
    with pytest.raises(ValueError, match="audio-rate"):
        variable_delay(x, torch.ones(1, 10))
    with pytest.raises(ValueError, match="interpolation"):
        variable_delay(x, torch.ones(1, 30), "sinc")
