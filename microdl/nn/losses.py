"""Losses: an open registry of output layers with their loss, each written once, for one sample.

A loss is registered (:func:`register_loss`) as two plain scalar functions and two declarations::

    value(z, y, has_y, p)  → ℓ, one sample's loss from its logits z (a 1-D array), overwriting z with the output
    delta(a, y, c, p)      → dL/dz_k of the output layer for one output a_k = output(z)_k and target y_k,
                             times c = w_i/Σw (the sample's share of the batch)
    output                 the output activation's name (softmax, sigmoid, identity, exp, ...)
    targets                what y may hold: "classes" (labels or rows of probabilities summing to 1),
                           "probabilities" (each in [0, 1]), "non_negative" or "real"

``p`` is the loss's parameter vector (:attr:`Loss.params` in order; Huber's δ), set per model
(``MLP(loss_params=...)``). With ``has_y`` false (prediction) ``y`` is ignored and ℓ is meaningless.

The four canonical pairs couple an output with the loss it is the canonical link of, so that their delta is
the same simple expression (:func:`canonical_delta`), ``w_i (output_i − y_i) / Σw``; a non-canonical loss
(Huber, absolute error) gives its own:

==========================  ========  ===================================================  ==================
loss                        output    per-sample loss ℓ_i (z the logits, r = z − y)          dL/dz_k · Σw/w_i
==========================  ========  ===================================================  ==================
``cross_entropy``           softmax   logsumexp(z) − Σ_k y_k z_k          (y sums to 1)    a_k − y_k
``binary_cross_entropy``    sigmoid   Σ_k softplus(z_k) − y_k z_k                          a_k − y_k
``squared_error``           identity  ½ Σ_k r_k²                                           r_k
``poisson``                 exp       Σ_k y_k log y_k − y_k z_k − y_k + e^{z_k}  (y ≥ 0)   a_k − y_k
``huber``                   identity  Σ_k ½ r_k² if abs(r_k) < δ, else δ (abs(r_k) − ½ δ)          clip(r_k, −δ, δ)
``absolute_error``          identity  Σ_k abs(r_k)                                         sign(r_k) (0 at 0)
==========================  ========  ===================================================  ==================

Every loss is summed over the outputs and averaged over the samples: L = Σ_i w_i ℓ_i / Σ_i w_i, plus the L2
term of :func:`l2_penalty` (``huber`` is then torch.nn.HuberLoss(delta) times the number of outputs, the same
for one output). Losses are computed from the logits, with the max-shift of log-sum-exp and a stable softplus,
never as ``log(softmax)`` or ``log(sigmoid)``, so they stay finite for large logits. ``poisson`` is
scikit-learn's half Poisson deviance (its y log y − y terms do not depend on the network and make the loss 0 at
a perfect fit).

Like the activations (:mod:`microdl.nn.activations`) these are plain functions that serve the CPU and CUDA
kernels compiled (:mod:`microdl.nn.formulas`) and the textbook pass (:mod:`microdl.nn.reference`) as they are,
row by row, or through their array forms (NOTE [array forms] in :mod:`microdl.nn.activations`), which the
built-ins all have::

    value_array(Z, Y, has_y, p)  → ℓ, the per-sample losses of a batch (a 1-D array) from its logits Z (m × n),
                                   overwriting Z with the outputs
    delta_array(A, Y, C, p)      → dL/dZ of the batch, C the column of w_i/Σw (m × 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from microdl.nn.activations import (
    _call_scalar,
    _check_defaults,
    _complete_params,
    check_array_form,
    sigmoid,
    sigmoid_array,
)

__all__ = ["Loss", "TARGETS", "register_loss", "get_loss", "loss_names", "loss_parameters", "canonical_delta",
           "l2_penalty", "l2_gradient"]

#: What a loss's targets may hold (checked by :func:`microdl._validation.check_Y`).
TARGETS = ("classes", "probabilities", "non_negative", "real")


class Loss(NamedTuple):
    """One registered loss (see the module docstring for the contract of ``value`` and ``delta``)."""

    name: str
    value: Callable[..., float]
    delta: Callable[..., float]
    output: str
    targets: str
    #: Parameter names and their defaults, in the order of the vector ``p`` the formulas receive.
    params: Mapping[str, float]
    #: Parameters that must be positive.
    positive: tuple[str, ...]
    #: Position in the registry: the integer the compiled kernels branch on.
    code: int
    #: The array forms of ``value`` and ``delta`` for the NumPy pass, or None (module docstring).
    value_array: Callable[..., np.ndarray] | None = None
    delta_array: Callable[..., np.ndarray] | None = None


_REGISTRY: dict[str, Loss] = {}


def register_loss(name: str, value: Callable[..., float], delta: Callable[..., float], *, output: str,
                  targets: str, params: Mapping[str, float] | None = None, positive: tuple[str, ...] = (),
                  value_array: Callable[..., np.ndarray] | None = None,
                  delta_array: Callable[..., np.ndarray] | None = None) -> Loss:
    """Register the loss ``name`` (module docstring): ``value(z, y, has_y, p)``, ``delta(a, y, c, p)``, the
    ``output`` activation's name and the ``targets`` it accepts (one of :data:`TARGETS`).

    ``value`` and ``delta`` are tried once here on a two-output sample with the default parameters, so a wrong
    signature or a non-scalar result is an error now, naming the function. ``value_array`` and ``delta_array``
    are their optional array forms (module docstring), checked here against them on a small batch.

    >>> def cubic(z, y, has_y, p):   # z stays (identity output); ℓ = Σ_k |z_k − y_k|³ / 3
    ...     ell = 0.0
    ...     if has_y:
    ...         for k in range(z.shape[0]):
    ...             ell += abs(z[k] - y[k]) ** 3 / 3
    ...     return ell
    >>> def cubic_delta(a, y, c, p):
    ...     return (a - y) * abs(a - y) * c
    >>> register_loss("cubic_demo", cubic, cubic_delta, output="identity", targets="real").output
    'identity'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a loss's name must be an identifier-like string; got {name!r}")
    if targets not in TARGETS:
        raise ValueError(f"{name}: targets must be one of {list(TARGETS)}; got {targets!r}")
    if not isinstance(output, str) or not output:
        raise ValueError(f"{name}: output must name the output activation; got {output!r}")
    params = _check_defaults(name, params, positive)
    p = np.array(list(params.values()), dtype=np.float64)
    z, y = np.array([0.3, -0.2]), np.array([1.0, 0.0])
    _call_scalar(name, "value", value, (z.copy(), y, True, p))
    _call_scalar(name, "delta", delta, (0.3, 1.0, 0.5, p))
    if value_array is not None or delta_array is not None:
        _check_loss_arrays(name, value, delta, value_array, delta_array, targets, p)
    code = _REGISTRY[name].code if name in _REGISTRY else len(_REGISTRY)
    entry = Loss(name, value, delta, output, targets, params, tuple(positive), code, value_array, delta_array)
    _REGISTRY[name] = entry
    from microdl.nn import formulas  # the compiled dispatch is rebuilt for the new registry

    formulas.registry_changed()
    return entry


