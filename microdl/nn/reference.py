"""Backprop as the textbook writes it: a plain NumPy forward and backward pass. Read this file first.

For a batch of m samples (rows of X), sample weights w (1 by default) and L layers, with ⊙ the elementwise
product and f the hidden activation::

    forward   A[0] = X
              Z[l] = A[l−1] W[l] + b[l]                       l = 1 .. L
              A[l] = f(Z[l]) ⊙ M[l]       for l < L;     A[L] = output(Z[L])  (softmax, sigmoid, identity, exp)
    loss      L = Σ_i w_i ℓ_i / Σw + α/(2Σw) Σ_l ‖W[l]‖²      (ℓ_i from the logits Z[L], losses.py)
    backward  D[L] = dL/dZ[L], the loss's delta               (w ⊙ (A[L] − Y) / Σw for the canonical pairs)
              dL/dW[l] = A[l−1]ᵀ D[l] + (α/Σw) W[l]
              dL/db[l] = Σ_rows D[l]
              D[l−1] = (D[l] W[l]ᵀ) ⊙ M[l−1] ⊙ f'(Z[l−1])      (activations.py)
    dropout   M[l] = 1/(1−p) for a kept unit, 0 for a dropped one, in a training pass (inverted dropout); all
              ones, left out, without dropout or when predicting

Every per-element formula (f, f', each loss with its output and delta) is the one registered in
:mod:`microdl.nn.activations` and :mod:`microdl.nn.losses`, the same functions the fast kernels compile; this
module only arranges them in the order above, with NumPy's matrix products, each formula applied to a whole
array at once through its array form (NOTE [array forms] in :mod:`microdl.nn.activations`). It allocates every
array it needs and is meant for reading, stepping through in a debugger and testing, and for small fits, which
it finishes before the compiled kernels could be loaded (NOTE [the NumPy backend for small fits] in
:mod:`microdl.nn.mlp`). ``MLP(..., backend="numpy")`` trains on it: :func:`microdl.train.fit`, the estimators
and ``compare`` then run this code.

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

from microdl.nn.activations import Activation, get_activation
from microdl.nn.losses import Loss, get_loss

__all__ = ["forward", "loss_and_grad", "evaluate"]


def _vector(params: dict[str, float] | None, defaults: Any) -> np.ndarray:
    """A formula's parameter vector p, in the registry's order."""
    values = dict(defaults)
    values.update(params or {})
    return np.array([values[k] for k in defaults], dtype=np.float64)


def _f(act: Activation, Z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """f(Z), elementwise: the activation's array form, or its scalar form mapped over Z (NOTE [array forms] in
    :mod:`microdl.nn.activations`)."""
    if act.f_array is not None:
        return act.f_array(Z, p)
    return np.vectorize(act.f, excluded={1}, otypes=[np.float64])(Z, p)


def _f_prime(act: Activation, Z: np.ndarray, A: np.ndarray, p: np.ndarray) -> np.ndarray:
    """f'(Z), elementwise, from the pre-activation Z and the output A = f(Z)."""
    if act.df_array is not None:
        return act.df_array(Z, A, p)
    return np.vectorize(act.df, excluded={2}, otypes=[np.float64])(Z, A, p)


