"""Numba CUDA kernels for the forward and backward passes of :class:`microdl.nn.MLP`.

Each kernel does one step of the math in :mod:`microdl.nn.mlp`, on row-major device arrays whose rows are
samples; the Python functions at the bottom of this module launch them. In backprop order:

=======================  ========================================  ==========================================
launcher                 computes                                  used for
=======================  ========================================  ==========================================
``gather_batch``         Xb[r] = X[order[lo + r]] (and Y, w)       a shuffled mini-batch, from a device-side
                                                                   permutation
``matmul``               C = f(A · B + b) (and Z = A · B + b)      a layer: Z[l] = A[l−1] W[l] + b[l] and
                                                                   A[l] = f(Z[l]) (f = identity for the
                                                                   output layer)
``output_and_loss``      ℓ_i from the logits, then Z ← the loss's   the output layer (:mod:`microdl.nn.losses`)
                         output (softmax, sigmoid, identity, exp)
``sum_of_squares``       Σ ‖W‖²                                    the L2 penalty (when α ≠ 0)
``batch_loss``           1/Σw; L = Σwℓ/Σw + α/(2Σw) Σ‖W‖²          one float per batch, left on the device
``output_delta``         D = dL/dZ (w ⊙ (A − Y) / Σw canonical)    dL/dZ of the output layer
``matmul_tn``            C = Aᵀ · B                                dL/dW[l] = A[l−1]ᵀ D[l]
``add_l2_grad``          dW += (α/Σw) W                            the penalty's gradient
``column_sums``          c_j = Σ_i D_ij                            dL/db[l]
``matmul_nt``            C = (A · Bᵀ) ⊙ f'(Z)                      D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])
=======================  ========================================  ==========================================

Bias and activation run in the epilogue of the forward product, and the activation's derivative in the
epilogue of the backward one, so each layer's activations and deltas make one trip to memory, and a shuffled
mini-batch step of an L-layer network without L2 penalty is 4L + 3 launches, plus the optimizer's one.

Every formula (each activation beside its derivative, each loss with its output and its delta) is a scalar
function registered in :mod:`microdl.nn.activations` or :mod:`microdl.nn.losses`, the same ones the CPU kernels
inline: a kernel calls it through the dispatch of :mod:`microdl.nn.formulas` (by the integer code of the
activation or loss, with its parameter vector p) and Numba compiles it for the device. The kernels that call a
formula are built per registry version, so a user's registration is compiled in at the next launch. The
pre-activation Z is written beside f(Z) only for an activation whose f' needs it. The tests compare every kernel
with the textbook pass of :mod:`microdl.nn.reference` and with the CPU kernels. 1/Σw and the loss stay in small
float64 device arrays, so a training step never waits for the host.

Launch shapes
-------------
They live in :mod:`microdl.config`, which tests shrink (with ``monkeypatch.setattr``) so that partial tiles and
partial blocks run even on tiny arrays. Kernels whose shared or local arrays depend on a shape are built by a
cached factory keyed on it, and launchers read the shapes at call time, so a changed shape takes effect on the
next launch (a new kernel is compiled for it) rather than being frozen at import.

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

from microdl import config
from microdl._cuda_support import require_cuda
from microdl.nn import formulas, losses
from microdl.nn.activations import get_activation
from microdl.nn.losses import get_loss

cuda = require_cuda()

# Some launches are small on purpose: one block sums a batch's losses, a narrow layer's product has few tiles.
# numba-cuda warns about every grid of fewer than 128 blocks; silence only that.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

_device = cuda.jit(device=True)
_l2_gradient = _device(losses.l2_gradient)
_l2_penalty = _device(losses.l2_penalty)


def _formulas() -> Any:
    """The registered formulas as device functions: F.activate(code, z, p), F.derivative(code, z, a, p),
    F.loss_and_output(code, z, y, has_y, p), F.output_delta(code, a, y, c, p) (:mod:`microdl.nn.formulas`)."""
    return formulas.compiled(_device, "cuda")


@cache
def _no_params() -> Any:
    """A parameter vector for formulas that take none (the identity of the output layer)."""
    return cuda.to_device(np.zeros(1))

#: CUDA's limit on gridDim.y (and z); the matrix multiply's grid-stride loop covers the rest.
_MAX_GRID_Y = 65535

#: Slots of the per-batch statistics array (float64, on the device): 1/Σw (0 for a batch of zero weights, which
#: then contributes nothing, as on the CPU) and Σ‖W‖².
STAT_INV_SUM_W, STAT_SUM_SQ = 0, 1
N_STATS = 2


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
def _matmul_kernel(trans_a: bool, trans_b: bool, tile: int, reg: int, dtype: type, version: int) -> Any:
    """Build C = op(A) · op(B), op(X) = Xᵀ if trans_x, for one tile shape and dtype (and registry ``version``),
    with an optional epilogue: C = f(op(A) op(B) + b) (keeping Z = op(A) op(B) + b in ``pre`` unless it is
    None), or C = (op(A) op(B)) ⊙ f'(Z) from Z (``pre``, or the output when None) and the output f(Z).

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
    F = _formulas()

    @cuda.jit
    def matmul(A, B, C, bias, deriv_of, code, p, pre, drop):
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
                # C ⊙ f'(Z) (Z from pre, the output deriv_of = f(Z)) in the backward pass; None switches a part
                # off.
                for a in range(R):
                    i = i0 + ty + a * T
                    if i < M:
                        for b in range(R):
                            j = j0 + tx + b * T
                            if j < N:
                                if bias is not None:
                                    z = acc[a, b] + bias[j]
                                    if pre is not None:
                                        pre[i, j] = z
                                    out = F.activate(code, z, p)
                                    if drop is not None:  # dropout: mask ⊙ f'(z) stays in drop (NOTE
                                        keep = drop[i, j]  # [dropout] in microdl.nn._cpu)
                                        drop[i, j] = keep * F.derivative(code, z, out, p)
                                        out = out * keep
                                    C[i, j] = out
                                elif drop is not None:  # the backward product times mask ⊙ f'(Z)
                                    C[i, j] = acc[a, b] * drop[i, j]
                                elif deriv_of is not None:
                                    out = deriv_of[i, j]
                                    z = pre[i, j] if pre is not None else out
                                    C[i, j] = acc[a, b] * F.derivative(code, z, out, p)
                                else:
                                    C[i, j] = acc[a, b]

    return matmul


