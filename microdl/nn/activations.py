"""Hidden-layer activations: each forward map beside its derivative, both in place and allocation-free.

The derivative is computed from the layer's *output* A = f(Z) rather than its input (as scikit-learn does),
so the forward pass need not keep Z: relu' = [A > 0], tanh' = 1 − A², sigmoid' = A (1 − A). ``backward``
multiplies ``delta`` (dL/dA on entry, dL/dZ on exit) by f'(Z), using ``scratch`` (same shape) for temporaries.

The same maps are written twice: once per element, for the fused CPU kernels of :mod:`microdl.nn._cpu` (which
compile these plain functions with Numba), and once as whole-array NumPy operations (``forward``/``backward``
below), the readable reference that the kernels are tested against.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

__all__ = ["ACTIVATIONS", "ACTIVATION_CODES", "LEAKY_SLOPE", "forward", "backward"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")
#: Integer codes of the activations, for the compiled kernels (which branch on a small int, not a string).
IDENTITY, RELU, LEAKY_RELU, TANH, SIGMOID = range(5)
ACTIVATION_CODES = dict(zip(ACTIVATIONS, range(5)))
#: Slope of leaky_relu for negative inputs (torch's default).
LEAKY_SLOPE = 0.01


# -- per element: f(z) beside f'(z), the latter from the output a = f(z) -----------------------------------
# (The forward maps test ``z < 0``, not ``z > 0``, so that a NaN passes through, as it does with np.maximum.)
def relu(z):
    return 0.0 if z < 0 else z


def relu_derivative(a):
    return 1.0 if a > 0 else 0.0


def leaky_relu(z):
    return LEAKY_SLOPE * z if z < 0 else z


def leaky_relu_derivative(a):
    if a == 0:  # the kink: the mean of the two slopes, as the NumPy reference (via sign) computes it
        return (1.0 + LEAKY_SLOPE) / 2
    return LEAKY_SLOPE if a < 0 else 1.0


def tanh(z):
    return math.tanh(z)


def tanh_derivative(a):
    return 1.0 - a * a


def sigmoid(z):
    """1 / (1 + e^−z), without overflow for large |z| (scipy.special.expit)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_derivative(a):
    return a * (1.0 - a)


def forward(name: str, Z: np.ndarray, scratch: np.ndarray) -> None:
    """Overwrite the pre-activation ``Z`` with ``f(Z)``."""
    if name == "identity":
        pass
    elif name == "relu":
        np.maximum(Z, 0, out=Z)
    elif name == "leaky_relu":
        np.multiply(Z, LEAKY_SLOPE, out=scratch)
        np.maximum(Z, scratch, out=Z)  # max(z, 0.01 z) is z for z > 0, 0.01 z otherwise
    elif name == "tanh":
        np.tanh(Z, out=Z)
    elif name == "sigmoid":
        expit(Z, out=Z)  # 1 / (1 + exp(-z)) without overflow
    else:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def backward(name: str, A: np.ndarray, delta: np.ndarray, scratch: np.ndarray) -> None:
    """Multiply ``delta`` in place by f'(Z), computed from the output ``A = f(Z)``."""
    if name == "identity":
        pass
    elif name == "relu":
        np.sign(A, out=scratch)  # A >= 0, so sign(A) is the indicator [A > 0]
        delta *= scratch
    elif name == "leaky_relu":
        np.sign(A, out=scratch)  # -1 or +1 (0 at 0) ...
        scratch += 1  # ... 0 or 2 ...
        scratch *= (1 - LEAKY_SLOPE) / 2  # ... 0 or 1 - slope ...
        scratch += LEAKY_SLOPE  # ... slope or 1
        delta *= scratch
    elif name == "tanh":
        np.multiply(A, A, out=scratch)
        np.subtract(1, scratch, out=scratch)  # 1 - A²
        delta *= scratch
    elif name == "sigmoid":
        np.subtract(1, A, out=scratch)
        scratch *= A  # A (1 - A)
        delta *= scratch
    else:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
