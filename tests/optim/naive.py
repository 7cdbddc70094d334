"""A deliberately naive oracle for the optimizers: one Python ``for`` loop per element, in float64.

Written straight from the update blocks that ``torch.optim`` documents (SGD, Adagrad, RMSprop, Adadelta,
Adam, AdamW), in their textbook form, without looking at :mod:`microdl.optim.rules`. Where torch computes a
rearranged form (Adam's ``step_size = lr / (1 - beta1**t)`` and ``denom = sqrt(v) / sqrt(1 - beta2**t) + eps``),
this file keeps the form printed in the paper and the docs (``m_hat``, ``v_hat``), so that a wrong rule cannot
pass by agreeing with a copy of itself. Every parameter element is independent of the others, so each
oracle walks the elements in the outer loop and the steps in the inner one, with plain Python floats and
:func:`math.sqrt`.

Each oracle takes the initial parameters ``theta0`` (1-D), the gradients ``grads`` (one row per step) and the
hyperparameters with torch's names and defaults, and returns ``(history, state)``: the parameters after every
step (``steps x n``, float64) and the final state by the names :mod:`microdl.optim` uses for it.

Adam's ``eps_on="v"`` (ε added to the raw √v) is written as scikit-learn's ``AdamOptimizer`` documents it, with
both bias corrections folded into the rate: θ ← θ − γ √(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ORACLES", "CASES", "make_problem", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"]


def _setup(theta0, grads):
    theta0 = np.asarray(theta0, dtype=np.float64)
    grads = np.asarray(grads, dtype=np.float64)
    assert theta0.ndim == 1 and grads.ndim == 2 and grads.shape[1] == theta0.size
    return theta0, grads, np.empty_like(grads)


def sgd(theta0, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """torch.optim.SGD, as documented."""
    theta0, grads, history = _setup(theta0, grads)
    steps, n = grads.shape
    buf = np.zeros(n)
    for i in range(n):
        theta = float(theta0[i])
        b = 0.0
        for t in range(1, steps + 1):
            g = float(grads[t - 1, i])
            if maximize:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * theta
            if momentum != 0:
                if t > 1:
                    b = momentum * b + (1 - dampening) * g
                else:
                    b = g
                if nesterov:
                    g = g + momentum * b
                else:
                    g = b
            theta = theta - lr * g
            history[t - 1, i] = theta
        buf[i] = b
    return history, ({"b": buf} if momentum != 0 else {})


def adagrad(theta0, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
            maximize=False):
    """torch.optim.Adagrad, as documented (the sum starts at ``initial_accumulator_value``)."""
    theta0, grads, history = _setup(theta0, grads)
    steps, n = grads.shape
    sums = np.zeros(n)
    for i in range(n):
        theta = float(theta0[i])
        state_sum = initial_accumulator_value
        for t in range(1, steps + 1):
            g = float(grads[t - 1, i])
            if maximize:
                g = -g
            decayed_lr = lr / (1 + (t - 1) * lr_decay)
            if weight_decay != 0:
                g = g + weight_decay * theta
            state_sum = state_sum + g**2
            theta = theta - decayed_lr * g / (math.sqrt(state_sum) + eps)
            history[t - 1, i] = theta
        sums[i] = state_sum
    return history, {"state_sum": sums}


def rmsprop(theta0, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
            maximize=False):
    """torch.optim.RMSprop, as documented."""
    theta0, grads, history = _setup(theta0, grads)
    steps, n = grads.shape
    vs, g_avgs, bufs = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        theta = float(theta0[i])
        v = g_avg = b = 0.0
        for t in range(1, steps + 1):
            g = float(grads[t - 1, i])
            if maximize:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * theta
            v = alpha * v + (1 - alpha) * g**2
            v_tilde = v
            if centered:
                g_avg = alpha * g_avg + (1 - alpha) * g
                v_tilde = v_tilde - g_avg**2
            if momentum > 0:
                b = momentum * b + g / (math.sqrt(v_tilde) + eps)
                theta = theta - lr * b
            else:
                theta = theta - lr * g / (math.sqrt(v_tilde) + eps)
            history[t - 1, i] = theta
        vs[i], g_avgs[i], bufs[i] = v, g_avg, b
    state = {"v": vs}
    if centered:
        state["g_avg"] = g_avgs
    if momentum > 0:
        state["b"] = bufs
    return history, state


def adadelta(theta0, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    """torch.optim.Adadelta, as documented: ``u`` accumulates the unscaled update, ``lr`` only scales the step."""
    theta0, grads, history = _setup(theta0, grads)
    steps, n = grads.shape
    vs, us = np.zeros(n), np.zeros(n)
    for i in range(n):
        theta = float(theta0[i])
        v = u = 0.0
        for t in range(1, steps + 1):
            g = float(grads[t - 1, i])
            if maximize:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * theta
            v = v * rho + g**2 * (1 - rho)
            delta_x = math.sqrt(u + eps) / math.sqrt(v + eps) * g
            u = u * rho + delta_x**2 * (1 - rho)
            theta = theta - lr * delta_x
            history[t - 1, i] = theta
        vs[i], us[i] = v, u
    return history, {"v": vs, "u": us}


def _adam(theta0, grads, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled, eps_on):
    theta0, grads, history = _setup(theta0, grads)
    beta1, beta2 = betas
    steps, n = grads.shape
    ms, vs, v_maxs = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        theta = float(theta0[i])
        m = v = v_max = 0.0
        for t in range(1, steps + 1):
            g = float(grads[t - 1, i])
            if maximize:
                g = -g
            if weight_decay != 0:
                if decoupled:
                    theta = theta - lr * weight_decay * theta
                else:
                    g = g + weight_decay * theta
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            if amsgrad:
                v_max = max(v_max, v)
            v_denom = v_max if amsgrad else v
            if eps_on == "v":  # scikit-learn's and Keras's placement
                lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                theta = theta - lr_t * m / (math.sqrt(v_denom) + eps)
            else:
                m_hat = m / (1 - beta1**t)
                v_hat = v_denom / (1 - beta2**t)
                theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
            history[t - 1, i] = theta
        ms[i], vs[i], v_maxs[i] = m, v, v_max
    state = {"m": ms, "v": vs}
    if amsgrad:
        state["v_max"] = v_maxs
    return history, state


def adam(theta0, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
         eps_on="v_hat"):
    """torch.optim.Adam, as documented: weight decay coupled (added to g); AMSGrad's max over the raw v."""
    return _adam(theta0, grads, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=False, eps_on=eps_on)


