"""The CPU kernels of microdl.nn._cpu (row blocks, one per thread) against a plain NumPy backprop built from the
NumPy references in microdl.nn.activations and microdl.nn.losses: any number of blocks, dense and sparse input,
sample weights, every activation and loss."""

import numpy as np
import pytest
import scipy.sparse as sp

from microdl.nn import ACTIVATIONS, LOSSES, MLP, _cpu, losses
from microdl.nn import activations as acts


def _reference(net, X, Y, w):
    """Loss, flat gradient and outputs by plain NumPy, layer by layer (the textbook backprop)."""
    m = X.shape[0]
    w = np.ones(m) if w is None else w
    A = [X]
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        Z = np.asarray(A[-1] @ W) + b
        if l < net.n_layers - 1:
            acts.forward(net.activation, Z, np.empty_like(Z))
        else:
            per_sample = np.empty(m)
            losses.loss_per_sample_and_output(net.loss, Z, Y, per_sample, np.empty(m), np.empty_like(Z))
        A.append(Z)
    loss = w @ per_sample / w.sum() + 0.5 * net.alpha / w.sum() * sum((W**2).sum() for W in net.weights)
    D = w[:, None] * (A[-1] - Y) / w.sum()
    parts = []
    for l in range(net.n_layers - 1, -1, -1):
        parts = [np.asarray(A[l].T @ D).ravel() + net.alpha / w.sum() * net.weights[l].ravel(), D.sum(0)] + parts
        if l > 0:
            D = D @ net.weights[l].T
            acts.backward(net.activation, A[l], D, np.empty_like(D))
    return loss, np.concatenate(parts), A[-1]


@pytest.fixture
def many_blocks(monkeypatch):
    """Blocks of any size, so that tiny batches split into one block per thread."""
    monkeypatch.setattr(_cpu, "MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(_cpu, "MIN_BLOCK_WORK", 1)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_blocks_match_numpy_reference(activation, loss, many_blocks):
    rng = np.random.default_rng(7)
    net = MLP((5, 9, 6, 4), activation=activation, loss=loss, alpha=0.3, random_state=1)
    for b in net.biases:
        b[...] = rng.normal(size=b.shape)
    for m in (3, 64):
        X = rng.normal(size=(m, 5))
        X[rng.random(X.shape) < 0.4] = 0
        y = {"cross_entropy": rng.integers(0, 4, m), "binary_cross_entropy": (rng.random((m, 4)) > 0.5) * 1.0,
             "squared_error": rng.normal(size=(m, 4))}[loss]
        Y = net.encode_targets(y)
        for w in (None, rng.random(m) + 0.1):
            expected_loss, expected_grad, expected_out = _reference(net, X, Y, w)
            for X_in in (X, sp.csr_matrix(X)):
                assert net.loss_and_grad(X_in, y, w) == pytest.approx(expected_loss, rel=1e-12)
                np.testing.assert_allclose(net.grads, expected_grad, rtol=1e-10, atol=1e-13)
                np.testing.assert_allclose(net.forward(X_in), expected_out, rtol=1e-12, atol=1e-14)


def test_block_count_follows_threads_rows_and_work():
    assert _cpu.n_blocks_for(200, 64 * 128 + 128 * 10, 2) == 2
    assert _cpu.n_blocks_for(200, 4 * 16 + 16 * 3, 2) == 1  # a tiny network: not worth a second thread
    assert _cpu.n_blocks_for(20, 10**6, 8) == 1  # 20 rows: one block of at least MIN_BLOCK_ROWS
    assert _cpu.n_blocks_for(10**5, 10**6, 8) == 8


def test_zero_weight_batch_contributes_nothing():
    # (loss_and_grad refuses such weights; a mini-batch of the training loop can still draw only zeros)
    net = MLP((3, 4, 2), alpha=0.5, random_state=0)
    loss = net._loss_and_grad(np.ones((5, 3)), net.encode_targets(np.zeros(5, dtype=int)), np.zeros(5))
    assert loss == 0.0 and not np.any(net.grads)


def test_blas_is_single_threaded_only_inside():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    with _cpu.single_threaded_blas():
        with _cpu.single_threaded_blas():  # re-entrant
            inside = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert all(n == 1 for n in inside)
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert after == before
