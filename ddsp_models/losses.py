"""Public home of the training losses (implemented in :mod:`ddsp_models.nn.losses`)."""

from .nn.losses import *  # noqa: F401,F403  (the names of nn.losses.__all__)
from .nn.losses import __all__  # noqa: F401
