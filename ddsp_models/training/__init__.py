"""Training helpers shared by ``ddsp train`` and user scripts: the Lightning model class
(:class:`~ddsp_models.training.module.AutoencoderModule`, the autoencoder with its training
hooks), exact resumption (:class:`~ddsp_models.training.resume.ExactResume`) and choosing the
checkpoint to resume from (:func:`~ddsp_models.training.resume.newest_checkpoint`), and the
step-driven schedules of learning rate and loss (:class:`~ddsp_models.training.schedule.
TrainingSchedule`, :func:`~ddsp_models.training.schedule.one_cycle_factor`). Everything
here imports Lightning; inference never does."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "AutoencoderModule": "ddsp_models.training.module",
    "ExactResume": "ddsp_models.training.resume",
    "newest_checkpoint": "ddsp_models.training.resume",
    "step_seed": "ddsp_models.training.resume",
    "TrainingSchedule": "ddsp_models.training.schedule",
    "one_cycle_factor": "ddsp_models.training.schedule",
})
