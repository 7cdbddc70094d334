"""Numba CUDA kernels for the forward and backward passes of :class:`microdl.nn.MLP`.

Each kernel does one step of the math in :mod:`microdl.nn.mlp`, on row-major device arrays whose rows are
samples; the Python functions at the bottom of this module launch them. In backprop order:

=======================  ========================================  ==========================================
launcher                 computes                                  used for
=======================  ========================================  ==========================================
``gather_batch``         Xb[r] = X[order[lo + r]] (and Y, w)       a shuffled mini-batch, from a device-side
                                                                   permutation
``matmul``               C = f(A · B + b)                          a layer: Z[l] = A[l−1] W[l] + b[l] and
                                                                   A[l] = f(Z[l]) (f = identity for the
                                                                   output layer)
``output_and_loss``      ℓ_i from the logits, then Z ← softmax /   the output layer (:mod:`microdl.nn.losses`)
                         sigmoid / identity
``sum_of_squares``       Σ ‖W‖²                                    the L2 penalty (when α ≠ 0)
``batch_loss``           Σw, Σwℓ; L = Σwℓ/Σw + α/(2Σw) Σ‖W‖²       one float per batch, left on the device
``output_delta``         D = w ⊙ (A − Y) / Σw                      dL/dZ of the output layer
``matmul_tn``            C = Aᵀ · B                                dL/dW[l] = A[l−1]ᵀ D[l]
``add_l2_grad``          dW += (α/Σw) W                            the penalty's gradient
``column_sums``          c_j = Σ_i D_ij                            dL/db[l]
``matmul_nt``            C = (A · Bᵀ) ⊙ f'(Z), f' from f(Z)        D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])
=======================  ========================================  ==========================================

Bias and activation run in the epilogue of the forward product, and the activation's derivative in the
epilogue of the backward one, so each layer's activations and deltas make one trip to memory, and a shuffled
mini-batch step of an L-layer network without L2 penalty is 4L + 3 launches, plus the optimizer's one.

The scalar maps (each activation beside its derivative from the output, the stable sigmoid and softplus) are
the plain per-element functions of :mod:`microdl.nn.activations` and :mod:`microdl.nn.losses`, compiled as
CUDA device functions, the same ones the CPU kernels compile; the output layer uses the same max-shifted
log-sum-exp. The tests compare every kernel with the whole-array NumPy references of those modules. Σw and
the loss stay in small float64 device arrays, so a training step never waits for the host.

Launch shapes
-------------
Module constants that tests shrink (with ``monkeypatch.setattr``) so that partial tiles and partial blocks run
even on tiny arrays. Kernels whose shared or local arrays depend on a constant are built by a cached factory
keyed on it, and launchers read the constants at call time, so a changed constant takes effect on the next
launch (a new kernel is compiled for it) rather than being frozen at import.

* ``TILE``: the matrix multiply runs ``TILE × TILE`` threads per block over a ``TILE`` deep slice of K;
* ``REG``: each thread computes a ``REG × REG`` block of C (register blocking), so a block covers a
  ``TILE·REG`` square of C;
* ``THREADS_PER_BLOCK`` (a power of two) and ``MAX_BLOCKS``: the 1-D grid-stride kernels and reductions;
* ``REDUCE_COLS × REDUCE_ROWS`` (rows a power of two): the blocks of the column sums.

Every loop over data is a grid-stride loop, so any grid size is correct and the launchers cap it.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from typing import Any

import numpy as np

from microdl._cuda_support import require_cuda
from microdl.nn import activations as act
from microdl.nn import losses

cuda = require_cuda()

# Some launches are small on purpose: one block sums a batch's losses, a narrow layer's product has few tiles.
# numba-cuda warns about every grid of fewer than 128 blocks; silence only that.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

#: Threads per side of a matrix-multiply block, and the depth of its K slices.
TILE = 16
#: Outputs per side computed by one matrix-multiply thread; a block computes a (TILE·REG)² tile of C.
REG = 4
#: Threads per block of the 1-D kernels and reductions (a power of two).
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks of a 1-D grid-stride launch.
MAX_BLOCKS = 4096
#: Column-sum blocks: REDUCE_COLS adjacent columns (coalesced reads) × REDUCE_ROWS row strides (a power of two).
REDUCE_COLS = 32
REDUCE_ROWS = 8
#: CUDA's limit on gridDim.y (and z); the matrix multiply's grid-stride loop covers the rest.
_MAX_GRID_Y = 65535

# Kernels branch on a small int code, the same for the whole launch (the CPU kernels' codes).
IDENTITY, RELU, LEAKY_RELU, TANH, SIGMOID = (act.ACTIVATION_CODES[k] for k in
                                             ("identity", "relu", "leaky_relu", "tanh", "sigmoid"))
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR = (losses.LOSS_CODES[k] for k in
                                                      ("cross_entropy", "binary_cross_entropy", "squared_error"))

#: Slots of the per-batch statistics array (float64, on the device).
STAT_SUM_W, STAT_SUM_WL, STAT_SUM_SQ = 0, 1, 2
N_STATS = 3


# -- scalar math: the per-element maps of microdl.nn.activations and losses, compiled for the device -------
_device = cuda.jit(device=True)
_relu, _relu_d = _device(act.relu), _device(act.relu_derivative)
_leaky, _leaky_d = _device(act.leaky_relu), _device(act.leaky_relu_derivative)
_tanh, _tanh_d = _device(act.tanh), _device(act.tanh_derivative)
_sigmoid, _sigmoid_d = _device(act.sigmoid), _device(act.sigmoid_derivative)
_softplus = _device(losses.softplus)


@cuda.jit(device=True)
def _activate(code, z):
    """f(z) for a hidden layer."""
    if code == RELU:
        return _relu(z)
    if code == LEAKY_RELU:
        return _leaky(z)
    if code == TANH:
        return _tanh(z)
    if code == SIGMOID:
        return _sigmoid(z)
    return z


@cuda.jit(device=True)
def _derivative(code, a):
    """f'(z), computed from the output a = f(z)."""
    if code == RELU:
        return _relu_d(a)
    if code == LEAKY_RELU:
        return _leaky_d(a)
    if code == TANH:
        return _tanh_d(a)
    if code == SIGMOID:
        return _sigmoid_d(a)
    return 1.0