def get_loss(name: str) -> Loss:
    """The registered loss ``name`` (a ``ValueError`` naming the registered ones otherwise)."""
    from microdl._validation import check_choice

    return _REGISTRY[check_choice("loss", name, _REGISTRY)]


def loss_names() -> tuple[str, ...]:
    """The registered losses, in registration order (built-ins first)."""
    return tuple(_REGISTRY)


def _check_loss_arrays(name: str, value: Callable[..., float], delta: Callable[..., float],
                       value_array: Callable[..., np.ndarray] | None, delta_array: Callable[..., np.ndarray] | None,
                       targets: str, p: np.ndarray) -> None:
    """The array forms against the scalar ones on a batch of three samples with three outputs, logits from −30
    to 30 and targets of the kind the loss accepts (module docstring)."""
    Z = np.array([[-30.0, 0.0, 2.5], [1.5, -0.5, 0.0], [0.3, 30.0, -2.0]])
    Y = {"classes": np.eye(3)[[2, 0, 1]], "probabilities": np.array([[1.0, 0.0, 0.5]] * 3),
         "non_negative": np.array([[0.0, 1.0, 3.0]] * 3), "real": np.array([[-1.0, 0.5, 2.0]] * 3)}[targets]
    C = np.array([[0.5], [0.25], [0.25]])
    A = Z.copy()
    ell = np.array([value(A[i], Y[i], True, p) for i in range(3)])  # A holds the outputs after this
    if value_array is not None:
        Z_after = check_array_form(name, "value_array", value_array, (Z, Y, True, p), ell)[0]
        if not np.allclose(Z_after, A, rtol=1e-12, atol=1e-300, equal_nan=True):
            raise ValueError(f"{name}: value_array ({getattr(value_array, '__name__', value_array)}) must leave the "
                             "outputs in Z, as value does")
    if delta_array is not None:
        expected = np.array([[delta(A[i, k], Y[i, k], C[i, 0], p) for k in range(3)] for i in range(3)])
        check_array_form(name, "delta_array", delta_array, (A, Y, C, p), expected)


