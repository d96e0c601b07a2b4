"""Block rendering of the containers (SerialChain, ParallelMix, DryWet).

The alignment logic (parameter delays, children not stepped before their time 0 nor after
their own flush, branches lined up, dry/mix delayed to the wet latency) is checked
exhaustively with :class:`_Lag`, a test-only effect of any latency whose offline output is
obvious: ``g · x + offset`` with ``g`` held piecewise constant per frame. Its ``step``
delays that by ``lag`` frames and *raises* if it is misused (a normal call after its flush,
a flush longer than its latency or with non-zero inputs), and its output on silence is not
zero, so a child stepped too early or too late shows up as a mismatch.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Tuple

import pytest
import torch
from torch import Tensor

from ddsp_models.core.scaling import SigmoidRange
from ddsp_models.processors.base import Param, Processor, State
from ddsp_models.processors.blocks import push_samples, render_in_blocks, valid_mask
from ddsp_models.processors.containers import DryWet, ParallelMix, SerialChain
from ddsp_models.processors.gain import Gain, StereoGain

F64 = torch.float64
HOP = 4
SIZES = [(1, 4, 7, 16), (3,), (1,), (2, 5), (64,)]


class _Lag(Processor):
    """Test only (not registered): ``y = g · x + offset``, times ``[1, -0.5]`` to stereo.

    ``g`` is held constant over each frame (no interpolation), so any frame misalignment of
    the parameters against the audio is visible. ``step`` returns that ``lag`` frames late.
    """

    n_inputs = 1

    def __init__(self, lag: int = 0, time_varying: bool = True, stereo: bool = False,
                 offset: float = 0.1):
        super().__init__()
        self.lag, self.time_varying, self.stereo = int(lag), bool(time_varying), bool(stereo)
        self.offset = float(offset)

    def param_specs(self):
        return (Param("g", 1, SigmoidRange(0.5, 2.0), self.time_varying),)

    def latency_frames(self, hop: int) -> int:
        return self.lag

    def n_output_channels(self, input_channels=()):
        return 2 if self.stereo else (input_channels[0] if input_channels else 1)

    def state_specs(self):
        return (State("line"), State("position"), State("flushed"))

    def init_state(self, batch, input_channels, hop, like):
        c = self.n_output_channels(tuple(input_channels))
        return {"line": torch.zeros(batch, c, self.lag * hop, dtype=like.dtype),
                "position": torch.zeros((), dtype=torch.int64),
                "flushed": torch.zeros((), dtype=torch.int64)}

    def apply(self, x: Tensor, g: Tensor, hop: int) -> Tensor:
        ga = g.repeat_interleave(hop, dim=1).transpose(1, 2) if g.dim() == 3 else g[:, :, None]
        y = ga * x + self.offset
        if self.stereo:
            w = torch.tensor([1.0, -0.5], dtype=y.dtype, device=y.device)[None, :, None]
            y = y * w
        return y

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        hop = x.shape[-1] // g.shape[1] if g.dim() == 3 else 1
        return self.apply(x, g, hop)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        flushed = int(state["flushed"])
        if flushing:
            if flushed + n_frames > self.lag:
                raise RuntimeError("flushed for more than its latency")
            if not bool((inputs[0] == 0).all()):
                raise RuntimeError("flushed with non-zero inputs")
        elif flushed > 0:
            raise RuntimeError("normal call after its flush")
        hop = n_samples // n_frames
        y, line = push_samples(state["line"], self.apply(inputs[0], params["g"], hop))
        y = y * valid_mask(state["position"], self.lag, n_frames, hop, y)
        new = {"line": line, "position": state["position"] + n_frames,
               "flushed": state["flushed"] + (n_frames if flushing else 0)}
        return y, new


def stream(proc, frames, sizes, batch=2, channels=1, seed=0, step=None):
    """Offline and block-rendered outputs, and the stream's final state.

    Also checks what ``render_in_blocks`` drops: the first ``latency`` frames of the stream's
    output stand for negative offline times and must be zeros.
    """
    g = torch.Generator().manual_seed(seed)
    params = proc.random_params(batch, frames, generator=g, dtype=F64)
    x = torch.randn(batch, channels, frames * HOP, generator=g, dtype=F64)
    ref = proc(x, **params)
    step = proc.step if step is None else step
    last, outs = {}, []

    def recording_step(*args):
        y, state = step(*args)
        last["state"] = state
        outs.append(y)
        return y, state

    got = render_in_blocks(proc, params, HOP, [x], n_frames=frames, block_frames=sizes,
                           step=recording_step)
    head = torch.cat(outs, dim=-1)[..., :proc.latency_frames(HOP) * HOP]
    assert torch.equal(head, torch.zeros_like(head)), "output before the signal's start"
    return ref, got, last["state"]


def assert_streams(proc, frames_list=(1, 2, 5, 23), channels=1):
    for frames in frames_list:
        for sizes in SIZES:
            ref, got, _ = stream(proc, frames, sizes, channels=channels)
            assert got.shape == ref.shape
            torch.testing.assert_close(got, ref, rtol=0, atol=1e-12,
                                       msg=lambda m: f"T={frames} blocks={sizes}: {m}")


def test_lag_alone_keeps_the_contract():
    for lag in range(4):
        assert_streams(_Lag(lag))
        assert_streams(_Lag(lag, time_varying=False, stereo=True))


@pytest.mark.parametrize("lags", list(itertools.product(range(4), repeat=2))
                         + [(3, 0, 2), (0, 0, 3), (1, 2, 3), (2, 0, 0, 1)], ids=str)
def test_serial_chain_of_latencies_streams_like_whole(lags):
    children = [_Lag(lag, time_varying=(i % 3 != 1), stereo=(i == 1))
                for i, lag in enumerate(lags)]
    chain = SerialChain(children)
    assert chain.latency_frames(HOP) == sum(lags)
    assert_streams(chain)


def test_serial_chain_children_run_exactly_their_frames_and_flush():
    lags = (2, 0, 3, 1)
    chain = SerialChain([_Lag(lag) for lag in lags], names=list("abcd"))
    for frames in (1, 6):
        for sizes in SIZES:
            _, _, state = stream(chain, frames, sizes)
            for name, lag in zip("abcd", lags):
                assert int(state[f"{name}.position"]) == frames + lag
                assert int(state[f"{name}.flushed"]) == lag
            assert int(state["frames"]) == frames and int(state["flushed"]) == sum(lags)


@pytest.mark.parametrize("lags", [(0, 3, 1), (2, 2), (0,), (1, 0), (3, 0, 0, 2)], ids=str)
def test_parallel_mix_of_latencies_streams_like_whole(lags):
    branches = [_Lag(lag, time_varying=(i != 1), stereo=(i == 2)) for i, lag in enumerate(lags)]
    mix = ParallelMix(branches)
    assert mix.latency_frames(HOP) == max(lags)
    assert_streams(mix)
    for frames in (1, 5):
        _, _, state = stream(mix, frames, (2,))
        for i, lag in enumerate(lags):
            assert int(state[f"{i}.position"]) == frames + lag


@pytest.mark.parametrize("lag", range(4))
@pytest.mark.parametrize("time_varying", [False, True])
def test_dry_wet_streams_like_whole(lag, time_varying):
    dw = DryWet(_Lag(lag, stereo=(lag == 2)), time_varying=time_varying)
    assert dw.latency_frames(HOP) == max(lag, int(time_varying))
    assert_streams(dw)
    assert_streams(dw, frames_list=(5,), channels=2)


def test_nested_containers_stream_like_whole():
    inner = ParallelMix([_Lag(2), DryWet(_Lag(0), time_varying=True), _Lag(0, stereo=True)])
    tree = SerialChain([_Lag(1), inner, DryWet(SerialChain([_Lag(1), _Lag(2)]), True), _Lag(0)],
                       names=["in", "mix", "fx", "out"])
    assert tree.latency_frames(HOP) == 1 + 2 + 3 + 0
    assert_streams(tree, frames_list=(1, 3, 23))


def test_containers_of_gains_stream_like_whole():
    tree = SerialChain([Gain(), ParallelMix([Gain(time_varying=False), StereoGain()]),
                        DryWet(Gain(), time_varying=True), Gain()])
    assert tree.latency_frames(HOP) == 1 + 1 + 1 + 1
    for sizes in SIZES:
        ref, got, _ = stream(tree, 9, sizes)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_scripted_container_step_equals_python():
    tree = SerialChain([_Lag(2), ParallelMix([_Lag(1), DryWet(_Lag(0), True)]),
                        DryWet(Gain(), False), _Lag(3, stereo=True)])
    scripted = torch.jit.script(tree)
    for frames in (2, 11):
        ref, want, _ = stream(tree, frames, (5, 2))
        _, got, _ = stream(tree, frames, (5, 2), step=scripted.step)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_state_declaration_of_containers():
    tree = SerialChain([_Lag(1), ParallelMix([_Lag(2), Gain()]), DryWet(StereoGain(), True)],
                       names=["a", "b", "c"])
    state = tree.init_state(2, [1], HOP, torch.zeros((), dtype=F64))
    assert set(state) == {s.name for s in tree.state_specs()}
    assert {"a.line", "b.0.line", "b.1.gain_db", "b.line:0", "b.line:1", "c.wet.pan", "c.dry",
            "c.mix", "history:b:0:g", "history:b:1:gain_db", "history:c:mix",
            "history:c:wet:gain_db", "channels", "frames", "flushed"} <= set(state)
    assert state["history:c:mix"].shape == (2, 1 + 2, 1)  # c's input lags by a + b = 3 frames
    assert state["channels"].tolist() == [1, 1, 1, 2]
    assert state["b.line:1"].shape == (2, 1, (2 - 1) * HOP)


def test_clashing_state_keys_are_an_error():
    # child "a:b"'s gain_db and child "a"'s "b.gain_db" would share a history key
    with pytest.raises(ValueError, match="state keys clash"):
        SerialChain([_Lag(1), Gain(), SerialChain([Gain()], names=["b"])],
                    names=["first", "a:b", "a"])


@pytest.mark.parametrize("n", [1, 3, 4])
@pytest.mark.parametrize("lags", [(1, 2, 3), (0, 3, 1), (2, 0, 0, 1)])
def test_serial_chain_in_fixed_blocks_aligns_by_whole_blocks(lags, n):
    """The ONNX form: blocks of exactly ``n`` frames, no data-dependent control flow; input
    delays rounded up to whole blocks (the extra frames in a carried audio line), every child
    stepped on every block, masked before its own time 0. Equal to the whole render after the
    (longer) fixed-block latency."""
    chain = SerialChain([_Lag(lag) for lag in lags])
    plain = chain.latency_frames(HOP)
    chain.use_fixed_blocks(n)
    latency = chain.latency_frames(HOP)
    assert plain <= latency < plain + n * len(lags)
    frames = 6 * n + latency
    g = torch.Generator().manual_seed(1)
    params = chain.random_params(2, frames, generator=g, dtype=F64)
    x = torch.randn(2, 1, frames * HOP, generator=g, dtype=F64)
    ref = chain(x, **params)
    state = chain.init_state(2, [1], HOP, x)
    outs = []
    for t0 in range(0, frames - frames % n, n):
        p = {k: v[:, t0:t0 + n] for k, v in params.items()}
        y, state = chain.step([x[..., t0 * HOP:(t0 + n) * HOP]], p, state, n, n * HOP, False)
        outs.append(y)
    y = torch.cat(outs, -1)
    torch.testing.assert_close(y[..., latency * HOP:], ref[..., :y.shape[-1] - latency * HOP])
    assert torch.equal(y[..., :latency * HOP], torch.zeros_like(y[..., :latency * HOP]))
