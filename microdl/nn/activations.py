"""Hidden-layer activations: each map f(z) beside its derivative, written once, per element.

The derivative is computed from the layer's *output* a = f(z) rather than its input (as scikit-learn does),
so the forward pass need not keep z: relu'(z) = [a > 0], tanh'(z) = 1 − a², sigmoid'(z) = a (1 − a).

These plain scalar functions are the only definition of each formula. One definition serves three ways, as
the optimizer rules of :mod:`microdl.optim.rules` do:

* the textbook NumPy pass (:mod:`microdl.nn.reference`) maps them over whole arrays (``np.vectorize``);
* the CPU kernels (:mod:`microdl.nn._cpu`) compile them with ``numba.njit(inline="always")`` into their fused
  loops;
* the CUDA kernels (:mod:`microdl.cuda.kernels`) compile them as device functions, into the epilogues of their
  matrix products.

(:func:`microdl._jit.jit_scalar_functions` compiles them for a target, calls between them included.) So they
use only what all three understand: arithmetic, comparisons, ``if`` and the ``math`` module. :func:`activate`
and :func:`derivative` pick one by its integer code, the form the kernels take it in.
After editing a formula, clear the CPU kernels' disk cache (see :mod:`microdl.nn._cpu`).
"""

from __future__ import annotations

import math

__all__ = ["ACTIVATIONS", "ACTIVATION_CODES", "LEAKY_SLOPE", "activate", "derivative"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")
#: Integer codes of the activations, for the compiled kernels (which branch on a small int, not a string).
IDENTITY, RELU, LEAKY_RELU, TANH, SIGMOID = range(5)
ACTIVATION_CODES = dict(zip(ACTIVATIONS, range(5)))
#: Slope of leaky_relu for negative inputs (torch's default).
LEAKY_SLOPE = 0.01


# f(z) beside f'(z), the latter from the output a = f(z). The maps test ``z < 0``, not ``z > 0``, so that a NaN
# passes through (a diverging run must show it).
def identity(z):
    return z


def identity_derivative(a):
    return 1.0


def relu(z):
    return 0.0 if z < 0 else z


def relu_derivative(a):
    return 1.0 if a > 0 else 0.0


def leaky_relu(z):
    return LEAKY_SLOPE * z if z < 0 else z


def leaky_relu_derivative(a):
    if a == 0:  # the kink: the mean of the two slopes
        return (1.0 + LEAKY_SLOPE) / 2
    return LEAKY_SLOPE if a < 0 else 1.0


def tanh(z):
    return math.tanh(z)


def tanh_derivative(a):
    return 1.0 - a * a


def sigmoid(z):
    """1 / (1 + e^−z), without overflow for large |z| (as scipy.special.expit)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_derivative(a):
    return a * (1.0 - a)


def activate(code, z):
    """f(z) for the activation with integer ``code``."""
    if code == RELU:
        return relu(z)
    if code == LEAKY_RELU:
        return leaky_relu(z)
    if code == TANH:
        return tanh(z)
    if code == SIGMOID:
        return sigmoid(z)
    return identity(z)


def derivative(code, a):
    """f'(z) for the activation with integer ``code``, from its output a = f(z)."""
    if code == RELU:
        return relu_derivative(a)
    if code == LEAKY_RELU:
        return leaky_relu_derivative(a)
    if code == TANH:
        return tanh_derivative(a)
    if code == SIGMOID:
        return sigmoid_derivative(a)
    return identity_derivative(a)
