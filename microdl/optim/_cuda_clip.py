"""CUDA kernels for :mod:`microdl.optim.clip`: a block-reduced sum of squares and an in-place rescale that
reads the norm on the device, so clipping never waits for the host."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from microdl._cuda_support import as_device_array, require_cuda
from microdl.optim import _cuda

cuda = require_cuda()
_BLOCK = 128  # threads per block of the reduction; a power of two


@cuda.jit
def _sum_of_squares(g, out):
    partial = cuda.shared.array(_BLOCK, dtype=np.float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        x = np.float64(g[i])  # square in float64 too, as on the host: float32 squares overflow above ~1.8e19
        acc += x * x
    partial[tid] = acc
    cuda.syncthreads()
    width = _BLOCK // 2
    while width > 0:
        if tid < width:
            partial[tid] += partial[tid + width]
        cuda.syncthreads()
        width //= 2
    if tid == 0:
        cuda.atomic.add(out, 0, partial[0])


@cuda.jit
def _scale_to_norm(g, total, norm, max_norm):
    if cuda.grid(1) == 0:
        norm[0] = math.sqrt(total[0])
    coef = max_norm / (math.sqrt(total[0]) + 1e-6)
    if coef < 1.0:
        for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
            g[i] = g[i] * coef


@cuda.jit
def _clamp(g, low, high):
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        g[i] = min(max(g[i], low), high)


_scratch: dict[str, Any] = {}


def clip_grad_norm(grads: Any, max_norm: float) -> Any:
    """Clip on the device; return a 1-element device array with the norm, reused by the next call."""
    g = as_device_array(grads)
    if not _scratch:  # allocated once per process: clipping runs every step
        _scratch["total"] = cuda.device_array(1, np.float64)
        _scratch["norm"] = cuda.device_array(1, np.float64)
    total, norm = _scratch["total"], _scratch["norm"]
    total.copy_to_device(np.zeros(1, np.float64))
    blocks, threads = _cuda.launch_shape(g.size)
    _sum_of_squares[blocks, _BLOCK](g, total)
    _scale_to_norm[blocks, threads](g, total, norm, max_norm)
    return norm


def clip_grad_value(grads: Any, clip_value: float) -> None:
    g = as_device_array(grads)
    f = np.dtype(g.dtype).type
    blocks, threads = _cuda.launch_shape(g.size)
    _clamp[blocks, threads](g, f(-clip_value), f(clip_value))
