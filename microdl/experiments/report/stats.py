"""Intervals for the report's effects: a percentile bootstrap over the independent units (seeds or restarts).

Every effect the report judges is a number computed from several independent runs (one per seed, or one per
restart). Its interval comes from resampling those units with replacement and recomputing the effect: the
2.5th and 97.5th percentiles of the recomputed values bound a 95% interval. Paired designs resample the pairs
(the same seed for both optimizers), so the interval reflects only the noise that the comparison does not
cancel. With five seeds a bootstrap interval is somewhat narrower than an exact one would be; the report says
so beside every interval. Counts read from the code have no sampling noise and get an exact "interval".

>>> est = mean([1.0, 2.0, 3.0, 4.0, 5.0])
>>> est.value, est.low <= 3.0 <= est.high
(3.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

__all__ = ["Estimate", "bootstrap", "mean", "proportion", "paired_difference", "paired_ratio", "exact", "LEVEL",
           "N_BOOT"]

#: Two-sided coverage of every interval.
LEVEL = 0.95
#: Bootstrap resamples per interval.
N_BOOT = 2000


@dataclass(frozen=True)
class Estimate:
    """An effect: its value on all the units, a ``LEVEL`` interval, how many units and how it was computed."""

    value: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        number = {k: (math.nan if d[k] is None else float(d[k])) for k in ("value", "low", "high")}
        return cls(**number, n=int(d["n"]), method=str(d["method"]))


def exact(value: float, what: str = "a count read from the code") -> Estimate:
    """A number with no sampling noise: its interval is the number itself."""
    return Estimate(float(value), float(value), float(value), 0, f"exact ({what})")


def bootstrap(n_units: int, statistic: Callable[[np.ndarray], float], *, unit: str = "seeds",
              n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """The effect ``statistic(indices)`` with a percentile bootstrap interval over ``n_units`` units.

    ``statistic`` receives an integer array of unit indices (``arange(n_units)`` for the estimate itself,
    resampled with replacement for the interval) and returns a float; it may return ``inf`` (for example a
    target never reached) or NaN (a resample where the effect is undefined, left out). The bounds are taken
    with the "lower" and "higher" percentile methods, so an infinite value never becomes NaN by interpolation.
    """
    if n_units < 1:
        raise ValueError("a bootstrap needs at least one unit")
    value = float(statistic(np.arange(n_units)))
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n_units, n_units)) for _ in range(n_boot)], dtype=float)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return Estimate(value, math.nan, math.nan, n_units, f"bootstrap over {n_units} {unit}")
    tail = (1.0 - LEVEL) / 2
    low = float(np.quantile(draws, tail, method="lower"))
    high = float(np.quantile(draws, 1.0 - tail, method="higher"))
    return Estimate(value, low, high, n_units, f"bootstrap over {n_units} {unit}")


def _as_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def mean(values: Sequence[float | None], *, unit: str = "seeds") -> Estimate:
    """The mean of per-unit values (None and NaN left out), with its bootstrap interval."""
    x = _as_array(values)
    x = x[~np.isnan(x)]
    return bootstrap(x.size, lambda i: float(np.mean(x[i])), unit=unit)


def proportion(outcomes: Sequence[int | bool], *, unit: str = "runs") -> Estimate:
    """The share of true outcomes among independent runs, with Wilson's score interval.

    A bootstrap of 0 successes in 30 runs would give the interval [0, 0]; Wilson's interval, [0, 0.11], says
    what 30 runs can and cannot rule out.
    """
    x = np.asarray(outcomes, dtype=float)
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, f"Wilson interval over 0 {unit}")
    p = float(x.mean())
    z = float(norm.ppf(1.0 - (1.0 - LEVEL) / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, f"Wilson interval over {n} {unit}")


def paired_difference(a: Sequence[float | None], b: Sequence[float | None], *, unit: str = "seeds") -> Estimate:
    """Mean of ``a[i] - b[i]`` over the units where both are known."""
    x, y = _as_array(a), _as_array(b)
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    return bootstrap(d.size, lambda i: float(np.mean(d[i])), unit=unit)


def paired_ratio(a: Sequence[float | None], b: Sequence[float | None], *, unit: str = "seeds") -> Estimate:
    """Geometric mean of ``a[i] / b[i]`` over the units where both are positive and finite: a ratio of 2 means
    ``a`` is twice ``b`` on a typical unit."""
    x, y = _as_array(a), _as_array(b)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    d = np.log(x[keep]) - np.log(y[keep])
    return bootstrap(d.size, lambda i: float(np.exp(np.mean(d[i]))), unit=unit)