def _launch_matmul(trans_a: bool, trans_b: bool, A: Any, B: Any, C: Any, bias: Any, deriv_of: Any,
                   activation: str, params: Any = None, pre: Any = None, drop: Any = None) -> None:
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
        deriv_of = pre = None  # f' = 1
    tile, reg = config.TILE, config.REG
    kernel = _matmul_kernel(trans_a, trans_b, tile, reg, np.dtype(C.dtype).type, formulas.version())
    bm = tile * reg
    grid = (max(1, -(-N // bm)), max(1, min(_MAX_GRID_Y, -(-M // bm))))
    kernel[grid, (tile, tile)](A, B, C, bias, deriv_of, get_activation(activation).code,
                               _no_params() if params is None else params, pre, drop)


def matmul(A: Any, B: Any, C: Any, bias: Any = None, activation: str = "identity", params: Any = None,
           pre: Any = None, drop: Any = None) -> None:
    """C = A · B (A is M × K, B is K × N, C is M × N); with ``bias``, C = f(A · B + b), f the ``activation``
    with the parameter vector ``params`` (a float64 device array), and Z = A · B + b into ``pre`` unless it is
    None: a layer's forward pass in one kernel. With ``drop`` (M × N, the dropout mask's factors), C = f(Z) ⊙
    drop, and drop ← drop ⊙ f'(Z) for the backward pass."""
    _launch_matmul(False, False, A, B, C, bias, None, activation, params, pre, drop)


def matmul_tn(A: Any, B: Any, C: Any) -> None:
    """C = Aᵀ · B (A is K × M, B is K × N): the weight gradient A[l−1]ᵀ D[l]."""
    _launch_matmul(True, False, A, B, C, None, None, "identity")


def matmul_nt(A: Any, B: Any, C: Any, times_derivative_of: Any = None, activation: str = "identity",
              params: Any = None, pre: Any = None, drop: Any = None) -> None:
    """C = A · Bᵀ (A is M × K, B is N × K); with ``times_derivative_of`` (the output f(Z) of the layer below,
    M × N, and its Z in ``pre`` for an activation whose f' needs it), C = (A · Bᵀ) ⊙ f'(Z): the delta
    D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1]) in one kernel. With ``drop`` (what :func:`matmul` left there), C = (A ·
    Bᵀ) ⊙ drop instead: the delta with dropout."""
    _launch_matmul(False, True, A, B, C, None, times_derivative_of, activation, params, pre, drop)


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


@cache
def _output_kernels(version: int) -> tuple[Any, Any]:
    """The output layer's two kernels, for the losses registered at ``version``."""
    F = _formulas()

    @cuda.jit
    def output_and_loss(Z, Y, per_sample, code, p):
        """One thread per row (the output layer is narrow): with Y, ℓ_i into per_sample; Z ← the output."""
        for i in range(cuda.grid(1), Z.shape[0], cuda.gridsize(1)):
            if Y is None:
                F.loss_and_output(code, Z[i], Z[i], False, p)
            else:
                per_sample[i] = F.loss_and_output(code, Z[i], Y[i], True, p)

    @cuda.jit
    def output_delta(A, Y, w, stats, D, code, p):
        m, n = D.shape
        inv_sum_w = stats[STAT_INV_SUM_W]
        for idx in range(cuda.grid(1), m * n, cuda.gridsize(1)):
            r = idx // n
            k = idx - r * n
            c = inv_sum_w if w is None else w[r] * inv_sum_w
            D[r, k] = F.output_delta(code, A[r, k], Y[r, k], c, p)

    return output_and_loss, output_delta


@cuda.jit
def _add_l2_grad(dW, W, alpha, stats):
    inv_sum_w = stats[STAT_INV_SUM_W]
    for i in range(cuda.grid(1), dW.size, cuda.gridsize(1)):
        dW[i] += _l2_gradient(alpha, inv_sum_w, W[i])


# -- reductions (shared-memory trees, float64 accumulators) --------------------------------------------------
@cache
def _batch_loss_kernel(threads: int) -> Any:
    """One block: Σw (m when unweighted) and Σ w ℓ, then out[slot] = Σwℓ/Σw + α/(2Σw) stats[SUM_SQ], and the
    penalty alone into penalty_out[slot].

    Leaves 1/Σw in the stats for the backward pass, and resets stats[SUM_SQ] to 0 for the next batch's
    :func:`sum_of_squares` (which adds to it).
    """

    @cuda.jit
    def batch_loss(per_sample, w, stats, alpha, out, penalty_out, slot):
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
            inv_sum_w = 1.0 / sum_w[0] if sum_w[0] > 0 else 0.0
            penalty = _l2_penalty(alpha, inv_sum_w, stats[STAT_SUM_SQ])
            out[slot] = sum_wl[0] * inv_sum_w + penalty
            penalty_out[slot] = penalty
            stats[STAT_INV_SUM_W] = inv_sum_w
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


@cuda.jit
def _count_nonfinite(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if not math.isfinite(x[i]):
            cuda.atomic.add(out, 0, 1)


# -- launchers ---------------------------------------------------------------------------------------------
launch_1d = config.launch_1d


def gather_batch(X: Any, Y: Any, w: Any, order: Any, lo: int, Xb: Any, Yb: Any, wb: Any) -> None:
    """Rows ``order[lo : lo + m]`` of X, Y (and w, unless None) into the m-row buffers Xb, Yb (and wb)."""
    blocks, threads = launch_1d(Xb.shape[0] * max(Xb.shape[1], Yb.shape[1]))
    _gather_batch[blocks, threads](X, Y, w, order, lo, Xb, Yb, wb)


def copy_2d(src: Any, dst: Any) -> None:
    """dst[...] = src, converting the dtype; either may be strided (a view of a CuPy or torch array)."""
    blocks, threads = launch_1d(dst.size)
    _copy_2d[blocks, threads](src, dst)


def output_and_loss(Z: Any, Y: Any, per_sample: Any, loss: str, params: Any = None) -> None:
    """With targets Y, per_sample[i] = ℓ_i from the logits Z; then Z ← the loss's output (softmax, sigmoid,
    identity, exp); ``params`` is the loss's parameter vector (a float64 device array).

    Pass ``Y=None`` (and any ``per_sample``) for outputs only.
    """
    blocks, threads = launch_1d(Z.shape[0])
    kernel = _output_kernels(formulas.version())[0]
    kernel[blocks, threads](Z, Y, per_sample, get_loss(loss).code, _no_params() if params is None else params)


def batch_loss(per_sample: Any, w: Any, stats: Any, alpha: float, out: Any, penalty_out: Any, slot: int) -> None:
    """out[slot] = Σwℓ/Σw + α/(2Σw) Σ‖W‖² (w None means unit weights): the batch loss, left on the device, and
    the penalty alone in penalty_out[slot].

    Σ‖W‖² is read from ``stats[STAT_SUM_SQ]`` (added there by :func:`sum_of_squares` beforehand when α ≠ 0,
    and reset to 0 here); 1/Σw is left in ``stats`` (float64) for :func:`output_delta` and
    :func:`add_l2_grad`. One block.
    """
    threads = config.THREADS_PER_BLOCK
    _batch_loss_kernel(threads)[1, threads](per_sample, w, stats, alpha, out, penalty_out, slot)


def sum_of_squares(x: Any, out: Any, slot: int) -> None:
    """out[slot] += Σ x² over the flat array ``x`` (float64 accumulation, one atomic add per block)."""
    blocks, threads = launch_1d(x.size)
    _sum_of_squares_kernel(threads)[blocks, threads](x, out, slot)


def output_delta(A: Any, Y: Any, w: Any, stats: Any, D: Any, loss: str, params: Any = None) -> None:
    """D = dL/dZ of the output layer for ``loss`` (w ⊙ (A − Y) / Σw for the canonical pairs; 1/Σw read from
    stats), with the loss's parameter vector ``params``."""
    blocks, threads = launch_1d(D.size)
    kernel = _output_kernels(formulas.version())[1]
    kernel[blocks, threads](A, Y, w, stats, D, get_loss(loss).code, _no_params() if params is None else params)


def add_l2_grad(dW: Any, W: Any, alpha: float, stats: Any) -> None:
    """dW += (α/Σw) W over flat views, 1/Σw read from stats."""
    blocks, threads = launch_1d(dW.size)
    _add_l2_grad[blocks, threads](dW, W, alpha, stats)


def column_sums(D: Any, out: Any) -> None:
    """out[j] = Σ_i D[i, j]: the bias gradient."""
    cols, rows = config.REDUCE_COLS, config.REDUCE_ROWS
    blocks = max(1, min(config.MAX_BLOCKS, -(-D.shape[1] // cols)))
    _column_sums_kernel(cols, rows)[blocks, (cols, rows)](D, out)


def all_finite(x: Any, scratch: Any) -> bool:
    """Whether every element of the flat device array ``x`` is finite; ``scratch`` is a 1-element int64 device
    array (zeroed here). Waits for the GPU: called once per epoch, not per step."""
    scratch[:1].copy_to_device(np.zeros(1, dtype=np.int64))
    blocks, threads = launch_1d(x.size)
    _count_nonfinite[blocks, threads](x, scratch)
    return int(scratch.copy_to_host()[0]) == 0
