"""What every experiment module receives and implements (:class:`Experiment`), and the small helpers they share.

An experiment module of the report implements :class:`Experiment`: it defines ``KEY`` and ``TITLE`` and four
functions:

* ``run(ctx) -> dict``: trains and measures; returns plain results (numbers, lists, dicts: JSON-ready);
* ``judge(results, settings) -> dict[str, Verdict]``: the verdicts of its claims, computed from ``results``
  (every experiment's results by key, since a few claims read two experiments) through the rules of
  :mod:`microdl.experiments.report.verdicts`;
* ``draw(results, out) -> list[str]``: its figures, written under ``out``; returns their relative paths;
* ``describe(doc, results, settings)``: the text and tables of its section.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from microdl.experiments.report.settings import ReportSettings

if TYPE_CHECKING:
    from microdl.experiments.report.verdicts import Verdict

__all__ = ["Experiment", "Context", "numba_threads", "fmt", "interval", "best_rate", "fit_quietly", "save_figure",
           "EXTEND_STEPS"]

#: How many grid steps :func:`best_rate` may add beyond an end of its grid when the best rate sits there.
EXTEND_STEPS = 2


@runtime_checkable
class Experiment(Protocol):
    """The interface of an experiment of the report (each is a module: ``wide``, ``landscape``, ...). The driver
    runs every experiment of ``EXPERIMENTS`` through it and nothing else; a new experiment implements it and
    adds its claims to ``CLAIMS`` and its rules to ``RULES``."""

    KEY: str
    TITLE: str

    def run(self, ctx: Context) -> dict[str, Any]:
        """Train and measure under ``ctx.settings``; plain, JSON-ready results."""

    def judge(self, results: dict[str, Any], settings: ReportSettings) -> dict[str, Verdict]:
        """The verdicts of its claims from ``results`` (every experiment's, by key)."""

    def draw(self, results: dict[str, Any], out: Path) -> list[str]:
        """Its figures, written under ``out``; their relative paths."""

    def describe(self, doc: Any, results: dict[str, Any], settings: ReportSettings) -> None:
        """The text and tables of its section."""


@dataclass
class Context:
    """The settings, the output folder being written, how runs are executed (``jobs``, ``backend``,
    ``scheduler``, ``progress`` for :func:`microdl.experiments.runs.execute`), the results so far, and
    ``advance``: an experiment calls it with the share of its work just done, to move the report's bar."""

    settings: ReportSettings
    out: Path
    execution: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    advance: Callable[[float], None] = lambda share: None

    def tuned_lrs(self) -> dict[str, float]:
        """The learning rates tuned for the focus dataset by the wide experiment, for the experiments that run
        each optimizer at its rate alone (GD against SGD, SGD's noise, wider networks).

        GD and SGD were tuned together with momentum β; without it, the same steady-state step needs the
        *effective* rate γ / (1 − β) (heavy-ball momentum multiplies a constant gradient's step by 1 / (1 − β)),
        so that is the rate they get here. The other optimizers get their tuned rate.
        """
        d = self.results["wide"]["datasets"][self.settings.focus]
        out = dict(d["lrs"])
        for o in ("gd", "sgd"):
            momentum = d["tuning"][o]["hyper"].get("momentum", 0.0)
            out[o] = float(f"{out[o] / (1.0 - momentum):.4g}")
        return out

    def tuned_setting(self, optimizer: str, seed: int) -> tuple[float, dict[str, Any]]:
        """The rate and the other tuned hyperparameters (keyword arguments) that the wide experiment chose for
        ``optimizer`` on the focus dataset with the tuning seed assigned to evaluation seed ``seed``.

        Nested replication, as in the wide experiment: evaluation seed i runs with the choice of tuning seed
        i mod (number of tuning seeds), so the tuning's own noise, which moves the chosen rate by up to a decade,
        is inside the interval of every comparison built on these runs (one consensus setting for every seed
        would leave it out and make the interval claim a precision the verdict does not have).
        """
        from microdl.experiments.tuning import to_kwargs

        d = self.results["wide"]["datasets"][self.settings.focus]
        pick = d["tuning"][optimizer]["chosen"][str(d["assign"][str(seed)])]
        return float(pick["lr"]), to_kwargs(pick)


@contextmanager
def numba_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` Numba threads and ``n`` BLAS threads (None: leave the settings alone), then
    restore them.

    The report's networks are small: one thread runs their steps faster than two, and a step that waits for
    a second thread stalls whenever another process holds the other core, which would make the timings
    measure the machine's load instead of the optimizers. BLAS threads that finish early spin while they
    wait for more work, burning the other core for nothing, so they are limited too.
    """
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    if n is not None:
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        if n is None:
            yield
        else:
            with threadpool_limits(limits=n):
                yield
    finally:
        numba.set_num_threads(before)


def fmt(x: float | None, spec: str = ".3g") -> str:
    """A number for the report: a dash when it is missing or NaN, ∞ for infinity."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return format(x, spec)


def interval(est: Any, spec: str = ".3g") -> str:
    """``value [low, high]`` of an Estimate (or its dict)."""
    v, lo, hi = (est["value"], est["low"], est["high"]) if isinstance(est, dict) else (est.value, est.low, est.high)
    return f"{fmt(v, spec)} [{fmt(lo, spec)}, {fmt(hi, spec)}]"


def best_rate(grid: Iterable[float], score: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    """The rate with the lowest ``score(rate)``, and every rate's score (in increasing order of rate).

    Infinity (a run that diverged) loses to any finite score and NaN to anything else; a tie goes to the
    smaller rate. A best rate at an end of the grid is never accepted silently: the grid is extended past that
    end, one step of its own ratio at a time, up to EXTEND_STEPS steps, until the best lies inside.
    """
    rates = sorted(float(lr) for lr in grid)
    scores = {lr: score(lr) for lr in rates}

    def rank(lr: float) -> tuple[bool, float, float]:
        s = scores[lr]
        return (True, 0.0, lr) if math.isnan(s) else (False, s, lr)

    for _ in range(EXTEND_STEPS):
        best = min(scores, key=rank)
        ordered = sorted(scores)
        if len(ordered) < 2 or not math.isfinite(scores[best]):
            break
        if best == ordered[-1]:
            new = ordered[-1] * ordered[-1] / ordered[-2]
        elif best == ordered[0]:
            new = ordered[0] * ordered[0] / ordered[1]
        else:
            break
        new = float(f"{new:.4g}")
        scores[new] = score(new)
    best = min(scores, key=rank)
    return best, dict(sorted(scores.items()))


def fit_quietly(model: Any, opt: Any, X: Any, y: Any, **kwargs: Any) -> Any:
    """:func:`microdl.train.fit` without its DivergenceWarning: a run that diverges is scored, not reported."""
    from microdl.train import DivergenceWarning, fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        return fit(model, opt, X, y, **kwargs)


def save_figure(fig: Any, out: Path, name: str, *, dpi: int) -> list[str]:
    """The report's one figure finish: every panel that draws labelled lines gets its own legend (a reader
    should not have to look at another panel to know which line is which), the layout is tightened, and the
    figure is written as ``out / name``; returns ``[name]``, for an experiment's ``draw``."""
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))  # one entry per label (a figure legend's proxies repeat them)
        shown = [(h, lab) for lab, h in unique.items() if lab and not lab.startswith("_")]
        if shown and ax.get_legend() is None:
            ax.legend(*zip(*shown), fontsize=7, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(out / name, dpi=dpi)
    return [name]
