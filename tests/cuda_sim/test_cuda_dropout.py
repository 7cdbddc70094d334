"""Dropout on the CUDA kernels: given the same masks, the device's loss and gradient are the CPU's (which the
textbook pass and finite differences check, tests/nn/test_dropout.py); drawn from the same seed, the masks are the
CPU's too, so a fit matches; prediction never drops.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU.
"""

import os

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from microdl.nn import MLP  # noqa: E402
from microdl.optim import Adam  # noqa: E402
from microdl.train import fit  # noqa: E402


def _pair(**kwargs):
    return MLP(**kwargs), MLP(**kwargs, device="cuda")


@pytest.mark.parametrize("activation, loss", [("relu", "cross_entropy"), ("tanh", "squared_error"),
                                              ("gelu", "huber")])
def test_the_same_mask_gives_the_cpus_loss_and_gradient(activation, loss):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 5))
    y = rng.integers(0, 3, 7) if loss == "cross_entropy" else rng.normal(size=(7, 3))
    keep = [rng.random((7, 4)) >= 0.3, rng.random((7, 3)) >= 0.5]
    cpu, gpu = _pair(layer_sizes=(5, 4, 3, 3), activation=activation, loss=loss, alpha=0.1, dropout=[0.3, 0.5],
                     random_state=1)
    w = rng.uniform(0.2, 2.0, 7)
    expected = cpu.loss_and_grad(X, y, sample_weight=w, dropout_mask=keep)
    assert gpu.loss_and_grad(X, y, sample_weight=w, dropout_mask=keep) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(gpu.grads.copy_to_host(), cpu.grads, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.forward(X), cpu.forward(X), rtol=1e-10)  # prediction drops nothing


def test_a_fit_draws_the_cpus_masks():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(12, 5)), rng.integers(0, 3, 12)
    cpu, gpu = _pair(layer_sizes=(5, 4, 3), dropout=0.4, random_state=2)
    plain = MLP((5, 4, 3), random_state=2)
    for model in (cpu, gpu, plain):
        opt = Adam(model.params, lr=0.05, backend="cuda" if model.device == "cuda" else "cpu")
        fit(model, opt, X, y, epochs=2, batch_size=6, random_state=0)
    np.testing.assert_allclose(gpu.host_params(), cpu.params, rtol=1e-8, atol=1e-10)
    assert not np.allclose(cpu.params, plain.params)  # the masks were drawn and used
