"""The processor contract, checked for every registered processor and each of its examples.

Driven by the registry (``all_processor_classes`` and each class's ``examples()``): a new
processor is covered without being listed here. For each one:

* finite output of the declared channel count over random (scaled) parameters, float32;
* ``gradcheck`` of ``forward`` on a small float64 case;
* config round-trip through ``processor_from_dict``;
* declared state == ``init_state`` keys == the keys ``step`` returns;
* block-by-block rendering (blocks of 1, 4, 7 and 16 frames, mixed; and 3) equals the whole
  render within -100 dB in float64 and -60 dB in float32;
* ``torch.jit.script(processor).step`` renders the same blocks.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from ddsp_models.core.noise import deterministic_noise
from ddsp_models.processors import all_processor_classes, processor_from_dict
from ddsp_models.processors.blocks import render_in_blocks

SR = 16000
HOP = 32
FRAMES = 23

def package_processors() -> dict:
    """The package's processors (classes other test files define register too; those are
    checked by their own files)."""
    return {n: c for n, c in all_processor_classes().items()
            if c.__module__.startswith("ddsp_models.")}


CASES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name, cls in package_processors().items()
    for i, _ in enumerate(cls.examples())
]


def build(name: str, i: int, dtype=torch.float64):
    cls = all_processor_classes()[name]
    cfg = dict(cls.examples()[i])
    if "sample_rate" in inspect.signature(cls.__init__).parameters and "sample_rate" not in cfg:
        cfg["sample_rate"] = SR
    torch.manual_seed(1)
    return cls(**cfg).to(dtype).eval()


def input_channels(proc) -> list[int]:
    """One channel where the processor accepts it, else two."""
    chans = []
    for _ in range(proc.n_inputs):
        try:
            proc.n_output_channels((1,))
            chans.append(1)
        except ValueError:
            chans.append(2)
    return chans


def case(proc, dtype, batch=2, frames=FRAMES, seed=0, amp=0.5):
    g = torch.Generator().manual_seed(seed)
    params = proc.random_params(batch, frames, generator=g, dtype=dtype)
    xs = [amp * torch.randn(batch, c, frames * HOP, generator=g, dtype=dtype)
          for c in input_channels(proc)]
    return params, xs


def whole(proc, params, xs, n_samples):
    with torch.no_grad(), deterministic_noise(seed=0):
        if proc.n_inputs == 0:
            return proc(**params, n_samples=n_samples)
        return proc(*xs, **params)


def error_db(a, b):
    ref = b.abs().max().clamp_min(1e-12)
    return 20 * torch.log10((a - b).abs().max().clamp_min(1e-30) / ref).item()


@pytest.mark.parametrize("name,i", CASES)
def test_finite_over_random_params(name, i):
    proc = build(name, i, torch.float32)
    for seed in range(3):
        params, xs = case(proc, torch.float32, seed=seed)
        y = whole(proc, params, xs, FRAMES * HOP)
        assert y.shape == (2, proc.n_output_channels(tuple(x.shape[1] for x in xs)), FRAMES * HOP)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name,i", CASES)
def test_gradcheck(name, i):
    proc = build(name, i)
    params, xs = case(proc, torch.float64, batch=1, frames=3)
    names = [k for k, v in params.items() if v.is_floating_point()]
    leaves = [params[k].clone().requires_grad_() for k in names] + [x.clone().requires_grad_() for x in xs]

    def fn(*args):
        p = {**params, **dict(zip(names, args[:len(names)]))}
        with deterministic_noise(seed=0):
            if proc.n_inputs == 0:
                return proc(**p, n_samples=3 * HOP)
            return proc(*args[len(names):], **p)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


@pytest.mark.parametrize("name,i", CASES)
def test_config_round_trip(name, i):
    proc = build(name, i)
    again = processor_from_dict({"type": name, **proc.config()}).double().eval()
    again.load_state_dict(proc.state_dict())
    assert again.config() == proc.config()
    params, xs = case(proc, torch.float64)
    torch.testing.assert_close(whole(again, params, xs, FRAMES * HOP),
                               whole(proc, params, xs, FRAMES * HOP))


@pytest.mark.parametrize("name,i", CASES)
def test_state_declaration_matches(name, i):
    proc = build(name, i)
    params, xs = case(proc, torch.float64, frames=4)
    declared = {s.name for s in proc.state_specs()}
    state = proc.init_state(2, [x.shape[1] for x in xs], HOP, torch.zeros((), dtype=torch.float64))
    assert set(state) == declared
    p = {k: (v[:, :2] if v.dim() == 3 else v) for k, v in params.items()}
    _, new = proc.step([x[..., :2 * HOP] for x in xs], p, state, 2, 2 * HOP, False)
    assert set(new) == declared
    assert proc.latency_frames(HOP) >= 0


@pytest.mark.parametrize("dtype,limit_db", [(torch.float64, -100.0), (torch.float32, -60.0)])
@pytest.mark.parametrize("name,i", CASES)
def test_blocks_equal_whole(name, i, dtype, limit_db):
    proc = build(name, i, dtype)
    params, xs = case(proc, dtype)
    ref = whole(proc, params, xs, FRAMES * HOP)
    with torch.no_grad():
        for sizes in ((1, 4, 7, 16), (3,)):
            got = render_in_blocks(proc, params, HOP, xs, n_frames=FRAMES, block_frames=sizes)
            assert got.shape == ref.shape
            assert error_db(got, ref) < limit_db, (sizes, error_db(got, ref))


@pytest.mark.parametrize("name,i", CASES)
def test_scripted_step_equals_python(name, i):
    proc = build(name, i)
    scripted = torch.jit.script(proc)
    params, xs = case(proc, torch.float64)
    with torch.no_grad():
        ref = render_in_blocks(proc, params, HOP, xs, n_frames=FRAMES, block_frames=(5, 2))
        got = render_in_blocks(proc, params, HOP, xs, n_frames=FRAMES, block_frames=(5, 2),
                               step=scripted.step)
    torch.testing.assert_close(got, ref)
