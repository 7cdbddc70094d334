"""CPU kernels of the forward and backward passes: the batch is split into row blocks, one per Numba thread.

NOTE [row blocks]
Each thread takes a contiguous block of the batch's rows and runs the whole forward and backward pass for it:
matrix products with single-threaded BLAS (``np.dot`` inside a jitted function calls SciPy's BLAS), and fused
loops for everything elementwise (bias + activation, the output layer with its loss and its delta, the
derivative of the activation, the bias gradient). Each block writes its share of dL/dW and dL/db into its own
flat buffer of the :attr:`MLP.grads` layout (block 0 straight into ``grads``); :func:`sum_blocks` then adds the
blocks together and adds the L2 term, each thread over a range of the flat buffer. No block waits for another
until the end, and nothing is allocated. A small batch or a small network is one block, run on the calling
thread (:func:`forward_backward_serial`), since waking the other threads would cost more than it saves.

Why not let BLAS use the threads: on the products of a mini-batch (a few hundred rows), a multithreaded GEMM
is barely faster than a single-threaded one, while two independent half-batch GEMMs run at twice the speed.
And BLAS's thread pool must not run beside Numba's: OpenBLAS threads busy-wait after each product, Numba's
OpenMP threads busy-wait after each kernel, and on a machine with as many cores as threads each pool then
waits for the other to be descheduled. We measured a 9,610-parameter Adam step plus one 200×64×128 product
at 8 ms instead of 40 µs. So during each kernel call, the BLAS the kernels call is held at one thread
(:class:`single_threaded_blas`), as scikit-learn does around its own OpenMP loops; NumPy's, and BLAS between
kernel calls, are left as the user set them (NOTE [which BLAS]).

NOTE [two blocks]
The block takes the pre-activations ``Z`` as a tuple of arrays, or None for an activation whose f' reads only
its output (identity, relu, leaky_relu, tanh, sigmoid: ``from_output=True``). Numba compiles a function once per
argument type and prunes a branch on ``Z is None`` when it compiles it, so there are two blocks at most: the
common one keeps no z, with the short chains of those activations' formulas and no call in its elementwise
loops, which therefore vectorise (NOTE [derivative from the output] in :mod:`microdl.nn.formulas`), and nothing
of GELU, SiLU or ELU compiled into it; the other keeps z for the activations that need it. With every formula
in one loop, the CPU's loss and gradient ran 1.2 to 1.3 times slower than before activations were registered
(relu, 64-128-10 and 100-256-256-2 networks) and a first fit compiled 1.5 times longer.

NOTE [dropout]
Inverted dropout of the hidden layers' outputs, in a training pass only: A[l] = f(Z[l]) ⊙ M[l], where M[l] holds
1/(1−p) for a kept unit and 0 for a dropped one (drawn by :class:`microdl.nn.MLP` on the host, from the model's
own random stream, into a buffer reused from batch to batch). The forward loop computes f'(Z) beside f(Z) and
leaves M[l] ⊙ f'(Z[l]) in the mask's buffer, so the backward pass is one product, D[l] = (D[l+1] W[l+1]ᵀ) ⊙ M[l],
and f' is taken of the undropped output (tanh' = 1 − a² of a scaled a would be wrong). A pass without dropout
passes M = None, and the block is then compiled without any of this: the same machine code as before dropout
existed (NOTE [two blocks]).

The formulas are those registered in :mod:`microdl.nn.activations` and :mod:`microdl.nn.losses`, inlined
(``F``, compiled by :mod:`microdl.nn.formulas`); the steps are those of the textbook pass in
:mod:`microdl.nn.reference`, which the tests compare these kernels with, and with finite differences. The
kernels are cached on disk and checked against every file they were compiled from (NOTE [kernel cache] in
:mod:`microdl._cache`), so an edit to a formula is picked up by the next run. :func:`kernels` gives the passes
for the activations and losses registered now: the ones below for microdl's own, a copy compiled against the
new formulas once a user registers one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from microdl import config
from microdl._cache import checked_jit
from microdl._jit import rebuild
from microdl.nn import formulas, losses
from microdl.nn._blas import kernel_blas_info, single_threaded_blas  # their home: it imports no Numba

__all__ = ["Passes", "kernels", "forward_backward", "forward_backward_serial", "forward_backward_sequential",
           "sum_blocks", "sum_blocks_serial", "sum_blocks_sequential", "n_blocks_for", "single_threaded_blas",
           "kernel_blas_info", "all_finite"]

_inline = njit(inline="always")
# The registered formulas, compiled to be inlined into the loops below: F.activate(code, z, p),
# F.derivative(code, z, a, p), F.loss_and_output(code, z, y, has_y, p), F.output_delta(code, a, y, c, p); each
# picks the formula registered under ``code`` (microdl.nn.formulas writes them from the registries).
F = formulas.compiled(_inline, "cpu", outline=njit(nogil=True))
_l2_gradient = _inline(losses.l2_gradient)

# Fast-math without 'nnan'/'ninf' (a NaN loss must stay NaN) and without approximate functions.
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}


# -- one block, elementwise parts: the formulas are those of activations.py and losses.py ---------------------
@_inline
def _bias_activation(A, b, code, p):
    """A ← f(A + b) in place, for a hidden layer whose f' reads only the output (A holds the product
    A[l−1] W[l]): the pre-activation is not kept."""
    m, n = A.shape
    for i in range(m):
        for j in range(n):
            A[i, j] = F.activate_from_output(code, A[i, j] + b[j], p)


@_inline
def _bias_activation_keeping_z(A, Z, b, code, p):
    """A ← f(A + b) in place, and the pre-activation z = A + b into Z, for an f' that needs z (Z may be A
    itself in a forward-only pass: z is then overwritten by f(z) at once)."""
    m, n = A.shape
    for i in range(m):
        for j in range(n):
            z = A[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = F.activate_from_z(code, z, p)


@_inline
def _times_derivative(D, A, code, p):
    """D ← D ⊙ f'(Z) in place, f' from the output A = f(Z) alone: a short chain of arithmetic, so that the
    loop vectorises (NOTE [derivative from the output] in :mod:`microdl.nn.formulas`)."""
    m, n = D.shape
    for i in range(m):
        for j in range(n):
            D[i, j] *= F.derivative_from_output(code, A[i, j], p)


@_inline
def _times_derivative_from_z(D, Z, A, code, p):
    """D ← D ⊙ f'(Z) in place, f' from the kept pre-activation Z and the output A = f(Z)."""
    m, n = D.shape
    for i in range(m):
        for j in range(n):
            D[i, j] *= F.derivative_from_z(code, Z[i, j], A[i, j], p)


@_inline
def _bias_activation_dropped(A, M, b, code, p):
    """A ← f(A + b) ⊙ M in place and M ← M ⊙ f'(z), for an activation whose f' reads only the output, in a
    training pass with dropout (M holds the mask's factors on the way in: NOTE [dropout])."""
    m, n = A.shape
    for i in range(m):
        for j in range(n):
            a = F.activate_from_output(code, A[i, j] + b[j], p)
            keep = M[i, j]
            A[i, j] = a * keep
            M[i, j] = keep * F.derivative_from_output(code, a, p)


@_inline
def _bias_activation_dropped_from_z(A, M, b, code, p):
    """:func:`_bias_activation_dropped` for an activation whose f' needs z."""
    m, n = A.shape
    for i in range(m):
        for j in range(n):
            z = A[i, j] + b[j]
            a = F.activate_from_z(code, z, p)
            keep = M[i, j]
            A[i, j] = a * keep
            M[i, j] = keep * F.derivative_from_z(code, z, a, p)


@_inline
def _times(D, M):
    """D ← D ⊙ M in place (M = mask ⊙ f'(Z) after a forward pass with dropout)."""
    m, n = D.shape
    for i in range(m):
        for j in range(n):
            D[i, j] *= M[i, j]


@_inline
def _output_layer(Z, b, Y, w, scale, D, per_sample, loss, loss_p, with_grad):
    """Add the bias to the logits Z, then for each row i: the output over Z and ℓ_i into ``per_sample`` (if Y
    has rows), and with ``with_grad`` the loss's delta D = dL/dZ (w_i (A − Y) · scale for the canonical pairs,
    scale = 1/Σw). All arrays are the block's rows; w may be empty (no weights). Returns Σ_i w_i ℓ_i."""
    m, n = Z.shape
    has_y = Y.shape[0] > 0
    has_w = w.shape[0] > 0
    total = 0.0
    for i in range(m):
        z = Z[i]
        for j in range(n):
            z[j] += b[j]
        y = Y[i] if has_y else z
        ell = F.loss_and_output(loss, z, y, has_y, loss_p)
        if has_y:
            wi = w[i] if has_w else 1.0
            per_sample[i] = ell
            total += wi * ell
            if with_grad:
                c = wi * scale
                for j in range(n):
                    D[i, j] = F.output_delta(loss, z[j], y[j], c, loss_p)
    return total


@_inline
def _column_sums(D, out):
    """out_j = Σ_i D_ij (dL/db of a layer, over the block)."""
    m, n = D.shape
    for j in range(n):
        out[j] = 0.0
    for i in range(m):
        for j in range(n):
            out[j] += D[i, j]


@_inline
def _part(c, n, parts):
    """Indices lo..hi-1 of part c when 0..n-1 is cut into ``parts`` nearly equal contiguous parts: the row blocks
    of a batch and the ranges of the flat buffer, the same for the parallel and the sequential paths."""
    return c * n // parts, (c + 1) * n // parts


# -- one block, all layers ------------------------------------------------------------------------------------
# NumPy's error model: a division by zero gives inf or NaN, which the loop's loss check stops at (NOTE [finite or
# told] in microdl.train), instead of an exception, which compiled runs of steps could not raise (NOTE [kernels by
# their address] in microdl._runs). Both models divide alike wherever the divisor is not 0.
_BLOCK_OPTIONS = {"nogil": True, "fastmath": _FASTMATH, "error_model": "numpy"}


@checked_jit(**_BLOCK_OPTIONS)
def _block(lo, hi, X, Y, w, scale, params, layout, A, Z, M, D, g, per_sample, activation, act_p, loss, loss_p,
           with_grad, first_product_done):
    """Forward (and backward) pass of rows lo..hi-1, writing their gradient into the flat ``g``.
    Returns Σ w_i ℓ_i over the block. ``Z`` is None for an activation whose f' reads only the output (NOTE
    [two blocks]); ``M`` is None without dropout (NOTE [dropout])."""
    n_layers = layout.shape[0]
    total = 0.0

    # Forward: Z[l] = A[l-1] W[l] + b[l], A[l] = f(Z[l]); the output layer also gives ℓ_i and its delta.
    for l in range(n_layers):
        fan_in, fan_out, off_W, off_b = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        W = params[off_W : off_W + fan_in * fan_out].reshape((fan_in, fan_out))
        b = params[off_b : off_b + fan_out]
        Al = A[l][lo:hi]
        if l > 0:
            np.dot(A[l - 1][lo:hi], W, Al)
        elif not first_product_done:
            np.dot(X[lo:hi], W, Al)
        if l < n_layers - 1:
            if M is not None:  # a training pass with dropout (NOTE [dropout])
                if Z is None:
                    _bias_activation_dropped(Al, M[l][lo:hi], b, activation, act_p)
                else:
                    _bias_activation_dropped_from_z(Al, M[l][lo:hi], b, activation, act_p)
            elif Z is None:
                _bias_activation(Al, b, activation, act_p)
            else:
                _bias_activation_keeping_z(Al, Z[l][lo:hi], b, activation, act_p)
        else:
            w_block = w[lo:hi] if w.shape[0] > 0 else w
            Y_block = Y[lo:hi] if Y.shape[0] > 0 else Y
            total += _output_layer(Al, b, Y_block, w_block, scale, D[l][lo:hi], per_sample[lo:hi], loss, loss_p,
                                   with_grad)
    if not with_grad:
        return total

    # Backward: dL/dW[l] = A[l-1]ᵀ D[l], dL/db[l] = Σ_rows D[l], D[l-1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l-1]).
    for l in range(n_layers - 1, -1, -1):
        fan_in, fan_out, off_W, off_b = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        Dl = D[l][lo:hi]
        dW = g[off_W : off_W + fan_in * fan_out].reshape((fan_in, fan_out))
        if l > 0:
            np.dot(A[l - 1][lo:hi].T, Dl, dW)
        elif not first_product_done:
            np.dot(X[lo:hi].T, Dl, dW)
        _column_sums(Dl, g[off_b : off_b + fan_out])
        if l > 0:
            W = params[off_W : off_W + fan_in * fan_out].reshape((fan_in, fan_out))
            D_prev = D[l - 1][lo:hi]
            np.dot(Dl, W.T, D_prev)
            if M is not None:  # M holds mask ⊙ f'(Z) since the forward pass
                _times(D_prev, M[l - 1][lo:hi])
            elif Z is None:
                _times_derivative(D_prev, A[l - 1][lo:hi], activation, act_p)
            else:
                _times_derivative_from_z(D_prev, Z[l - 1][lo:hi], A[l - 1][lo:hi], activation, act_p)
    return total


# -- all blocks ----------------------------------------------------------------------------------------------
@checked_jit(parallel=True, nogil=True)
def forward_backward(X, Y, w, scale, params, layout, A, Z, M, D, grads, block_grads, per_sample, m, n_blocks,
                     activation, act_p, loss, loss_p, with_grad, first_product_done):
    """The forward pass (and with ``with_grad`` the backward pass) of ``m`` rows, in ``n_blocks`` row blocks
    run in parallel.

    Parameters
    ----------
    X : (m, n_in) array
        Inputs (C-contiguous). Ignored when ``first_product_done``.
    Y : (m, n_out) array, or (0, 0) for a forward pass without loss
    w : (m,) array of sample weights, or (0,) for none
    scale : float
        1 / Σw (1/m without weights).
    params : flat parameters; ``layout[l] = (fan_in, fan_out, offset of W[l], offset of b[l])``.
    A, D : tuples of (capacity, width) arrays
        Layer outputs and deltas of layers 1..L (rows 0..m-1 are used).
    Z : tuple of (capacity, width) arrays, or None
        The pre-activations, for an activation whose f' needs them (A itself in a forward-only pass); None for
        one whose f' reads only the output (NOTE [two blocks]).
    M : tuple of (capacity, width) arrays, one per hidden layer, or None
        In a training pass with dropout, the factors of the mask (0 for a dropped unit, 1/(1−p) for a kept one),
        overwritten with mask ⊙ f'(Z) (NOTE [dropout]); None otherwise, and the block is compiled without it.
    activation, loss : int
        Codes of the registered activation and loss (:mod:`microdl.nn.formulas`).
    act_p, loss_p : tuples of floats
        Their parameter vectors (:func:`microdl.nn.formulas.as_parameters`).
    grads, block_grads : flat gradient of block 0, and (n_blocks - 1, n_params) for the others.
    per_sample : (capacity,) array, receives ℓ_i.
    first_product_done : bool
        ``A[0][:m]`` already holds X W[1] (sparse X, whose product is done by SciPy); the kernel then neither
        multiplies X nor computes dL/dW[1], which the caller computes from ``D[0]``.

    Returns Σ_i w_i ℓ_i (0 without Y).
    """
    total = 0.0
    for c in prange(n_blocks):
        g = grads if c == 0 or not with_grad else block_grads[c - 1]  # a forward pass writes no gradient
        lo, hi = _part(c, m, n_blocks)
        total += _block(lo, hi, X, Y, w, scale, params, layout, A, Z, M, D, g, per_sample, activation, act_p, loss,
                        loss_p, with_grad, first_product_done)
    return total


def forward_backward_serial(X, Y, w, scale, params, layout, A, Z, M, D, grads, block_grads, per_sample, m, n_blocks,
                            activation, act_p, loss, loss_p, with_grad, first_product_done):
    """:func:`forward_backward` with one block, on the calling thread: small batches and small networks do
    not repay waking the other threads (``n_blocks`` and ``block_grads`` are ignored). A plain call of the
    compiled block, so that a first fit compiles no wrapper around it."""
    return _block(0, m, X, Y, w, scale, params, layout, A, Z, M, D, grads, per_sample, activation, act_p, loss, loss_p,
                  with_grad, first_product_done)


def forward_backward_sequential(X, Y, w, scale, params, layout, A, Z, M, D, grads, block_grads, per_sample, m, n_blocks,
                                activation, act_p, loss, loss_p, with_grad, first_product_done):
    """:func:`forward_backward`'s blocks one after the other on the calling thread, when threads would not pay
    (NOTE [threading layer] in :mod:`microdl.config`): the same blocks, their losses added in the parallel
    reduction's order, so the same results; nothing more to compile."""
    total = 0.0
    for c in range(n_blocks):
        g = grads if c == 0 or not with_grad else block_grads[c - 1]
        lo, hi = _part(c, m, n_blocks)
        total += _block(lo, hi, X, Y, w, scale, params, layout, A, Z, M, D, g, per_sample, activation, act_p, loss,
                        loss_p, with_grad, first_product_done)
    return total


@checked_jit(nogil=True, fastmath=_FASTMATH)
def _sum_range(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, lo, hi):
    """:func:`sum_blocks` over the flat indices lo..hi-1."""
    # (Loops over whole slices from 0: a loop index that Numba cannot prove non-negative gets a wraparound
    # check on every access, which stops LLVM from vectorising the loop.)
    start = max(lo, skip_below)
    g = grads[start:hi]
    for c in range(n_extra):
        extra = block_grads[c, start:hi]
        for i in range(g.size):
            g[i] += extra[i]
    sum_sq = 0.0
    if alpha != 0:
        for l in range(layout.shape[0]):
            W_lo = max(lo, layout[l, 2])
            W_hi = min(hi, layout[l, 2] + layout[l, 0] * layout[l, 1])
            W, dW = params[W_lo:W_hi], grads[W_lo:W_hi]
            for i in range(W.size):
                dW[i] += _l2_gradient(alpha, inv_sum_w, W[i])
                sum_sq += W[i] * W[i]
    return sum_sq


@checked_jit(parallel=True, nogil=True)
def sum_blocks(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, n_chunks):
    """grads += the first ``n_extra`` rows of ``block_grads`` (from index ``skip_below`` on), then
    dL/dW[l] += (α/Σw) W[l] on every layer's weights (not the biases; ``losses.l2_gradient``). Returns
    Σ_l ‖W[l]‖² (0 if α = 0).

    Split into ``n_chunks`` ranges of the flat index, one per thread: each block's partial gradient sits in
    the cache of the core that computed it, and moving all of it to one core costs more than the sum."""
    sum_sq = 0.0
    n = grads.size
    for c in prange(n_chunks):
        lo, hi = _part(c, n, n_chunks)
        sum_sq += _sum_range(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, lo, hi)
    return sum_sq


def sum_blocks_serial(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, n_chunks):
    """:func:`sum_blocks` for one block (only the L2 term), a plain call on the calling thread."""
    return _sum_range(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, 0, grads.size)


def sum_blocks_sequential(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below,
                          n_chunks):
    """:func:`sum_blocks`'s ranges one after the other on the calling thread, their partial Σ‖W‖² added in the
    same order as the parallel reduction adds them, so the result is the same to the last bit (NOTE [threading
    layer] in :mod:`microdl.config`)."""
    sum_sq, n = 0.0, grads.size
    for c in range(n_chunks):
        lo, hi = _part(c, n, n_chunks)
        sum_sq += _sum_range(grads, block_grads, n_extra, params, layout, alpha, inv_sum_w, skip_below, lo, hi)
    return sum_sq


class Passes(NamedTuple):
    """The forward and backward passes for one registry of formulas, with one signature
    (:func:`forward_backward`'s): all blocks in parallel, one block on the calling thread, and the blocks one
    after the other; and the compiled block they call, which compiled runs of steps call too
    (:mod:`microdl._runs`)."""

    parallel: Any
    serial: Any
    sequential: Any
    block: Any


_PASSES = Passes(forward_backward, forward_backward_serial, forward_backward_sequential, _block)
_rebuilt: dict[str, Passes] = {}


def kernels() -> Passes:
    """The passes for the activations and losses registered now: this module's own for microdl's built-ins, or
    a copy compiled (once per registry, and cached on disk under a name with the registry's digest) against the
    formulas a user registered as well."""
    if formulas.is_builtin():
        return _PASSES
    digest = formulas.registry_digest()
    passes = _rebuilt.get(digest)
    if passes is None:
        inline = njit(inline="always")
        built = rebuild({"_bias_activation": (_bias_activation.py_func, inline),
                         "_bias_activation_dropped": (_bias_activation_dropped.py_func, inline),
                         "_bias_activation_dropped_from_z": (_bias_activation_dropped_from_z.py_func, inline),
                         "_bias_activation_keeping_z": (_bias_activation_keeping_z.py_func, inline),
                         "_times_derivative": (_times_derivative.py_func, inline),
                         "_times_derivative_from_z": (_times_derivative_from_z.py_func, inline),
                         "_output_layer": (_output_layer.py_func, inline),
                         "_block": (_block.py_func, checked_jit(**_BLOCK_OPTIONS)),
                         "forward_backward": (forward_backward.py_func, checked_jit(parallel=True, nogil=True)),
                         "forward_backward_serial": (forward_backward_serial, None),
                         "forward_backward_sequential": (forward_backward_sequential, None)},
                        {**globals(), "F": formulas.compiled(_inline, "cpu", outline=njit(nogil=True))},
                        f"_{digest}")
        passes = _rebuilt[digest] = Passes(built["forward_backward"], built["forward_backward_serial"],
                                           built["forward_backward_sequential"], built["_block"])
    return passes


def n_blocks_for(m: int, n_weights: int, n_threads: int, with_grad: bool = True) -> int:
    """Row blocks for a pass of ``m`` rows through ``n_weights`` weights: one per thread, but none with fewer
    than ``config.MIN_BLOCK_ROWS`` rows or ``config.MIN_BLOCK_WORK`` multiply-adds (a backward pass doubles the
    forward's work; below those, waking another thread costs more than it saves)."""
    work = m * n_weights * (3 if with_grad else 1)
    return max(1, min(n_threads, m // config.MIN_BLOCK_ROWS, work // config.MIN_BLOCK_WORK))


@checked_jit(nogil=True)
def _all_finite_flat(x):
    for i in range(x.size):
        if not np.isfinite(x[i]):
            return False
    return True


def all_finite(x: np.ndarray) -> bool:
    """Whether every element of ``x`` is finite: for a contiguous array, a compiled scan that stops at the first
    element that is not, and allocates nothing (the training loop checks θ and the optimizer state this way
    once per epoch)."""
    if x.flags.c_contiguous:
        return bool(_all_finite_flat(x.reshape(-1)))
    return bool(np.isfinite(x).all())
