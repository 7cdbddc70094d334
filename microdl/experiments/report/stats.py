"""Intervals for the report's effects, chosen so that a 95% interval covers the effect 95% of the time.

Every effect the report judges is a number computed from several independent units: seeds (each with its own
tuning, so that the tuning's noise is inside the interval), restarts, or problems (for claims about a range of
problems). Means, paired differences and paired ratios get Student-t intervals over the units (ratios on the
log scale: a geometric mean); the test suite checks their coverage by simulation
(``tests/experiments/test_report_stats.py``: a known effect, many replications, at least 90% covered). A
percentile bootstrap of a mean with five seeds covers only about 84% of the time on normal data, which is why it
is not used for means. Statistics that are not means (a share of datasets on which an optimizer is quick, a
fitted exponent) keep a percentile bootstrap over their units (:func:`bootstrap`), and a share of independent
outcomes gets Wilson's interval (:func:`proportion`). Counts read from the code have no sampling noise and get
an exact "interval".

NOTE [a diverged run]
A run that diverged is a failure of its optimizer, never a missing value. Where an effect is a loss or a time,
a diverged run (inf or NaN, or None) is given :data:`FAILURE_FACTOR` times the worst finite value of the
comparison, so that it weighs against its optimizer and is never silently dropped.

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
from scipy.stats import t as student_t

__all__ = ["Estimate", "bootstrap", "mean", "proportion", "paired_difference", "paired_ratio", "exact", "t_interval",
           "with_failures", "LEVEL", "N_BOOT", "FAILURE_FACTOR"]

#: Two-sided coverage of every interval.
LEVEL = 0.95
#: Bootstrap resamples per interval.
N_BOOT = 2000
#: A diverged run counts as this many times the worst finite value of its comparison (NOTE [a diverged run]).
FAILURE_FACTOR = 10.0


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


def t_interval(x: Sequence[float] | np.ndarray, *, unit: str = "seeds", transform: str = "none") -> Estimate:
    """The mean of ``x`` with a Student-t ``LEVEL`` interval (``transform="exp"``: ``x`` are logs, and the
    estimate and bounds are returned as ``exp``, a geometric mean). One unit gives an unknown (NaN) interval."""
    x = np.asarray(x, dtype=float)
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, f"t interval over 0 {unit}")
    m = float(np.mean(x))
    if n < 2:
        lo = hi = math.nan
    else:
        half = float(student_t.ppf(1.0 - (1.0 - LEVEL) / 2, n - 1)) * float(np.std(x, ddof=1)) / math.sqrt(n)
        lo, hi = m - half, m + half
    f = math.exp if transform == "exp" else float
    what = f"t interval over {n} {unit}" + (" (log scale)" if transform == "exp" else "")
    return Estimate(f(m), f(lo) if math.isfinite(lo) else math.nan, f(hi) if math.isfinite(hi) else math.nan, n,
                    what)


def with_failures(*arrays: Sequence[float | None]) -> list[np.ndarray]:
    """The arrays with every diverged entry (None, NaN, inf) replaced by FAILURE_FACTOR times the worst finite
    value among all of them (NOTE [a diverged run]); nothing is dropped."""
    xs = [_as_array(a) for a in arrays]
    finite = np.concatenate([x[np.isfinite(x)] for x in xs]) if xs else np.array([])
    worst = float(np.max(np.abs(finite))) if finite.size else 1.0
    return [np.where(np.isfinite(x), x, FAILURE_FACTOR * max(worst, 1e-12)) for x in xs]


def mean(values: Sequence[float | None], *, unit: str = "seeds") -> Estimate:
    """The mean of per-unit values (None and NaN left out: use it for quantities a run always has), with a
    t interval."""
    x = _as_array(values)
    return t_interval(x[~np.isnan(x)], unit=unit)


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
    """Mean of ``a[i] - b[i]`` over the units, with a t interval. Both must be known for every unit (these are
    shares and counts, which a run always has): a missing value raises ValueError rather than being dropped."""
    x, y = _as_array(a), _as_array(b)
    if x.shape != y.shape:
        raise ValueError(f"paired values need the same units; got {x.size} and {y.size}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("a paired difference needs a value on every unit (a diverged run is a failure, not a gap)")
    return t_interval(x - y, unit=unit)


def paired_ratio(a: Sequence[float | None], b: Sequence[float | None], *, unit: str = "seeds") -> Estimate:
    """Geometric mean of ``a[i] / b[i]`` (losses or times: lower is better), with a t interval on the log scale:
    a ratio of 2 means ``a`` is twice ``b`` on a typical unit. A diverged run (None, NaN, inf) is a failure of its
    optimizer and counts as FAILURE_FACTOR times the worst finite value (NOTE [a diverged run]); values are
    floored at a tiny positive number so that an exact 0 stays a finite log."""
    x, y = with_failures(a, b)
    if x.shape != y.shape:
        raise ValueError(f"paired values need the same units; got {x.size} and {y.size}")
    floor = 1e-12
    d = np.log(np.maximum(x, floor)) - np.log(np.maximum(y, floor))
    return t_interval(d, unit=unit, transform="exp")
