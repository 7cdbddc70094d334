"""Shared fixtures of the optimizer tests: the problems the optimizers run on, and torch where it is installed.

The optimizer cases themselves (``CASES``: every option alone, then several together) and the naive oracle
live in :mod:`tests.optim.naive`, which imports nothing from microdl.
"""

from functools import cache

import numpy as np
import pytest

from tests.optim.naive import make_problem


@cache
def _problem(n: int, steps: int, seed: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    theta0, grads = make_problem(n=n, steps=steps, seed=seed)
    theta0, grads = theta0.astype(dtype), grads.astype(dtype)
    theta0.flags.writeable = grads.flags.writeable = False  # shared between tests: copy before stepping
    return theta0, grads


@pytest.fixture
def problem():
    """``problem(n=37, steps=50, seed=0, dtype=np.float64) -> (theta0, grads)``: initial parameters and one
    gradient per step (read-only, shared: copy ``theta0`` before binding an optimizer to it)."""

    def make(n: int = 37, steps: int = 50, seed: int = 0, dtype: type = np.float64):
        return _problem(n, steps, seed, dtype)

    return make


@pytest.fixture(scope="session")
def torch():
    """``torch`` itself, for the parity tests; they are skipped where it is not installed."""
    return pytest.importorskip("torch")
