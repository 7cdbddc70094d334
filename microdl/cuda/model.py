"""The device side of an :class:`~microdl.nn.MLP` built with ``device="cuda"``.

:class:`DeviceNet` moves the model's flat parameter and gradient buffers to the GPU and points the model's
per-layer views (``weights``, ``biases``, ``dL_dW``, ``dL_db``) into them, so that the layout is the CPU's
(W[1], b[1], W[2], b[2], ...) and an optimizer with ``backend="cuda"`` bound to ``model.params`` updates the
same memory. Forward and backward are the math of :mod:`microdl.nn.mlp`, one kernel launch per step of it
(:mod:`microdl.cuda.kernels`)::

    forward    A[l] = f(A[l−1] W[l] + b[l])                       matmul (bias and f in its epilogue)
               ℓ_i from the logits, A[L] = softmax/sigmoid/id     output_and_loss
    loss       Σ‖W‖², 1/Σw  →  L                                 sum_of_squares (α ≠ 0), batch_loss
    backward   D[L] = w ⊙ (A[L] − Y) / Σw                         output_delta
               dL/dW[l] = A[l−1]ᵀ D[l] (+ α/Σw W[l])              matmul_tn (add_l2_grad)
               dL/db[l] = Σ_rows D[l]                             column_sums
               D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1]), f' from A[l−1]  matmul_nt (f' in its epilogue)

NOTE [device sync]: nothing in :meth:`DeviceNet.step` waits for the GPU. Its loss goes to a slot of a device
array and the gradients stay in :attr:`grads`; the host reads the loss only when asked
(:meth:`DeviceNet.loss_and_grad`, or once per epoch through :class:`microdl.cuda.batches.DeviceBatches`). Kernels on the
default stream run in launch order, so each one sees the results of the ones before it.

Inputs may be host arrays (copied into preallocated device buffers) or device arrays from any library that
speaks ``__cuda_array_interface__`` (Numba, CuPy, torch CUDA tensors), which are read in place: a view of
the same memory, strided or not, with no copy unless the dtype differs from the model's (then it is cast on
the device). Device inputs are not checked for NaN, since that would need a pass over them and a sync.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse import issparse

from microdl import config
from microdl._cuda_support import as_device_array, is_cuda_array, require_cuda
from microdl._validation import check_X
from microdl.cuda import kernels as K
from microdl.nn.layout import layer_views

__all__ = ["DeviceNet", "check_device_X"]

cuda = require_cuda()



class _Rows(NamedTuple):
    """The first ``m`` rows of every preallocated batch buffer (device views)."""

    A: list  # outputs of layers 1..L
    D: list  # dL/dZ of layers 1..L
    per_sample: Any  # ℓ_i
    X: Any  # staged inputs, targets and weights (a gathered mini-batch or an upload from the host)
    Y: Any
    w: Any
    Z: list  # pre-activations of layers 1..L (None each, unless the activation's f' needs them)


def check_device_X(X: Any, n_features: int, name: str = "X") -> Any:
    """View a device array (``__cuda_array_interface__``) as a Numba device array and check its shape.

    No copy is made; the dtype may be any real type (the model casts it on the device when it differs).
    """
    X = as_device_array(X)
    if len(X.shape) != 2:
        raise ValueError(f"{name} must be 2-D (samples x features); got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the network expects {n_features}")
    if np.dtype(X.dtype).kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}")
    return X


class DeviceNet:
    """Parameters, gradients and batch buffers of ``model`` on the GPU, with forward and backward passes.

    Parameters
    ----------
    model : MLP
        Its ``params``, ``grads`` and the per-layer views are replaced by device arrays (same layout).

    Attributes
    ----------
    params, grads : device arrays
        The flat buffers, also reachable as ``model.params`` and ``model.grads``.
    """

    def __init__(self, model: Any) -> None:
        require_cuda()  # checked again per model: this module may have been imported while CUDA was usable
        self.model = model
        self.dtype = model.dtype
        self.activation = model.activation
        self.loss = model.loss
        # the formulas' parameter vectors (at least one element: a kernel argument), and whether f' needs Z
        self._activation_p = cuda.to_device(np.concatenate([model._activation_p, [0.0]]))
        self._loss_p = cuda.to_device(np.concatenate([model._loss_p, [0.0]]))
        self._keep_z = model._keep_z
        self.n_layers = model.n_layers
        self.n_inputs, self.n_outputs = model.layer_sizes[0], model.layer_sizes[-1]

        self.params = cuda.to_device(np.ascontiguousarray(model.params))
        self.grads = cuda.to_device(np.zeros_like(model.params))
        model.params, model.grads = self.params, self.grads
        model.weights, model.biases = layer_views(self.params, model.layer_sizes)
        model.dL_dW, model.dL_db = layer_views(self.grads, model.layer_sizes)
        # Flat views of each weight matrix, for the L2 penalty (biases are not penalised).
        self._W_flat = [W.reshape(W.size) for W in model.weights]
        self._dW_flat = [dW.reshape(dW.size) for dW in model.dL_dW]

        # 1/Σw and Σ‖W‖² of the current batch; Σ‖W‖² starts at 0 (kernels.batch_loss leaves it so)
        self._stats = cuda.to_device(np.zeros(K.N_STATS))
        self._loss_out = cuda.device_array(1, np.float64)
        self._penalty_out = cuda.device_array(1, np.float64)
        self._flag = cuda.device_array(1, np.int64)  # the count of all_finite
        self._capacity = 0
        # One pass at a time: the passes share the batch buffers, and prediction from several host threads
        # takes turns on the GPU anyway (NOTE [workspaces] in microdl.nn.mlp).
        self.lock = threading.RLock()
        self._rows_cache: dict[int, _Rows] = {}
        self._masks: list = []  # the dropout masks' device buffer, made at the first pass with dropout

    # -- buffers -------------------------------------------------------------------------------------------
    def reserve(self, m: int) -> None:
        """Make the batch buffers hold at least ``m`` rows (grows only; nothing is allocated afterwards)."""
        if m <= self._capacity:
            return
        widths = self.model.layer_sizes[1:]
        self._A = [cuda.device_array((m, w), self.dtype) for w in widths]
        self._D = [cuda.device_array((m, w), self.dtype) for w in widths]
        # pre-activations of the hidden layers, for an activation whose f' needs them
        self._Z = [cuda.device_array((m if self._keep_z else 0, w), self.dtype) for w in widths]
        self._per_sample = cuda.device_array(m, self.dtype)
        self._X = cuda.device_array((m, self.n_inputs), self.dtype)
        self._Y = cuda.device_array((m, self.n_outputs), self.dtype)
        self._w = cuda.device_array(m, self.dtype)
        self._capacity = m
        self._rows_cache.clear()

    def _rows(self, m: int) -> _Rows:
        """Views of the first ``m`` rows of the buffers, made once per batch size (slicing costs host time)."""
        rows = self._rows_cache.get(m)
        if rows is None:
            self.reserve(m)
            if len(self._rows_cache) >= 8:
                self._rows_cache.clear()
            rows = _Rows([A[:m] for A in self._A], [D[:m] for D in self._D], self._per_sample[:m], self._X[:m],
                         self._Y[:m], self._w[:m], [Z[:m] if self._keep_z else None for Z in self._Z])
            self._rows_cache[m] = rows
        return rows

    # -- inputs --------------------------------------------------------------------------------------------
    def as_input(self, X: Any, name: str = "X") -> Any:
        """A device array as a Numba view (no copy), or a host array validated like the CPU path does."""
        if is_cuda_array(X):
            return check_device_X(X, self.n_inputs, name)
        X = check_X(X, self.n_inputs, self.dtype, name)
        return X.toarray() if issparse(X) else X  # kernels are dense: sparse input is densified

    def to_device(self, a: Any) -> Any:
        """A host array (copied; SciPy sparse is densified) or a device array (used in place unless its dtype
        differs from the model's, then cast on the device) as a device array of the model's dtype."""
        if a is None:
            return None
        if not is_cuda_array(a):
            a = a.toarray() if issparse(a) else a
            return cuda.to_device(np.ascontiguousarray(a, dtype=self.dtype))
        a = as_device_array(a)
        if np.dtype(a.dtype) == self.dtype:
            return a
        if len(a.shape) != 2:
            raise TypeError(f"a 1-D device array must have the model's dtype {self.dtype}; got {a.dtype}")
        cast = cuda.device_array(a.shape, self.dtype)
        K.copy_2d(a, cast)
        return cast

    def _stage(self, a: Any, buf: Any) -> Any:
        """A device array as it is (cast if needed), or a host array copied into the device buffer ``buf``."""
        if is_cuda_array(a):
            return self.to_device(a)
        buf.copy_to_device(np.ascontiguousarray(a, dtype=self.dtype))
        return buf

    def _input_rows(self, X: Any, lo: int, hi: int, rows: _Rows) -> Any:
        """Rows lo:hi of X on the device: a view of device X, or staged into the batch buffer."""
        if not is_cuda_array(X):
            rows.X.copy_to_device(np.ascontiguousarray(X[lo:hi]))
            return rows.X
        if np.dtype(X.dtype) == self.dtype:
            return X[lo:hi]
        K.copy_2d(X[lo:hi], rows.X)
        return rows.X

    # -- the passes (launches only: NOTE [device sync]) ----------------------------------------------------
    def _forward(self, X: Any, rows: _Rows, Y: Any = None, out: Any = None, drop: Any = None) -> Any:
        """Forward pass of the rows of device ``X``; with ``Y``, ℓ_i into ``rows.per_sample``. The last
        layer writes into ``out`` if given (rows of a larger output array), else into ``rows.A[-1]``. With
        ``drop`` (the dropout masks of a training pass), the hidden layers' outputs are dropped."""
        A_prev = X
        last = self.n_layers - 1
        for l in range(self.n_layers):
            Z = out if (l == last and out is not None) else rows.A[l]
            hidden = l < last
            K.matmul(A_prev, self.model.weights[l], Z, bias=self.model.biases[l],
                     activation=self.activation if hidden else "identity",
                     params=self._activation_p if hidden else None,
                     pre=rows.Z[l] if hidden and Y is not None else None,
                     drop=drop[l] if hidden and drop is not None else None)
            A_prev = Z
        K.output_and_loss(A_prev, Y, rows.per_sample, self.loss, self._loss_p)
        return A_prev

    def _batch_loss(self, rows: _Rows, w: Any, losses: Any, penalties: Any, slot: int,
                    with_penalty: bool = True) -> None:
        """losses[slot] = Σwℓ/Σw (+ α/(2Σw) Σ‖W‖² with ``with_penalty``) and penalties[slot] the penalty, leaving
        1/Σw in the stats for the backward pass."""
        alpha = self.model.alpha if with_penalty else 0.0  # read now: the estimators set it per fit
        if alpha:
            for W in self._W_flat:
                K.sum_of_squares(W, self._stats, K.STAT_SUM_SQ)
        K.batch_loss(rows.per_sample, w, self._stats, alpha, losses, penalties, slot)

    def _backward(self, X: Any, Y: Any, w: Any, rows: _Rows, drop: Any = None) -> None:
        D = rows.D[-1]
        K.output_delta(rows.A[-1], Y, w, self._stats, D, self.loss, self._loss_p)
        for l in range(self.n_layers - 1, -1, -1):
            A_prev = X if l == 0 else rows.A[l - 1]
            K.matmul_tn(A_prev, D, self.model.dL_dW[l])
            if self.model.alpha:
                K.add_l2_grad(self._dW_flat[l], self._W_flat[l], self.model.alpha, self._stats)
            K.column_sums(D, self.model.dL_db[l])
            if l > 0:
                if drop is not None:  # mask ⊙ f'(Z), left by the forward pass (NOTE [dropout] in microdl.nn._cpu)
                    K.matmul_nt(D, self.model.weights[l], rows.D[l - 1], drop=drop[l - 1])
                else:
                    K.matmul_nt(D, self.model.weights[l], rows.D[l - 1], times_derivative_of=A_prev,
                                activation=self.activation, params=self._activation_p, pre=rows.Z[l - 1])
                D = rows.D[l - 1]

    def step(self, X: Any, Y: Any, w: Any, losses: Any, penalties: Any, slot: int, keep: Any = None) -> None:
        """Loss into ``losses[slot]`` (its penalty into ``penalties[slot]``) and gradients into :attr:`grads` for
        one device batch. No sync.

        ``X`` (m × n_inputs), ``Y`` (m × n_outputs) and ``w`` (m, or None) are device arrays of the model's
        dtype; ``losses`` and ``penalties`` are float64 device arrays.
        """
        rows = self._rows(X.shape[0])
        drop = self._dropout_masks(X.shape[0], keep)
        self._forward(X, rows, Y, drop=drop)
        self._batch_loss(rows, w, losses, penalties, slot)
        self._backward(X, Y, w, rows, drop)

    def _dropout_masks(self, m: int, keep: Any) -> list | None:
        """The dropout masks of a training pass of ``m`` rows on the device (None without dropout): drawn on the
        host from the model's stream, the same masks as the CPU's for the same seed (or from the boolean
        ``keep`` masks), and copied into a device buffer reused from batch to batch."""
        model = self.model
        if model._dropout_rng is None and keep is None:
            return None
        factors = model._dropout_factors(m, keep)
        if not self._masks or self._masks[0].shape[0] < m:
            self._masks = [cuda.device_array(M.shape, self.dtype) for M in factors]
        out = []
        for M, dev in zip(factors, self._masks):
            dev[:m].copy_to_device(M[:m])
            out.append(dev[:m])
        return out

    def gather(self, X: Any, Y: Any, w: Any, order: Any, lo: int, m: int) -> tuple[Any, Any, Any]:
        """Rows ``order[lo : lo + m]`` of the device data, gathered into the batch buffers."""
        rows = self._rows(m)
        wb = None if w is None else rows.w
        K.gather_batch(X, Y, w, order, lo, rows.X, rows.Y, wb)
        return rows.X, rows.Y, wb

    def evaluate_device(self, X: Any, Y: Any, out: Any = None) -> float:
        """Mean loss over a whole dataset (NaN without Y), in chunks of ``config.EVAL_CHUNK`` rows (or of the
        training batch capacity, when larger), as :func:`microdl.train.evaluate_loss` does on the CPU: Σ_i ℓ_i / n
        plus the L2 penalty once. With ``out`` (an n × n_outputs device array), the outputs are left there too.
        Gradients are not touched. X (checked by the caller: :meth:`as_input`) and Y may be host or device
        arrays; one synchronisation, at the end."""
        Y = self.to_device(Y)
        n = X.shape[0]
        chunk = max(config.EVAL_CHUNK, self._capacity)
        sizes = [min(chunk, n - lo) for lo in range(0, n, chunk)]
        losses = cuda.device_array(len(sizes), np.float64)
        penalties = cuda.device_array(len(sizes), np.float64)
        with self.lock:
            for c, lo in enumerate(range(0, n, chunk)):
                hi = lo + sizes[c]
                rows = self._rows(sizes[c])
                xb = self._input_rows(X, lo, hi, rows)
                self._forward(xb, rows, None if Y is None else Y[lo:hi], out=None if out is None else out[lo:hi])
                if Y is not None:
                    self._batch_loss(rows, None, losses, penalties, c, with_penalty=False)
            if Y is None:
                return float("nan")
            total = 0.0
            for loss, m in zip(losses.copy_to_host(), sizes):  # summed in chunk order, as the CPU does
                total += float(loss) * m
        return total / n + self.model.penalty(n)

    def evaluate(self, X: Any, Y: Any, with_outputs: bool = False) -> tuple[float, np.ndarray | None]:
        """:meth:`evaluate_device` with the outputs, if asked, copied to the host (MLP._evaluate's form)."""
        out = cuda.device_array((X.shape[0], self.n_outputs), self.dtype) if with_outputs else None
        loss = self.evaluate_device(X, Y, out)
        return loss, None if out is None else out.copy_to_host()

    # -- the surface MLP calls -----------------------------------------------------------------------------
    def loss_and_grad(self, X: Any, Y: np.ndarray, w: np.ndarray | None, keep: Any = None) -> float:
        """Loss of one batch (returned, which waits for the GPU) and its gradients (left in :attr:`grads`).

        ``X`` comes from :meth:`as_input` (MLP.loss_and_grad calls it); ``Y`` and ``w`` are checked host arrays.
        """
        with self.lock:
            m = X.shape[0]
            rows = self._rows(m)
            Xd = self._input_rows(X, 0, m, rows)
            Yd = self._stage(Y, rows.Y)
            wd = None if w is None else self._stage(w, rows.w)
            self.step(Xd, Yd, wd, self._loss_out, self._penalty_out, 0, keep)
            return float(self._loss_out.copy_to_host()[0])

    def forward_device(self, X: Any) -> Any:
        """Network outputs for host or device ``X``, as a device array (``__cuda_array_interface__``, so
        ``cupy.asarray`` or ``torch.as_tensor(..., device="cuda")`` can take it without a copy)."""
        X = self.as_input(X)
        out = cuda.device_array((X.shape[0], self.n_outputs), self.dtype)
        self.evaluate_device(X, None, out)
        return out

    def all_finite(self, x: Any) -> bool:
        """Whether every element of the flat device array ``x`` is finite (one sync)."""
        with self.lock:
            return K.all_finite(x, self._flag)
