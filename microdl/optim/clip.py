"""Gradient clipping on a flat gradient buffer, in place: by global L2 norm and by value.

Semantics follow ``torch.nn.utils.clip_grad_norm_`` (scale by ``max_norm / (norm + 1e-6)`` when that is below
1; return the norm before clipping) and ``clip_grad_value_``. Host arrays use a Numba kernel; CUDA arrays use
CUDA kernels (:mod:`microdl.optim._cuda_clip`) and stay on the device, with no host synchronisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from microdl._cuda_support import is_cuda_array
from microdl._validation import check_real

__all__ = ["clip_grad_norm", "clip_grad_value"]


@njit(parallel=True, cache=True, nogil=True)
def _sum_of_squares(g):
    total = 0.0  # a whole-variable prange reduction, accumulated in float64
    for i in prange(g.size):
        total += np.float64(g[i]) * np.float64(g[i])
    return total


@njit(parallel=True, cache=True, nogil=True)
def _scale(g, coef):
    for i in prange(g.size):
        g[i] = g[i] * coef


@njit(parallel=True, cache=True, nogil=True)
def _clamp(g, low, high):
    for i in prange(g.size):
        g[i] = min(max(g[i], low), high)


def _check_host_grads(grads: Any) -> np.ndarray:
    """A host gradient buffer must be a writeable 1-D float array (an int array would silently round the scale
    factor to 0 and zero the gradients)."""
    if not isinstance(grads, np.ndarray):
        raise TypeError(f"grads must be a NumPy array or a CUDA array; got {type(grads).__name__}")
    if grads.ndim != 1:
        raise ValueError(f"grads must be a flat 1-D buffer; got shape {grads.shape}")
    if grads.dtype not in (np.float32, np.float64):
        raise TypeError(f"grads must be float32 or float64; got {grads.dtype}")
    if not grads.flags.writeable:
        raise ValueError("grads must be writeable, since it is clipped in place")
    return grads


def clip_grad_norm(grads: Any, max_norm: float) -> Any:
    """Scale ``grads`` in place so that its L2 norm is at most ``max_norm``; return the norm before clipping.

    For a CUDA array the norm is returned as a 1-element float64 device array, so that no synchronisation
    happens; that array is overwritten by the next call on the device (copy it to keep it).
    """
    max_norm = check_real("max_norm", max_norm, 0.0, low_open=True)
    if is_cuda_array(grads):
        from microdl.optim import _cuda_clip

        return _cuda_clip.clip_grad_norm(grads, max_norm)
    _check_host_grads(grads)
    norm = float(np.sqrt(_sum_of_squares(grads)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        _scale(grads, grads.dtype.type(coef))
    return norm


def clip_grad_value(grads: Any, clip_value: float) -> None:
    """Clamp every element of ``grads`` in place to ``[-clip_value, clip_value]``."""
    clip_value = check_real("clip_value", clip_value, 0.0, low_open=True)
    if is_cuda_array(grads):
        from microdl.optim import _cuda_clip

        _cuda_clip.clip_grad_value(grads, clip_value)
        return
    f = _check_host_grads(grads).dtype.type
    _clamp(grads, f(-clip_value), f(clip_value))
