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
import threading
from types import ModuleType

__all__ = ["CudaUnavailableError", "require_cuda", "is_cuda_array", "as_device_array", "to_host", "simulator_enabled"]


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
        _make_simulator_shared_arrays_thread_safe()
        return cuda
    try:
        n_devices = len(cuda.gpus)
    except Exception as exc:  # the driver raises its own error types, which vary by version
        raise CudaUnavailableError(f"no usable CUDA driver was found: {exc}") from exc
    if n_devices == 0:
        raise CudaUnavailableError("the CUDA driver loaded, but no CUDA device is visible")
    return cuda


def _make_simulator_shared_arrays_thread_safe() -> None:
    """Close a race in the simulator's ``cuda.shared.array`` (numba-cuda 0.30 and earlier, at least).

    The simulator runs each CUDA thread of a block as a Python thread, and gives them one shared array per
    allocating source line by check-then-set on a dict (``FakeCUDAShared.array``). Two threads can both find
    the slot empty, when the interpreter switches threads between the check and the set; the later one then
    works on a private copy, so its writes are lost to the block and a reduction or tiled matrix multiply
    returns a wrong number, silently and only now and then (more often on a loaded machine). Here the
    check-then-set runs under a lock; the rest of the method (the allocation key is the caller's file and
    line, dynamic shared memory for ``shape == 0``) is as the simulator's. Runs once per process.
    """
    from numba.cuda.simulator import kernelapi

    cls = kernelapi.FakeCUDAShared
    if getattr(cls.array, "_microdl_thread_safe", False):
        return
    # Patch only the implementation this was written against: per-line slots in ``self._allocations`` and the
    # signature (self, shape, dtype, alignment=None). A numba-cuda that changes either is left alone.
    import inspect

    if (not hasattr(cls(0), "_allocations")
            or list(inspect.signature(cls.array).parameters) != ["self", "shape", "dtype", "alignment"]):
        return
    simulator_array = cls.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:
            return simulator_array(self, shape, dtype, alignment)  # no per-line slot, or an error
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = kernelapi.np.empty(shape, dtype)
        return res

    array._microdl_thread_safe = True
    cls.array = array


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


def to_host(x: object) -> object:
    """``x`` as a host array if it is a device array (one copy to the host), else ``x`` unchanged."""
    if not is_cuda_array(x):
        return x
    return as_device_array(x).copy_to_host()
