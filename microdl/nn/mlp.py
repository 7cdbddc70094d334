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
* Activations, deltas and scratch space are preallocated for the largest batch seen and reused as row
  slices, so a training step allocates nothing once the first batch has run.

Backprop, in the names used below (⊙ is the elementwise product, m the batch size)::

    D[L]   = w ⊙ (A[L] − Y) / Σw                      (the canonical-link identity of the loss pair)
    dL/dW[l] = A[l−1]ᵀ D[l] + (α/Σw) W[l]
    dL/db[l] = Σ_rows D[l]
    D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])                (f' from the output A[l−1], activations.backward)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit
from scipy.sparse import issparse

from microdl._validation import check_choice, check_random_state, check_X, check_Y
from microdl.nn import activations
from microdl.nn.losses import LOSSES, OUTPUT_ACTIVATION, loss_per_sample_and_output

__all__ = ["MLP", "INITS"]

INITS = ("auto", "glorot", "he")
_PREDICT_CHUNK = 4096  # rows per forward pass in predict(): bounds the size of the activation buffers


@njit(cache=True, nogil=True)
def _add_scaled(dst, src, c):
    """dst += c * src over flat views, without a temporary (used for the L2 term)."""
    for i in range(dst.size):
        dst[i] += c * src[i]


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
    init : {"auto", "glorot", "he"}, default "auto"
        Uniform Glorot (bound √(6/(fan_in+fan_out))) or He (bound √(6/fan_in)) initialisation of the weights;
        ``"auto"`` picks He for relu and leaky_relu, Glorot otherwise. Biases start at zero.
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
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
        self.alpha = float(alpha)
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
        """Draw new weights (uniform Glorot or He, see the class docstring) and zero the biases, in place."""
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
        self._scratch = np.empty(m * max(widths), dtype=self.dtype)
        self._row = np.empty(m, dtype=self.dtype)
        self._per_sample = np.empty(m, dtype=self.dtype)
        self._capacity = m

    def _scratch_like(self, m: int, width: int) -> np.ndarray:
        return self._scratch[: m * width].reshape(m, width)

    # -- forward and backward ------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        """Forward pass into the preallocated buffers; with ``Y``, also the per-sample losses. Returns a view."""
        m = X.shape[0]
        self._reserve(m)
        A_prev = X
        for l in range(self.n_layers):
            Z = self._A[l][:m]
            if issparse(A_prev):  # sparse input: the first layer's product allocates its result
                Z[...] = A_prev @ self.weights[l]
            else:
                np.matmul(A_prev, self.weights[l], out=Z)
            Z += self.biases[l]
            scratch = self._scratch_like(m, Z.shape[1])
            if l < self.n_layers - 1:
                activations.forward(self.activation, Z, scratch)
            else:
                loss_per_sample_and_output(self.loss, Z, Y, self._per_sample[:m], self._row[:m], scratch)
            A_prev = Z
        return A_prev

    def _loss_and_grad(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None) -> float:
        """Loss and gradients (into :attr:`grads`) for validated, model-dtype ``X`` and 2-D ``Y``."""
        m = X.shape[0]
        out = self._forward(X, Y)
        per_sample = self._per_sample[:m]
        total_weight = float(m) if w is None else float(w.sum())
        data_loss = (per_sample.sum() if w is None else np.dot(w, per_sample)) / total_weight
        penalty = 0.0
        if self.alpha:
            penalty = 0.5 * self.alpha / total_weight * sum(np.vdot(W, W) for W in self.weights)

        # Output layer: dL/dZ = w (A - Y) / Σw, for all three loss pairs.
        D = self._D[-1][:m]
        np.subtract(out, Y, out=D)
        if w is None:
            D *= 1.0 / total_weight
        else:
            row = self._row[:m]
            np.divide(w, total_weight, out=row)
            D *= row[:, None]

        for l in range(self.n_layers - 1, -1, -1):
            A_prev = X if l == 0 else self._A[l - 1][:m]
            if issparse(A_prev):
                self.dL_dW[l][...] = A_prev.T @ D
            else:
                np.matmul(A_prev.T, D, out=self.dL_dW[l])
            if self.alpha:
                _add_scaled(self.dL_dW[l].reshape(-1), self.weights[l].reshape(-1), self.alpha / total_weight)
            np.sum(D, axis=0, out=self.dL_db[l])
            if l > 0:
                D_prev = self._D[l - 1][:m]
                np.matmul(D, self.weights[l].T, out=D_prev)
                activations.backward(self.activation, A_prev, D_prev, self._scratch_like(m, D_prev.shape[1]))
                D = D_prev
        return float(data_loss + penalty)

    # -- public surface ------------------------------------------------------------------------------------
    def forward(self, X: Any) -> np.ndarray:
        """Network outputs for ``X`` (dense or SciPy sparse): class probabilities (softmax or sigmoid) or
        regression values, as a host array."""
        if self._device_net is not None:
            return self._device_net.forward(X)
        X = check_X(X, self.layer_sizes[0], self.dtype)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        for start in range(0, X.shape[0], _PREDICT_CHUNK):
            stop = min(start + _PREDICT_CHUNK, X.shape[0])
            out[start:stop] = self._forward(X[start:stop])
        return out

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
        y : array
            ``cross_entropy``: class indices of shape (m,) or probabilities of shape (m, n_outputs) whose rows
            sum to 1; ``binary_cross_entropy``: 0/1 (or probabilities) of shape (m, n_outputs), or (m,) with
            one output; ``squared_error``: values of shape (m, n_outputs), or (m,) with one output.
        sample_weight : array of shape (m,), optional
            Non-negative weights with a positive sum.
        """
        X = check_X(X, self.layer_sizes[0], self.dtype)
        Y = self.encode_targets(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {Y.shape[0]}")
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=self.dtype)
            if w.shape != (X.shape[0],):
                raise ValueError(f"sample_weight must have shape ({X.shape[0]},); got {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError("sample_weight must be finite, non-negative and have a positive sum")
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
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"layer_sizes must hold integers; got {s!r} in {sizes}")
        if s <= 0:
            raise ValueError(f"layer sizes must be positive; got {s} in {sizes}")
    return tuple(int(s) for s in sizes)


def _layer_views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer (W, b) views into a flat buffer laid out as W[1], b[1], W[2], b[2], ..."""
    weights, biases, offset = [], [], 0
    for fan_in, fan_out in shapes:
        weights.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
        biases.append(flat[offset : offset + fan_out])
        offset += fan_out
    return weights, biases
