"""An activation and a loss from a user's own file (tests/nn/user_formulas.py), registered through the public
path: checked against central differences, and run by the textbook pass and the CPU kernels, which are
rebuilt for the new registry (the built-in kernels are not touched)."""

import numpy as np
import pytest

from microdl.nn import MLP, _cpu, activation_names, reference
from microdl.train import fit
from tests.nn import user_formulas
from tests.nn.conftest import central_differences, rel_err


@pytest.fixture
def registered(restore_registries):
    user_formulas.register()


def test_the_formulas_are_the_gradients(registered):
    for z in np.linspace(-4, 4, 17) + 0.01:
        h = 1e-6
        numeric = (user_formulas.mish(z + h, None) - user_formulas.mish(z - h, None)) / (2 * h)
        assert user_formulas.mish_derivative(z, user_formulas.mish(z, None), None) == pytest.approx(numeric, rel=1e-7)


@pytest.mark.parametrize("many", [False, True])
def test_kernels_are_rebuilt_for_a_users_formulas(registered, many, monkeypatch):
    from microdl import config

    if many:
        monkeypatch.setattr(config, "MIN_BLOCK_ROWS", 1)
        monkeypatch.setattr(config, "MIN_BLOCK_WORK", 1)
    assert "mish" in activation_names()
    passes = _cpu.kernels()
    assert passes.serial is not _cpu.forward_backward_serial  # a copy compiled against the new formulas
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    net = MLP((4, 5, 3, 2), activation="mish", loss="log_cosh", loss_params={"scale": 0.5}, alpha=0.1,
              random_state=0)
    loss = net.loss_and_grad(X, y)
    expected, dL_dW, dL_db = reference.loss_and_grad(net, X, net.encode_targets(y))
    assert loss == pytest.approx(expected, rel=1e-12)
    expected_grad = np.concatenate([g.ravel() for pair in zip(dL_dW, dL_db) for g in pair])
    np.testing.assert_allclose(net.grads, expected_grad, rtol=1e-10, atol=1e-13)
    numeric = central_differences(lambda: net.loss_and_grad(X, y), net.params)
    net.loss_and_grad(X, y)
    assert rel_err(net.grads, numeric) < 1e-7
    history = fit(net, _adam(net), X, y, epochs=5, batch_size=10, random_state=0)
    assert history.train_loss[-1] < history.train_loss[0]


def test_built_in_models_still_use_the_built_in_kernels(restore_registries):
    assert _cpu.kernels().serial is _cpu.forward_backward_serial


def _adam(net):
    from microdl.optim import Adam

    return Adam(net.params, lr=0.01)
