import pytest
import torch

from ddsp_models.core.scaling import ExpSigmoid, SigmoidRange
from ddsp_models.processors import PROCESSORS, Param, Processor, processor_from_dict
from ddsp_models.processors.base import param_from_dict, param_to_dict


class _ToyGain(Processor):
    """A gain with one time-varying and one static parameter (test only, not registered)."""

    n_inputs = 1

    def __init__(self, max_gain: float = 2.0):
        super().__init__()
        self.max_gain = max_gain

    def param_specs(self):
        return (
            Param("gain", 1, SigmoidRange(0.0, self.max_gain), unit="linear"),
            Param("offset", 1, ExpSigmoid(), time_varying=False),
        )

    def config(self):
        return {"max_gain": self.max_gain}

    def forward(self, x, gain, offset):
        self.check_params({"gain": gain, "offset": offset})
        return x * gain.mean(1)[:, None] + offset[:, None]


def test_private_subclasses_are_not_registered():
    assert "_ToyGain" not in PROCESSORS


def test_scale_params_applies_declared_scalings():
    p = _ToyGain(max_gain=4.0)
    raw = {"gain": torch.zeros(2, 3, 1), "offset": torch.zeros(2, 1)}
    phys = p.scale_params(raw)
    torch.testing.assert_close(phys["gain"], torch.full((2, 3, 1), 2.0))
    torch.testing.assert_close(phys["offset"], ExpSigmoid()(torch.zeros(2, 1)))
    with pytest.raises(ValueError, match="no parameters"):
        p.scale_params({"nope": torch.zeros(1)})


def test_check_params_names_the_problem():
    p = _ToyGain()
    good = p.random_params(batch=2, frames=5)
    assert good["gain"].shape == (2, 5, 1) and good["offset"].shape == (2, 1)
    p.check_params(good)
    with pytest.raises(ValueError, match=r"missing parameters \['offset'\]"):
        p.check_params({"gain": good["gain"]})
    with pytest.raises(ValueError, match=r"_ToyGain.gain must be \(batch, frames, 1\)"):
        p.check_params({"gain": torch.zeros(2, 5), "offset": good["offset"]})
    with pytest.raises(ValueError, match="unknown parameters"):
        p.check_params({**good, "extra": torch.zeros(1)})


def test_param_dict_round_trip():
    spec = Param("cutoff_hz", 2, SigmoidRange(20, 100), time_varying=False, unit="Hz")
    assert param_from_dict(param_to_dict(spec)) == spec


def test_unknown_processor_type_lists_known_ones():
    with pytest.raises(ValueError, match="unknown processor type 'Nope'.*Harmonic"):
        processor_from_dict({"type": "Nope"})
