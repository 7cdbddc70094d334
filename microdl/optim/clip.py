"""Gradient clipping on a flat gradient buffer, in place: by global L2 norm and by value.

Semantics follow ``torch.nn.utils.clip_grad_norm_`` (scale by ``max_norm / (norm + 1e-6)`` when that is below
1; return the norm before clipping) and ``clip_grad_value_``. Host arrays use a Numba kernel; CUDA arrays use
CUDA kernels (:mod:`microdl.optim._cuda_clip`) and stay on the device, with no host synchronisation. Either
way the buffer is checked first (:func:`microdl.optim.base.check_flat_buffer`): a flat float32 or float64
array, so that no kernel indexes past its end or silently rounds the scale factor of an integer array to 0.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import njit, prange

from microdl import config
from microdl._jit import serial_twin
from microdl._validation import check_real
from microdl.optim.base import check_flat_buffer

__all__ = ["clip_grad_norm", "clip_grad_value"]


@njit(parallel=True, cache=True, nogil=True)
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


@njit(parallel=True, cache=True, nogil=True)
def _scale(g, coef):
    for i in prange(g.size):
        g[i] = g[i] * coef


@njit(parallel=True, cache=True, nogil=True)
def _clamp(g, low, high):
    for i in prange(g.size):
        g[i] = min(max(g[i], low), high)


_SERIAL = {kernel: serial_twin(kernel.py_func) for kernel in (_sum_of_squares, _scale, _clamp)}


def _launch(kernel: Any, g: np.ndarray, *args: Any) -> Any:
    """``kernel`` on the threads for a large buffer when threads are wise, else its serial twin (NOTE
    [threading layer] in :mod:`microdl.config`)."""
    if g.size >= config.MIN_PARALLEL_ELEMENTS and config.use_threads():
        return config.run_parallel(kernel, g, *args)
    return _SERIAL[kernel](g, *args)


def _checked_grads(grads: Any) -> tuple[Any, bool]:
    """``grads`` as a flat float buffer (a Numba device array if it is a CUDA array), and whether it is one."""
    g = check_flat_buffer(grads, "grads", backend=None, writeable=True, contiguous=False)
    return g, not isinstance(g, np.ndarray)


def clip_grad_norm(grads: Any, max_norm: float) -> Any:
    """Scale ``grads`` in place so that its L2 norm is at most ``max_norm``; return the norm before clipping.

    For a CUDA array the norm is returned as a 1-element float64 device array, so that no synchronisation
    happens; that array is overwritten by the next call on the device (copy it to keep it).
    """
    max_norm = check_real("max_norm", max_norm, 0.0, low_open=True)
    g, on_device = _checked_grads(grads)
    if on_device:
        from microdl.optim import _cuda_clip

        return _cuda_clip.clip_grad_norm(g, max_norm)
    norm = float(np.sqrt(_launch(_sum_of_squares, g, numba.get_num_threads())))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        _launch(_scale, g, g.dtype.type(coef))
    return norm


def clip_grad_value(grads: Any, clip_value: float) -> None:
    """Clamp every element of ``grads`` in place to ``[-clip_value, clip_value]``."""
    clip_value = check_real("clip_value", clip_value, 0.0, low_open=True)
    g, on_device = _checked_grads(grads)
    if on_device:
        from microdl.optim import _cuda_clip

        _cuda_clip.clip_grad_value(g, clip_value)
        return
    f = g.dtype.type
    _launch(_clamp, g, f(-clip_value), f(clip_value))
