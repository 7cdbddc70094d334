"""Shared helpers of the model tests: targets of each loss, central differences, relative errors, and many row
blocks (so that tiny batches run the multi-block path of the CPU kernels)."""

import numpy as np
import pytest

from microdl import config
from microdl.nn import activation_names, loss_names

#: microdl's own activations and losses (the registries as importing microdl.nn leaves them).
ACTIVATIONS = activation_names()
LOSSES = loss_names()


def targets(loss, m, k, rng):
    """Targets that ``loss`` accepts: labels, 0/1 indicators, real values or counts."""
    if loss == "cross_entropy":
        return rng.integers(0, k, m)
    if loss == "binary_cross_entropy":
        return (rng.random((m, k)) > 0.5).astype(float)
    if loss == "poisson":
        return rng.poisson(2.0, size=(m, k)).astype(float)
    return rng.normal(size=(m, k))


def central_differences(f, params, h=1e-6):
    """∂f/∂params[i] by central differences, one parameter at a time, in float64 (params is changed in place
    and restored)."""
    num = np.zeros(params.size)
    for i in range(params.size):
        old = params[i]
        params[i] = old + h
        plus = f()
        params[i] = old - h
        minus = f()
        params[i] = old
        num[i] = (plus - minus) / (2 * h)
    return num


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


@pytest.fixture
def many_blocks(monkeypatch):
    """Row blocks of any size, so that tiny batches split into one block per thread."""
    monkeypatch.setattr(config, "MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(config, "MIN_BLOCK_WORK", 1)


@pytest.fixture
def restore_registries():
    """Put the activation and loss registries back as they were after the test (a test may register its own)."""
    from microdl.nn import activations, formulas, losses

    saved = dict(activations._REGISTRY), dict(losses._REGISTRY)
    yield
    activations._REGISTRY.clear()
    activations._REGISTRY.update(saved[0])
    losses._REGISTRY.clear()
    losses._REGISTRY.update(saved[1])
    formulas.registry_changed()
