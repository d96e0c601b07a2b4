"""Half precision: every processor works in float16 and bfloat16, or refuses clearly (#18 item 14).

The policy is one mechanism, ``Processor.__call__`` driven by the class attribute
``half_precision`` (see ``ddsp_models/processors/base.py``). For every registered processor and
every one of its ``examples()``, in float16 and bfloat16 (registry driven, like
``tests/test_contract.py``):

* ``"float32"`` / ``"native"``: the output has the input dtype, is finite, and is close to
  the float32 render of the same (half-rounded) inputs and weights: within -50 dB of its peak
  in float16 (11-bit mantissa: rounding alone is about -66 dB) and -35 dB in bfloat16 (8 bits:
  about -48 dB);
* ``"refuse"``: an ``InvalidInputError`` naming the processor and float32.

Before the policy, 30 of the 94 variants raised internal errors in float16 (numba kernels,
``polar``, FFTs of half tensors) and GraphicEQ / ParametricEQ / a high-shelf Biquad returned NaN.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_contract import build, case, package_processors, whole

from ddsp_models.errors import InvalidInputError
from ddsp_models.processors import Param, Processor
from ddsp_models.processors.base import HALF_PRECISION_POLICIES

pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES, HOP = 8, 32
LIMIT_DB = {torch.float16: -50.0, torch.bfloat16: -35.0}
HALF = [pytest.param(torch.float16, id="float16"), pytest.param(torch.bfloat16, id="bfloat16")]


def _error_db(y: torch.Tensor, ref: torch.Tensor) -> float:
    peak = ref.abs().max().clamp_min(1e-12)
    return 20 * torch.log10((y - ref).abs().max().clamp_min(1e-30) / peak).item()


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(package_processors()))
def test_every_processor_computes_in_half_precision_or_refuses(name, dtype):
    cls = package_processors()[name]
    assert cls.half_precision in HALF_PRECISION_POLICIES
    for i in range(len(cls.examples())):
        proc32 = build(name, i, torch.float32)
        params, xs = case(proc32, torch.float32, batch=1, frames=FRAMES)
        half = lambda t: t.to(dtype) if t.is_floating_point() else t  # noqa: E731
        params_h, xs_h = {k: half(v) for k, v in params.items()}, [half(x) for x in xs]
        proc_h = proc32.to(dtype)
        if cls.half_precision == "refuse":
            with pytest.raises(InvalidInputError, match=f"{name}.*float32"):
                whole(proc_h, params_h, xs_h, FRAMES * HOP)
            continue
        y = whole(proc_h, params_h, xs_h, FRAMES * HOP)
        # the reference: float32 on exactly the values the half call received
        ref_proc = copy.deepcopy(proc_h).float()
        ref = whole(ref_proc, {k: v.float() if v.is_floating_point() else v
                               for k, v in params_h.items()},
                    [x.float() for x in xs_h], FRAMES * HOP)
        assert y.dtype == dtype, (name, i)
        assert torch.isfinite(y).all(), (name, i)
        err = _error_db(y.float(), ref)
        assert err < LIMIT_DB[dtype], f"{name} example {i}: {err:.1f} dB from float32"


# ------------------------------------------------------------------ the mechanism itself
class _Probe(Processor):
    """A gain that records the dtype ``forward`` computes in (a test-only processor; the
    leading underscore keeps it out of the registry)."""

    n_inputs = 1

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.5))
        self.seen: list[torch.dtype] = []

    def param_specs(self):
        return (Param("gain", time_varying=False),)

    def forward(self, x, gain):
        self.seen.append(x.dtype)
        assert self.weight.dtype == x.dtype == gain.dtype
        return x * gain[:, :, None] * self.weight


class _NativeProbe(_Probe):
    half_precision = "native"


class _RefusingProbe(_Probe):
    half_precision = "refuse"


@pytest.mark.parametrize("dtype", HALF)
def test_float32_policy_computes_in_float32_and_gradients_reach_half_tensors(dtype):
    p = _Probe().to(dtype)
    x = torch.randn(2, 1, 16).to(dtype).requires_grad_()
    gain = torch.full((2, 1), 2.0, dtype=dtype, requires_grad=True)
    y = p(x, gain=gain)
    assert p.seen == [torch.float32] and y.dtype == dtype
    torch.testing.assert_close(y, (x.float() * 2.0 * 0.5).to(dtype))
    y.sum().backward()
    assert x.grad.dtype == dtype and gain.grad.dtype == dtype and p.weight.grad.dtype == dtype
    torch.testing.assert_close(x.grad.float(), torch.ones(2, 1, 16))
    assert p.weight.dtype == dtype  # the module keeps its own dtype


def test_native_and_refuse_policies_and_float32_calls_are_untouched():
    x, gain = torch.randn(1, 1, 8), torch.ones(1, 1)
    native = _NativeProbe().half()
    assert native(x.half(), gain=gain.half()).dtype == torch.float16
    assert native.seen == [torch.float16]
    with pytest.raises(InvalidInputError, match=r"_RefusingProbe does not compute in bfloat16"
                                                r".*use float32"):
        _RefusingProbe().bfloat16()(x.bfloat16(), gain=gain.bfloat16())
    plain = _Probe()
    assert plain(x, gain=gain).dtype == torch.float32 and plain.seen == [torch.float32]
    # mixed inputs promote as torch does: float16 audio with float32 gains gives float32
    assert _Probe()(x.half(), gain=gain).dtype == torch.float32


def test_a_policy_must_be_one_of_the_three():
    with pytest.raises(TypeError, match="half_precision must be one of"):
        type("_Bad", (Processor,), {"half_precision": "float16"})


def test_a_graph_renders_in_half_precision():
    """The shipped models' graph (harmonic + noise -> reverb) in float16: through the graph's
    batched renderer, close to its float32 render."""
    from ddsp_models.core.noise import deterministic_noise
    from ddsp_models.graph import presets

    g = presets.ddsp_default(sample_rate=16000, n_harmonics=8, n_bands=9,
                             reverb_length=256).half()
    gen = torch.Generator().manual_seed(0)
    params = {node: {k: v.half() for k, v in proc.random_params(1, 10, generator=gen).items()}
              for node, proc in g.nodes.items()}
    with deterministic_noise(seed=0):
        y = g(params, n_samples=10 * 64)
    with deterministic_noise(seed=0):
        ref = copy.deepcopy(g).float()({n: {k: v.float() for k, v in d.items()}
                                        for n, d in params.items()}, n_samples=10 * 64)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert _error_db(y.float(), ref) < LIMIT_DB[torch.float16]
