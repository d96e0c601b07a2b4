"""Training helpers shared by ``ddsp train`` and user scripts: exact resumption
(:class:`~ddsp_models.training.resume.ExactResume`) and choosing the checkpoint to resume
from (:func:`~ddsp_models.training.resume.newest_checkpoint`)."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ExactResume": "ddsp_models.training.resume",
    "newest_checkpoint": "ddsp_models.training.resume",
    "step_seed": "ddsp_models.training.resume",
})
