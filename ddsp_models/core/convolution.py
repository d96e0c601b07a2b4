"""Block (streaming) convolution with long impulse responses.

Uniformly partitioned FFT convolution with a frequency-domain delay line (FDL), zero latency,
blocks of any size (one sample up to many partitions, changing from call to call). The
output of every call is exactly as long as its input and equals the offline causal
convolution ``y[n] = Σ_k h[k] x[n - k]`` (e.g. ``numpy.convolve(x, h)[:L]``) at the same
samples.

Algorithm (partition size ``P``, IR of ``N`` taps, ``K = ceil(N / P)`` partitions
``h_0 .. h_{K-1}``; input partitions ``X_j = x[jP : (j+1)P]``):

* **head** — the first partition ``h_0`` is applied to every call's samples directly (an FFT
  convolution of the call's samples and the last ``P - 1`` input samples with ``h_0``, the
  size of the call, not of the IR), so there is no latency;
* **tail** — each time an input partition ``X_j`` completes, one FFT of size ``2P`` of
  ``X_j`` enters the FDL (the spectra of the last ``K - 1`` input partitions), one
  multiply-accumulate over the ``K - 1`` partitions ``Y = Σ_{k≥1} FDL[k-1] · H_k`` and one
  inverse FFT give ``Σ_{i+k=j+1} X_i * h_k``: its first ``P`` samples complete the output of
  the next partition period ``[(j+1)P, (j+2)P)``, its last ``P`` are carried to the one after.

The IR's partition spectra ``H_k`` (:func:`partition_ir`) are computed once and carried:
the cost of a block never includes a transform of the whole IR. Per ``P`` input samples the
work is ``O(P log P + K P)``; the head adds ``O(M log M + P log P)`` per call of ``M``
samples.

**Aligned streams.** When every call is a whole number of partitions (the processors choose
``P`` dividing the hop, :func:`default_partition_size`, and blocks are whole frames), the
control flow depends on shapes only (``aligned=True``), so ``torch.export`` / ONNX can trace a
step; other partition sizes take the general path (the offset into the current partition is
read from the carried position). :func:`ir_unchanged` decides whether carried IR spectra can
be reused (always "no" while tracing for export).

Everything here is TorchScript-compatible. Spectra are carried as real views
``(..., P + 1, 2)`` (:func:`torch.view_as_real`) so that states hold real tensors only.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor

from .filtering import fft_size

__all__ = [
    "default_partition_size",
    "ir_unchanged",
    "partition_ir",
    "init_partitioned_state",
    "partitioned_convolve_step",
    "convolve_in_blocks",
]

#: The names :func:`init_partitioned_state` gives the carried tensors.
STATE_NAMES = ("conv_input", "conv_fdl", "conv_acc", "conv_carry", "conv_position")


def default_partition_size(hop: int, highest: int = 1024) -> int:
    """The partition size for a stream of ``hop``-sample frames: the largest divisor of ``hop``
    not above ``highest`` (``hop`` itself up to 1024 samples). Every block of whole frames is
    then a whole number of partitions, so the stream runs *aligned* (see
    :func:`partitioned_convolve_step`): no position-dependent control flow, which keeps the
    step traceable for export."""
    hop = int(hop)
    for p in range(min(hop, int(highest)), 0, -1):
        if hop % p == 0:
            return p
    return 1


def ir_unchanged(key: Tensor, cached: Tensor, position: Tensor) -> bool:
    """Whether the carried IR spectra are still valid: not the stream's first block
    (``position > 0``) and the values the IR is computed from (``key``) equal the carried
    ones (``cached``). When tracing for export (``torch.export`` / ``torch.compile``) it is
    always False, so the IR is transformed inside the traced graph (no data-dependent branch;
    a runtime folds it to a constant when the IR is a weight)."""
    if torch.jit.is_scripting():
        return bool(position > 0) and torch.equal(key, cached)
    return _ir_unchanged_eager(key, cached, position)


@torch.jit.unused
def _ir_unchanged_eager(key: Tensor, cached: Tensor, position: Tensor) -> bool:
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return False
    return bool(position > 0) and torch.equal(key, cached)


def partition_ir(ir: Tensor, partition: int) -> Tuple[Tensor, Tensor]:
    """Split an impulse response into the head and the spectra of the later partitions.

    Args:
        ir: ``(..., N)`` impulse response(s), tap 0 first.
        partition: ``P`` samples per partition.

    Returns:
        ``(head (..., P), spectra (..., K - 1, P + 1, 2))``: the first ``P`` taps (zero padded
        when ``N < P``), and the real views of ``rfft(h_k, 2P)`` for partitions
        ``k = 1 .. K - 1``, ``K = ceil(N / P)`` (no entries when ``N <= P``).
    """
    n = ir.shape[-1]
    k = max(1, (n + partition - 1) // partition)
    padded = torch.nn.functional.pad(ir, [0, k * partition - n])
    head = padded[..., :partition]
    lead: List[int] = list(ir.shape[:-1])
    if k == 1:  # the head holds the whole IR
        spectra = torch.zeros(lead + [0, partition + 1, 2], dtype=ir.dtype, device=ir.device)
        return head, spectra
    rest = padded[..., partition:].reshape(lead + [k - 1, partition])
    spectra = torch.view_as_real(torch.fft.rfft(rest, 2 * partition))
    return head, spectra.contiguous()


def init_partitioned_state(
    lead: List[int], n_taps: int, partition: int, like: Tensor
) -> Dict[str, Tensor]:
    """The carried tensors of a fresh stream (silence before it), names in ``STATE_NAMES``.

    Args:
        lead: leading shape of the audio, e.g. ``[batch, channels]``.
        n_taps: ``N``, taps of the IR the stream will use.
        partition: ``P``.
        like: gives dtype and device.

    Returns:
        ``conv_input (*lead, P)``: the last ``P`` input samples; ``conv_fdl (*lead, K - 1,
        P + 1, 2)``: spectra of the last ``K - 1`` complete input partitions, newest first;
        ``conv_acc (*lead, P)``: the tail's output for the current partition period;
        ``conv_carry (*lead, P)``: the tail's output for the period after it;
        ``conv_position`` (int64, 0-dim): samples consumed so far.
    """
    k = max(1, (int(n_taps) + partition - 1) // partition)
    dt, dev = like.dtype, like.device
    state: Dict[str, Tensor] = {
        "conv_input": torch.zeros(lead + [partition], dtype=dt, device=dev),
        "conv_fdl": torch.zeros(lead + [k - 1, partition + 1, 2], dtype=dt, device=dev),
        "conv_acc": torch.zeros(lead + [partition], dtype=dt, device=dev),
        "conv_carry": torch.zeros(lead + [partition], dtype=dt, device=dev),
        "conv_position": torch.zeros([], dtype=torch.int64, device=dev),
    }
    return state


#: ``(name, doc)`` of every tensor a stream convolving with a (possibly changing) IR carries:
#: the partitioned convolution's state and the cached IR transform (see
#: :func:`init_ir_stream_state`, :func:`convolve_with_cached_ir`).
IR_STREAM_STATES = (
    ("conv_input", "(B, C, P) the last P input samples"),
    ("conv_fdl", "(B, C, K-1, P+1, 2) spectra of the last K-1 input partitions"),
    ("conv_acc", "(B, C, P) output of the current partition period"),
    ("conv_carry", "(B, C, P) output carried to the next period"),
    ("conv_position", "() int64 samples consumed"),
    ("ir_key", "(1|B, k) the values the carried IR spectra were computed from (read from the "
               "second block on)"),
    ("ir_head", "(1|B, 1, P) IR taps 0..P-1"),
    ("ir_spectra", "(1|B, 1, K-1, P+1, 2) rfft(2P) of the IR's later partitions"),
)


def init_ir_stream_state(batch: int, channels: int, n_taps: int, key_size: int, shared: bool,
                         partition: int, like: Tensor) -> Dict[str, Tensor]:
    """The :data:`IR_STREAM_STATES` of a fresh stream: :func:`init_partitioned_state` plus an
    empty IR cache (``shared``: one IR for the whole batch, e.g. a learned one)."""
    state = init_partitioned_state([batch, channels], n_taps, partition, like)
    rows = 1 if shared else batch
    k = max(1, -(-n_taps // partition))
    state["ir_key"] = torch.zeros(rows, key_size, dtype=like.dtype, device=like.device)
    state["ir_head"] = torch.zeros(rows, 1, partition, dtype=like.dtype, device=like.device)
    state["ir_spectra"] = torch.zeros(rows, 1, k - 1, partition + 1, 2, dtype=like.dtype,
                                      device=like.device)
    return state


def convolve_with_cached_ir(x: Tensor, key: Tensor, head: Tensor, spectra: Tensor,
                            state: Dict[str, Tensor], hop: int) -> Tuple[Tensor, Dict[str, Tensor]]:
    """One block of :func:`partitioned_convolve_step` with the IR transform ``head, spectra``
    (the carried one when ``ir_unchanged``, else freshly partitioned); returns the output and
    the new :data:`IR_STREAM_STATES`, the IR cache included."""
    y, new = partitioned_convolve_step(x, head, spectra, state, hop % head.shape[-1] == 0)
    new["ir_key"] = key
    new["ir_head"] = head
    new["ir_spectra"] = spectra
    return y, new


def partitioned_convolve_step(
    x: Tensor, head: Tensor, spectra: Tensor, state: Dict[str, Tensor], aligned: bool = False
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """One block of the zero-latency partitioned convolution (see the module docstring).

    Args:
        x: ``(..., M)`` this block's input, any ``M >= 1``.
        head: ``(..., P)`` from :func:`partition_ir` (leading axes broadcast against ``x``'s:
            ``(1, 1, P)`` for an IR shared by the batch, ``(B, 1, P)`` for one per example).
        spectra: ``(..., K - 1, P + 1, 2)`` from :func:`partition_ir`.
        state: the carried tensors (:func:`init_partitioned_state`); not changed in place.
        aligned: the caller guarantees that this call and every call before it had a whole
            number of partitions (e.g. ``P`` divides the hop and blocks are whole frames):
            the block then starts on a partition boundary and the control flow depends on
            shapes only (traceable by ``torch.export``). ``M`` must be a multiple of ``P``.
            Otherwise (default) any ``M`` works and the offset into the current partition
            is read from ``conv_position``.

    Returns:
        ``(y (..., M), new state)``: ``y`` is the causal convolution of the whole stream with
        the IR at this block's samples.
    """
    inp, fdl = state["conv_input"], state["conv_fdl"]
    acc, carry = state["conv_acc"], state["conv_carry"]
    p = inp.shape[-1]
    m = x.shape[-1]
    full = torch.cat([inp, x], dim=-1)  # (..., P + M): the last P samples before, then x

    # head: y_head[i] = Σ_{k<P} h_0[k] full[P + i - k]; circular FFT of size >= M + P - 1
    # (wrap-around only reaches indices < P - 1, which are dropped)
    buf = full[..., 1:]
    n = fft_size(m + p - 1)
    y = torch.fft.irfft(torch.fft.rfft(buf, n) * torch.fft.rfft(head, n), n)[..., p - 1:p - 1 + m]

    # tail: the FDL's output for the current period, one FFT + MAC + IFFT per completed partition
    n_parts = spectra.shape[-3]
    if aligned:
        if m % p != 0:
            raise ValueError("partitioned_convolve_step(aligned=True) needs a multiple of the "
                             "partition size; pass aligned=False for other block sizes")
        offset = 0
    else:
        offset = int(state["conv_position"]) % p
    pieces: List[Tensor] = []
    pos = 0
    while pos < m:
        take = min(m - pos, p - offset)
        pieces.append(acc[..., offset:offset + take])
        offset += take
        pos += take
        if offset == p:  # input partition complete: it is full[pos : pos + P]
            offset = 0
            if n_parts > 0:
                spec = torch.view_as_real(torch.fft.rfft(full[..., pos:pos + p], 2 * p))
                fdl = torch.cat([spec.unsqueeze(-3), fdl[..., :n_parts - 1, :, :]], dim=-3)
                prod = torch.view_as_complex(fdl) * torch.view_as_complex(spectra)
                block = torch.fft.irfft(prod.sum(-2), 2 * p)
                acc = block[..., :p] + carry
                carry = block[..., p:]
    if n_parts > 0:
        y = y + torch.cat(pieces, dim=-1)
    new: Dict[str, Tensor] = {
        "conv_input": full[..., full.shape[-1] - p:],
        "conv_fdl": fdl,
        "conv_acc": acc,
        "conv_carry": carry,
        "conv_position": state["conv_position"] + m,
    }
    return y, new


def convolve_in_blocks(x: Tensor, ir: Tensor, block_sizes: List[int], partition: int = 64,
                       aligned: bool = False) -> Tensor:
    """Causal convolution of ``x`` ``(..., L)`` with ``ir`` ``(..., N)`` rendered block by block
    with :func:`partitioned_convolve_step` (block sizes cycled): ``(..., L)``. A reference
    driver for tests and benchmarks."""
    head, spectra = partition_ir(ir, partition)
    lead = list(torch.broadcast_shapes(x.shape[:-1], ir.shape[:-1]))
    state = init_partitioned_state(lead, ir.shape[-1], partition, x)
    x = x.expand(lead + [x.shape[-1]])
    out: List[Tensor] = []
    t, i = 0, 0
    while t < x.shape[-1]:
        size = min(block_sizes[i % len(block_sizes)], x.shape[-1] - t)
        y, state = partitioned_convolve_step(x[..., t:t + size], head, spectra, state, aligned)
        out.append(y)
        t, i = t + size, i + 1
    return torch.cat(out, dim=-1)
