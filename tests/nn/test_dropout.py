"""Dropout: inverted dropout of the hidden layers in training passes only, its mask in the hand-written backward
pass of every CPU backend (the textbook NumPy pass, the Numba kernels), drawn from the model's own stream.

The oracles: central differences of the loss with the mask held fixed (a fixed mask makes the loss a smooth
function of the parameters), a mask written out by hand (a dropped unit contributes nothing, a kept one is scaled
by 1/(1−p)), and the statistics of the drawn masks.
"""

import pickle
import zlib

import numpy as np
import pytest

from microdl.nn import MLP, reference
from microdl.optim import Adam
from microdl.train import fit
from tests.nn.conftest import ACTIVATIONS, LOSSES, central_differences, rel_err, targets

RATES = [0.3, 0.5]  # one per hidden layer of the (5, 7, 6, 3) networks below


def _keep(rng, m, widths=(7, 6), rates=RATES):
    """Boolean masks, True for a kept unit; every layer keeps some units and drops some."""
    masks = []
    for width, p in zip(widths, rates):
        keep = rng.random((m, width)) >= p
        keep[0, 0], keep[0, 1] = True, False
        masks.append(keep)
    return masks


def _factors(keep, rates=RATES):
    return [k / (1.0 - p) for k, p in zip(keep, rates)]


def _flat(dL_dW, dL_db):
    return np.concatenate([g.ravel() for pair in zip(dL_dW, dL_db) for g in pair])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_with_a_fixed_mask_matches_central_differences(activation):
    """The reference pass, the Numba kernels and the numpy backend, each against finite differences of their
    own loss, with the mask held fixed (float64)."""
    rng = np.random.default_rng(zlib.crc32(activation.encode()))
    X = rng.normal(size=(6, 5))
    keep = _keep(rng, 6)
    for backend in ("numba", "numpy"):
        net = MLP((5, 7, 6, 3), activation=activation, alpha=0.1, dropout=RATES, random_state=1, backend=backend)
        for b in net.biases:  # off relu's kink at 0
            b[...] = rng.normal(size=b.shape)
        Y = net.encode_targets(rng.integers(0, 3, 6))
        net.loss_and_grad(X, Y.argmax(1), dropout_mask=keep)
        analytic = net.grads.copy()
        y = Y.argmax(1)
        numeric = central_differences(lambda net=net, y=y: net.loss_and_grad(X, y, dropout_mask=keep), net.params)
        assert rel_err(analytic, numeric) < 1e-6, backend
        _, dL_dW, dL_db = reference.loss_and_grad(net, X, Y, None, _factors(keep))
        np.testing.assert_allclose(analytic, _flat(dL_dW, dL_db), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_kernels_agree_with_the_reference_given_the_same_mask(activation, loss, many_blocks):
    """Every loss, weighted rows, several row blocks: the kernels' loss and gradient are the reference's."""
    rng = np.random.default_rng(zlib.crc32(f"{activation}-{loss}".encode()))
    net = MLP((5, 7, 6, 3), activation=activation, loss=loss, alpha=0.2, dropout=RATES, random_state=2)
    X, y, w = rng.normal(size=(9, 5)), targets(loss, 9, 3, rng), rng.random(9) + 0.1
    keep = _keep(rng, 9)
    loss_value = net.loss_and_grad(X, y, sample_weight=w, dropout_mask=keep)
    ref_loss, dL_dW, dL_db = reference.loss_and_grad(net, X, net.encode_targets(y), w, _factors(keep))
    assert loss_value == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(net.grads, _flat(dL_dW, dL_db), rtol=1e-9, atol=1e-12)


def test_a_hand_written_mask():
    """Identity activation, one hidden layer: with unit j dropped in every row, the hidden output is X W b
    without column j, the kept columns doubled (p = 0.5), and W[2]'s row j gets no gradient."""
    rng = np.random.default_rng(3)
    net = MLP((3, 4, 2), activation="identity", loss="squared_error", dropout=0.5, random_state=0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    keep = np.ones((5, 4), dtype=bool)
    keep[:, 2] = False
    loss_value = net.loss_and_grad(X, Y, dropout_mask=[keep])
    H = (X @ net.weights[0] + net.biases[0]) * keep * 2.0
    out = H @ net.weights[1] + net.biases[1]
    assert loss_value == pytest.approx(0.5 * np.sum((out - Y) ** 2) / 5, rel=1e-12)
    np.testing.assert_array_equal(net.dL_dW[1][2], 0.0)  # the dropped unit's outgoing weights
    np.testing.assert_array_equal(net.dL_dW[0][:, 2], 0.0)  # and its incoming ones
    np.testing.assert_array_equal(net.dL_db[0][2], 0.0)


def test_prediction_and_evaluation_never_drop():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 5))
    plain, dropped = MLP((5, 7, 6, 3), random_state=0), MLP((5, 7, 6, 3), dropout=0.5, random_state=0)
    np.testing.assert_array_equal(plain.params, dropped.params)  # the masks' stream leaves the weights alone
    np.testing.assert_array_equal(dropped.forward(X), plain.forward(X))
    np.testing.assert_array_equal(dropped.predict(X), plain.predict(X))
    dropped.loss_and_grad(X, rng.integers(0, 3, 20))  # a training pass in between changes nothing
    np.testing.assert_array_equal(dropped.forward(X), plain.forward(X))


