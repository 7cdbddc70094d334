"""The one family of argument checks, shared by the model, the optimizers, the schedules, the training loop,
the datasets, the experiments and the CLI.

Every check returns the value in its canonical type (``float``, ``int``, ``bool``, ...) or raises
``TypeError`` (a wrong kind of object) or ``ValueError`` (a value out of range) with a message that names the
argument and what was wrong with it, so that bad input never turns into NaN weights or a silent wrong answer.
NumPy scalars are accepted wherever the Python number is (``np.float32(0.1)`` is a real, ``np.int64(3)`` an
integer); ``bool`` is never taken for a number. The scikit-learn estimators declare their parameters with
scikit-learn's own ``_parameter_constraints`` instead, as scikit-learn's contract asks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.sparse import issparse

from microdl._cuda_support import is_cuda_array, to_host

__all__ = ["check_real", "check_int", "check_bool", "check_choice", "check_random_state", "check_X", "check_Y",
           "check_sample_weight", "as_kernel_array"]


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the interval from ``low`` to ``high``.

    >>> check_real("lr", 0.1, 0.0)
    0.1
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value).__name__}")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        raise ValueError(f"{name} must be a finite number in {_interval(low, high, low_open, high_open)}; "
                         f"got {value!r}")
    return value


#: The largest seed: NumPy's RandomState and scikit-learn (train_test_split) take seeds in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) with ``low <= value <= high``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False (a NumPy bool too); anything else, ``"no"`` included, raises."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else raise naming the allowed values."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_random_state(random_state: Any) -> np.random.Generator | np.random.RandomState:
    """A NumPy random source from a seed.

    An int seed or None (fresh entropy) gives a new ``Generator``; a ``Generator`` is used as it is. A legacy
    ``RandomState`` is also used as it is, drawn from the way scikit-learn draws from it (NOTE [random
    streams] in :mod:`microdl.train`), so that the estimators reproduce scikit-learn's stream.
    """
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    seed = check_int("random_state", random_state) if isinstance(random_state, Integral) else None
    if seed is None:
        raise TypeError(f"random_state must be an int, a numpy Generator or RandomState, or None; "
                        f"got {random_state!r}")
    if seed < 0:
        raise ValueError(f"random_state must be a non-negative integer; got {seed}")
    return np.random.default_rng(seed)


def _real_array(name: str, a: Any) -> np.ndarray:
    """``a`` as a NumPy array of real numbers (a device array is copied to the host first)."""
    try:
        arr = np.asarray(to_host(a))
    except Exception as exc:  # ragged lists and other objects NumPy cannot take
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return arr


def as_kernel_array(a: np.ndarray, dtype: Any) -> np.ndarray:
    """``a`` as the kernels and the batch gather read it fast: aligned, C-contiguous, of ``dtype``; copied once
    here if it is not, and returned as it is (a view of it, for an ``np.memmap``) if it is.

    NOTE [aligned input]
        ``np.ascontiguousarray`` keeps an array that is contiguous but misaligned as it is: the arrays Dask and
        pickle protocol 5 hand a worker, or a view at a byte offset of a buffer, have ``flags.aligned`` False.
        NumPy's ``take``, which gathers each shuffled batch, then copies the *whole* array to align it on
        every call: 5.2 ms per batch of 200 rows from 50,000 x 100 float32, against 5 us aligned (measured
        here, NumPy 2.4), so an epoch cost a copy of X per batch (issue 20). So the one copy that aligns it is
        made here, at the boundary, and never per batch. Read-only and memory-mapped arrays are aligned and
        contiguous already, and are read in place; a strided, Fortran-ordered or other-dtype array is copied
        once, as before.
    """
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, and the callers refuse it
        return np.require(a, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED", "ENSUREARRAY"))


def _as_float_array(name: str, a: Any, dtype: np.dtype) -> np.ndarray:
    arr = as_kernel_array(_real_array(name, a), dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity (in {dtype.name})")
    return arr


def check_X(X: Any, n_features: int | None, dtype: Any, name: str = "X") -> Any:
    """``X`` as a finite, C-contiguous 2-D array of ``dtype`` with ``n_features`` columns.

    A SciPy sparse matrix is returned as CSR of ``dtype`` (the model multiplies it with sparse products); a
    complex one is refused, as a complex dense array is. A CUDA device array is refused: the caller decides
    whether it is used on the device or copied.
    """
    if is_cuda_array(X):
        raise TypeError(f"{name} is a CUDA device array, but this model runs on the CPU: build the model with "
                        "device='cuda', or copy it to the host (cupy.asnumpy(X), X.cpu().numpy(), ...)")
    dtype = np.dtype(dtype)
    if issparse(X):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers; got a sparse matrix of dtype {X.dtype}")
        with np.errstate(over="ignore"):
            X = X.tocsr().astype(dtype, copy=False)
        if not np.all(np.isfinite(X.data)):
            raise ValueError(f"{name} contains NaN or infinity (in {dtype.name})")
    else:
        X = _as_float_array(name, X, dtype)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x features); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the network expects {n_features}")
    return X


def check_Y(y: Any, n_outputs: int, loss: str, dtype: Any, name: str = "y") -> np.ndarray:
    """Targets as the 2-D float array that ``loss`` expects (by the targets its registration declares:
    :data:`microdl.nn.losses.TARGETS`), with every inconsistency named.

    Device arrays are copied to the host (targets are checked and one-hot encoded there).
    """
    from microdl.nn.losses import get_loss

    targets = get_loss(loss).targets
    y_arr = _real_array(name, y)
    if y_arr.size and not np.all(np.isfinite(y_arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    if targets == "classes" and y_arr.ndim == 1:
        if not np.all(y_arr == np.round(y_arr)):
            raise ValueError(f"class labels in {name} must be integers 0 .. n_classes-1")
        labels = y_arr.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
            raise ValueError(
                f"{name} has labels in [{labels.min()}, {labels.max()}], but the network has {n_outputs} outputs "
                f"(labels must be 0 .. {n_outputs - 1})"
            )
        Y = np.zeros((labels.size, n_outputs), dtype=dtype)
        Y[np.arange(labels.size), labels] = 1
        return Y
    if y_arr.ndim == 1 and n_outputs == 1:
        y_arr = y_arr[:, None]
    if y_arr.ndim != 2 or y_arr.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape (n_samples, {n_outputs}) for this network; got {y_arr.shape}")
    Y = as_kernel_array(y_arr, dtype)
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} has values beyond the range of {np.dtype(dtype).name}")
    if targets == "non_negative":
        if Y.min(initial=0) < 0:
            raise ValueError(f"{name} must be non-negative for the {loss} loss (counts or rates)")
    elif targets in ("classes", "probabilities") and (Y.min(initial=0) < 0 or Y.max(initial=0) > 1) or (
        targets == "classes" and not np.allclose(Y.sum(axis=1), 1.0, atol=1e-5)
    ):
        raise ValueError(f"{name} must hold probabilities in [0, 1] for {loss}"
                         + (" whose rows sum to 1" if targets == "classes" else ""))
    return Y


def check_sample_weight(sample_weight: Any, n_samples: int, dtype: Any) -> np.ndarray | None:
    """Sample weights as a 1-D array of ``dtype``: finite, non-negative, ``n_samples`` of them, with a positive
    sum; rescaled by a power of two when their largest is outside the range the arithmetic takes safely.

    The data loss Σ wᵢℓᵢ / Σ wᵢ does not depend on the weights' scale, but the arithmetic does: weights of
    5e-324 each made 1/Σw infinite and every gradient NaN, and 2e38 summed beyond float32 (issue 21, case 20).
    So weights whose largest is outside [√tiny, √max] of ``dtype`` (1.5e-154 to 1.3e154 in float64) are
    divided, in float64, by the power of two that brings the largest into [1, 2): exact, so the data loss
    and its gradient are those of the weights as given. Weights inside that range are used exactly as given,
    so the L2 penalty α/(2Σw) keeps scikit-learn's meaning; outside it that penalty would overflow or vanish,
    and is relative to the rescaled weights instead."""
    if sample_weight is None:
        return None
    w = _real_array("sample_weight", sample_weight).astype(np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    largest = float(w.max()) if w.size else 0.0
    if largest <= 0:
        raise ValueError("sample_weight must have a positive sum")
    info = np.finfo(np.dtype(dtype))
    if not math.sqrt(float(info.tiny)) <= largest <= math.sqrt(float(info.max)):
        w = np.ldexp(w, 1 - np.frexp(largest)[1])  # largest into [1, 2), exactly
    return as_kernel_array(w, dtype)
