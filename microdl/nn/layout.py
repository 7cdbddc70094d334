"""The flat buffer's layout: all weights and biases in one contiguous 1-D array, W[1], b[1], W[2], b[2], ...

W[l] (fan_in × fan_out) is stored row-major, followed by b[l] (fan_out). The gradients and every optimizer
state buffer use the same layout, so an optimizer step is one elementwise kernel over one array, and the
per-layer arrays a reader (or scikit-learn's ``coefs_``) wants are views into it, never copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["layer_shapes", "layer_views", "layout_table", "n_params"]


def layer_shapes(layer_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each weight matrix."""
    return list(zip(layer_sizes[:-1], layer_sizes[1:]))


def n_params(layer_sizes: Sequence[int]) -> int:
    """Length of the flat buffer: every weight and every bias."""
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layer_shapes(layer_sizes))


def layer_views(flat: Any, layer_sizes: Sequence[int]) -> tuple[list[Any], list[Any]]:
    """Per-layer (W, b) views into a flat buffer (a NumPy or a device array), no copies."""
    weights, biases, offset = [], [], 0
    for fan_in, fan_out in layer_shapes(layer_sizes):
        weights.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
        biases.append(flat[offset : offset + fan_out])
        offset += fan_out
    return weights, biases


def layout_table(layer_sizes: Sequence[int]) -> np.ndarray:
    """Rows (fan_in, fan_out, offset of W, offset of b) per layer: the layout as the compiled kernels read it."""
    rows, offset = [], 0
    for fan_in, fan_out in layer_shapes(layer_sizes):
        rows.append((fan_in, fan_out, offset, offset + fan_in * fan_out))
        offset += fan_in * fan_out + fan_out
    return np.array(rows, dtype=np.int64)
