"""Shared test settings: deterministic seeds and a bounded hypothesis budget."""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ddsp",
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ddsp"))


@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny models run fastest that way, and the test does not
    fight other processes for cores. Files opt in with ``pytestmark``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
