"""One element of each update: load it from every buffer, apply the rule, store the results.

These per-index functions are plain Python; each backend compiles them for its target (``njit`` in
:mod:`microdl.optim._cpu`, ``cuda.jit(device=True)`` in :mod:`microdl.optim._cuda`) and wraps them in its own
loop. They call the rules of :mod:`microdl.optim.rules` compiled with ``numba.njit(inline="always")``, which
Numba inlines on the CPU and which CUDA device code may call as well (Numba's CPU/GPU compatibility). The
rules receive scalars only (one element of each buffer, and the NamedTuple ``s`` of the step's scalars, rebuilt
here from the plain tuple ``h`` that the kernel was given: NOTE [plain tuple at the kernel boundary]), which
also lets the CUDA simulator run them.

An optional state buffer whose option is off is passed as ``None`` (NOTE [optional state] in
:mod:`microdl.optim.rules`). Numba compiles a separate specialisation for a ``None`` argument and prunes the
``is None`` branch at compile time, so the loop has no per-element test, still vectorises, and the unused
buffer costs no memory traffic. The rule then receives ``g[i]`` as a stand-in value, which it ignores.
"""

from __future__ import annotations

from numba import njit

from microdl.optim import rules
from microdl.optim.rules import AdadeltaScalars, AdagradScalars, AdamScalars, RMSpropScalars, SGDScalars

# Inline the rule: Numba does not inline a plain call, and the loop then does not vectorise (measured, Adam,
# N = 1e7 float32, 2 threads, numba 0.68: 20.0 ms per step with rules.adam as a plain njit function, 7.9 ms
# inlined).
_sgd = njit(inline="always")(rules.sgd)
_adagrad = njit(inline="always")(rules.adagrad)
_rmsprop = njit(inline="always")(rules.rmsprop)
_adadelta = njit(inline="always")(rules.adadelta)
_adam = njit(inline="always")(rules.adam)


def sgd_at(i, theta, g, b, h):
    s = SGDScalars(*h)
    if b is None:
        theta[i], _ = _sgd(theta[i], g[i], g[i], s)
    else:
        theta[i], b[i] = _sgd(theta[i], g[i], b[i], s)


def adagrad_at(i, theta, g, state_sum, h):
    s = AdagradScalars(*h)
    theta[i], state_sum[i] = _adagrad(theta[i], g[i], state_sum[i], s)


def rmsprop_at(i, theta, g, v, g_avg, b, h):
    s = RMSpropScalars(*h)
    # One ``is None`` test per condition, nested: Numba prunes those at compile time. A chain that starts with
    # ``g_avg is None and b is None`` kept the branch that indexes g_avg when only g_avg was None, so
    # RMSprop with momentum but not centred failed to compile (typing ``g_avg[i]`` on None).
    if g_avg is None:
        if b is None:
            theta[i], v[i], _, _ = _rmsprop(theta[i], g[i], v[i], g[i], g[i], s)
        else:
            theta[i], v[i], _, b[i] = _rmsprop(theta[i], g[i], v[i], g[i], b[i], s)
    elif b is None:
        theta[i], v[i], g_avg[i], _ = _rmsprop(theta[i], g[i], v[i], g_avg[i], g[i], s)
    else:
        theta[i], v[i], g_avg[i], b[i] = _rmsprop(theta[i], g[i], v[i], g_avg[i], b[i], s)


def adadelta_at(i, theta, g, v, u, h):
    s = AdadeltaScalars(*h)
    theta[i], v[i], u[i] = _adadelta(theta[i], g[i], v[i], u[i], s)


def adam_at(i, theta, g, m, v, v_max, h):
    s = AdamScalars(*h)
    if v_max is None:
        theta[i], m[i], v[i], _ = _adam(theta[i], g[i], m[i], v[i], g[i], s)
    else:
        theta[i], m[i], v[i], v_max[i] = _adam(theta[i], g[i], m[i], v[i], v_max[i], s)
