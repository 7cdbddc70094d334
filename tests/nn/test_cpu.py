"""The CPU kernels of microdl.nn._cpu (row blocks, one per thread) against the textbook pass of
microdl.nn.reference: any number of blocks, dense and sparse input, sample weights, every activation and loss."""

import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from microdl.nn import MLP, _cpu, reference
from tests.nn.conftest import ACTIVATIONS, LOSSES, targets


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_blocks_match_the_reference(activation, loss, many_blocks):
    rng = np.random.default_rng(7)
    net = MLP((5, 9, 6, 4), activation=activation, loss=loss, alpha=0.3, random_state=1)
    for b in net.biases:
        b[...] = rng.normal(size=b.shape) * 0.5
    for m in (3, 64):
        X = rng.normal(size=(m, 5))
        X[rng.random(X.shape) < 0.4] = 0
        y = targets(loss, m, 4, rng)
        Y = net.encode_targets(y)
        for w in (None, rng.random(m) + 0.1):
            expected_loss, dL_dW, dL_db = reference.loss_and_grad(net, X, Y, w)
            expected_grad = np.concatenate([g.ravel() for pair in zip(dL_dW, dL_db) for g in pair])
            expected_out = reference.forward(net.weights, net.biases, X, activation, loss)[-1]
            for X_in in (X, sp.csr_matrix(X)):
                assert net.loss_and_grad(X_in, y, w) == pytest.approx(expected_loss, rel=1e-12)
                np.testing.assert_allclose(net.grads, expected_grad, rtol=1e-10, atol=1e-13)
                np.testing.assert_allclose(net.forward(X_in), expected_out, rtol=1e-12, atol=1e-14)


def test_a_busy_machine_runs_the_same_blocks_one_after_the_other(many_blocks, monkeypatch):
    """NOTE [threading layer]: on a busy machine the row blocks run on the calling thread, with the same
    results to the last bit (the blocks and the order their gradients are added do not change)."""
    from microdl import config

    rng = np.random.default_rng(3)
    net = MLP((6, 16, 3), alpha=0.2, random_state=0)
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, 64)
    results = []
    for busy in (False, True):
        monkeypatch.setattr(config, "use_threads", lambda busy=busy: not busy)
        results.append((net.loss_and_grad(X, y), net.grads.copy(), net.forward(X)))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])
    assert net._train.blocks(64) > 1  # the blocks really were several


def test_block_count_follows_threads_rows_and_work():
    assert _cpu.n_blocks_for(200, 64 * 128 + 128 * 10, 2) == 1  # digits: 5.7M multiply-adds: not worth a launch
    assert _cpu.n_blocks_for(64, 100 * 256 + 256 * 256 + 256 * 10, 2) == 2
    assert _cpu.n_blocks_for(64, 100 * 256 + 256 * 256 + 256 * 10, 2, with_grad=False) == 1  # a third the work
    assert _cpu.n_blocks_for(200, 4 * 16 + 16 * 3, 2) == 1  # a tiny network: not worth a second thread
    assert _cpu.n_blocks_for(20, 10**6, 8) == 1  # 20 rows: one block of at least MIN_BLOCK_ROWS
    assert _cpu.n_blocks_for(10**5, 10**6, 8) == 8


def test_zero_weight_batch_contributes_nothing():
    # (loss_and_grad refuses such weights; a mini-batch of the training loop can still draw only zeros)
    net = MLP((3, 4, 2), alpha=0.5, random_state=0)
    loss = net._loss_and_grad(np.ones((5, 3)), net.encode_targets(np.zeros(5, dtype=int)), np.zeros(5))
    assert loss == 0.0 and not np.any(net.grads)


def test_all_finite():
    a = np.arange(12.0).reshape(3, 4)
    assert _cpu.all_finite(a) and _cpu.all_finite(a.T) and _cpu.all_finite(np.empty(0))
    for bad in (np.nan, np.inf, -np.inf):
        b = a.astype(np.float32)
        b[2, 3] = bad
        assert not _cpu.all_finite(b) and not _cpu.all_finite(b[:, 2:])


def test_blas_is_single_threaded_only_inside():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    with _cpu.single_threaded_blas():
        with _cpu.single_threaded_blas():  # re-entrant
            inside = [lib["num_threads"] for lib in _cpu.kernel_blas_info()]  # the BLAS the kernels call
        assert inside and all(n == 1 for n in inside)
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


def _run_python(code, timeout):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


FORCE_PARALLEL = """
    import numpy as np
    from microdl import config
    config.MIN_BLOCK_ROWS, config.MIN_BLOCK_WORK = 1, 1  # every batch in one block per thread
    config.machine_is_busy = lambda: False  # the threads, however loaded the test machine is
    import numba
    numba.set_num_threads(2)
    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(256, 20)), rng.integers(0, 3, 256)
    net = MLP((20, 64, 3), random_state=0)
    fit(net, Adam(net.params), X, y, epochs=2, batch_size=64)
"""


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_forking_after_a_parallel_fit_does_not_hang():
    """joblib's multiprocessing backend forks; after a fit on GNU OpenMP a child that ran a parallel kernel
    was terminated and the parent hung. Forked children run the serial kernels (NOTE [threading layer])."""
    proc = _run_python(FORCE_PARALLEL + """
    from joblib import Parallel, delayed
    def child(k):  # the forked child runs the parallel kernels too
        return int(np.argmax(net.forward(X)[k]))
    expected = [int(np.argmax(net.forward(X)[k])) for k in range(4)]
    print(Parallel(n_jobs=2, backend="multiprocessing")(delayed(child)(k) for k in range(4)) == expected)
    print(numba.threading_layer())
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fork() called" not in proc.stderr
    assert proc.stdout.split()[0] == "True"


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_parallel_kernels_from_many_threads_are_serialised_not_aborted():
    """The workqueue layer (Numba's fallback) aborts the process when two threads enter it at once: every
    parallel launch holds config.PARALLEL_LOCK, so concurrent predictions on the parallel path are right and
    alive."""
    proc = _run_python("""
    import os
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    """ + FORCE_PARALLEL + """
    import threading
    expected = net.forward(X)
    bad = []
    def work():
        for _ in range(40):
            if not np.array_equal(net.forward(X), expected):
                bad.append(1)
    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]; [t.join() for t in threads]
    print("wrong", len(bad))
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrong 0" in proc.stdout
