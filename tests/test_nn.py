"""The model: backprop against central finite differences, a hand-worked network, layout and bad input."""

import pickle
import zlib

import numpy as np
import pytest
import scipy.sparse as sp

from microdl.nn import ACTIVATIONS, LOSSES, MLP

RNG = np.random.default_rng(1234)


def _targets(loss, m, k, rng):
    if loss == "cross_entropy":
        return rng.integers(0, k, m)
    if loss == "binary_cross_entropy":
        return (rng.random((m, k)) > 0.5).astype(float)
    return rng.normal(size=(m, k))


def _finite_difference_grad(net, X, y, w=None, h=1e-6):
    """Central differences of the loss, one parameter at a time, in float64."""
    num = np.zeros(net.n_params)
    for i in range(net.n_params):
        old = net.params[i]
        net.params[i] = old + h
        plus = net.loss_and_grad(X, y, w)
        net.params[i] = old - h
        minus = net.loss_and_grad(X, y, w)
        net.params[i] = old
        num[i] = (plus - minus) / (2 * h)
    return num


def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("n_hidden", [1, 2, 3])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_central_differences(activation, loss, n_hidden):
    rng = np.random.default_rng(zlib.crc32(f"{activation}-{loss}-{n_hidden}".encode()))
    sizes = (4, *[5, 3, 4][:n_hidden], 3)
    net = MLP(sizes, activation=activation, loss=loss, alpha=0.3, random_state=rng)
    for b in net.biases:  # non-zero biases exercise dL/db and keep pre-activations off relu's kink at 0
        b[...] = rng.normal(size=b.shape)
    X = rng.normal(size=(7, 4))
    y = _targets(loss, 7, 3, rng)
    for w in (None, rng.random(7) + 0.1):
        net.loss_and_grad(X, y, w)
        analytic = net.grads.copy()
        numeric = _finite_difference_grad(net, X, y, w)
        assert _rel_err(analytic, numeric) < 1e-6


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
    loss = net.loss_and_grad(X, y)
    assert loss == pytest.approx(0.00605, rel=1e-12)
    assert net.forward(X)[0, 0] == pytest.approx(1.11, rel=1e-12)
    # δ2 = (1.11 - 1) / 1 = 0.11;  dW2 = a1ᵀ δ2 = [[0.143], [0]];  db2 = [0.11]
    np.testing.assert_allclose(net.dL_dW[1], [[0.143], [0.0]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.dL_db[1], [0.11], rtol=1e-12)
    # δ1 = (δ2 W2ᵀ) ⊙ relu'(z1) = [0.077, -0.088] ⊙ [1, 0] = [0.077, 0]
    # dW1 = xᵀ δ1 = [[0.077, 0], [0.154, 0], [-0.077, 0]];  db1 = [0.077, 0]
    np.testing.assert_allclose(net.dL_dW[0], [[0.077, 0], [0.154, 0], [-0.077, 0]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.dL_db[0], [0.077, 0.0], rtol=1e-12, atol=1e-15)
    # The flat gradient buffer holds W1, b1, W2, b2 in that order.
    np.testing.assert_allclose(net.grads, [0.077, 0, 0.154, 0, -0.077, 0, 0.077, 0, 0.143, 0, 0.11], atol=1e-15)


def test_flat_buffer_layout_and_views():
    net = MLP((3, 4, 2), random_state=0)
    assert net.params.ndim == 1 and net.params.flags.c_contiguous
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2 == net.params.size == net.grads.size
    for view in (*net.weights, *net.biases):
        assert np.shares_memory(view, net.params)
    for view in (*net.dL_dW, *net.dL_db):
        assert np.shares_memory(view, net.grads)
    net.weights[1][0, 0] = 42.0
    assert net.params[3 * 4 + 4] == 42.0


@pytest.mark.parametrize("loss", LOSSES)
def test_float32_matches_float64(loss):
    rng = np.random.default_rng(0)
    n64 = MLP((5, 6, 3), loss=loss, activation="tanh", random_state=0)
    n32 = MLP((5, 6, 3), loss=loss, activation="tanh", dtype="float32", random_state=0)
    assert n32.params.dtype == np.float32 and n32.grads.dtype == np.float32
    X, y = rng.normal(size=(9, 5)), _targets(loss, 9, 3, rng)
    l64, l32 = n64.loss_and_grad(X, y), n32.loss_and_grad(X, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(n32.grads, n64.grads, rtol=1e-4, atol=1e-6)
    assert n32.forward(X).dtype == np.float32


def test_losses_are_stable_for_huge_logits():
    net = MLP((2, 3), loss="cross_entropy", activation="identity")
    net.weights[0][...] = [[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    loss = net.loss_and_grad(X, np.array([1, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(2e4, rel=1e-12)  # -log p_y = 2e4 for both rows
    assert np.all(np.isfinite(net.grads))
    bce = MLP((2, 1), loss="binary_cross_entropy", activation="identity")
    bce.weights[0][...] = [[1e4], [0.0]]
    loss = bce.loss_and_grad(np.array([[1.0, 0.0]]), np.array([0.0]))
    assert loss == pytest.approx(1e4, rel=1e-12)  # softplus(1e4) - 0


def test_initialisation_is_reproducible_and_scaled():
    a, b = MLP((50, 40, 3), random_state=7), MLP((50, 40, 3), random_state=7)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, MLP((50, 40, 3), random_state=8).params)
    he_bound = np.sqrt(6 / 50)
    assert np.abs(a.weights[0]).max() <= he_bound and np.abs(a.weights[0]).max() > 0.9 * he_bound
    glorot = MLP((50, 40, 3), activation="tanh", random_state=7)
    assert np.abs(glorot.weights[0]).max() <= np.sqrt(6 / 90)
    assert np.all(a.biases[0] == 0)


def test_sparse_input_matches_dense():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 6)) * (rng.random((8, 6)) > 0.6)
    y = rng.integers(0, 3, 8)
    net = MLP((6, 5, 3), alpha=0.1, random_state=0)
    dense_loss = net.loss_and_grad(X, y)
    dense_grads = net.grads.copy()
    sparse_loss = net.loss_and_grad(sp.csr_matrix(X), y)
    assert sparse_loss == pytest.approx(dense_loss, rel=1e-12)
    np.testing.assert_allclose(net.grads, dense_grads, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.forward(sp.csr_matrix(X)), net.forward(X), rtol=1e-12)


def test_predict_and_chunked_forward():
    rng = np.random.default_rng(0)
    net = MLP((4, 8, 3), random_state=0)
    X = rng.normal(size=(10_000, 4))  # more rows than one forward chunk
    probs = net.forward(X)
    assert probs.shape == (10_000, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), probs.argmax(axis=1))
    np.testing.assert_allclose(net.forward(X[:3]), probs[:3], rtol=1e-12)


def test_batch_buffers_are_reused():
    net = MLP((4, 8, 3), random_state=0)
    X, y = RNG.normal(size=(16, 4)), RNG.integers(0, 3, 16)
    Y = net.encode_targets(y)
    net._loss_and_grad(X, Y)
    buffers = [id(a) for a in net._A + net._D]
    net._loss_and_grad(X[:5], Y[:5])  # a smaller (last) batch uses row slices of the same buffers
    assert [id(a) for a in net._A + net._D] == buffers


def test_pickle_round_trip():
    net = MLP((3, 4, 2), activation="tanh", loss="binary_cross_entropy", alpha=0.5, dtype="float32",
              random_state=1)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.params, net.params)
    assert clone.config() == net.config()
    X = RNG.normal(size=(4, 3))
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layer_sizes": (3,)}, ValueError, "at least an input and an output"),
        ({"layer_sizes": (3, 0, 2)}, ValueError, r"layer_sizes\[1\] must be >= 1"),
        ({"layer_sizes": (3, -4, 2)}, ValueError, "must be >= 1"),
        ({"layer_sizes": (3, 2.5, 2)}, TypeError, "must be an integer"),
        ({"layer_sizes": 5}, TypeError, "sequence"),
        ({"layer_sizes": (3, 2), "activation": "relu6"}, ValueError, "unknown activation 'relu6'"),
        ({"layer_sizes": (3, 2), "loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
        ({"layer_sizes": (3, 2), "alpha": -1}, ValueError, "alpha"),
        ({"layer_sizes": (3, 2), "alpha": float("nan")}, ValueError, "alpha"),
        ({"layer_sizes": (3, 2), "init": "xavier"}, ValueError, "unknown init"),
        ({"layer_sizes": (3, 2), "dtype": "float16"}, ValueError, "dtype"),
        ({"layer_sizes": (3, 2), "device": "tpu"}, ValueError, "unknown device"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP(**kwargs)


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.ones((4, 2)), np.zeros(4, int), "X has 2 features, but the network expects 3"),
        (np.ones(3), np.zeros(1, int), "X must be 2-D"),
        (np.ones((4, 3)), np.zeros(5, int), "X has 4 samples but y has 5"),
        (np.array([[1.0, np.nan, 0.0]]), np.zeros(1, int), "X contains NaN or infinity"),
        (np.array([[1.0, np.inf, 0.0]]), np.zeros(1, int), "X contains NaN or infinity"),
        (np.ones((2, 3)), np.array([0.0, np.nan]), "y contains NaN or infinity"),
        (np.ones((2, 3)), np.array([0, 2]), r"labels in \[0, 2\], but the network has 2 outputs"),
        (np.ones((2, 3)), np.array([0, -1]), "labels"),
        (np.ones((2, 3)), np.array([0.5, 1.0]), "must be integers"),
        (np.ones((2, 3)), np.ones((2, 3)), r"shape \(n_samples, 2\)"),
        (np.ones((2, 3)), np.full((2, 2), 0.7), "rows sum to 1"),
        (np.zeros((0, 3)), np.zeros(0, int), "no samples"),
    ],
)
def test_bad_data_raises_value_error_naming_the_problem(X, y, match):
    net = MLP((3, 4, 2), random_state=0)
    with pytest.raises(ValueError, match=match):
        net.loss_and_grad(X, y)


def test_bad_sample_weight_and_types():
    net = MLP((3, 4, 2), random_state=0)
    X, y = np.ones((3, 3)), np.array([0, 1, 0])
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        net.loss_and_grad(X, y, np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        net.loss_and_grad(X, y, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="positive sum"):
        net.loss_and_grad(X, y, np.zeros(3))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        net.loss_and_grad(np.array([["a", "b", "c"]]), np.array([0]))
    bce = MLP((3, 2), loss="binary_cross_entropy")
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        bce.loss_and_grad(X, np.full((3, 2), 2.0))