@cuda.jit(device=True)
def _block_sum(buf, tid, width):
    """Tree-sum ``buf[:width]`` (width a power of two) in shared memory; every thread of the block calls it.

    The total ends in ``buf[0]``.
    """
    cuda.syncthreads()
    half = width // 2
    while half > 0:
        if tid < half:
            buf[tid] += buf[tid + half]
        cuda.syncthreads()
        half //= 2


# -- matrix multiply ---------------------------------------------------------------------------------------
@cache
def _matmul_kernel(trans_a: bool, trans_b: bool, tile: int, reg: int, dtype: type) -> Any:
    """Build C = op(A) · op(B), op(X) = Xᵀ if trans_x, for one tile shape and dtype, with an optional
    epilogue: C = f(op(A) op(B) + b), or C = (op(A) op(B)) ⊙ f'(Z) with f' from the output f(Z).

    A block of ``tile × tile`` threads owns a ``BM × BM`` tile of C (BM = tile·reg); thread (ty, tx) computes
    the ``reg × reg`` outputs at rows ``ty + a·tile`` and columns ``tx + b·tile``, so neighbouring threads
    write neighbouring columns. K is walked in slices of ``tile``: the block stages op(A)[i-tile, k-slice]
    and op(B)[k-slice, j-tile] in shared memory, always reading global memory along its contiguous axis
    (coalesced) and storing transposed where needed; the extra column of padding keeps those transposed
    stores free of bank conflicts. Out-of-range elements are staged as zeros, so partial tiles need no
    special case in the inner loop.
    """
    T, R = tile, reg
    BM = T * R
    STAGE = (T, BM + 1)  # a K slice × a BM-wide tile, padded by one column; a compile-time constant

    @cuda.jit
    def matmul(A, B, C, bias, deriv_of, code):
        M, N = C.shape
        K = A.shape[0] if trans_a else A.shape[1]
        sA = cuda.shared.array(STAGE, dtype)  # sA[k, i] = op(A)[i0 + i, k0 + k]
        sB = cuda.shared.array(STAGE, dtype)  # sB[k, j] = op(B)[k0 + k, j0 + j]
        acc = cuda.local.array((R, R), dtype)
        a_reg = cuda.local.array(R, dtype)
        b_reg = cuda.local.array(R, dtype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        for i0 in range(cuda.blockIdx.y * BM, M, cuda.gridDim.y * BM):
            for j0 in range(cuda.blockIdx.x * BM, N, cuda.gridDim.x * BM):
                for a in range(R):
                    for b in range(R):
                        acc[a, b] = 0
                for k0 in range(0, K, T):
                    for r in range(R):
                        if trans_a:  # A is K × M: walk along its rows (i contiguous)
                            k = k0 + ty
                            i = i0 + tx + r * T
                            if k < K and i < M:
                                sA[ty, tx + r * T] = A[k, i]
                            else:
                                sA[ty, tx + r * T] = 0
                        else:  # A is M × K: walk along k
                            i = i0 + ty + r * T
                            k = k0 + tx
                            if i < M and k < K:
                                sA[tx, ty + r * T] = A[i, k]
                            else:
                                sA[tx, ty + r * T] = 0
                        if trans_b:  # B is N × K: walk along k
                            j = j0 + ty + r * T
                            k = k0 + tx
                            if j < N and k < K:
                                sB[tx, ty + r * T] = B[j, k]
                            else:
                                sB[tx, ty + r * T] = 0
                        else:  # B is K × N: walk along its rows (j contiguous)
                            k = k0 + ty
                            j = j0 + tx + r * T
                            if k < K and j < N:
                                sB[ty, tx + r * T] = B[k, j]
                            else:
                                sB[ty, tx + r * T] = 0
                    cuda.syncthreads()
                    for kk in range(T):
                        for a in range(R):
                            a_reg[a] = sA[kk, ty + a * T]
                        for b in range(R):
                            b_reg[b] = sB[kk, tx + b * T]
                        for a in range(R):
                            for b in range(R):
                                acc[a, b] += a_reg[a] * b_reg[b]
                    cuda.syncthreads()
                # The epilogue, fused so that C makes one trip to memory: f(C + b) in the forward pass,
                # C ⊙ f'(Z) (from the output deriv_of = f(Z)) in the backward pass; None switches a part off.
                for a in range(R):
                    i = i0 + ty + a * T
                    if i < M:
                        for b in range(R):
                            j = j0 + tx + b * T
                            if j < N:
                                if bias is not None:
                                    C[i, j] = _activate(code, acc[a, b] + bias[j])
                                elif deriv_of is not None:
                                    C[i, j] = acc[a, b] * _derivative(code, deriv_of[i, j])
                                else:
                                    C[i, j] = acc[a, b]

    return matmul


def _launch_matmul(trans_a: bool, trans_b: bool, A: Any, B: Any, C: Any, bias: Any, deriv_of: Any,
                   activation: str) -> None:
    M, N = C.shape
    K_a = A.shape[0] if trans_a else A.shape[1]
    K_b = B.shape[1] if trans_b else B.shape[0]
    rows_a = A.shape[1] if trans_a else A.shape[0]
    cols_b = B.shape[0] if trans_b else B.shape[1]
    if K_a != K_b or rows_a != M or cols_b != N:
        raise ValueError(f"matmul shapes do not match: op(A) {rows_a}×{K_a}, op(B) {K_b}×{cols_b}, C {M}×{N}")
    if M == 0 or N == 0:
        return
    if deriv_of is not None and activation == "identity":
        deriv_of = None  # f' = 1
    kernel = _matmul_kernel(trans_a, trans_b, TILE, REG, np.dtype(C.dtype).type)
    bm = TILE * REG
    grid = (max(1, -(-N // bm)), max(1, min(_MAX_GRID_Y, -(-M // bm))))
    kernel[grid, (TILE, TILE)](A, B, C, bias, deriv_of, act.ACTIVATION_CODES[activation])


def matmul(A: Any, B: Any, C: Any, bias: Any = None, activation: str = "identity") -> None:
    """C = A · B (A is M × K, B is K × N, C is M × N); with ``bias``, C = f(A · B + b), f the ``activation``:
    a layer's forward pass in one kernel."""
    _launch_matmul(False, False, A, B, C, bias, None, activation)


def matmul_tn(A: Any, B: Any, C: Any) -> None:
    """C = Aᵀ · B (A is K × M, B is K × N): the weight gradient A[l−1]ᵀ D[l]."""
    _launch_matmul(True, False, A, B, C, None, None, "identity")


def matmul_nt(A: Any, B: Any, C: Any, times_derivative_of: Any = None, activation: str = "identity") -> None:
    """C = A · Bᵀ (A is M × K, B is N × K); with ``times_derivative_of`` (the output F = f(Z) of the layer
    below, M × N), C = (A · Bᵀ) ⊙ f'(Z): the delta D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1]) in one kernel."""
    _launch_matmul(False, True, A, B, C, None, times_derivative_of, activation)


# -- elementwise kernels -------------------------------------------------------------------------------------
@cuda.jit
def _gather_batch(X, Y, w, order, lo, Xb, Yb, wb):
    m, nx = Xb.shape
    ny = Yb.shape[1]
    for idx in range(cuda.grid(1), m * nx, cuda.gridsize(1)):
        r = idx // nx
        Xb[r, idx - r * nx] = X[order[lo + r], idx - r * nx]
    for idx in range(cuda.grid(1), m * ny, cuda.gridsize(1)):
        r = idx // ny
        Yb[r, idx - r * ny] = Y[order[lo + r], idx - r * ny]
    if w is not None:
        for r in range(cuda.grid(1), m, cuda.gridsize(1)):
            wb[r] = w[order[lo + r]]


@cuda.jit
def _copy_2d(src, dst):
    m, n = dst.shape
    for idx in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        r = idx // n
        dst[r, idx - r * n] = src[r, idx - r * n]


@cuda.jit
def _output_and_loss(Z, Y, per_sample, code):
    """One thread per row (the output layer is narrow). With Y, write ℓ_i; then replace Z by the output.

    The per-sample losses, from the logits (losses.py): cross_entropy ℓ = logsumexp(z) − Σ y z (rows of Y sum
    to 1), binary_cross_entropy ℓ = Σ softplus(z) − y z, squared_error ℓ = ½ Σ (z − y)².
    """
    m, n = Z.shape
    for i in range(cuda.grid(1), m, cuda.gridsize(1)):
        if code == CROSS_ENTROPY:
            # ℓ = logsumexp(z) − Σ y z, on logits shifted by their maximum (losses.py)
            shift = Z[i, 0]
            for k in range(1, n):
                shift = max(shift, Z[i, k])
            total = 0.0
            yz = 0.0
            for k in range(n):
                z = Z[i, k] - shift
                if Y is not None:
                    yz += Y[i, k] * z
                e = math.exp(z)
                Z[i, k] = e
                total += e
            for k in range(n):
                Z[i, k] = Z[i, k] / total  # softmax
            if Y is not None:
                per_sample[i] = math.log(total) - yz
        elif code == BINARY_CROSS_ENTROPY:
            loss = 0.0  # ℓ = Σ softplus(z) − y z
            for k in range(n):
                z = Z[i, k]
                if Y is not None:
                    loss += _softplus(z) - Y[i, k] * z
                Z[i, k] = _sigmoid(z)
            if Y is not None:
                per_sample[i] = loss
        elif Y is not None:  # SQUARED_ERROR: ℓ = ½ Σ (z − y)², the output is z itself
            loss = 0.0
            for k in range(n):
                d = Z[i, k] - Y[i, k]
                loss += d * d
            per_sample[i] = 0.5 * loss


@cuda.jit
def _output_delta(A, Y, w, stats, D):
    m, n = D.shape
    sum_w = stats[STAT_SUM_W]
    for idx in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        r = idx // n
        k = idx - r * n
        if w is None:
            D[r, k] = (A[r, k] - Y[r, k]) * (1.0 / sum_w)
        else:
            D[r, k] = (A[r, k] - Y[r, k]) * (w[r] / sum_w)


@cuda.jit
def _add_l2_grad(dW, W, alpha, stats):
    c = alpha / stats[STAT_SUM_W]
    for i in range(cuda.grid(1), dW.size, cuda.gridsize(1)):
        dW[i] += c * W[i]


# -- reductions (shared-memory trees, float64 accumulators) --------------------------------------------------
@cache
def _batch_loss_kernel(threads: int) -> Any:
    """One block: Σw (m when unweighted) and Σ w ℓ, then out[slot] = Σwℓ/Σw + α/(2Σw) stats[SUM_SQ].

    Leaves Σw and Σwℓ in the stats for the backward pass, and resets stats[SUM_SQ] to 0 for the next batch's
    :func:`sum_of_squares` (which adds to it).
    """

    @cuda.jit
    def batch_loss(per_sample, w, stats, alpha, out, slot):
        sum_w = cuda.shared.array(threads, np.float64)
        sum_wl = cuda.shared.array(threads, np.float64)
        tid = cuda.threadIdx.x
        acc_w = 0.0
        acc_wl = 0.0
        for i in range(tid, per_sample.size, threads):
            if w is None:
                acc_w += 1.0
                acc_wl += per_sample[i]
            else:
                acc_w += w[i]
                acc_wl += w[i] * per_sample[i]
        sum_w[tid] = acc_w
        sum_wl[tid] = acc_wl
        _block_sum(sum_w, tid, threads)
        _block_sum(sum_wl, tid, threads)
        if tid == 0:
            total_w = sum_w[0]
            out[slot] = sum_wl[0] / total_w + 0.5 * alpha / total_w * stats[STAT_SUM_SQ]
            stats[STAT_SUM_W] = total_w
            stats[STAT_SUM_WL] = sum_wl[0]
            stats[STAT_SUM_SQ] = 0.0

    return batch_loss


@cache
def _sum_of_squares_kernel(threads: int) -> Any:
    """out[slot] += Σ x² over a flat array: block partial sums, then one atomic add per block."""

    @cuda.jit
    def sum_of_squares(x, out, slot):
        partial = cuda.shared.array(threads, np.float64)
        tid = cuda.threadIdx.x
        acc = 0.0
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            v = np.float64(x[i])  # square in float64: a float32 square overflows above ~1.8e19
            acc += v * v
        partial[tid] = acc
        _block_sum(partial, tid, threads)
        if tid == 0:
            cuda.atomic.add(out, slot, partial[0])

    return sum_of_squares


@cache
def _column_sums_kernel(cols: int, rows: int) -> Any:
    """out[j] = Σ_i D[i, j]: a block reads ``cols`` adjacent columns (coalesced) with ``rows`` row strides,
    then tree-sums the strides in shared memory. Deterministic (no atomics)."""

    @cuda.jit
    def column_sums(D, out):
        partial = cuda.shared.array((rows, cols), np.float64)
        m, n = D.shape
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        for j0 in range(cuda.blockIdx.x * cols, n, cuda.gridDim.x * cols):
            j = j0 + tx
            acc = 0.0
            if j < n:
                for i in range(ty, m, rows):
                    acc += D[i, j]
            partial[ty, tx] = acc
            cuda.syncthreads()
            half = rows // 2
            while half > 0:
                if ty < half:
                    partial[ty, tx] += partial[ty + half, tx]
                cuda.syncthreads()
                half //= 2
            if ty == 0 and j < n:
                out[j] = partial[0, tx]
            cuda.syncthreads()  # partial is reused by the next column tile

    return column_sums


# -- launchers ---------------------------------------------------------------------------------------------
def launch_1d(n: int) -> tuple[int, int]:
    """(blocks, threads) of a grid-stride launch over ``n`` items: enough blocks, at most MAX_BLOCKS."""
    return max(1, min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK))), THREADS_PER_BLOCK


def gather_batch(X: Any, Y: Any, w: Any, order: Any, lo: int, Xb: Any, Yb: Any, wb: Any) -> None:
    """Rows ``order[lo : lo + m]`` of X, Y (and w, unless None) into the m-row buffers Xb, Yb (and wb)."""
    blocks, threads = launch_1d(Xb.shape[0] * max(Xb.shape[1], Yb.shape[1]))
    _gather_batch[blocks, threads](X, Y, w, order, lo, Xb, Yb, wb)


def copy_2d(src: Any, dst: Any) -> None:
    """dst[...] = src, converting the dtype; either may be strided (a view of a CuPy or torch array)."""
    blocks, threads = launch_1d(dst.size)
    _copy_2d[blocks, threads](src, dst)


def output_and_loss(Z: Any, Y: Any, per_sample: Any, loss: str) -> None:
    """With targets Y, per_sample[i] = ℓ_i from the logits Z; then Z ← the output (softmax, sigmoid, identity).

    Pass ``Y=None`` (and any ``per_sample``) for outputs only.
    """
    blocks, threads = launch_1d(Z.shape[0])
    _output_and_loss[blocks, threads](Z, Y, per_sample, losses.LOSS_CODES[loss])


def batch_loss(per_sample: Any, w: Any, stats: Any, alpha: float, out: Any, slot: int) -> None:
    """out[slot] = Σwℓ/Σw + α/(2Σw) Σ‖W‖² (w None means unit weights): the batch loss, left on the device.

    Σ‖W‖² is read from ``stats[STAT_SUM_SQ]`` (added there by :func:`sum_of_squares` beforehand when α ≠ 0,
    and reset to 0 here); Σw and Σwℓ are left in ``stats`` (float64) for :func:`output_delta` and
    :func:`add_l2_grad`. One block.
    """
    _batch_loss_kernel(THREADS_PER_BLOCK)[1, THREADS_PER_BLOCK](per_sample, w, stats, alpha, out, slot)


def sum_of_squares(x: Any, out: Any, slot: int) -> None:
    """out[slot] += Σ x² over the flat array ``x`` (float64 accumulation, one atomic add per block)."""
    blocks, threads = launch_1d(x.size)
    _sum_of_squares_kernel(threads)[blocks, threads](x, out, slot)


def output_delta(A: Any, Y: Any, w: Any, stats: Any, D: Any) -> None:
    """D = w ⊙ (A − Y) / Σw (Σw read from stats), the output layer's dL/dZ for all three loss pairs."""
    blocks, threads = launch_1d(D.size)
    _output_delta[blocks, threads](A, Y, w, stats, D)


def add_l2_grad(dW: Any, W: Any, alpha: float, stats: Any) -> None:
    """dW += (α/Σw) W over flat views, Σw read from stats."""
    blocks, threads = launch_1d(dW.size)
    _add_l2_grad[blocks, threads](dW, W, alpha, stats)


def column_sums(D: Any, out: Any) -> None:
    """out[j] = Σ_i D[i, j]: the bias gradient."""
    kernel = _column_sums_kernel(REDUCE_COLS, REDUCE_ROWS)
    blocks = max(1, min(MAX_BLOCKS, -(-D.shape[1] // REDUCE_COLS)))
    kernel[blocks, (REDUCE_COLS, REDUCE_ROWS)](D, out)