def test_drawn_masks_drop_at_the_rate_and_change_every_pass():
    net = MLP((5, 300, 200, 3), dropout=[0.2, 0.6], random_state=0)
    first = [M[:400].copy() for M in net._dropout_factors(400)]
    second = [M[:400] for M in net._dropout_factors(400)]
    for M, p in zip(first, [0.2, 0.6]):
        assert set(np.unique(M)) == {0.0, np.float64(1.0) / (1.0 - p)}
        assert np.mean(M == 0) == pytest.approx(p, abs=0.01)
        assert np.mean(M) == pytest.approx(1.0, abs=0.02)  # inverted dropout keeps the expected output
    assert not np.array_equal(first[0], second[0])


def test_the_same_random_state_gives_the_same_fit_and_zero_dropout_the_old_one():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(60, 5)), rng.integers(0, 3, 60)

    def trained(**kwargs):
        net = MLP((5, 8, 6, 3), random_state=7, **kwargs)
        fit(net, Adam(net.params, lr=0.01), X, y, epochs=3, batch_size=16, random_state=0)
        return net.params.copy()

    np.testing.assert_array_equal(trained(dropout=0.3), trained(dropout=0.3))
    assert not np.array_equal(trained(dropout=0.3), trained(dropout=0.0))
    np.testing.assert_array_equal(trained(dropout=0.0), trained())  # bit for bit the model without dropout
    np.testing.assert_array_equal(trained(dropout=[0.0, 0.0]), trained())
    numpy_backend = trained(dropout=0.3, backend="numpy")  # the textbook pass draws the same masks
    np.testing.assert_allclose(numpy_backend, trained(dropout=0.3), rtol=1e-9, atol=1e-12)


def test_float32_and_sparse_input():
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(6)
    X = rng.normal(size=(8, 5))
    X[X < 0.3] = 0.0
    keep = _keep(rng, 8)
    net = MLP((5, 7, 6, 3), dropout=RATES, random_state=0)
    dense = net.loss_and_grad(X, np.arange(8) % 3, dropout_mask=keep)
    g = net.grads.copy()
    assert net.loss_and_grad(csr_matrix(X), np.arange(8) % 3, dropout_mask=keep) == pytest.approx(dense)
    np.testing.assert_allclose(net.grads, g, rtol=1e-12, atol=1e-14)
    net32 = MLP((5, 7, 6, 3), dropout=RATES, random_state=0, dtype="float32")
    assert net32.loss_and_grad(X, np.arange(8) % 3, dropout_mask=keep) == pytest.approx(dense, rel=1e-5)
    assert net32.grads.dtype == np.float32 and net32._dropout_factors(8)[0].dtype == np.float32
    np.testing.assert_allclose(net32.grads, g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dropout, error, match", [
    (1.0, ValueError, "dropout"), (-0.1, ValueError, "dropout"), (float("nan"), ValueError, "dropout"),
    ("0.5", TypeError, "dropout"), (True, TypeError, "dropout"), ([0.5], ValueError, "one rate per hidden layer"),
    ([0.5, 1.5], ValueError, r"dropout\[1\]"), (None, TypeError, "dropout"),
])
def test_bad_rates_are_refused_before_any_work(dropout, error, match):
    with pytest.raises(error, match=match):
        MLP((5, 7, 6, 3), dropout=dropout)


def test_a_network_without_hidden_layers_refuses_a_rate():
    with pytest.raises(ValueError, match="hidden layers"):
        MLP((5, 3), dropout=0.5)
    assert MLP((5, 3), dropout=0.0).dropout == ()


def test_bad_masks_are_refused():
    net = MLP((5, 7, 6, 3), dropout=0.5, random_state=0)
    X, y = np.ones((4, 5)), np.arange(4) % 3
    good = [np.ones((4, 7), bool), np.ones((4, 6), bool)]
    with pytest.raises(TypeError, match="2 boolean arrays"):
        net.loss_and_grad(X, y, dropout_mask=good[:1])
    with pytest.raises(TypeError, match="boolean"):
        net.loss_and_grad(X, y, dropout_mask=[good[0].astype(float), good[1]])
    with pytest.raises(ValueError, match=r"shape \(4, 6\)"):
        net.loss_and_grad(X, y, dropout_mask=[good[0], np.ones((4, 7), bool)])


def test_config_repr_and_pickle_keep_the_rates():
    net = MLP((5, 7, 6, 3), dropout=[0.1, 0.4], random_state=0)
    assert net.config()["dropout"] == [0.1, 0.4] and "dropout=[0.1, 0.4]" in repr(net)
    assert MLP((5, 7, 6, 3), dropout=0.2).config()["dropout"] == 0.2
    assert "dropout" not in MLP((5, 7, 6, 3)).config()  # checkpoints of plain models read as before
    copy = pickle.loads(pickle.dumps(net))
    assert copy.dropout == (0.1, 0.4)
    np.testing.assert_array_equal(copy.params, net.params)
    X, y = np.ones((4, 5)), np.arange(4) % 3  # and the copy draws the masks the original draws next
    assert copy.loss_and_grad(X, y) == net.loss_and_grad(X, y)
    np.testing.assert_array_equal(copy.grads, net.grads)
