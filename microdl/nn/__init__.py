"""The model: an MLP with hand-written forward and backward passes over one flat parameter buffer.

Activations and losses are open registries: :func:`register_activation` and :func:`register_loss` add your own
(from your own file), and every backend (the textbook NumPy pass, the CPU and the CUDA kernels) runs them.

Where each backend lives: :mod:`microdl.nn.reference` (the NumPy pass), :mod:`microdl.nn._cpu` (the CPU
kernels), :mod:`microdl.cuda.kernels` (the CUDA kernels); :mod:`microdl.nn.formulas` compiles the registered
formulas for the last two. :func:`all_finite` and :func:`single_threaded_blas` are helpers for the training loop.
Importing this package imports no Numba: the CPU kernels are imported by the first model that runs on them (NOTE
[the NumPy backend for small fits] in :mod:`microdl.nn.mlp`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microdl.nn._blas import single_threaded_blas
from microdl.nn.activations import Activation, activation_names, get_activation, register_activation
from microdl.nn.losses import Loss, get_loss, loss_names, register_loss
from microdl.nn.mlp import BACKENDS, INITS, MLP, NUMPY_BATCH_WORK, NUMPY_MAX_WORK, choose_backend, fit_work

__all__ = ["MLP", "INITS", "BACKENDS", "Activation", "Loss", "register_activation", "register_loss",
           "get_activation", "get_loss", "activation_names", "loss_names", "all_finite", "single_threaded_blas",
           "choose_backend", "fit_work", "NUMPY_MAX_WORK", "NUMPY_BATCH_WORK"]

#: Arrays of up to this many elements are checked by :func:`all_finite` with NumPy (a boolean temporary of 64 KiB
#: costs microseconds, less than importing Numba for the compiled scan); larger ones by the compiled scan.
ALL_FINITE_NUMPY_MAX = 1 << 16


def all_finite(x: np.ndarray) -> bool:
    """Whether every element of the host array ``x`` is finite. A large contiguous array is scanned by a compiled
    loop that stops at the first element that is not and allocates nothing (the training loop checks θ and the
    optimizer state this way once per epoch); a small one by NumPy, so that a fit on the NumPy backend imports no
    Numba."""
    if x.size <= ALL_FINITE_NUMPY_MAX:
        return bool(np.isfinite(x).all())
    from microdl.nn import _cpu

    return _cpu.all_finite(x)


def __getattr__(name: str) -> Any:
    """``ACTIVATIONS`` and ``LOSSES``: the names registered now (read from the registries, never a stale list)."""
    if name == "ACTIVATIONS":
        return activation_names()
    if name == "LOSSES":
        return loss_names()
    raise AttributeError(f"module 'microdl.nn' has no attribute {name!r}")
