import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from ddsp_models.core import (
    amplitude_to_db,
    db_to_amplitude,
    exp_sigmoid,
    hz_to_midi,
    midi_to_hz,
    power_to_db,
)
from ddsp_models.core.scaling import (
    ExpSigmoid,
    Identity,
    LogSigmoidRange,
    SigmoidRange,
    Softmax,
    octaves_into_range,
    scaling_from_dict,
)


def test_exp_sigmoid_matches_closed_form():
    x = torch.linspace(-10, 10, 101, dtype=torch.float64)
    sig = 1 / (1 + np.exp(-x.numpy()))
    ref = 2.0 * sig ** math.log(10.0) + 1e-7
    np.testing.assert_allclose(exp_sigmoid(x).numpy(), ref, rtol=1e-12)
    assert exp_sigmoid(torch.tensor(0.0)).item() == pytest.approx(2 * 0.5 ** math.log(10) + 1e-7)


def test_midi_hz_round_trip_and_anchors():
    assert midi_to_hz(torch.tensor(69.0)).item() == pytest.approx(440.0)
    assert hz_to_midi(torch.tensor(880.0)).item() == pytest.approx(81.0)
    f = torch.tensor([27.5, 261.6255653, 4186.0], dtype=torch.float64)
    torch.testing.assert_close(midi_to_hz(hz_to_midi(f)), f)
    assert hz_to_midi(torch.tensor(0.0)).item() == 0.0  # unvoiced stays finite


def test_db_conversions():
    a = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(amplitude_to_db(a).numpy(), 20 * np.log10(a.numpy()))
    torch.testing.assert_close(db_to_amplitude(amplitude_to_db(a)), a)
    assert amplitude_to_db(torch.tensor(0.0)).item() == pytest.approx(-120.0)
    assert power_to_db(torch.tensor(0.0)).item() == pytest.approx(-120.0)
    assert power_to_db(torch.tensor(100.0)).item() == pytest.approx(20.0)


@given(st.floats(-50, 50))
def test_scalings_stay_in_range(x):
    t = torch.tensor([x], dtype=torch.float64)
    assert 1e-7 <= ExpSigmoid()(t).item() <= 2.0 + 1e-7
    assert 3.0 <= SigmoidRange(3.0, 5.0)(t).item() <= 5.0
    assert 20.0 <= LogSigmoidRange(20.0, 8000.0)(t).item() <= 8000.0 * (1 + 1e-12)


def test_log_range_midpoint_is_geometric_mean():
    y = LogSigmoidRange(20.0, 2000.0)(torch.tensor(0.0, dtype=torch.float64))
    assert y.item() == pytest.approx(200.0)


def test_softmax_and_identity():
    x = torch.randn(2, 3, 5)
    assert torch.allclose(Softmax()(x).sum(-1), torch.ones(2, 3))
    assert Identity()(x) is x


@pytest.mark.parametrize(
    "s", [Identity(), ExpSigmoid(bias=-5.0), SigmoidRange(-1, 2), LogSigmoidRange(1, 10), Softmax()]
)
def test_scaling_dict_round_trip(s):
    assert scaling_from_dict(s.to_dict()) == s


def test_bad_ranges_raise():
    with pytest.raises(ValueError, match="high > low"):
        SigmoidRange(1.0, 0.0)
    with pytest.raises(ValueError, match="high > low > 0"):
        LogSigmoidRange(0.0, 10.0)
    with pytest.raises(ValueError, match="unknown scaling"):
        scaling_from_dict({"kind": "nope"})


def test_every_scaling_scripts_to_the_same_values():
    from ddsp_models.core.scaling import _SCALINGS

    raw = torch.randn(2, 5, 3, dtype=torch.float64) * 3
    for cls in _SCALINGS.values():
        s = cls()
        scripted = torch.jit.script(s.module())
        torch.testing.assert_close(scripted(raw), s(raw))


# --- octaves_into_range: the octave rule of auto-adjust (transfer, live) and MIDI's range fit --
def _octaves_brute_force(p, low, high):
    """Try every shift: the nearest to the range wins, then the smaller shift."""
    def gap(k):
        q = p + 12.0 * k
        return max(low - q, q - high, 0.0)
    return min(range(-12, 13), key=lambda k: (gap(k), abs(k)))


@given(st.floats(-30, 150), st.floats(0, 127), st.floats(0, 48))
def test_octaves_into_range_matches_brute_force(p, low, width):
    high = low + width
    k = octaves_into_range(p, low, high)
    assert k == _octaves_brute_force(p, low, high)
    if width >= 12:
        assert low <= p + 12 * k <= high  # a range of an octave or more is always reached


@given(st.floats(0, 127), st.floats(20, 110))
def test_octaves_into_mean_pm_6_is_ddsp_rule(p, mean):
    diff = (mean - p) / 12.0
    assume(abs(diff - math.floor(diff) - 0.5) > 1e-9)  # DDSP's round() at .5 is a tie
    assert octaves_into_range(p, mean - 6.0, mean + 6.0) == round(diff)


def test_octaves_into_range_hand_computed():
    assert octaves_into_range(62.0, 59.0, 92.0) == 0     # inside: never moved
    assert octaves_into_range(45.0, 59.0, 92.0) == 2     # 57 is still below, 69 inside
    assert octaves_into_range(100.0, 59.0, 92.0) == -1
    assert octaves_into_range(50.0, 60.0, 64.0) == 1     # narrow range: 62 inside
    assert octaves_into_range(55.0, 60.0, 64.0) == 1     # 67 is 3 above, 55 is 5 below
    assert octaves_into_range(52.0, 60.0, 62.0) == 1     # 64 is 2 above, 52 is 8 below
