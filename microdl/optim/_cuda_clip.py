"""CUDA kernels for :mod:`microdl.optim.clip`. Clipping by norm is three launches that read the norm on the
device, so it never waits for the host::

    total += Σ g²                  microdl.cuda.kernels.sum_of_squares (float64, block tree + one atomic per block)
    norm = √total; coef = min(1, max_norm / (norm + 1e-6)); total = 0        one thread
    g *= coef                      grid-stride

The accumulator is left at zero for the next call, so no host-to-device copy (which would synchronise) is
needed to reset it. The grid-stride launches take their shape from :func:`microdl.config.launch_1d` at every
call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from microdl import config
from microdl._cuda_support import require_cuda
from microdl.cuda import kernels as K

cuda = require_cuda()


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
        K.sum_of_squares(g, total, 0)
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
