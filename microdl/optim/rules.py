"""The update rules, written once.

Every optimizer in :mod:`microdl.optim` is one elementwise rule: a function that takes one parameter
``theta``, its gradient ``g``, its state and a tuple of hyperparameters ``h``, and returns the new parameter
and the new state. The same function is applied three ways:

* the NumPy backend calls it once with whole arrays (NumPy broadcasts the arithmetic);
* the CPU backend compiles it with ``numba.njit(inline="always")`` and calls it per element inside one
  ``prange`` loop (:mod:`microdl.optim._cpu`);
* the CUDA backend compiles it with ``cuda.jit(device=True)`` and calls it per element inside one grid-stride
  kernel (:mod:`microdl.optim._cuda`).

So the rules may use only what all three understand: ``+ - * /``, comparisons, ``if`` on a *scalar* flag, and
the NumPy ufuncs ``np.sqrt`` and ``np.maximum``.

NOTE [typed scalars]
    Numba types a Python literal such as ``1`` or ``0.5`` as 64-bit, and ``1 - beta1`` with a float32
    ``beta1`` becomes float64, which halves the SIMD width of a float32 kernel. The rules therefore contain no
    numeric literals: every constant, including complements such as ``1 - beta1``, is computed on the host in
    float64, rounded once to the parameters' dtype, and passed in ``h``
    (see :meth:`microdl.optim.Optimizer._hyper`).

NOTE [optional state]
    Optional state (the momentum buffer of SGD without momentum, AMSGrad's ``v_max`` when ``amsgrad`` is off,
    RMSprop's ``g_avg`` when not centred and ``b`` without momentum) is not allocated: its buffer is ``None``.
    The rule never reads or changes it while its flag is off and returns it as it came, so the NumPy backend
    passes ``None`` straight through and the compiled backends pass a stand-in value
    (:mod:`microdl.optim._elementwise`).

The update follows ``torch.optim``'s documented algorithm for each optimizer, line for line; the docstring of
each optimizer class in :mod:`microdl.optim.optimizers` shows the block and maps each symbol to its argument.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd", "adagrad", "rmsprop", "adadelta", "adam"]


def sgd(theta, g, b, h):
    """SGD with momentum, dampening and Nesterov; GD is the same rule on a full-batch gradient."""
    lr, momentum, one_minus_dampening, weight_decay, nesterov, maximize, first_step = h
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * theta
    if momentum != 0:
        if first_step:
            b = g
        else:
            b = momentum * b + one_minus_dampening * g
        if nesterov:
            g = g + momentum * b
        else:
            g = b
    theta = theta - lr * g
    return theta, b


def adagrad(theta, g, S, h):
    """Adagrad: divide by the root of the running *sum* of squared gradients."""
    clr, weight_decay, eps, maximize = h
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * theta
    S = S + g * g
    theta = theta - clr * g / (np.sqrt(S) + eps)
    return theta, S


def rmsprop(theta, g, v, g_avg, b, h):
    """RMSprop: Adagrad's sum becomes an exponential moving average; optional centring and momentum."""
    lr, alpha, one_minus_alpha, eps, weight_decay, momentum, centered, maximize = h
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * theta
    v = alpha * v + one_minus_alpha * g * g
    if centered:
        g_avg = alpha * g_avg + one_minus_alpha * g
        denom = np.sqrt(v - g_avg * g_avg) + eps
    else:
        denom = np.sqrt(v) + eps
    if momentum > 0:
        b = momentum * b + g / denom
        theta = theta - lr * b
    else:
        theta = theta - lr * g / denom
    return theta, v, g_avg, b


def adadelta(theta, g, v, u, h):
    """AdaDelta: an EMA of squared *updates* ``u`` replaces the learning rate; ``lr`` only scales the step."""
    lr, rho, one_minus_rho, eps, weight_decay, maximize = h
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * theta
    v = rho * v + one_minus_rho * g * g
    delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    u = rho * u + one_minus_rho * delta * delta
    theta = theta - lr * delta
    return theta, v, u


def adam(theta, g, m, v, v_max, h):
    """Adam (and AdamW): EMAs of g and g², bias-corrected; optional AMSGrad and decoupled weight decay."""
    (
        beta1,
        one_minus_beta1,
        beta2,
        one_minus_beta2,
        eps,
        weight_decay,
        decay_factor,
        step_size,
        bias_correction2_sqrt,
        decoupled,
        amsgrad,
        maximize,
    ) = h
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            theta = theta * decay_factor
        else:
            g = g + weight_decay * theta
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * g * g
    if amsgrad:
        v_max = np.maximum(v_max, v)
        denom = np.sqrt(v_max) / bias_correction2_sqrt + eps
    else:
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
    theta = theta - step_size * m / denom
    return theta, m, v, v_max
