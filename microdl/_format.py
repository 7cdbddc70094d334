"""Times as a reader can use them: one home for how microdl prints a duration, and for the rule that says a
run's timings were disturbed (the machine got busy while it ran).

* :func:`format_seconds` — three significant figures in the unit that fits (``"1.23 s"``, ``"45.6 ms"``,
  ``"780 µs"``), never ``"0.000"``; every command, table and report prints durations through it.
* :func:`timing_jumped` — NOTE [a run whose time jumped].

NOTE [a run whose time jumped]
A run's wall-clock time is only worth comparing if the machine was as quiet at its end as at its start. A run
is marked when its *slowest tenth* of steps (per-epoch times; at least two steps) all took more than
:data:`JUMP_FACTOR` (3) times its *median* step. So no single step can mark a run (the first epoch, which may
compile a kernel, is often the slowest by far), but a tenth of the steps running three times slower, as when
another process takes the cores for a while, does. Runs of fewer than :data:`JUMP_MIN_STEPS` (10) steps are
never marked: a tenth of them is too few to tell noise from load. The rule looks at durations only, so it
serves every kind of step: an epoch, an L-BFGS iteration, an optimizer's step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["format_seconds", "timing_jumped", "step_times", "JUMP_FACTOR", "JUMP_MIN_STEPS"]

#: The slowest tenth of a run's steps may be this many times its median step before the run is marked
#: (NOTE [a run whose time jumped]).
JUMP_FACTOR = 3.0
#: Runs with fewer steps are never marked.
JUMP_MIN_STEPS = 10

_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def format_seconds(seconds: float | None, digits: int = 3) -> str:
    """A duration with ``digits`` significant figures in the unit that fits: s, ms, µs or ns.

    Durations of 1000 s and more are printed whole (``"1234 s"``); zero is ``"0 s"``; None, NaN and
    infinities are ``"—"``.

    >>> format_seconds(1.2345), format_seconds(0.0456), format_seconds(7.8e-4), format_seconds(2.5e-8)
    ('1.23 s', '45.6 ms', '780 µs', '25 ns')
    >>> format_seconds(0.0), format_seconds(86.0), format_seconds(3601.7), format_seconds(float("nan"))
    ('0 s', '86 s', '3602 s', '—')
    """
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds == 0:
        return "0 s"
    size = abs(seconds)
    if size >= 10 ** digits:
        return f"{seconds:.0f} s"
    for scale, unit in _UNITS:
        if size >= scale or unit == "ns":
            value = float(f"{seconds / scale:.{digits}g}")  # rounded to the figures shown
            if abs(value) >= 1000:  # 999.7 µs rounds to 1000 µs: say 1 ms (and 999.7 s: 1000 s)
                return f"{seconds:.0f} s" if unit == "s" else format_seconds(math.copysign(1000 * scale, seconds))
            return f"{value:.{digits}g} {unit}"
    raise AssertionError("not reached")  # pragma: no cover


def step_times(cumulative: Sequence[float]) -> Any:
    """The duration of each step (an array) from the cumulative times at their ends (``History.wall_time``)."""
    import numpy as np  # here, not at the top: the CLI imports this module before it needs NumPy

    ends = np.asarray(cumulative, dtype=np.float64)
    return np.diff(ends, prepend=0.0)


def timing_jumped(durations: Sequence[float]) -> bool:
    """Whether a run's steps slowed down while it ran: its slowest tenth of ``durations`` (at least two) all
    took more than :data:`JUMP_FACTOR` times their median (NOTE [a run whose time jumped]). Runs of fewer than
    :data:`JUMP_MIN_STEPS` steps, or with non-finite times, are never marked.

    >>> timing_jumped([0.01] * 20), timing_jumped([0.01] * 17 + [0.05] * 3)
    (False, True)
    """
    import numpy as np

    d = np.asarray(durations, dtype=np.float64)
    if d.size < JUMP_MIN_STEPS or not np.all(np.isfinite(d)):
        return False
    median = float(np.median(d))
    slowest_tenth = max(2, math.ceil(d.size / 10))
    return median > 0 and float(np.sort(d)[-slowest_tenth]) > JUMP_FACTOR * median
