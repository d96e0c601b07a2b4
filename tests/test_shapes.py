"""core.shapes.broadcast_shapes against torch.broadcast_shapes (the reference it replaces)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.core.shapes import broadcast_shapes

_shape = st.lists(st.sampled_from([1, 1, 2, 3]), min_size=0, max_size=4).map(tuple)


@settings(max_examples=200, deadline=None)
@given(st.lists(_shape, min_size=1, max_size=4))
def test_equals_torch_broadcast_shapes_or_fails_alike(shapes):
    try:
        want = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="do not broadcast"):
            broadcast_shapes(*shapes)
        return
    got = broadcast_shapes(*shapes)
    assert isinstance(got, torch.Size) and got == want


def test_ints_and_sizes_mix_and_the_error_names_the_shapes():
    assert broadcast_shapes(torch.Size([4, 1, 3]), (2, 1), 3) == torch.Size([4, 2, 3])
    assert broadcast_shapes() == torch.Size([])
    with pytest.raises(RuntimeError, match=r"\(4, 3\).*\(2,\)"):
        broadcast_shapes((4, 3), (2,))