def _output_and_losses(loss: Loss, Z: np.ndarray, Y: np.ndarray | None, p: np.ndarray,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The output A[L] and the per-sample losses ℓ_i from the logits Z: the whole batch at once through the
    loss's array form, or sample by sample."""
    out = np.array(Z, dtype=np.float64)  # overwritten with the output
    if loss.value_array is not None:
        return out, loss.value_array(out, out if Y is None else Y, Y is not None, p)
    ell = np.zeros(Z.shape[0])
    for i in range(Z.shape[0]):
        y = Y[i] if Y is not None else out[i]
        ell[i] = loss.value(out[i], np.asarray(y, dtype=np.float64), Y is not None, p)
    return out, ell


def _delta(loss: Loss, A: np.ndarray, Y: np.ndarray, C: np.ndarray, p: np.ndarray) -> np.ndarray:
    """D[L] = dL/dZ[L] from the outputs A, the targets Y and the column C of w_i/Σw."""
    if loss.delta_array is not None:
        return loss.delta_array(A, Y, C, p)
    return np.vectorize(loss.delta, excluded={3}, otypes=[np.float64])(A, Y, C, p)


def _sum_of_squares(weights: list[np.ndarray]) -> float:
    """Σ_l ‖W[l]‖²."""
    return float(sum(np.dot(W.ravel(), W.ravel()) for W in weights))


def forward(weights: list[np.ndarray], biases: list[np.ndarray], X: Any, activation: str, loss: str,
            activation_params: dict[str, float] | None = None,
            loss_params: dict[str, float] | None = None) -> list[np.ndarray]:
    """The activations A[0] = X, A[1], ..., A[L] (the network's output) of every layer."""
    act, out_loss = get_activation(activation), get_loss(loss)
    p_act, p_loss = _vector(activation_params, act.params), _vector(loss_params, out_loss.params)
    A = [X]
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        Z = A[-1] @ W + b
        A.append(_f(act, Z, p_act) if l < len(weights) else _output_and_losses(out_loss, Z, None, p_loss)[0])
    return A


def evaluate(model: Any, X: Any, Y: np.ndarray | None) -> tuple[float, np.ndarray]:
    """The mean loss of ``model`` on ``(X, Y)`` with the L2 penalty once (NaN without ``Y``), and its outputs."""
    weights = [np.asarray(W, dtype=np.float64) for W in model.weights]
    biases = [np.asarray(b, dtype=np.float64) for b in model.biases]
    X = X.astype(np.float64) if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    act, loss = get_activation(model.activation), get_loss(model.loss)
    A = X
    for l in range(len(weights)):
        Z = A @ weights[l] + biases[l]
        A = _f(act, Z, _vector(model.activation_params, act.params)) if l < len(weights) - 1 else Z
    out, ell = _output_and_losses(loss, A, Y, _vector(model.loss_params, loss.params))
    if Y is None:
        return float("nan"), out
    n = X.shape[0]
    penalty = model.alpha / (2 * n) * _sum_of_squares(weights) if model.alpha else 0.0
    return float(ell.mean() + penalty), out


def loss_and_grad(model: Any, X: Any, Y: np.ndarray, w: np.ndarray | None = None,
                  masks: list[np.ndarray] | None = None) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """The loss of ``model`` (an :class:`~microdl.nn.MLP`, read for its weights, biases, activation, loss, their
    parameters and α) on ``(X, Y)`` with encoded targets Y (one-hot for classes) and sample weights ``w``, and
    its gradients dL/dW[l] and dL/db[l], by the equations of the module docstring; ``masks`` are the dropout
    masks M[l] of the hidden layers (None: no dropout)."""
    weights = [np.asarray(W, dtype=np.float64) for W in model.weights]
    biases = [np.asarray(b, dtype=np.float64) for b in model.biases]
    X = X.astype(np.float64) if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    act, loss_fn = get_activation(model.activation), get_loss(model.loss)
    p_act = _vector(getattr(model, "activation_params", None), act.params)
    p_loss = _vector(getattr(model, "loss_params", None), loss_fn.params)
    m = X.shape[0]
    w = np.ones(m) if w is None else np.asarray(w, dtype=np.float64)
    sum_w = w.sum()
    L = len(weights)

    # forward: keep every layer's pre-activation Z[l] and output A[l]; the last layer gives the output and ℓ_i
    A, Z = [X], [None]
    for l in range(1, L + 1):
        Z.append(A[l - 1] @ weights[l - 1] + biases[l - 1])
        if l < L:
            A.append(_f(act, Z[l], p_act) if masks is None else _f(act, Z[l], p_act) * masks[l - 1])
        else:
            out, ell = _output_and_losses(loss_fn, Z[l], Y, p_loss)
            A.append(out)
    inv_sum_w = 1.0 / sum_w if sum_w > 0 else 0.0  # a batch of zero weights contributes nothing
    penalty = model.alpha / 2 * inv_sum_w * _sum_of_squares(weights) if model.alpha else 0.0
    loss = float(w @ ell * inv_sum_w + penalty)

    # backward: D[l] = dL/dZ[l], from the output layer down
    dL_dW: list[np.ndarray] = [np.empty(0)] * L
    dL_db: list[np.ndarray] = [np.empty(0)] * L
    D = _delta(loss_fn, A[L], Y, (w * inv_sum_w)[:, None], p_loss)
    for l in range(L, 0, -1):
        dL_dW[l - 1] = A[l - 1].T @ D + model.alpha * inv_sum_w * weights[l - 1]
        dL_db[l - 1] = D.sum(axis=0)
        if l > 1:
            f_of_z = A[l - 1] if masks is None else _f(act, Z[l - 1], p_act)  # (undropped)
            D = (D @ weights[l - 1].T) * _f_prime(act, Z[l - 1], f_of_z, p_act)
            if masks is not None:
                D = D * masks[l - 2]
    return loss, [np.asarray(g) for g in dL_dW], dL_db
