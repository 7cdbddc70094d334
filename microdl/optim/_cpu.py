"""CPU backend: every optimizer kernel that runs on the host, in one place.

* The rule kernels: each registered rule's per-element update (:func:`microdl.optim._elementwise.element_update`)
  in one ``prange`` loop, compiled from the rule itself by :func:`kernels_for`, once per rule.
* The clipping kernels of :mod:`microdl.optim.clip`: Σ g², a scale and a clamp.
* The flush of subnormal state that :meth:`~microdl.optim.Optimizer.step` runs every 64 steps (NOTE
  [subnormal state] in :mod:`microdl.optim.rules`), on the calling thread only.

The other loops are compiled twice: ``parallel=True``, for buffers of at least ``config.MIN_PARALLEL_ELEMENTS``
when threads are wise (NOTE [threading layer] in :mod:`microdl.config`), and as a serial twin (the same loop
without threads, as :func:`microdl._jit.serial_twin` builds it); the two give the same bits, element by element.

Kernels are compiled lazily, once per dtype. Those of the rules that ship with microdl are cached on disk
(the checked cache of NOTE [kernel cache], :func:`microdl._cache.checked_jit`) under a name that changes with every
file they inline (:func:`_fingerprint`), so a fresh
process pays the compile only once per machine and never runs a stale kernel; a rule from a file outside the
package is compiled in memory only (it may call code from files the name does not cover).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from types import FunctionType
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange

from microdl import config
from microdl._cache import checked_jit
from microdl._jit import serial_twin
from microdl.optim import _elementwise as ew
from microdl.optim.contract import scalars_type, vars_of
from microdl.optim.rules import smallest_normal

__all__ = ["kernels_for", "apply", "flush_subnormal", "sum_of_squares", "scale", "clamp"]


# -- the rule kernels -------------------------------------------------------------------------------------------
# NOTE [kernel arguments]
#     A rule's kernel takes θ, g, the step's scalars and the rule's own state buffers, and nothing else: its loop
#     is written once (:func:`_loop`) for any number of buffers and generated for each rule with its own number.
#     Every argument costs the dispatcher a typing and an unboxing at every call: a first form gave every kernel
#     ``_elementwise.MAX_STATE`` state arguments, ``None`` past the rule's own, so that one loop served every
#     rule: a call of plain SGD's serial kernel took 0.8-0.9 us instead of 0.6, Adam's 1.1 instead of 0.9
#     (measured, N = 10, numba 0.68), on every step.


def _loop(name: str, at: Any, n_state: int) -> FunctionType:
    """The loop of a rule's kernel, named ``name``, over ``n_state`` state buffers; ``at`` is the rule's
    per-element update (:func:`microdl.optim._elementwise.element_update`). For Adam's three buffers::

        def adam_...(theta, g, h, x0, x1, x2):
            for i in prange(theta.size):
                at(i, theta, g, h, x0, x1, x2)

    Its code is filed under this module, at the lines below that write it (so that a traceback shows them), since
    Numba's disk cache keeps only kernels defined in a file.
    """
    state = "".join(f", x{k}" for k in range(n_state))
    line = sys._getframe().f_lineno + 1  # the generated lines are these three, line for line
    source = (f"def {name}(theta, g, h{state}):\n"
              f"    for i in prange(theta.size):\n"
              f"        at(i, theta, g, h{state})\n")
    namespace = {"__name__": __name__, "prange": prange, "at": at}
    exec(compile("\n" * (line - 1) + source, __file__, "exec"), namespace)
    loop = namespace[name]
    loop.__doc__ = "A rule's kernel: its per-element update at every element (written by _loop)."
    return loop


# NOTE [arcp for Adam]
#     While the buffers fit in cache (N up to ~1e6 on a 32 MB L3) a step is bound by the divider, not by
#     memory: each division or square root per element costs about as much as all of its loads and stores.
#     Adam's rule divides by the loop-invariant sqrt(1 - beta2**t); the ``arcp`` fast-math flag lets LLVM
#     take its reciprocal once and multiply, which leaves one division and one square root per element
#     (measured, float32, 2 threads: 22.6 -> 18.1 us at N = 1e5, 197 -> 159 us at 1e6, no change at 1e7,
#     where memory is the limit); the denominator moves by about an ulp. Only Adam asks for the flag
#     (``Adam.fastmath``): on Adadelta it turns a / sqrt(b) into an approximate reciprocal square root in
#     float32, which is not correctly rounded. The other flags bought nothing measurable, and ``nnan``/``ninf``
#     would let the compiler assume away the NaNs and infinities that a diverging run must still show.


class Kernels(NamedTuple):
    """A rule's two builds: on Numba's threads, and its serial twin on the calling thread."""

    parallel: Any
    serial: Any


_KERNELS: dict[tuple, Kernels] = {}


def _in_package(fn: FunctionType) -> bool:
    """Whether ``fn`` is microdl's own (then its kernels may be cached on disk)."""
    return fn.__module__.startswith("microdl.") and fn.__module__ != "microdl.__main__"


