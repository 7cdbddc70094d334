"""Finding CUDA: the one place that imports Numba's CUDA target.

A CPU-only install never imports ``numba.cuda``; the first request for ``backend="cuda"`` or
``device="cuda"`` calls :func:`require_cuda`, which either returns the ``numba.cuda`` module or raises
:class:`CudaUnavailableError` naming what is missing: the ``numba-cuda`` package, a driver, or a device.
Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``, set before Numba is imported) counts as a device, which is how
the tests run the CUDA kernels on machines without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

__all__ = ["CudaUnavailableError", "require_cuda", "is_cuda_array", "as_device_array", "simulator_enabled"]


class CudaUnavailableError(RuntimeError):
    """CUDA was asked for but cannot be used here; the message says what is missing."""


def simulator_enabled() -> bool:
    """Whether Numba's CUDA simulator is switched on for this process."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def require_cuda() -> ModuleType:
    """Return ``numba.cuda`` if a CUDA device (or the simulator) can be used, else raise.

    Raises
    ------
    CudaUnavailableError
        If the ``numba-cuda`` package is not installed, no CUDA driver loads, or no device is visible.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        raise CudaUnavailableError(
            "CUDA needs the 'numba-cuda' package, which is not installed: pip install 'microdl[cuda]'"
        )
    from numba import cuda

    if simulator_enabled():
        return cuda
    try:
        n_devices = len(cuda.gpus)
    except Exception as exc:  # the driver raises its own error types, which vary by version
        raise CudaUnavailableError(f"no usable CUDA driver was found: {exc}") from exc
    if n_devices == 0:
        raise CudaUnavailableError("the CUDA driver loaded, but no CUDA device is visible")
    return cuda


def is_cuda_array(x: object) -> bool:
    """Whether ``x`` exposes ``__cuda_array_interface__`` (Numba device arrays, CuPy, torch CUDA tensors)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    # The simulator's device arrays have no such attribute; its own test recognises them.
    if not (simulator_enabled() and "numba.cuda" in sys.modules):
        return False
    from numba.cuda.simulator.cudadrv.devicearray import is_cuda_ndarray

    return is_cuda_ndarray(x)


def as_device_array(x: object):
    """View ``x`` (anything with ``__cuda_array_interface__``) as a Numba device array, without a copy."""
    cuda = require_cuda()
    # Already a Numba (or simulator) device array: keep the same object, so that an optimizer bound to
    # model.params really is bound to it (as_cuda_array would wrap it in a new view).
    if getattr(x, "__cuda_ndarray__", False) or not hasattr(x, "__cuda_array_interface__"):
        return x
    return cuda.as_cuda_array(x)
