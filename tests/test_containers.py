import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.processors import Processor, processor_from_dict
from ddsp_models.processors.containers import DryWet, ParallelMix, SerialChain
from ddsp_models.processors.distortion import Distortion
from ddsp_models.processors.dynamics import Compressor
from ddsp_models.processors.gain import Gain, StereoGain, StereoWidener
from ddsp_models.processors.multitap import MultitapDelay

from _effect_properties import check_random_raw_params_finite

F64 = torch.float64


class _Synthish(Processor):
    """Not an effect (no audio input); test only, not registered."""

    n_inputs = 0


def split(params, prefix):
    return {k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + ".")}


def test_serial_chain_equals_hand_written_composition():
    gain, dist, pan = Gain(), Distortion("soft"), StereoGain(time_varying=False)
    chain = SerialChain([gain, dist, pan])
    names = [s.name for s in chain.param_specs()]
    assert names == ["0.gain_db", "1.drive_db", "1.output_db", "2.gain_db", "2.pan"]
    assert chain.n_output_channels((1,)) == 2
    p = chain.random_params(2, 5, dtype=F64)
    x = torch.randn(2, 1, 500, dtype=F64)
    want = pan(dist(gain(x, **split(p, "0")), **split(p, "1")), **split(p, "2"))
    torch.testing.assert_close(chain(x, **p), want, rtol=0, atol=0)


def test_parallel_mix_equals_sum_and_broadcasts_channels():
    a, b, c = Gain(), StereoGain(), MultitapDelay(1000, 2, 0.1)
    mix = ParallelMix([a, b, c], names=["dry", "pan", "echo"])
    assert mix.n_output_channels((1,)) == 2
    p = mix.random_params(3, 4, dtype=F64)
    x = torch.randn(3, 1, 300, dtype=F64)
    want = a(x, **split(p, "dry")) + b(x, **split(p, "pan")) + c(x, **split(p, "echo"))
    y = mix(x, **p)
    assert y.shape == (3, 2, 300)
    torch.testing.assert_close(y, want, rtol=0, atol=0)


@pytest.mark.parametrize("time_varying", [False, True])
def test_dry_wet_is_a_linear_crossfade(time_varying):
    wet = Distortion("tanh")
    dw = DryWet(wet, time_varying=time_varying)
    assert [s.name for s in dw.param_specs()] == ["mix", "wet.drive_db", "wet.output_db"]
    p = dw.random_params(2, 6, dtype=F64)
    x = torch.randn(2, 2, 600, dtype=F64)
    y = dw(x, **p).numpy()
    w = wet(x, **split(p, "wet")).numpy()
    for b in range(2):
        if time_varying:
            m = np.interp(np.arange(600), np.arange(6) * 100, p["mix"][b, :, 0].numpy())
        else:
            m = p["mix"][b, 0].item()
        np.testing.assert_allclose(y[b], (1 - m) * x[b].numpy() + m * w[b], atol=1e-12)


def test_dry_wet_mono_dry_with_stereo_wet():
    dw = DryWet(StereoGain(time_varying=False))
    assert dw.n_output_channels((1,)) == 2
    p = dw.random_params(1, 1, dtype=F64)
    x = torch.randn(1, 1, 50, dtype=F64)
    wet = dw.processor(x, **split(p, "wet"))
    mix = p["mix"][:, :, None]
    torch.testing.assert_close(dw(x, **p), (1 - mix) * x + mix * wet)


def test_nested_config_round_trip_rebuilds_the_same_processor():
    tree = SerialChain(
        [Compressor(8000, knee="hard"), DryWet(ParallelMix([Gain(time_varying=False),
                                                            MultitapDelay(8000, 3, 0.05)])),
         {"type": "StereoWidener", "max_width": 1.5}],
        names=["comp", "fx", "width"],
    )
    cfg = tree.config()
    assert cfg["names"] == ["comp", "fx", "width"]
    assert cfg["processors"][1] == {
        "type": "DryWet",
        "processor": {"type": "ParallelMix", "names": ["0", "1"], "processors": [
            {"type": "Gain", "min_db": -60.0, "max_db": 24.0, "time_varying": False},
            {"type": "MultitapDelay", "sample_rate": 8000.0, "n_taps": 3, "max_delay_s": 0.05,
             "dry": True}]},
        "time_varying": False,
    }
    again = processor_from_dict({"type": "SerialChain", **cfg})
    assert again.config() == cfg and again.param_specs() == tree.param_specs()
    p = tree.random_params(2, 3, dtype=F64)
    x = torch.randn(2, 2, 400, dtype=F64)
    torch.testing.assert_close(again(x, **p), tree(x, **p))
    assert "fx.wet.1.delay_s" in tree.specs_by_name()


def test_container_errors_name_the_problem():
    with pytest.raises(ValueError, match="non-empty list"):
        SerialChain([])
    with pytest.raises(ValueError, match="n_inputs=0"):
        ParallelMix([Gain(), _Synthish()])
    with pytest.raises(ValueError, match="unique, non-empty and without dots"):
        SerialChain([Gain(), Gain()], names=["a", "a"])
    with pytest.raises(ValueError, match="unique, non-empty and without dots"):
        SerialChain([Gain()], names=["a.b"])
    with pytest.raises(ValueError, match="2 names for 1 processors"):
        SerialChain([Gain()], names=["a", "b"])
    with pytest.raises(ValueError, match="unknown processor type"):
        SerialChain([{"type": "Nope"}])
    chain = SerialChain([Gain(), Gain()])
    p = chain.random_params(1, 2)
    del p["1.gain_db"]
    with pytest.raises(ValueError, match=r"missing parameters \['1.gain_db'\]"):
        chain(torch.zeros(1, 1, 10), **p)
    with pytest.raises(ValueError, match="needs a stereo input"):
        SerialChain([StereoWidener()]).n_output_channels((1,))


CONTAINERS = [
    SerialChain([Gain(), Compressor(), StereoGain()]),
    ParallelMix([Distortion("hard"), MultitapDelay(1000, 2, 0.02), StereoGain()]),
    DryWet(SerialChain([Distortion("soft", True), StereoWidener()]), time_varying=True),
]


@pytest.mark.parametrize("proc", CONTAINERS, ids=lambda p: type(p).__name__)
@settings(max_examples=200)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0, 30),
       amp=st.sampled_from([0, 1e-6, 0.1, 3]))
def test_random_raw_parameters_give_finite_outputs_and_gradients(proc, seed, scale, amp):
    check_random_raw_params_finite(proc, seed, scale, amp)