def adamw(theta0, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False,
          eps_on="v_hat"):
    """torch.optim.AdamW, as documented: θ ← θ − γλθ before the moments, g untouched."""
    return _adam(theta0, grads, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True, eps_on=eps_on)


#: The oracle for each optimizer, by the names of :data:`microdl.optim.OPTIMIZERS` (GD is SGD's rule).
ORACLES = {"gd": sgd, "sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam,
           "adamw": adamw}

#: ``(id, optimizer name, hyperparameters)``: each option alone, then several together. The learning rates
#: are large enough that the parameters move by O(1) over the test's steps.
CASES = [
    ("gd", "gd", {"lr": 0.05}),
    ("sgd", "sgd", {"lr": 0.05}),
    ("sgd-momentum", "sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd-momentum-dampening", "sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("sgd-nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd-weight_decay", "sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgd-maximize", "sgd", {"lr": 0.05, "maximize": True}),
    ("sgd-all", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1, "maximize": True}),
    ("adagrad", "adagrad", {"lr": 0.1}),
    ("adagrad-lr_decay", "adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad-initial_accumulator", "adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("adagrad-weight_decay", "adagrad", {"lr": 0.1, "weight_decay": 0.1}),
    ("adagrad-eps", "adagrad", {"lr": 0.1, "eps": 1e-2}),
    ("adagrad-maximize", "adagrad", {"lr": 0.1, "maximize": True}),
    ("adagrad-all", "adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.5, "weight_decay": 0.1,
                                "eps": 1e-3, "maximize": True}),
    ("rmsprop", "rmsprop", {"lr": 0.01}),
    ("rmsprop-alpha", "rmsprop", {"lr": 0.01, "alpha": 0.9}),
    ("rmsprop-eps", "rmsprop", {"lr": 0.01, "eps": 1e-2}),
    ("rmsprop-centered", "rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop-momentum", "rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop-weight_decay", "rmsprop", {"lr": 0.01, "weight_decay": 0.1}),
    ("rmsprop-maximize", "rmsprop", {"lr": 0.01, "maximize": True}),
    ("rmsprop-centered-momentum", "rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5,
                                              "weight_decay": 0.1, "maximize": True}),
    ("adadelta", "adadelta", {}),
    ("adadelta-lr-rho", "adadelta", {"lr": 0.5, "rho": 0.5}),
    ("adadelta-eps", "adadelta", {"eps": 1e-3}),
    ("adadelta-weight_decay", "adadelta", {"weight_decay": 0.1}),
    ("adadelta-maximize", "adadelta", {"maximize": True}),
    ("adam", "adam", {"lr": 0.01}),
    ("adam-betas", "adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("adam-eps", "adam", {"lr": 0.01, "eps": 1e-2}),
    ("adam-amsgrad", "adam", {"lr": 0.01, "amsgrad": True}),
    ("adam-weight_decay", "adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adam-maximize", "adam", {"lr": 0.01, "maximize": True}),
    ("adam-all", "adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.1,
                          "maximize": True}),
    ("adamw", "adamw", {"lr": 0.01}),
    ("adamw-weight_decay", "adamw", {"lr": 0.01, "weight_decay": 0.5}),
    ("adamw-amsgrad", "adamw", {"lr": 0.01, "amsgrad": True}),
    ("adamw-all", "adamw", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.5, "amsgrad": True,
                            "maximize": True}),
    # scikit-learn's and Keras's placement of eps (not in torch): a large eps, so that where it goes matters
    ("adam-eps_on-v", "adam", {"lr": 0.01, "eps": 1e-2, "eps_on": "v"}),
    ("adamw-eps_on-v-all", "adamw", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-2, "weight_decay": 0.5,
                                     "amsgrad": True, "maximize": True, "eps_on": "v"}),
]


def make_problem(n=37, steps=50, seed=0):
    """Initial parameters and a fixed gradient sequence: standard normal, with a scale that changes from step
    to step by up to 30x, so that v sometimes shrinks (and AMSGrad's running maximum matters)."""
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(n)
    scale = np.exp(rng.uniform(np.log(0.1), np.log(3.0), size=(steps, 1)))
    grads = rng.standard_normal((steps, n)) * scale
    return theta0, grads
