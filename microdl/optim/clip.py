"""Gradient clipping on a flat gradient buffer, in place: by global L2 norm and by value.

Semantics follow ``torch.nn.utils.clip_grad_norm_`` (scale by ``max_norm / (norm + 1e-6)`` when that is below
1; return the norm before clipping) and ``clip_grad_value_``. Host arrays use Numba kernels; CUDA arrays use
CUDA kernels and stay on the device, with no host synchronisation (each device's kernels are in its module,
:mod:`microdl.optim._cpu` and :mod:`microdl.optim._cuda`). Either way the buffer is checked first
(:func:`microdl.optim.base.check_flat_buffer`): a flat float32 or float64 array, so that no kernel indexes past
its end or silently rounds the scale factor of an integer array to 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microdl._validation import check_real
from microdl.optim.base import check_flat_buffer

__all__ = ["clip_grad_norm", "clip_grad_value"]


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
        from microdl.optim import _cuda

        return _cuda.clip_grad_norm(g, max_norm)
    from microdl.optim import _cpu  # (imported here: importing microdl.optim imports no Numba)

    norm = float(np.sqrt(_cpu.sum_of_squares(g)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        _cpu.scale(g, coef)
    return norm


def clip_grad_value(grads: Any, clip_value: float) -> None:
    """Clamp every element of ``grads`` in place to ``[-clip_value, clip_value]``."""
    clip_value = check_real("clip_value", clip_value, 0.0, low_open=True)
    g, on_device = _checked_grads(grads)
    if on_device:
        from microdl.optim import _cuda

        _cuda.clip_grad_value(g, clip_value)
        return
    from microdl.optim import _cpu

    _cpu.clamp(g, -clip_value, clip_value)
