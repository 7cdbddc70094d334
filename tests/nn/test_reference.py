"""The textbook pass (microdl.nn.reference) against central finite differences, and a network worked by hand."""

import zlib

import numpy as np
import pytest

from microdl.nn import MLP, reference
from tests.nn.conftest import ACTIVATIONS, LOSSES, central_differences, rel_err, targets


def _flat(dL_dW, dL_db):
    return np.concatenate([g.ravel() for pair in zip(dL_dW, dL_db) for g in pair])


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_gradient_matches_central_differences(activation, loss):
    rng = np.random.default_rng(zlib.crc32(f"{activation}-{loss}".encode()))
    net = MLP((4, 5, 3, 3), activation=activation, loss=loss, alpha=0.3, random_state=rng)
    for b in net.biases:  # non-zero biases exercise dL/db and keep pre-activations off relu's kink at 0
        b[...] = rng.normal(size=b.shape)
    X = rng.normal(size=(6, 4))
    Y = net.encode_targets(targets(loss, 6, 3, rng))
    for w in (None, rng.random(6) + 0.1):
        loss_value, dL_dW, dL_db = reference.loss_and_grad(net, X, Y, w)
        numeric = central_differences(lambda w=w: reference.loss_and_grad(net, X, Y, w)[0], net.params)
        assert rel_err(_flat(dL_dW, dL_db), numeric) < 1e-6
        assert np.isfinite(loss_value)


def test_hand_worked_3_2_1_network():
    # x = [1, 2, -1], relu hidden layer of 2, identity output, squared error, target y = 1.
    net = MLP((3, 2, 1), activation="relu", loss="squared_error")
    net.weights[0][...] = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]
    net.biases[0][...] = [0.1, -0.1]
    net.weights[1][...] = [[0.7], [-0.8]]
    net.biases[1][...] = [0.2]
    X, y = np.array([[1.0, 2.0, -1.0]]), np.array([1.0])
    # z1 = x W1 + b1 = [0.1 + 0.6 + 0.5 + 0.1, -0.2 + 0.8 - 0.6 - 0.1] = [1.3, -0.1];  a1 = relu(z1) = [1.3, 0]
    # z2 = a1 W2 + b2 = 1.3 * 0.7 + 0 * (-0.8) + 0.2 = 1.11;  loss = ½ (1.11 - 1)² = 0.00605
    # δ2 = (1.11 - 1) / 1 = 0.11;  dW2 = a1ᵀ δ2 = [[0.143], [0]];  db2 = [0.11]
    # δ1 = (δ2 W2ᵀ) ⊙ relu'(z1) = [0.077, -0.088] ⊙ [1, 0] = [0.077, 0]
    # dW1 = xᵀ δ1 = [[0.077, 0], [0.154, 0], [-0.077, 0]];  db1 = [0.077, 0]
    expected_grads = [0.077, 0, 0.154, 0, -0.077, 0, 0.077, 0, 0.143, 0, 0.11]  # W1, b1, W2, b2
    loss, dL_dW, dL_db = reference.loss_and_grad(net, X, net.encode_targets(y))
    assert loss == pytest.approx(0.00605, rel=1e-12)
    np.testing.assert_allclose(_flat(dL_dW, dL_db), expected_grads, atol=1e-15)
    assert reference.forward(net.weights, net.biases, X, "relu", "squared_error")[-1][0, 0] == pytest.approx(1.11)
    # the fast kernels give the same numbers, straight into the flat gradient buffer
    assert net.loss_and_grad(X, y) == pytest.approx(0.00605, rel=1e-12)
    assert net.forward(X)[0, 0] == pytest.approx(1.11, rel=1e-12)
    np.testing.assert_allclose(net.grads, expected_grads, atol=1e-15)


# -- training on the readable code (backend="numpy") ----------------------------------------------------------
@pytest.mark.parametrize("activation, loss", [("gelu", "cross_entropy"), ("relu", "huber"),
                                              ("elu", "absolute_error")])
def test_fit_on_the_numpy_backend_matches_the_kernels(activation, loss):
    """fit runs forward and backward through microdl.nn.reference with backend="numpy", and gives the curve the
    compiled kernels give (the same steps, to rounding)."""
    from microdl.optim import Adam
    from microdl.train import fit

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, 40) if loss == "cross_entropy" else rng.normal(size=(40, 3))
    histories, params = [], []
    for backend in ("numba", "numpy"):
        net = MLP((4, 6, 3), activation=activation, loss=loss, random_state=0, backend=backend)
        opt = Adam(net.params, lr=0.01, backend="numpy" if backend == "numpy" else "cpu")
        histories.append(fit(net, opt, X, y, epochs=3, batch_size=16, random_state=0).train_loss)
        params.append(net.params.copy())
        assert net.forward(X).shape == (40, 3)
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-12)
    np.testing.assert_allclose(params[1], params[0], rtol=1e-10, atol=1e-13)


def test_compare_trains_on_the_numpy_backend():
    from microdl import compare

    curves = []
    for model_backend in ("numba", "numpy"):
        result = compare("iris", optimizers=["sgd"], seeds=1, epochs=2, lrs={"sgd": 0.05}, progress=False,
                         model_backend=model_backend)
        curves.append(result.runs[0]["train_loss"])
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-10)


def test_the_numpy_backend_is_the_cpus():
    with pytest.raises(ValueError, match="backend='numpy' runs on the CPU"):
        MLP((3, 2), backend="numpy", device="cuda")
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        MLP((3, 2), backend="jax")
    net = MLP((3, 2), backend="numpy", activation="elu", activation_params={"alpha": 0.5})
    assert "backend='numpy'" in repr(net) and net.config()["backend"] == "numpy"
    assert MLP(**net.config()).activation_params == {"alpha": 0.5}
