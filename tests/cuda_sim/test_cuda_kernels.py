"""Every kernel of microdl.cuda.kernels against NumPy and the textbook pass of microdl.nn.reference.

Shapes are tiny and odd, and the launch constants are shrunk (2×2 threads computing 2×2 outputs each in the
matrix multiply, 4 threads and at most 2 blocks elsewhere), so that partial tiles, partial blocks, several K
slices and several grid-stride passes all run.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU (scripts/gpu_check.sh).
"""

import os

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from numba import cuda  # noqa: E402

from microdl import config  # noqa: E402
from microdl.cuda import kernels as K  # noqa: E402
from microdl.nn import activation_names, get_activation, get_loss, loss_names, reference  # noqa: E402
from tests.cuda_sim.conftest import SHIPPED  # noqa: E402


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


ACTIVATIONS, LOSSES = activation_names(), loss_names()
#: a parameter away from its default, where a formula has one
ACT_PARAMS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}}
LOSS_PARAMS = {"huber": {"delta": 0.7}}


def act_p(name):
    return reference._vector(ACT_PARAMS.get(name), get_activation(name).params)


def loss_p(name):
    return reference._vector(LOSS_PARAMS.get(name), get_loss(name).params)


def dev_p(p):
    return cuda.to_device(np.concatenate([p, [0.0]]))  # never empty, as microdl.cuda.model passes them


TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}


