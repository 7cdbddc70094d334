"""Output-layer and loss pairs, each written once, for one sample.

Each pair couples an output activation with the loss it is the canonical link of, so that for all four the
gradient of the loss with respect to the output layer's pre-activation z is the same simple expression
(:func:`output_delta`)::

    dL/dz_i = w_i (output_i − y_i) / Σw          (w = sample weights, 1 by default)

==========================  =================  ==========================================================
loss                        output             per-sample loss ℓ_i, computed from the logits z_i
==========================  =================  ==========================================================
``cross_entropy``           softmax            logsumexp(z) − Σ_k y_k z_k          (y sums to 1)
``binary_cross_entropy``    sigmoid            Σ_k softplus(z_k) − y_k z_k
``squared_error``           identity           ½ Σ_k (z_k − y_k)²
``poisson``                 exp                Σ_k y_k log y_k − y_k z_k − y_k + e^{z_k}   (y ≥ 0)
==========================  =================  ==========================================================

The batch loss is L = Σ_i w_i ℓ_i / Σ_i w_i, plus the L2 term of :func:`l2_penalty`. Losses are computed from
the logits, with the max-shift of log-sum-exp and a stable softplus, never as ``log(softmax)`` or
``log(sigmoid)``, so they stay finite for large logits. ``poisson`` is scikit-learn's half Poisson deviance (its
y log y − y terms do not depend on the network and make the loss 0 at a perfect fit).

Each function takes one sample's logits ``z`` (overwritten with the output) and targets ``y`` and returns ℓ;
with ``has_y`` false (prediction) ``y`` is ignored and ℓ is meaningless. Like the activations
(:mod:`microdl.nn.activations`) they are plain functions that serve the textbook pass
(:mod:`microdl.nn.reference`, row by row) as they are, and the CPU and CUDA kernels compiled
(:func:`microdl._jit.jit_scalar_functions`). After editing a formula, clear the CPU kernels' disk cache (see
:mod:`microdl.nn._cpu`).
"""

from __future__ import annotations

import math

from microdl.nn.activations import sigmoid

__all__ = ["LOSSES", "LOSS_CODES", "OUTPUT_ACTIVATION", "loss_and_output", "output_delta", "l2_penalty",
           "l2_gradient"]

LOSSES = ("cross_entropy", "binary_cross_entropy", "squared_error", "poisson")
#: Integer codes of the losses, for the compiled kernels.
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR, POISSON = range(4)
LOSS_CODES = dict(zip(LOSSES, range(4)))
OUTPUT_ACTIVATION = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "squared_error": "identity",
                     "poisson": "exp"}

def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|), stable for large |z| (np.logaddexp(0, z))."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def xlogy(x, y):
    """x log y, with 0 log 0 = 0 (scipy.special.xlogy)."""
    return 0.0 if x == 0 else x * math.log(y)


def cross_entropy(z, y, has_y):
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


def binary_cross_entropy(z, y, has_y):
    """z ← sigmoid(z); ℓ = Σ_k softplus(z_k) − y_k z_k."""
    ell = 0.0
    for k in range(z.shape[0]):
        if has_y:
            ell += softplus(z[k]) - y[k] * z[k]
        z[k] = sigmoid(z[k])
    return ell


def squared_error(z, y, has_y):
    """z stays (identity output); ℓ = ½ Σ_k (z_k − y_k)²."""
    ell = 0.0
    if has_y:
        for k in range(z.shape[0]):
            r = z[k] - y[k]
            ell += 0.5 * r * r
    return ell


def poisson(z, y, has_y):
    """z ← e^z; ℓ = Σ_k y_k log y_k − y_k z_k − y_k + e^{z_k} (half the Poisson deviance)."""
    ell = 0.0
    for k in range(z.shape[0]):
        e = math.exp(z[k])
        if has_y:
            ell += xlogy(y[k], y[k]) - y[k] * z[k] - y[k] + e
        z[k] = e
    return ell


def loss_and_output(code, z, y, has_y):
    """The pair with integer ``code``: overwrite one sample's logits ``z`` with the output, return ℓ."""
    if code == CROSS_ENTROPY:
        return cross_entropy(z, y, has_y)
    if code == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy(z, y, has_y)
    if code == POISSON:
        return poisson(z, y, has_y)
    return squared_error(z, y, has_y)


def output_delta(a, y, c):
    """dL/dz of the output layer for every canonical pair: (output − target) · w_i/Σw, with c = w_i/Σw."""
    return (a - y) * c


def l2_penalty(alpha, inv_sum_w, sum_sq):
    """The L2 term of a batch, α/(2Σw) Σ_l ‖W[l]‖² (scikit-learn's scaling; biases are not penalised), from
    1/Σw (0 for a batch whose weights are all 0, which then contributes nothing) and Σ‖W‖²."""
    return 0.5 * alpha * inv_sum_w * sum_sq


def l2_gradient(alpha, inv_sum_w, w):
    """The L2 term's derivative with respect to one weight w: (α/Σw) w."""
    return alpha * inv_sum_w * w
