"""CPU backend: each per-element update of :mod:`microdl.optim._elementwise` in one ``prange`` loop.

Each loop is compiled twice: ``parallel=True``, for buffers of at least ``config.MIN_PARALLEL_ELEMENTS`` when
threads are wise (NOTE [threading layer] in :mod:`microdl.config`), and as its serial twin
(:func:`microdl._jit.serial_twin`) for everything else; the two give the same bits, element by element.

Kernels are compiled lazily, once per dtype, and cached on disk (``cache=True``), so a fresh process pays the
compile only once per machine. They hold no arithmetic of their own: each hands every element, and the
step's scalars as a plain tuple (NOTE [plain tuple at the kernel boundary] in :mod:`microdl.optim.rules`), to
its per-element update.

Numba's disk cache keys each kernel on this file alone, so an edit to ``rules.py`` or ``_elementwise.py``,
which are inlined here, is not noticed by a cache written before it: after changing a rule, delete the
``__pycache__/_cpu.*.nbi`` and ``.nbc`` files next to this module (or touch this file).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from microdl import config
from microdl._jit import serial_twin
from microdl.optim import _elementwise as ew

_inline = njit(inline="always")
_sgd_at = _inline(ew.sgd_at)
_adagrad_at = _inline(ew.adagrad_at)
_rmsprop_at = _inline(ew.rmsprop_at)
_adadelta_at = _inline(ew.adadelta_at)
_adam_at = _inline(ew.adam_at)

_kernel = njit(parallel=True, cache=True, nogil=True)

# NOTE [arcp for Adam]
#     While the buffers fit in cache (N up to ~1e6 on a 32 MB L3) a step is bound by the divider, not by
#     memory: each division or square root per element costs about as much as all of its loads and stores.
#     Adam's rule divides by the loop-invariant sqrt(1 - beta2**t); the ``arcp`` fast-math flag lets LLVM
#     take its reciprocal once and multiply, which leaves one division and one square root per element
#     (measured, float32, 2 threads: 22.6 -> 18.1 us at N = 1e5, 197 -> 159 us at 1e6, no change at 1e7,
#     where memory is the limit); the denominator moves by about an ulp. Only Adam gets the flag: on
#     Adadelta it turns a / sqrt(b) into an approximate reciprocal square root in float32, which is not
#     correctly rounded. The other flags bought nothing measurable, and ``nnan``/``ninf`` would let the
#     compiler assume away the NaNs and infinities that a diverging run must still show.
_adam_kernel = njit(parallel=True, cache=True, nogil=True, fastmath={"arcp"})


@_kernel
def sgd(theta, g, b, h):
    for i in prange(theta.size):
        _sgd_at(i, theta, g, b, h)


@_kernel
def adagrad(theta, g, state_sum, h):
    for i in prange(theta.size):
        _adagrad_at(i, theta, g, state_sum, h)


@_kernel
def rmsprop(theta, g, v, g_avg, b, h):
    for i in prange(theta.size):
        _rmsprop_at(i, theta, g, v, g_avg, b, h)


@_kernel
def adadelta(theta, g, v, u, h):
    for i in prange(theta.size):
        _adadelta_at(i, theta, g, v, u, h)


@_adam_kernel
def adam(theta, g, m, v, v_max, h):
    for i in prange(theta.size):
        _adam_at(i, theta, g, m, v, v_max, h)


KERNELS = {"sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam}
#: The same loops on the calling thread (compiled on first use).
SERIAL = {name: serial_twin(kernel.py_func, **({"fastmath": {"arcp"}} if name == "adam" else {}))
          for name, kernel in KERNELS.items()}


def apply(rule: str, theta: np.ndarray, g: np.ndarray, slots: tuple, s: tuple) -> None:
    """Apply ``rule`` in place over the flat buffers with its compiled kernel; ``s`` is the step's scalars."""
    args = (theta, g, *slots, tuple(s))  # a plain tuple (NOTE [plain tuple at the kernel boundary])
    if theta.size >= config.MIN_PARALLEL_ELEMENTS and config.use_threads():
        config.run_parallel(KERNELS[rule], *args)  # NOTE [threading layer] in microdl.config
    else:
        SERIAL[rule](*args)