def loss_parameters(name: str, given: Mapping[str, Any] | None) -> dict[str, float]:
    """The parameters of loss ``name``: its defaults, updated with ``given``."""
    entry = get_loss(name)
    return _complete_params("loss", entry.params, entry.positive, name, given)


def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|), stable for large |z| (np.logaddexp(0, z))."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def xlogy(x, y):
    """x log y, with 0 log 0 = 0 (scipy.special.xlogy)."""
    return 0.0 if x == 0 else x * math.log(y)


def cross_entropy(z, y, has_y, p):
    """z ← softmax(z); ℓ = logsumexp(z) − Σ_k y_k z_k, on logits shifted by their maximum."""
    n = z.shape[0]
    z_max = z[0]
    for k in range(1, n):
        z_max = max(z_max, z[k])
    total = 0.0
    yz = 0.0
    for k in range(n):
        shifted = z[k] - z_max
        if has_y:
            yz += y[k] * shifted
        e = math.exp(shifted)
        z[k] = e
        total += e
    for k in range(n):
        z[k] = z[k] / total
    return math.log(total) - yz


def binary_cross_entropy(z, y, has_y, p):
    """z ← sigmoid(z); ℓ = Σ_k softplus(z_k) − y_k z_k."""
    ell = 0.0
    for k in range(z.shape[0]):
        if has_y:
            ell += softplus(z[k]) - y[k] * z[k]
        z[k] = sigmoid(z[k], p)
    return ell


def squared_error(z, y, has_y, p):
    """z stays (identity output); ℓ = ½ Σ_k (z_k − y_k)²."""
    ell = 0.0
    if has_y:
        for k in range(z.shape[0]):
            r = z[k] - y[k]
            ell += 0.5 * r * r
    return ell


def poisson(z, y, has_y, p):
    """z ← e^z; ℓ = Σ_k y_k log y_k − y_k z_k − y_k + e^{z_k} (half the Poisson deviance)."""
    ell = 0.0
    for k in range(z.shape[0]):
        e = math.exp(z[k])
        if has_y:
            ell += xlogy(y[k], y[k]) - y[k] * z[k] - y[k] + e
        z[k] = e
    return ell


def canonical_delta(a, y, c, p):
    """dL/dz of the output layer for every canonical pair: (output − target) · w_i/Σw, with c = w_i/Σw (plain
    arithmetic: its own array form)."""
    return (a - y) * c


# -- the array forms (module docstring), each a batch at once: rows are samples, ℓ summed over the outputs ----
def cross_entropy_array(Z, Y, has_y, p):
    shifted = Z - Z.max(axis=1, keepdims=True)
    yz = (Y * shifted).sum(axis=1) if has_y else 0.0
    np.exp(shifted, out=Z)
    total = Z.sum(axis=1, keepdims=True)
    Z /= total
    return np.log(total[:, 0]) - yz


