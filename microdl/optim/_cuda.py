"""CUDA backend: every optimizer kernel that runs on the GPU, in one place.

* The rule kernels: each registered rule's per-element update (:func:`microdl.optim._elementwise.element_update`)
  in one grid-stride kernel, compiled from the rule itself by :func:`kernels_for`, once per rule: one launch
  per step, over the flat buffers, which stay on the device.
* The clipping kernels of :mod:`microdl.optim.clip`. Clipping by norm is three launches that read the norm on
  the device, so it never waits for the host::

      total += Σ g²              sum_of_squares (float64, block tree + one atomic per block)
      norm = √total; coef = min(1, max_norm / (norm + 1e-6)); total = 0        one thread
      g *= coef                  grid-stride

  The accumulator is left at zero for the next call, so no host-to-device copy (which would synchronise) is
  needed to reset it.

Every launch takes its shape from :func:`microdl.config.launch_1d` at every call. Kernels are compiled lazily,
once per dtype; like the CPU kernels, they take the step's scalars as a plain tuple (NOTE [plain tuple at the
kernel boundary] in :mod:`microdl.optim.rules`). This module imports ``numba.cuda``; the optimizers import it
only when ``backend="cuda"`` is asked for, after :func:`microdl._cuda_support.require_cuda` has checked that
CUDA (or the simulator) is there.
"""

from __future__ import annotations

import functools
import linecache
import math
from types import FunctionType
from typing import Any

import numpy as np

from microdl import config
from microdl._cuda_support import require_cuda
from microdl.optim import _elementwise as ew
from microdl.optim.contract import scalars_type, vars_of
from microdl.optim.rules import smallest_normal

cuda = require_cuda()

__all__ = ["kernels_for", "apply", "flush_subnormal", "clip_grad_norm", "clip_grad_value"]

_device = cuda.jit(device=True)


def _loop(name: str, at: Any, n_state: int) -> FunctionType:
    """The kernel of a rule, named ``name``, over ``n_state`` state buffers (NOTE [kernel arguments] in
    :mod:`microdl.optim._cpu`); ``at`` is the rule's per-element update. For Adam's three buffers::

        def adam(theta, g, h, x0, x1, x2):
            for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
                at(i, theta, g, h, x0, x1, x2)
    """
    state = "".join(f", x{k}" for k in range(n_state))
    source = (f"def {name}(theta, g, h{state}):\n"
              f"    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):\n"
              f"        at(i, theta, g, h{state})\n")
    filename = f"<microdl: CUDA kernel of {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
    namespace = {"__name__": __name__, "cuda": cuda, "at": at}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


_KERNELS: dict[tuple, Any] = {}


def kernels_for(cls: type) -> Any:
    """The compiled kernel of ``cls``'s rule, built on the first call for that rule."""
    attrs = vars_of(cls)
    rule, state = attrs["update"], attrs["state_names"]
    kernel = _KERNELS.get((rule, state))
    if kernel is None:
        at = _device(ew.element_update(_device(rule), scalars_type(cls), state))
        kernel = _KERNELS[(rule, state)] = cuda.jit(_loop(rule.__name__, at, len(state)))
    return kernel


def apply(kernel: Any, theta: Any, g: Any, slots: tuple, s: tuple) -> None:
    """Apply a rule in place over the flat device buffers with one kernel launch; ``s`` is the step's scalars."""
    blocks, threads = config.launch_1d(theta.size)
    kernel[blocks, threads](theta, g, tuple(s), *slots)


# -- clipping (microdl.optim.clip) -------------------------------------------------------------------------------
@functools.cache
def _sum_of_squares(threads: int) -> Any:
    """The kernel total[0] += Σ g² for blocks of ``threads`` (a power of two), squared and summed in float64 (a
    float32 square overflows above ~1.8e19): each thread sums a grid-stride share, each block tree-sums its
    threads' shares, one atomic add per block."""

    @cuda.jit
    def sum_of_squares(g, total):
        partial = cuda.shared.array(threads, np.float64)
        tid = cuda.threadIdx.x
        acc = 0.0
        for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
            v = np.float64(g[i])
            acc += v * v
        partial[tid] = acc
        cuda.syncthreads()
        half = threads // 2
        while half > 0:
            if tid < half:
                partial[tid] += partial[tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            cuda.atomic.add(total, 0, partial[0])

    return sum_of_squares


@cuda.jit
def _finish_norm(total, norm, coef, max_norm):
    """One thread: the norm, the scale factor (torch's clip_grad_norm_), and the accumulator reset."""
    norm[0] = math.sqrt(total[0])
    coef[0] = min(1.0, max_norm / (norm[0] + 1e-6))
    total[0] = 0.0


@cuda.jit
def _scale(g, coef):
    c = coef[0]
    if c < 1.0:
        for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
            g[i] = g[i] * c


@cuda.jit
def _clamp(g, low, high):
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        g[i] = min(max(g[i], low), high)


@cuda.jit
def _flush_subnormal(x, tiny):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if abs(x[i]) < tiny:
            x[i] = 0


def flush_subnormal(x: Any) -> None:
    """x ← 0 where abs(x) is below the dtype's smallest normal number, in place, on the device (NOTE [subnormal
    state] in :mod:`microdl.optim.rules`)."""
    blocks, threads = config.launch_1d(x.size)
    _flush_subnormal[blocks, threads](x, smallest_normal(np.dtype(x.dtype)))


#: Device scalars, allocated once per process (clipping runs every step): the Σg² accumulator (kept at zero
#: between calls), the norm handed back to the caller, and the scale factor.
_scratch: dict[str, Any] = {}


def clip_grad_norm(g: Any, max_norm: float) -> Any:
    """Clip the device array ``g`` (checked by :mod:`microdl.optim.clip`) in place; return a 1-element float64
    device array with the norm, reused by the next call."""
    if not _scratch:
        _scratch.update(total=cuda.to_device(np.zeros(1)), norm=cuda.device_array(1, np.float64),
                        coef=cuda.device_array(1, np.float64))
    total, norm, coef = _scratch["total"], _scratch["norm"], _scratch["coef"]
    try:
        blocks, threads = config.launch_1d(g.size)
        _sum_of_squares(threads)[blocks, threads](g, total)
        _finish_norm[1, 1](total, norm, coef, max_norm)
    except BaseException:  # interrupted before the reset (a first compile, a launch error): start afresh
        _scratch.clear()
        raise
    blocks, threads = config.launch_1d(g.size)
    _scale[blocks, threads](g, coef)
    return norm


def clip_grad_value(g: Any, clip_value: float) -> None:
    """Clamp the device array ``g`` (checked by :mod:`microdl.optim.clip`) in place to [−clip_value, clip_value]."""
    f = np.dtype(g.dtype).type
    blocks, threads = config.launch_1d(g.size)
    _clamp[blocks, threads](g, f(-clip_value), f(clip_value))
