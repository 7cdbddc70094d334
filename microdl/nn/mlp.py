"""The multi-layer perceptron, with hand-written forward and backward passes over one flat buffer.

Conventions
-----------
* Samples are rows. Layer ``l`` maps ``A[l-1]`` (m × fan_in) to ``A[l] = f(A[l-1] @ W[l] + b[l])``; W[l] is
  fan_in × fan_out, b[l] has fan_out entries.
* All weights and biases live in one contiguous 1-D array :attr:`MLP.params`, in the order W[1], b[1], W[2],
  b[2], ...; :attr:`MLP.weights` and :attr:`MLP.biases` are views into it (row-major). Gradients live in
  :attr:`MLP.grads` with the same layout, and backprop writes straight into its views :attr:`MLP.dL_dW` and
  :attr:`MLP.dL_db`. An optimizer step is then one elementwise kernel over one array.
* The loss is the weighted mean of the per-sample losses of :mod:`microdl.nn.losses` plus the L2 penalty
  ``alpha / (2 Σw) Σ_l ||W[l]||²`` on weights only (scikit-learn's convention; biases are not penalised).
* Activations and deltas are preallocated for the largest batch seen and reused as row slices, so a
  training step allocates nothing once the first batch has run.
* On the CPU the passes run in the kernels of :mod:`microdl.nn._cpu`: the batch is cut into row blocks, one per
  thread, each running the whole pass below on its rows; the blocks' gradients are added up at the end
  (NOTE [row blocks] there).

Backprop, in the names used below (⊙ is the elementwise product, m the batch size)::

    D[L]   = w ⊙ (A[L] − Y) / Σw                      (the canonical-link identity of the loss pair)
    dL/dW[l] = A[l−1]ᵀ D[l] + (α/Σw) W[l]
    dL/db[l] = Σ_rows D[l]
    D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])                (f' from the output A[l−1], activations.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numba
import numpy as np
from scipy.sparse import issparse

from microdl._validation import (
    check_choice,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
    check_X,
    check_Y,
)
from microdl.nn import _cpu, activations
from microdl.nn.losses import LOSS_CODES, LOSSES, OUTPUT_ACTIVATION

__all__ = ["MLP", "INITS"]

INITS = ("auto", "glorot", "he", "sklearn")
_PREDICT_CHUNK = 4096  # rows per forward pass in predict(): bounds the size of the activation buffers


class MLP:
    """A fully connected network with hand-written backprop over one flat parameter buffer.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_inputs, hidden_1, ..., n_outputs)``; at least an input and an output size, all positive.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "identity"}, default "relu"
        Hidden-layer activation.
    loss : {"cross_entropy", "binary_cross_entropy", "squared_error"}, default "cross_entropy"
        Loss, which fixes the output activation: softmax, sigmoid and identity respectively.
    alpha : float, default 0
        L2 penalty on the weights (not the biases), scaled as in scikit-learn.
    init : {"auto", "glorot", "he", "sklearn"}, default "auto"
        Uniform Glorot (bound √(6/(fan_in+fan_out))) or He (bound √(6/fan_in)) initialisation of the weights,
        biases at zero; ``"auto"`` picks He for relu and leaky_relu, Glorot otherwise. ``"sklearn"`` is
        scikit-learn's scheme, draw for draw: per layer, W then b from U(±√(f/(fan_in+fan_out))) with f = 2 for
        sigmoid and 6 otherwise (an int ``random_state`` seeds a ``RandomState``, as in scikit-learn).
    dtype : {"float64", "float32"}, default "float64"
        Precision of parameters, gradients and activations.
    random_state : int, numpy Generator or None
        Seed of the initialisation.
    device : {"cpu", "cuda"}, default "cpu"
        ``"cuda"`` keeps parameters, gradients and activations on the GPU and runs forward and backward as
        Numba CUDA kernels (:mod:`microdl.cuda`); :attr:`params` and :attr:`grads` are then device arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from microdl.nn import MLP
    >>> net = MLP((4, 8, 3), random_state=0)
    >>> X, y = np.ones((5, 4)), np.array([0, 1, 2, 1, 0])
    >>> loss = net.loss_and_grad(X, y)   # fills net.grads
    >>> net.grads.shape == net.params.shape
    True
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu", loss: str = "cross_entropy",
                 alpha: float = 0.0, init: str = "auto", dtype: Any = "float64", random_state: Any = None,
                 device: str = "cpu") -> None:
        sizes = _check_layer_sizes(layer_sizes)
        self.layer_sizes = sizes
        self.activation = check_choice("activation", activation, activations.ACTIVATIONS)
        self.loss = check_choice("loss", loss, LOSSES)
        self.output_activation = OUTPUT_ACTIVATION[self.loss]
        self.alpha = check_real("alpha", alpha, 0.0)
        self.init = check_choice("init", init, INITS)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64; got {dtype!r}")

        # One flat buffer for all parameters, one of the same layout for the gradients, and views into both.
        shapes = [(fan_in, fan_out) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
        self.n_params = sum(a * b + b for a, b in shapes)
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.weights, self.biases = _layer_views(self.params, shapes)
        self.dL_dW, self.dL_db = _layer_views(self.grads, shapes)
        self.initialize(random_state)

        # What the CPU kernels need besides the buffers: codes, the layout of the flat buffer, empty stand-ins.
        self._activation_code = activations.ACTIVATION_CODES[self.activation]
        self._loss_code = LOSS_CODES[self.loss]
        self._layout = _layout_table(shapes)
        self._n_weights = sum(fan_in * fan_out for fan_in, fan_out in shapes)
        self._no_X = np.empty((0, sizes[0]), dtype=self.dtype)
        self._no_Y = np.empty((0, 0), dtype=self.dtype)
        self._no_w = np.empty(0, dtype=self.dtype)
        self._block_grads = np.empty((0, self.n_params), dtype=self.dtype)
        self._capacity = 0  # rows of the preallocated batch buffers
        self.device = check_choice("device", device, ("cpu", "cuda"))
        self._device_net = None
        if self.device == "cuda":
            from microdl.cuda.model import DeviceNet  # imports numba.cuda only now

            # Moves params and grads (and the views into them) to the GPU; see microdl.cuda.model.
            self._device_net = DeviceNet(self)

    # -- set-up --------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    def initialize(self, random_state: Any = None) -> None:
        """Draw new weights (and, for ``init="sklearn"``, biases) as the class docstring says, in place."""
        if self.init == "sklearn":
            # scikit-learn's _init_coef: for each layer, W then b from U(±√(factor/(fan_in + fan_out))), factor 2
            # for the logistic activation and 6 otherwise, drawn from a RandomState (an int seed gives
            # RandomState(seed), as sklearn.utils.check_random_state does).
            rng = np.random.RandomState(random_state) if isinstance(random_state, Integral) else \
                check_random_state(random_state)
            factor = 2.0 if self.activation == "sigmoid" else 6.0
            for W, b in zip(self.weights, self.biases):
                bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
                W[...] = rng.uniform(-bound, bound, W.shape)
                b[...] = rng.uniform(-bound, bound, b.shape)
            return
        rng = check_random_state(random_state)
        use_he = self.init == "he" or (self.init == "auto" and self.activation in ("relu", "leaky_relu"))
        for W, b in zip(self.weights, self.biases):
            fan_in, fan_out = W.shape
            bound = np.sqrt(6.0 / fan_in) if use_he else np.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = 0.0

    def _reserve(self, m: int) -> None:
        """Make the batch buffers hold at least ``m`` rows (grows only; no allocation afterwards)."""
        if m <= self._capacity:
            return
        widths = self.layer_sizes[1:]
        self._A = [np.empty((m, w), dtype=self.dtype) for w in widths]  # outputs of layers 1..L
        self._D = [np.empty((m, w), dtype=self.dtype) for w in widths]  # dL/dZ of layers 1..L
        self._A_tuple, self._D_tuple = tuple(self._A), tuple(self._D)  # what the kernels take
        self._per_sample = np.empty(m, dtype=self.dtype)
        self._capacity = m

    def _blocks(self, m: int) -> tuple[int, np.ndarray]:
        """The number of row blocks for ``m`` rows, and the gradient buffers of blocks 1.. (NOTE [row blocks]
        in :mod:`microdl.nn._cpu`); grows the buffers if the thread count has grown."""
        n_blocks = _cpu.n_blocks_for(m, self._n_weights, numba.get_num_threads())
        if n_blocks - 1 > self._block_grads.shape[0]:
            self._block_grads = np.empty((n_blocks - 1, self.n_params), dtype=self.dtype)
        return n_blocks, self._block_grads

    # -- forward and backward ------------------------------------------------------------------------------
    # Both run in the kernels of microdl.nn._cpu, one row block per thread. Sparse X is the one case that
    # needs SciPy here: its products with W[1] (forward) and with D[1] (backward) are done outside the kernel.
    def _run(self, X: Any, Y: np.ndarray, w: np.ndarray | None, with_grad: bool) -> tuple[float, float, int]:
        """Run the kernel over validated, model-dtype ``X`` (dense or CSR) and ``Y`` (or an empty Y for no
        loss); return (Σ w_i ℓ_i, 1/Σw, n_blocks)."""
        m = X.shape[0]
        self._reserve(m)
        n_blocks, block_grads = self._blocks(m)
        sparse = issparse(X)
        if not sparse and not X.flags.c_contiguous:  # the kernels' products need row-major blocks
            X = np.ascontiguousarray(X)
        if not Y.flags.c_contiguous:
            Y = np.ascontiguousarray(Y)
        total_weight = m if w is None else float(w.sum())
        scale = 1.0 / total_weight if total_weight > 0 else 0.0  # a batch of zero weights contributes nothing
        with _cpu.single_threaded_blas():
            if sparse:
                self._A[0][:m] = X @ self.weights[0]
            kernel = _cpu.forward_backward if n_blocks > 1 else _cpu.forward_backward_serial
            sum_wl = kernel(
                self._no_X if sparse else X, Y, self._no_w if w is None else w, scale, self.params, self._layout,
                self._A_tuple, self._D_tuple, self.grads, block_grads, self._per_sample, m, n_blocks,
                self._activation_code, self._loss_code, with_grad, sparse)
        if sparse and with_grad:
            self.dL_dW[0][...] = X.T @ self._D[0][:m]
        return sum_wl, scale, n_blocks

    def _forward(self, X: Any, Y: np.ndarray | None = None) -> np.ndarray:
        """Forward pass into the preallocated buffers; with ``Y``, also the per-sample losses into
        ``_per_sample``. Returns a view of the output rows."""
        self._run(X, self._no_Y if Y is None else Y, None, with_grad=False)
        return self._A[-1][: X.shape[0]]

    def _data_loss_sum(self, X: Any, Y: np.ndarray) -> float:
        """Σ_i ℓ_i over validated, model-dtype rows (no penalty, no gradient)."""
        return float(self._run(X, Y, None, with_grad=False)[0])

    def penalty(self, total_weight: float) -> float:
        """The L2 term α/(2Σw) Σ_l ‖W[l]‖² of a batch whose sample weights sum to ``total_weight``."""
        if not self.alpha:
            return 0.0
        params = self.host_params() if self._device_net is not None else self.params
        sum_sq = 0.0
        for fan_in, fan_out, off_W, _ in self._layout:
            W = params[off_W : off_W + fan_in * fan_out]
            sum_sq += float(np.dot(W, W))
        return 0.5 * self.alpha / total_weight * sum_sq

    def _loss_and_grad(self, X: Any, Y: np.ndarray, w: np.ndarray | None = None) -> float:
        """Loss and gradients (into :attr:`grads`) for validated, model-dtype ``X`` and 2-D ``Y``."""
        sum_wl, scale, n_blocks = self._run(X, Y, w, with_grad=True)
        penalty = 0.0
        if self.alpha or n_blocks > 1:
            # Add up the blocks' gradients and the L2 term (α/Σw) W; the penalty itself is α/(2Σw) Σ‖W‖².
            skip_below = self.weights[0].size if issparse(X) else 0  # dL/dW[1] of sparse X is whole already
            add_up = _cpu.sum_blocks if n_blocks > 1 else _cpu.sum_blocks_serial
            sum_sq = add_up(self.grads, self._block_grads, n_blocks - 1, self.params, self._layout,
                            self.alpha * scale, skip_below, n_blocks)
            penalty = 0.5 * self.alpha * scale * sum_sq
        return float(sum_wl * scale + penalty)

    # -- public surface ------------------------------------------------------------------------------------
    def forward(self, X: Any) -> np.ndarray:
        """Network outputs for ``X`` (dense or SciPy sparse; with ``device="cuda"`` also a device array, read in
        place): class probabilities (softmax or sigmoid) or regression values, as a host array."""
        if self._device_net is not None:
            return self._device_net.forward(X)
        X = check_X(X, self.layer_sizes[0], self.dtype)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        for start in range(0, X.shape[0], _PREDICT_CHUNK):
            stop = min(start + _PREDICT_CHUNK, X.shape[0])
            out[start:stop] = self._forward(X[start:stop])
        return out

    def forward_device(self, X: Any) -> Any:
        """Network outputs left on the GPU (``device="cuda"`` only), for host or device ``X``.

        Returns a Numba device array; it speaks ``__cuda_array_interface__``, so ``cupy.asarray(out)`` or
        ``torch.as_tensor(out, device="cuda")`` take it without a copy.
        """
        if self._device_net is None:
            raise ValueError("forward_device needs a model built with device='cuda'; forward returns host outputs")
        return self._device_net.forward_device(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class indices (``cross_entropy``), 0/1 indicators (``binary_cross_entropy``) or values."""
        out = self.forward(X)
        if self.loss == "cross_entropy":
            return out.argmax(axis=1)
        if self.loss == "binary_cross_entropy":
            return (out > 0.5).astype(np.int64)
        return out

    def encode_targets(self, y: Any) -> np.ndarray:
        """Targets as the 2-D float array the loss expects (one-hot for 1-D class labels with cross_entropy)."""
        return check_Y(y, self.layer_sizes[-1], self.loss, self.dtype)

    def loss_and_grad(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Return the loss on ``(X, y)`` and write its gradient into :attr:`grads`.

        Parameters
        ----------
        X : array or SciPy sparse matrix of shape (m, n_inputs)
            With ``device="cuda"``, also a device array (``__cuda_array_interface__``), read in place.
        y : array
            ``cross_entropy``: class indices of shape (m,) or probabilities of shape (m, n_outputs) whose rows
            sum to 1; ``binary_cross_entropy``: 0/1 (or probabilities) of shape (m, n_outputs), or (m,) with
            one output; ``squared_error``: values of shape (m, n_outputs), or (m,) with one output.
        sample_weight : array of shape (m,), optional
            Non-negative weights with a positive sum.

        ``y`` and ``sample_weight`` may also be device arrays; they are copied to the host to be checked.
        """
        if self._device_net is not None:
            X = self._device_net.as_input(X)  # a device array is read in place
        else:
            X = check_X(X, self.layer_sizes[0], self.dtype)
        Y = self.encode_targets(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {Y.shape[0]}")
        w = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        if self._device_net is not None:
            return self._device_net.loss_and_grad(X, Y, w)
        return self._loss_and_grad(X, Y, w)

    def __repr__(self) -> str:
        return (f"MLP(layer_sizes={self.layer_sizes}, activation={self.activation!r}, loss={self.loss!r}, "
                f"alpha={self.alpha}, dtype={self.dtype.name!r})")

    # -- copies ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The constructor arguments (without ``random_state``), for saving and cloning."""
        return {"layer_sizes": list(self.layer_sizes), "activation": self.activation, "loss": self.loss,
                "alpha": self.alpha, "init": self.init, "dtype": self.dtype.name, "device": self.device}

    def host_params(self) -> np.ndarray:
        """A host copy of :attr:`params` (on either device)."""
        if self._device_net is not None:
            return self.params.copy_to_host()
        return self.params.copy()

    def set_params(self, values: Any) -> None:
        """Overwrite :attr:`params` with ``values`` (a host array of the same size), on either device."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != (self.n_params,):
            raise ValueError(f"params must have shape ({self.n_params},); got {values.shape}")
        if self._device_net is not None:
            self.params.copy_to_device(values)
        else:
            self.params[...] = values

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config(), "params": self.host_params()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        self.set_params(state["params"])


def _check_layer_sizes(layer_sizes: Any) -> tuple[int, ...]:
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise TypeError(f"layer_sizes must be a sequence of positive integers; got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size; got {sizes}")
    return tuple(check_int(f"layer_sizes[{k}]", s, 1) for k, s in enumerate(sizes))


def _layout_table(shapes: list[tuple[int, int]]) -> np.ndarray:
    """Rows (fan_in, fan_out, offset of W, offset of b) per layer, for the kernels."""
    rows, offset = [], 0
    for fan_in, fan_out in shapes:
        rows.append((fan_in, fan_out, offset, offset + fan_in * fan_out))
        offset += fan_in * fan_out + fan_out
    return np.array(rows, dtype=np.int64)


def _layer_views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer (W, b) views into a flat buffer laid out as W[1], b[1], W[2], b[2], ..."""
    weights, biases, offset = [], [], 0
    for fan_in, fan_out in shapes:
        weights.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
        biases.append(flat[offset : offset + fan_out])
        offset += fan_out
    return weights, biases