def _fingerprint(rule: FunctionType, update_source: str) -> str:
    """Eight hex digits that change with the rule's file, the per-element update written for it, and the
    generator: the kernel's name carries them.

    Numba's disk cache files a kernel under its name and checks only that the file defining it (this one) is
    unchanged, not the files whose code it inlines (numba/numba#1833). Named by what it inlines, an edited rule
    gets a new kernel instead of the stale one; the fast-math flags are in the name as well, since the cache does
    not key on a kernel's options either.
    """
    digest = hashlib.sha256(update_source.encode())
    for path in sorted({inspect.getfile(rule), ew.__file__}):  # sorted: a set's order changes per process
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:8]


def kernels_for(cls: type) -> Kernels:
    """The compiled kernels of ``cls``'s rule, built on the first call for that rule (and fast-math flags)."""
    attrs = vars_of(cls)
    rule, state, fastmath = attrs["update"], attrs["state_names"], frozenset(attrs.get("fastmath") or ())
    key = (rule, state, fastmath)
    kernels = _KERNELS.get(key)
    if kernels is None:
        # Inline the rule and the update: Numba does not inline a plain call, and the loop then does not
        # vectorise (measured, Adam, N = 1e7 float32, 2 threads, numba 0.68: 20.0 ms per step with the rule as
        # a plain njit function, 7.9 ms inlined).
        inline = njit(inline="always")
        at = inline(ew.element_update(inline(rule), scalars_type(cls), state))
        options: dict[str, Any] = {"nogil": True}
        if fastmath:
            options["fastmath"] = set(fastmath)
        cached = _in_package(rule)  # a rule from a file outside the package is compiled in memory only
        name = "_".join([rule.__name__, *sorted(fastmath), _fingerprint(rule, at.py_func.__source__)])
        parallel = (checked_jit if cached else njit)(parallel=True, **options)(_loop(name, at, len(state)))
        if cached:
            serial = serial_twin(parallel.py_func, **({"fastmath": options["fastmath"]} if fastmath else {}))
        else:  # the same options as serial_twin's, without the disk cache
            serial = njit(error_model="numpy", **options)(_loop(f"{name}_serial", at, len(state)))
        kernels = _KERNELS[key] = Kernels(parallel, serial)
    return kernels


def apply(kernels: Kernels, theta: np.ndarray, g: np.ndarray, slots: tuple, s: tuple) -> None:
    """Apply a rule in place over the flat buffers with its compiled kernels; ``s`` is the step's scalars."""
    if theta.size >= config.MIN_PARALLEL_ELEMENTS and config.use_threads():
        # NOTE [threading layer] in microdl.config; a plain tuple: NOTE [plain tuple at the kernel boundary]
        config.run_parallel(kernels.parallel, theta, g, tuple(s), *slots)
    else:
        kernels.serial(theta, g, tuple(s), *slots)


# -- clipping (microdl.optim.clip) and the flush of subnormal state ---------------------------------------
_kernel = checked_jit(parallel=True, nogil=True)


@_kernel
def _sum_of_squares(g, n_chunks):
    """Σ g², accumulated in float64 over ``n_chunks`` fixed ranges whose partial sums are added in order, so
    that the parallel build and its serial twin give the same bits (one chunk per thread)."""
    total = 0.0
    n = g.size
    for c in prange(n_chunks):
        part = 0.0
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            part += np.float64(g[i]) * np.float64(g[i])
        total += part
    return total


@_kernel
def _scale(g, coef):
    for i in prange(g.size):
        g[i] = g[i] * coef


@_kernel
def _clamp(g, low, high):
    for i in prange(g.size):
        g[i] = min(max(g[i], low), high)


SERIAL = {kernel: serial_twin(kernel.py_func) for kernel in (_sum_of_squares, _scale, _clamp)}


# On the calling thread only: it runs once every 64 steps, where one pass over the state costs under 1 % of a
# step even at N = 1e7, and a parallel build would be one more compile on a first fit (about 0.2 s each, once
# per machine: the disk cache keeps it).
@checked_jit(nogil=True, error_model="numpy")
def _flush_subnormal(x, tiny):
    for i in range(x.size):
        if abs(x[i]) < tiny:
            x[i] = 0


def _launch(kernel: Any, g: np.ndarray, *args: Any) -> Any:
    """``kernel`` on the threads for a large buffer when threads are wise, else its serial twin (NOTE
    [threading layer] in :mod:`microdl.config`)."""
    if g.size >= config.MIN_PARALLEL_ELEMENTS and config.use_threads():
        return config.run_parallel(kernel, g, *args)
    return SERIAL[kernel](g, *args)


def sum_of_squares(g: np.ndarray) -> float:
    """Σ g² over the flat host array ``g``, in float64."""
    return _launch(_sum_of_squares, g, numba.get_num_threads())


def scale(g: np.ndarray, coef: float) -> None:
    """g ← coef · g in place (``coef`` rounded to g's dtype)."""
    _launch(_scale, g, g.dtype.type(coef))


def clamp(g: np.ndarray, low: float, high: float) -> None:
    """g ← min(max(g, low), high) in place."""
    f = g.dtype.type
    _launch(_clamp, g, f(low), f(high))


def flush_subnormal(x: np.ndarray) -> None:
    """x ← 0 where abs(x) is below the dtype's smallest normal number, in place (NOTE [subnormal state] in
    :mod:`microdl.optim.rules`)."""
    _flush_subnormal(x, smallest_normal(x.dtype))