def binary_cross_entropy_array(Z, Y, has_y, p):
    ell = (np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z))) - Y * Z).sum(axis=1) if has_y else np.zeros(len(Z))
    Z[...] = sigmoid_array(Z, p)
    return ell


def squared_error_array(Z, Y, has_y, p):
    return 0.5 * ((Z - Y) ** 2).sum(axis=1) if has_y else np.zeros(len(Z))


def poisson_array(Z, Y, has_y, p):
    E = np.exp(Z)
    ell = (special.xlogy(Y, Y) - Y * Z - Y + E).sum(axis=1) if has_y else np.zeros(len(Z))
    Z[...] = E
    return ell


def huber_array(Z, Y, has_y, p):
    if not has_y:
        return np.zeros(len(Z))
    r = np.abs(Z - Y)
    return np.where(r < p[0], 0.5 * r * r, p[0] * (r - 0.5 * p[0])).sum(axis=1)


def huber_delta_array(A, Y, C, p):
    return np.clip(A - Y, -p[0], p[0]) * C


def absolute_error_array(Z, Y, has_y, p):
    return np.abs(Z - Y).sum(axis=1) if has_y else np.zeros(len(Z))


def absolute_error_delta_array(A, Y, C, p):
    return np.sign(A - Y) * C


def huber(z, y, has_y, p):
    """z stays (identity output); ℓ = Σ_k ½ r_k² for |r_k| < δ, δ (|r_k| − ½ δ) beyond (torch.nn.HuberLoss)."""
    delta = p[0]
    ell = 0.0
    if has_y:
        for k in range(z.shape[0]):
            r = abs(z[k] - y[k])
            ell += 0.5 * r * r if r < delta else delta * (r - 0.5 * delta)
    return ell


def huber_delta(a, y, c, p):
    """clip(a − y, −δ, δ) · c (a NaN residual stays NaN)."""
    r = a - y
    if r > p[0]:
        return p[0] * c
    if r < -p[0]:
        return -p[0] * c
    return r * c


def absolute_error(z, y, has_y, p):
    """z stays (identity output); ℓ = Σ_k |z_k − y_k| (torch.nn.L1Loss, summed over outputs)."""
    ell = 0.0
    if has_y:
        for k in range(z.shape[0]):
            ell += abs(z[k] - y[k])
    return ell


def absolute_error_delta(a, y, c, p):
    """sign(a − y) · c, with the subgradient 0 at a = y (as torch's sign) and a NaN residual kept NaN."""
    r = a - y
    if r > 0:
        return c
    if r < 0:
        return -c
    return r * c  # 0 at 0; NaN stays NaN


def l2_penalty(alpha, inv_sum_w, sum_sq):
    """The L2 term of a batch, α/(2Σw) Σ_l ‖W[l]‖² (scikit-learn's scaling; biases are not penalised), from
    1/Σw (0 for a batch whose weights are all 0, which then contributes nothing) and Σ‖W‖²."""
    return 0.5 * alpha * inv_sum_w * sum_sq


def l2_gradient(alpha, inv_sum_w, w):
    """The L2 term's derivative with respect to one weight w: (α/Σw) w."""
    return alpha * inv_sum_w * w


register_loss("cross_entropy", cross_entropy, canonical_delta, output="softmax", targets="classes",
              value_array=cross_entropy_array, delta_array=canonical_delta)
register_loss("binary_cross_entropy", binary_cross_entropy, canonical_delta, output="sigmoid",
              targets="probabilities", value_array=binary_cross_entropy_array, delta_array=canonical_delta)
register_loss("squared_error", squared_error, canonical_delta, output="identity", targets="real",
              value_array=squared_error_array, delta_array=canonical_delta)
register_loss("poisson", poisson, canonical_delta, output="exp", targets="non_negative", value_array=poisson_array,
              delta_array=canonical_delta)
register_loss("huber", huber, huber_delta, output="identity", targets="real", params={"delta": 1.0},
              positive=("delta",), value_array=huber_array, delta_array=huber_delta_array)
register_loss("absolute_error", absolute_error, absolute_error_delta, output="identity", targets="real",
              value_array=absolute_error_array, delta_array=absolute_error_delta_array)
