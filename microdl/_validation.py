"""Input checks shared by the model, the training loop, the datasets and the CLI.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object) with a message that names the
argument and what was wrong with it, so that bad input never turns into NaN weights or a silent wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

import numpy as np
from scipy.sparse import issparse

from microdl._cuda_support import is_cuda_array, to_host

__all__ = ["check_choice", "check_positive_int", "check_random_state", "check_X", "check_Y"]


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the allowed values."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_random_state(random_state: Any) -> np.random.Generator:
    """A NumPy Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, Integral) and not isinstance(random_state, bool)):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state}")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    raise TypeError(f"random_state must be an int, a numpy Generator or None; got {random_state!r}")


def _as_float_array(name: str, a: Any, dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and other objects NumPy cannot take
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_X(X: Any, n_features: int | None, dtype: Any) -> Any:
    """``X`` as a finite, C-contiguous 2-D array of ``dtype`` with ``n_features`` columns.

    A SciPy sparse matrix is returned as CSR of ``dtype`` (the model multiplies it with sparse products).
    A CUDA device array is refused: the caller decides whether it is used on the device or copied.
    """
    if is_cuda_array(X):
        raise TypeError("X is a CUDA device array, but this model runs on the CPU: build the model with "
                        "device='cuda', or copy X to the host (cupy.asnumpy(X), X.cpu().numpy(), ...)")
    if issparse(X):
        X = X.tocsr().astype(np.dtype(dtype), copy=False)
        if not np.all(np.isfinite(X.data)):
            raise ValueError("X contains NaN or infinity")
    else:
        X = _as_float_array("X", X, np.dtype(dtype))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples x features); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X has no samples")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the network expects {n_features}")
    return X


def check_Y(y: Any, n_outputs: int, loss: str, dtype: Any) -> np.ndarray:
    """Targets as the 2-D float array that ``loss`` expects, with every inconsistency named.

    Device arrays are copied to the host (targets are checked and one-hot encoded there).
    """
    y_arr = np.asarray(to_host(y))
    if y_arr.dtype.kind not in "biuf":
        raise TypeError(f"y must hold numbers; got dtype {y_arr.dtype}")
    if y_arr.size and not np.all(np.isfinite(y_arr)):
        raise ValueError("y contains NaN or infinity")
    if loss == "cross_entropy" and y_arr.ndim == 1:
        if not np.all(y_arr == np.round(y_arr)):
            raise ValueError("class labels in y must be integers 0 .. n_classes-1")
        labels = y_arr.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
            raise ValueError(
                f"y has labels in [{labels.min()}, {labels.max()}], but the network has {n_outputs} outputs "
                f"(labels must be 0 .. {n_outputs - 1})"
            )
        Y = np.zeros((labels.size, n_outputs), dtype=dtype)
        Y[np.arange(labels.size), labels] = 1
        return Y
    if y_arr.ndim == 1 and n_outputs == 1:
        y_arr = y_arr[:, None]
    if y_arr.ndim != 2 or y_arr.shape[1] != n_outputs:
        raise ValueError(f"y must have shape (n_samples, {n_outputs}) for this network; got {y_arr.shape}")
    Y = np.ascontiguousarray(y_arr, dtype=dtype)
    if loss == "cross_entropy" and not np.allclose(Y.sum(axis=1), 1.0, atol=1e-5) or (
        loss != "squared_error" and (Y.min(initial=0) < 0 or Y.max(initial=0) > 1)
    ):
        raise ValueError(f"y must hold probabilities in [0, 1] for {loss}"
                         + (" whose rows sum to 1" if loss == "cross_entropy" else ""))
    return Y
