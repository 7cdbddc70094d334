"""NumPy backend: the readable reference.

The rule of :mod:`microdl.optim.rules` is called once with whole arrays, exactly as written; NumPy broadcasts
the arithmetic. It allocates temporaries on every step, which is the price of reading like the textbook: use
``backend="cpu"`` for speed.
"""

from __future__ import annotations

import numpy as np

from microdl.optim import rules


def apply(rule: str, theta: np.ndarray, g: np.ndarray, slots: tuple, s: tuple) -> None:
    """Apply ``rule`` in place over the flat buffers with NumPy array arithmetic; ``s`` is the step's scalars."""
    new_theta, *new_slots = getattr(rules, rule)(theta, g, *slots, s)
    theta[...] = new_theta
    for slot, new in zip(slots, new_slots):
        if slot is not None:  # an option that is off has no buffer (NOTE [optional state])
            slot[...] = new
