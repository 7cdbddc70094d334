"""NumPy backend: the readable reference.

The rule is called once with whole arrays, exactly as written; NumPy broadcasts the arithmetic. It allocates
temporaries on every step, which is the price of reading like the textbook: use ``backend="cpu"`` for speed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microdl.optim.contract import vars_of
from microdl.optim.rules import smallest_normal


def kernels_for(cls: type) -> Callable:
    """The rule itself: NumPy needs no compiled kernel."""
    return vars_of(cls)["update"]


def apply(rule: Callable, theta: np.ndarray, g: np.ndarray, slots: tuple, s: tuple) -> None:
    """Apply ``rule`` in place over the flat buffers with NumPy array arithmetic; ``s`` is the step's scalars."""
    out = rule(theta, g, *slots, s)
    if type(out) is not tuple or len(out) != len(slots) + 1:  # an array would unpack into the elements
        raise TypeError(f"rule {rule.__qualname__} must return a tuple of {len(slots) + 1} (theta and its state); "
                        f"it returned {type(out).__name__}")
    new_theta, *new_slots = out
    theta[...] = new_theta
    for slot, new in zip(slots, new_slots):
        if slot is not None:  # an option that is off has no buffer (NOTE [optional state])
            slot[...] = new


def flush_subnormal(x: np.ndarray) -> None:
    """x ← 0 where abs(x) is below the dtype's smallest normal number, in place (NOTE [subnormal state] in
    :mod:`microdl.optim.rules`)."""
    x[np.abs(x) < smallest_normal(x.dtype)] = 0