# -- matrix multiply ---------------------------------------------------------------------------------------
MATMULS = {  # name: (launcher, NumPy reference, shapes of A and B for a 7×3 result with K = 5)
    "nn": (K.matmul, lambda A, B: A @ B, (7, 5), (5, 3)),
    "tn": (K.matmul_tn, lambda A, B: A.T @ B, (5, 7), (5, 3)),
    "nt": (K.matmul_nt, lambda A, B: A @ B.T, (7, 5), (3, 5)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", sorted(MATMULS))
def test_matmul_variants_match_numpy(variant, dtype):
    launch, ref, a_shape, b_shape = MATMULS[variant]
    A, B = rand(*a_shape, seed=1, dtype=dtype), rand(*b_shape, seed=2, dtype=dtype)
    C = cuda.device_array((7, 3), dtype)
    launch(cuda.to_device(A), cuda.to_device(B), C)
    np.testing.assert_allclose(C.copy_to_host(), ref(A, B), **TOL[dtype])


@pytest.mark.parametrize("tile, reg", [(1, 1), (3, 1), (1, 3), (4, 2)])
def test_matmul_tile_shapes(monkeypatch, tile, reg):
    """A changed TILE/REG builds a new kernel; block tiles of 1, 3 and 8 all cover 7×5·5×3 correctly."""
    monkeypatch.setattr(config, "TILE", tile)
    monkeypatch.setattr(config, "REG", reg)
    for launch, ref, a_shape, b_shape in MATMULS.values():
        A, B = rand(*a_shape, seed=3), rand(*b_shape, seed=4)
        C = cuda.device_array((7, 3))
        launch(cuda.to_device(A), cuda.to_device(B), C)
        np.testing.assert_allclose(C.copy_to_host(), ref(A, B), rtol=1e-12, atol=1e-12)


def test_matmul_grid_stride_covers_rows_beyond_the_grid(monkeypatch):
    monkeypatch.setattr(K, "_MAX_GRID_Y", 1)  # one block row: the kernel's loop must walk the other tiles
    A, B = rand(9, 5, seed=5), rand(5, 3, seed=6)
    C = cuda.device_array((9, 3))
    K.matmul(cuda.to_device(A), cuda.to_device(B), C)
    np.testing.assert_allclose(C.copy_to_host(), A @ B, rtol=1e-12, atol=1e-12)


def test_matmul_reads_strided_views():
    """Inputs may be strided (views from CuPy or torch): a column slice of a wider array."""
    wide = rand(7, 8, seed=7)
    B = rand(5, 3, seed=8)
    C = cuda.device_array((7, 3))
    K.matmul(cuda.to_device(wide)[:, 1:6], cuda.to_device(B), C)
    np.testing.assert_allclose(C.copy_to_host(), wide[:, 1:6] @ B, rtol=1e-12, atol=1e-12)


def test_matmul_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes do not match"):
        K.matmul(cuda.device_array((7, 5)), cuda.device_array((4, 3)), cuda.device_array((7, 3)))


def test_matmul_default_tiles(monkeypatch):
    """The shipped tiles (16×16 threads × 4×4 outputs, a 64×64 tile of C) on 70×37·37×30: K in 3 slices."""
    monkeypatch.setattr(config, "TILE", SHIPPED["TILE"])
    monkeypatch.setattr(config, "REG", SHIPPED["REG"])
    for launch, ref, a_shape, b_shape in MATMULS.values():
        scale = (37, 70) if a_shape[0] == 5 else (70, 37)  # K = 37 (partial slice), M = 70, N = 30
        A = rand(*scale, seed=9)
        B = rand(*((37, 30) if b_shape[0] == 5 else (30, 37)), seed=10)
        C = cuda.device_array((70, 30))
        launch(cuda.to_device(A), cuda.to_device(B), C)
        np.testing.assert_allclose(C.copy_to_host(), ref(A, B), rtol=1e-11, atol=1e-11)


# -- the fused epilogues: bias and activation forward, the derivative backward ------------------------------
def activation_inputs():
    Z = rand(7, 5, seed=11) * 3
    Z[0, :3] = 0.0  # the derivative at exactly zero follows the CPU's formulas
    Z[1, 0] = 40.0  # large |z|: sigmoid must not overflow
    Z[1, 1] = -40.0
    return Z


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_matmul_with_bias_and_activation_matches_activations_forward(name):
    """C = f(A·B + b) and Z = A·B + b, with pre-activations up to about ±40 (sigmoid must not overflow)."""
    A, B, b = rand(7, 4, seed=12) * 8, rand(4, 5, seed=13), rand(5, seed=14)
    Z = A @ B + b
    assert np.abs(Z).max() > 20
    act, p = get_activation(name), act_p(name)
    expected = reference._f(act, Z, p)
    C, pre = cuda.device_array((7, 5)), cuda.device_array((7, 5))
    K.matmul(cuda.to_device(A), cuda.to_device(B), C, bias=cuda.to_device(b), activation=name, params=dev_p(p),
             pre=pre)
    np.testing.assert_allclose(C.copy_to_host(), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pre.copy_to_host(), Z, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_matmul_nt_times_derivative_matches_activations_backward(name):
    """C = (A·Bᵀ) ⊙ f'(Z), from Z and the output f(Z), as the reference multiplies a delta."""
    act, p = get_activation(name), act_p(name)
    Z = activation_inputs()
    out = reference._f(act, Z, p)  # a valid output of f, including exact zeros
    A, B = rand(7, 4, seed=15), rand(5, 4, seed=16)
    expected = (A @ B.T) * reference._f_prime(act, Z, out, p)
    C = cuda.device_array((7, 5))
    pre = None if act.from_output else cuda.to_device(Z)
    K.matmul_nt(cuda.to_device(A), cuda.to_device(B), C, times_derivative_of=cuda.to_device(out), activation=name,
                params=dev_p(p), pre=pre)
    np.testing.assert_allclose(C.copy_to_host(), expected, rtol=1e-12, atol=1e-14)


# -- output layer and losses -------------------------------------------------------------------------------
def targets(loss, m, n, seed):
    rng = np.random.default_rng(seed)
    if loss == "cross_entropy":
        return np.eye(n)[rng.integers(0, n, m)]
    if loss == "binary_cross_entropy":
        return (rng.uniform(size=(m, n)) > 0.5).astype(np.float64)
    if loss == "poisson":
        return rng.poisson(2.0, size=(m, n)).astype(np.float64)
    return rng.normal(size=(m, n))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("with_targets", [True, False])
def test_output_and_loss_matches_losses(loss, with_targets):
    Z = rand(7, 3, seed=14) * 4
    Z[2] = [800.0, -800.0, 0.0] if loss != "poisson" else [30.0, -30.0, 0.0]  # large logits stay finite
    Y = targets(loss, 7, 3, seed=15)
    p = loss_p(loss)
    expected_out, expected_loss = reference._output_and_losses(get_loss(loss), Z, Y, p)
    d_Z, d_loss = cuda.to_device(Z), cuda.to_device(np.full(7, -1.0))
    K.output_and_loss(d_Z, cuda.to_device(Y) if with_targets else None, d_loss, loss, dev_p(p))
    np.testing.assert_allclose(d_Z.copy_to_host(), expected_out, rtol=1e-13, atol=1e-15)
    if with_targets:
        assert np.all(np.isfinite(d_loss.copy_to_host()))
        np.testing.assert_allclose(d_loss.copy_to_host(), expected_loss, rtol=1e-13, atol=1e-13)
    else:
        np.testing.assert_array_equal(d_loss.copy_to_host(), -1.0)  # untouched


@pytest.mark.parametrize("weighted", [False, True])
def test_batch_loss_and_output_delta(weighted):
    """Σ‖W‖² (atomics across 2 blocks), 1/Σw, the loss and D = w (A − Y) / Σw."""
    per_sample, A, Y = np.abs(rand(7, seed=16)), rand(7, 3, seed=17), rand(7, 3, seed=18)
    w = np.abs(rand(7, seed=19)) if weighted else None
    W1, W2 = rand(5, 4, seed=20), rand(4, 3, seed=21)
    stats = cuda.to_device(np.zeros(K.N_STATS))
    for W in (W1, W2):
        K.sum_of_squares(cuda.to_device(W.ravel()), stats, K.STAT_SUM_SQ)
    out, penalty = cuda.to_device(np.zeros(3)), cuda.to_device(np.zeros(3))
    K.batch_loss(cuda.to_device(per_sample), None if w is None else cuda.to_device(w), stats, 0.7, out, penalty, 1)

    ww = np.ones(7) if w is None else w
    sum_w, sum_sq = ww.sum(), (W1**2).sum() + (W2**2).sum()
    expected_loss = ww @ per_sample / sum_w + 0.5 * 0.7 / sum_w * sum_sq
    np.testing.assert_allclose(out.copy_to_host(), [0.0, expected_loss, 0.0], rtol=1e-13)
    np.testing.assert_allclose(penalty.copy_to_host(), [0.0, 0.5 * 0.7 / sum_w * sum_sq, 0.0], rtol=1e-13)
    # 1/Σw stays for the backward pass; Σ‖W‖² is back at 0 for the next batch
    np.testing.assert_allclose(stats.copy_to_host(), [1 / sum_w, 0.0], rtol=1e-13)

    D = cuda.device_array((7, 3))
    K.output_delta(cuda.to_device(A), cuda.to_device(Y), None if w is None else cuda.to_device(w), stats, D,
                   "squared_error")
    np.testing.assert_allclose(D.copy_to_host(), ww[:, None] * (A - Y) / sum_w, rtol=1e-13, atol=1e-15)
    for loss in LOSSES:  # every loss's own delta, as the reference computes it
        entry, p = get_loss(loss), loss_p(loss)
        Y_loss = targets(loss, 7, 3, seed=18)
        K.output_delta(cuda.to_device(A), cuda.to_device(Y_loss), None if w is None else cuda.to_device(w), stats,
                       D, loss, dev_p(p))
        expected = np.vectorize(entry.delta, excluded={3})(A, Y_loss, (ww / sum_w)[:, None], p)
        np.testing.assert_allclose(D.copy_to_host(), expected, rtol=1e-13, atol=1e-15, err_msg=loss)

    dW, W = rand(20, seed=22), W1.ravel()
    d_dW = cuda.to_device(dW)
    K.add_l2_grad(d_dW, cuda.to_device(W), 0.7, stats)
    np.testing.assert_allclose(d_dW.copy_to_host(), dW + 0.7 / sum_w * W, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape, max_blocks", [((7, 5), 2), ((7, 5), 1), ((1, 3), 2), ((9, 1), 2)])
def test_column_sums(monkeypatch, shape, max_blocks):
    monkeypatch.setattr(config, "MAX_BLOCKS", max_blocks)  # one block: its loop walks the column tiles
    D = rand(*shape, seed=23)
    out = cuda.device_array(shape[1])
    K.column_sums(cuda.to_device(D), out)
    np.testing.assert_allclose(out.copy_to_host(), D.sum(axis=0), rtol=1e-13, atol=1e-15)


# -- data movement -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_gather_batch_takes_rows_of_the_permutation(weighted):
    X, Y, w = rand(13, 5, seed=24), rand(13, 3, seed=25), rand(13, seed=26)
    order = np.random.default_rng(27).permutation(13)
    m, lo = 5, 10  # the partial last batch is 3 rows; take 3 at lo = 10
    Xb, Yb = cuda.device_array((m, 5)), cuda.device_array((m, 3))
    wb = cuda.device_array(m) if weighted else None
    for lo, m in ((0, 5), (10, 3)):
        K.gather_batch(cuda.to_device(X), cuda.to_device(Y), cuda.to_device(w) if weighted else None,
                       cuda.to_device(order), lo, Xb[:m], Yb[:m], None if wb is None else wb[:m])
        idx = order[lo : lo + m]
        np.testing.assert_array_equal(Xb.copy_to_host()[:m], X[idx])
        np.testing.assert_array_equal(Yb.copy_to_host()[:m], Y[idx])
        if weighted:
            np.testing.assert_array_equal(wb.copy_to_host()[:m], w[idx])


def test_copy_2d_casts_strided_input():
    src = rand(7, 8, seed=28, dtype=np.float32)
    dst = cuda.device_array((7, 3), np.float64)
    K.copy_2d(cuda.to_device(src)[:, 2:5], dst)
    np.testing.assert_array_equal(dst.copy_to_host(), src[:, 2:5].astype(np.float64))


def test_reductions_with_the_default_launch_shapes(monkeypatch):
    """The shipped 256-thread blocks and 32×8 column-sum blocks, on more rows and columns than one block."""
    for name in ("THREADS_PER_BLOCK", "MAX_BLOCKS", "REDUCE_COLS", "REDUCE_ROWS"):
        monkeypatch.setattr(config, name, SHIPPED[name])
    D = rand(300, 40, seed=29)
    out = cuda.device_array(40)
    K.column_sums(cuda.to_device(D), out)
    np.testing.assert_allclose(out.copy_to_host(), D.sum(axis=0), rtol=1e-12)
    stats, out = cuda.to_device(np.zeros(K.N_STATS)), cuda.to_device(np.zeros(1))
    per_sample, w = np.ascontiguousarray(D[:, 0]), np.abs(D[:, 1])
    K.batch_loss(cuda.to_device(per_sample), cuda.to_device(w), stats, 0.0, out, cuda.device_array(1), 0)
    np.testing.assert_allclose(stats.copy_to_host(), [1 / w.sum(), 0.0], rtol=1e-12)
    np.testing.assert_allclose(out.copy_to_host(), [w @ per_sample / w.sum()], rtol=1e-12)


def test_all_finite_scans_every_element():
    scratch = cuda.device_array(1, np.int64)
    x = rand(37, seed=30)
    assert K.all_finite(cuda.to_device(x), scratch)
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[36] = bad  # the last element, past every full block
        assert not K.all_finite(cuda.to_device(y), scratch)
    assert K.all_finite(cuda.to_device(x), scratch)  # the scratch count starts from zero again


def test_a_batch_of_zero_weights_contributes_nothing():
    """As on the CPU: a mini-batch whose sample weights are all 0 has loss 0 and gradient 0, not NaN."""
    stats, out, penalty = cuda.to_device(np.zeros(K.N_STATS)), cuda.to_device(np.ones(1)), cuda.device_array(1)
    K.batch_loss(cuda.to_device(np.ones(4)), cuda.to_device(np.zeros(4)), stats, 0.5, out, penalty, 0)
    assert out.copy_to_host()[0] == 0.0 and stats.copy_to_host()[0] == 0.0
    D = cuda.device_array((4, 2))
    K.output_delta(cuda.to_device(np.ones((4, 2))), cuda.to_device(np.zeros((4, 2))), cuda.to_device(np.zeros(4)),
                   stats, D, "cross_entropy")
    np.testing.assert_array_equal(D.copy_to_host(), 0.0)
