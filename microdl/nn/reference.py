"""Backprop as the textbook writes it: a plain NumPy forward and backward pass. Read this file first.

For a batch of m samples (rows of X), sample weights w (1 by default) and L layers, with ⊙ the elementwise
product and f the hidden activation::

    forward   A[0] = X
              Z[l] = A[l−1] W[l] + b[l]                       l = 1 .. L
              A[l] = f(Z[l])              for l < L;     A[L] = output(Z[L])  (softmax, sigmoid, identity, exp)
    loss      L = Σ_i w_i ℓ_i / Σw + α/(2Σw) Σ_l ‖W[l]‖²      (ℓ_i from the logits Z[L], losses.py)
    backward  D[L] = w ⊙ (A[L] − Y) / Σw                      (the canonical-link identity, output_delta)
              dL/dW[l] = A[l−1]ᵀ D[l] + (α/Σw) W[l]
              dL/db[l] = Σ_rows D[l]
              D[l−1] = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])               (f' from the output A[l−1], activations.py)

Every per-element formula (f, f', each loss with its output) comes from :mod:`microdl.nn.activations` and
:mod:`microdl.nn.losses`, the same functions the fast kernels compile; this module only arranges them in the
order above, with NumPy's matrix products. It allocates every array it needs and is meant for reading and
testing, not for speed.

The fast passes compute exactly this: :mod:`microdl.nn._cpu` runs the same steps on row blocks of the batch,
one per thread, fusing the elementwise steps into single loops and writing the gradients straight into the
model's flat buffer; :mod:`microdl.cuda.kernels` runs them as CUDA kernels, fusing bias and f into the forward
product and f' into the backward one. The tests check both against this module and against finite
differences.

>>> import numpy as np
>>> from microdl.nn import MLP
>>> from microdl.nn import reference
>>> net = MLP((3, 4, 2), random_state=0)
>>> X, y = np.ones((5, 3)), np.array([0, 1, 1, 0, 1])
>>> loss, dL_dW, dL_db = reference.loss_and_grad(net, X, net.encode_targets(y))
>>> bool(np.isclose(loss, net.loss_and_grad(X, y)))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microdl.nn import activations, losses

__all__ = ["forward", "loss_and_grad"]


def _f(activation: str, Z: np.ndarray) -> np.ndarray:
    """f(Z), elementwise."""
    return np.vectorize(activations.activate)(activations.ACTIVATION_CODES[activation], Z)


def _f_prime(activation: str, A: np.ndarray) -> np.ndarray:
    """f'(Z), elementwise, from the output A = f(Z)."""
    return np.vectorize(activations.derivative)(activations.ACTIVATION_CODES[activation], A)


def _output_and_losses(loss: str, Z: np.ndarray, Y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The output A[L] and the per-sample losses ℓ_i, sample by sample, from the logits Z."""
    code = losses.LOSS_CODES[loss]
    out = np.array(Z, dtype=np.float64)  # each row is overwritten with its output
    ell = np.zeros(Z.shape[0])
    for i in range(Z.shape[0]):
        y = Y[i] if Y is not None else out[i]
        ell[i] = losses.loss_and_output(code, out[i], np.asarray(y, dtype=np.float64), Y is not None)
    return out, ell


def forward(weights: list[np.ndarray], biases: list[np.ndarray], X: Any, activation: str,
            loss: str) -> list[np.ndarray]:
    """The activations A[0] = X, A[1], ..., A[L] (the network's output) of every layer."""
    A = [X]
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        Z = A[-1] @ W + b
        A.append(_f(activation, Z) if l < len(weights) else _output_and_losses(loss, Z, None)[0])
    return A


def loss_and_grad(model: Any, X: Any, Y: np.ndarray, w: np.ndarray | None = None,
                  ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """The loss of ``model`` (an :class:`~microdl.nn.MLP`, read for its weights, biases, activation, loss and
    α) on ``(X, Y)`` with encoded targets Y (one-hot for classes) and sample weights ``w``, and its gradients
    dL/dW[l] and dL/db[l], by the equations of the module docstring."""
    weights = [np.asarray(W, dtype=np.float64) for W in model.weights]
    biases = [np.asarray(b, dtype=np.float64) for b in model.biases]
    X = X.astype(np.float64) if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    m = X.shape[0]
    w = np.ones(m) if w is None else np.asarray(w, dtype=np.float64)
    sum_w = w.sum()
    L = len(weights)

    # forward: keep every layer's output A[l]; the last layer gives the output and the losses ℓ_i
    A = [X]
    for l in range(1, L + 1):
        Z = A[l - 1] @ weights[l - 1] + biases[l - 1]
        if l < L:
            A.append(_f(model.activation, Z))
        else:
            out, ell = _output_and_losses(model.loss, Z, Y)
            A.append(out)
    loss = float(w @ ell / sum_w + model.alpha / (2 * sum_w) * sum(np.sum(W * W) for W in weights))

    # backward: D[l] = dL/dZ[l], from the output layer down
    dL_dW: list[np.ndarray] = [np.empty(0)] * L
    dL_db: list[np.ndarray] = [np.empty(0)] * L
    D = np.vectorize(losses.output_delta)(A[L], Y, (w / sum_w)[:, None])
    for l in range(L, 0, -1):
        dL_dW[l - 1] = A[l - 1].T @ D + model.alpha / sum_w * weights[l - 1]
        dL_db[l - 1] = D.sum(axis=0)
        if l > 1:
            D = (D @ weights[l - 1].T) * _f_prime(model.activation, A[l - 1])
    return loss, [np.asarray(g) for g in dL_dW], dL_db
