"""The runs behind the explorable: every optimizer, over a grid of its settings, from every start of every test
function, stepped by microdl's own optimizer classes; and the same settings training a small MLP.

NOTE [one buffer, many runs]
Every update rule in :mod:`microdl.optim.rules` is elementwise: parameter i's new value depends on parameter i's
gradient and state alone, and the step's scalars (bias corrections, the rate) on the step count alone. So the
runs of one setting from all the starts of all the functions can share one flat buffer of two entries per run,
each pair stepped with its own function's gradient, and each pair follows exactly the path it would follow in a
buffer of its own (the tests check this against single 2-parameter runs). That turns a few hundred thousand
optimizer calls into a few thousand.
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microdl._validation import check_choice, check_int
from microdl.explore.functions import FUNCTIONS, TestFunction
from microdl.optim.registry import available_optimizers

__all__ = ["Control", "OptimizerSpec", "DEFINING", "DEFAULT_OPTIMIZERS", "optimizer_spec", "Trajectories",
           "trajectories", "Explorable", "precompute", "DIVERGED_ABOVE"]

#: A run has diverged once a coordinate's magnitude passes this (or stops being finite); it is NaN from there on.
DIVERGED_ABOVE = 1e6

#: The six classic optimizers, in order of increasing complexity (the page's order): the registry's article six.
DEFAULT_OPTIMIZERS = available_optimizers(article=True)


@dataclass(frozen=True)
class Control:
    """A hyperparameter the reader sets: its constructor name, its label and the values precomputed."""

    name: str
    label: str
    values: tuple[float, ...]
    default: float


@dataclass(frozen=True)
class _Defining:
    """The defining hyperparameters of a built-in optimizer, the decades its rate grid spans, and how the
    controls' values become constructor arguments."""

    controls: tuple[Control, ...]
    lr_decades: tuple[int, int]
    kwargs: Callable[[Mapping[str, float]], dict[str, Any]] = dict


#: The hyperparameter that defines each built-in optimizer (issue 23), with the values the page precomputes. The
#: rate grids cover the rates that work somewhere among the test functions, and those that diverge around them.
DEFINING: dict[str, _Defining] = {
    "gd": _Defining((), (-4, 0)),
    "sgd": _Defining((Control("momentum", "momentum", (0.5, 0.8, 0.9, 0.99), 0.9),), (-4, 0)),
    "adagrad": _Defining((Control("eps", "ε", (1e-10, 1e-4, 1e-2, 1e-1), 1e-10),), (-3, 1)),
    "rmsprop": _Defining((Control("alpha", "α", (0.5, 0.9, 0.99, 0.999), 0.99),), (-3, 1)),
    "adadelta": _Defining((Control("rho", "ρ", (0.5, 0.9, 0.95, 0.99), 0.9),), (-1, 3)),
    "adam": _Defining((Control("beta1", "β₁", (0.0, 0.5, 0.9, 0.99), 0.9),
                       Control("beta2", "β₂", (0.9, 0.99, 0.999), 0.999)), (-3, 1),
                      lambda v: {"betas": (v["beta1"], v["beta2"])}),
    "adamw": _Defining((Control("weight_decay", "λ", (0.0, 0.01, 0.1), 0.01),), (-3, 1)),
}
#: The rate grid of an optimizer the table does not know (a user's own): wide, with no other control.
_UNKNOWN_LR_DECADES = (-4, 1)


def control_kwargs(values: Mapping[str, float]) -> dict[str, Any]:
    """The controls' values as constructor keywords, unchanged (the default of :attr:`OptimizerSpec.to_kwargs`)."""
    return dict(values)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer as the page offers it: its class, its rate grid (log-spaced) and its controls.

    A setting is a rate index and one value index per control; :meth:`settings` lists them rate-major, so that
    setting ``k`` has rate index ``k // n`` where ``n`` is the number of combinations of the controls.
    """

    name: str
    cls: type
    lrs: tuple[float, ...]
    controls: tuple[Control, ...] = ()
    to_kwargs: Callable[[Mapping[str, float]], dict[str, Any]] = control_kwargs

    @property
    def title(self) -> str:
        return self.cls.__name__

    @property
    def n_settings(self) -> int:
        return len(self.lrs) * math.prod(len(c.values) for c in self.controls)

    def settings(self) -> list[tuple[float, dict[str, float]]]:
        """Every (lr, {control: value}) pair, rate-major, controls in order, the last varying fastest."""
        combos = itertools.product(*(c.values for c in self.controls))
        combos = [dict(zip((c.name for c in self.controls), values)) for values in combos]
        return [(lr, combo) for lr in self.lrs for combo in combos]

    def make(self, params: np.ndarray, backend: str, lr: float, values: Mapping[str, float]) -> Any:
        """An optimizer of this class bound to ``params``."""
        return self.cls(params, backend=backend, lr=lr, **self.to_kwargs(values))

    @property
    def default_lr(self) -> float:
        """The grid's rate nearest (on a log scale) to the class's default rate."""
        default = inspect.signature(self.cls).parameters["lr"].default
        default = default if isinstance(default, (int, float)) and default > 0 else 1e-2
        return min(self.lrs, key=lambda lr: abs(math.log(lr / default)))


def _lr_grid(decades: tuple[int, int], per_decade: int) -> tuple[float, ...]:
    low, high = decades
    exponents = np.linspace(low, high, (high - low) * per_decade + 1)
    return tuple(float(f"{10.0**e:.3g}") for e in exponents)  # 10^-2.5 shown and run as 0.00316


def optimizer_spec(name: str, *, lrs_per_decade: int = 2) -> OptimizerSpec:
    """The :class:`OptimizerSpec` of the optimizer registered as ``name`` in :data:`microdl.optim.OPTIMIZERS`.

    A built-in gets its defining hyperparameter from :data:`DEFINING`; any other registered class gets a rate
    grid from 1e-4 to 10 and no other control.
    """
    from microdl.optim import OPTIMIZERS, Optimizer

    if not isinstance(name, str):
        raise TypeError(f"optimizer names must be strings; got {type(name).__name__}")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ValueError(f"optimizer {name!r} ({getattr(cls, '__name__', cls)}) cannot be explored: the page steps "
                         "optimizers that take one gradient per step (microdl.optim.Optimizer subclasses)")
    lrs_per_decade = check_int("lrs_per_decade", lrs_per_decade, 1, 8)
    defining = DEFINING.get(name)
    if defining is None:
        return OptimizerSpec(name, cls, _lr_grid(_UNKNOWN_LR_DECADES, lrs_per_decade))
    return OptimizerSpec(name, cls, _lr_grid(defining.lr_decades, lrs_per_decade), defining.controls,
                         defining.kwargs)


def _function(function: str | TestFunction) -> TestFunction:
    if isinstance(function, TestFunction):
        return function
    return FUNCTIONS[check_choice("function", function, FUNCTIONS)]


# -- the runs -------------------------------------------------------------------------------------------------
def _run(spec: OptimizerSpec, lr: float, values: Mapping[str, float], problems: Sequence[TestFunction],
         starts: Sequence[np.ndarray], steps: int, backend: str) -> np.ndarray:
    """Points of shape (n_runs, steps + 1, 2): one setting from every start of every problem, in one flat buffer
    (NOTE [one buffer, many runs]). A run that diverges is NaN from the step it diverged on."""
    start = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in starts])
    params = start.copy()
    grads = np.empty_like(params)
    optimizer = spec.make(params, backend, lr, values)
    bounds = np.cumsum([0] + [2 * len(s) for s in starts])
    path = np.empty((steps + 1, params.size))
    path[0] = params
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            for f, lo, hi in zip(problems, bounds[:-1], bounds[1:]):
                dx, dy = f.gradient(params[lo:hi:2], params[lo + 1:hi:2])
                grads[lo:hi:2], grads[lo + 1:hi:2] = dx, dy
            optimizer.step(grads)
            # A diverged pair stays NaN: NaN in, NaN out, for every elementwise rule.
            bad = ~(np.abs(params) <= DIVERGED_ABOVE)
            if bad.any():
                bad = np.repeat(bad.reshape(-1, 2).any(axis=1), 2)
                params[bad] = np.nan
            path[t] = params
    return path.reshape(steps + 1, -1, 2).transpose(1, 0, 2)


@dataclass
class Trajectories:
    """The paths of one optimizer setting from several starts on one function.

    Attributes
    ----------
    points : array of shape (n_starts, steps + 1, 2)
        The iterates, start included; NaN from the step a run diverged on.
    values : array of shape (n_starts, steps + 1)
        f at each iterate.
    """

    function: TestFunction
    optimizer: str
    hyperparameters: dict[str, Any]
    points: np.ndarray
    values: np.ndarray

    @property
    def diverged_at(self) -> np.ndarray:
        """Per start, the first step whose point is NaN, or -1 for a run that stayed finite."""
        nan = np.isnan(self.points[..., 0])
        return np.where(nan.any(axis=1), nan.argmax(axis=1), -1)


def trajectories(optimizer: str, function: str | TestFunction = "rosenbrock", *, lr: float, steps: int = 150,
                 starts: Sequence[tuple[float, float]] | None = None, backend: str = "numpy",
                 **hyperparameters: Any) -> Trajectories:
    """Run the optimizer registered as ``optimizer`` on a 2-D test function, from each start, for ``steps`` steps.

    The optimizer is microdl's own class (:data:`microdl.optim.OPTIMIZERS`), stepping a flat buffer with the
    function's analytic gradient; all starts share one buffer (NOTE [one buffer, many runs]).

    Parameters
    ----------
    optimizer : str
        A name in :data:`microdl.optim.OPTIMIZERS`.
    function : str or TestFunction
        A name in :data:`microdl.explore.FUNCTIONS`, or your own :class:`TestFunction`.
    lr : float
        The learning rate.
    steps : int
        Number of steps.
    starts : sequence of (x, y), optional
        Start points; default the function's own.
    backend : {"numpy", "cpu"}
    **hyperparameters
        Passed to the optimizer's constructor as they are (``momentum=0.9``, ``betas=(0.9, 0.99)``).

    Examples
    --------
    >>> from microdl.explore import trajectories
    >>> run = trajectories("sgd", "quadratic", lr=0.02, momentum=0.9, steps=100)
    >>> run.points.shape, bool(run.values[0, -1] < 1e-3 * run.values[0, 0])
    ((3, 101, 2), True)
    """
    f = _function(function)
    spec = optimizer_spec(optimizer)
    steps = check_int("steps", steps, 1)
    check_choice("backend", backend, ("numpy", "cpu"))
    starts_array = np.asarray(f.starts if starts is None else starts, dtype=np.float64)
    if starts_array.ndim != 2 or starts_array.shape[1] != 2 or not np.isfinite(starts_array).all():
        raise ValueError(f"starts must be a sequence of finite (x, y) pairs; got shape {starts_array.shape}")
    as_given = OptimizerSpec(spec.name, spec.cls, spec.lrs, (), lambda _: dict(hyperparameters))
    points = _run(as_given, lr, {}, [f], [starts_array], steps, backend)
    with np.errstate(all="ignore"):
        values = f.value(points[..., 0], points[..., 1])
    return Trajectories(f, optimizer, {"lr": lr, **hyperparameters}, points, values)


# -- everything the page embeds ---------------------------------------------------------------------------------
@dataclass
class Explorable:
    """Everything the page holds: the grid of settings and every run over it.

    Attributes
    ----------
    functions : list of TestFunction
    specs : list of OptimizerSpec
    steps : int
        Steps of every run.
    backend : str
        The optimizers' backend the runs were made on.
    points : dict
        ``points[opt][k]`` is an array of shape (n_runs, steps + 1, 2) for setting ``k`` of optimizer ``opt``,
        the runs ordered function by function, start by start.
    values : dict
        Like ``points``: f at each point minus the function's minimum (the gap), shape (n_runs, steps + 1).
    mlp_loss : dict
        ``mlp_loss[opt]``: array (n_settings, mlp_epochs + 1), the MLP's training loss before training and after
        each epoch, NaN after a divergence.
    mlp : dict
        How the MLP runs were made (dataset, sizes, epochs, batch size, seed).
    """

    functions: list[TestFunction]
    specs: list[OptimizerSpec]
    steps: int
    backend: str
    points: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    mlp_loss: dict[str, np.ndarray] = field(default_factory=dict)
    mlp: dict[str, Any] = field(default_factory=dict)

    @property
    def n_settings(self) -> int:
        """Settings over all optimizers (each run from every start of every function)."""
        return sum(s.n_settings for s in self.specs)

    @property
    def n_runs(self) -> int:
        return self.n_settings * sum(len(f.starts) for f in self.functions)

    def run_index(self, function: int, start: int) -> int:
        """Where the run from ``start`` of ``functions[function]`` sits along the runs axis."""
        return sum(len(f.starts) for f in self.functions[:function]) + start

    def tuned(self, optimizer: str, function: int, start: int, steps: int) -> int:
        """The setting (index) with the lowest gap f - f* after ``steps`` steps from this start; among settings
        that tie (several reach the floor of 1e-12), the one whose gap summed over the steps is lowest, that
        is the faster. Diverged runs never win."""
        r = self.run_index(function, start)
        gaps = np.maximum(self.values[optimizer][:, r, : steps + 1], 1e-12)
        final = np.where(np.isnan(gaps[:, -1]), np.inf, np.maximum(gaps[:, -1], 1e-12))
        area = np.where(np.isnan(gaps).any(axis=1), np.inf, np.log10(gaps).sum(axis=1))
        return int(np.lexsort((area, np.round(np.log10(final), 6)))[0])


def _mlp_problem(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving moons, 200 samples, standardised: small enough for a few hundred fits in seconds."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=200, noise=0.25, random_state=seed)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _mlp_curves(spec: OptimizerSpec, epochs: int, backend: str, seed: int) -> np.ndarray:
    from microdl.nn import MLP
    from microdl.train import evaluate_loss, fit

    X, y = _mlp_problem(seed)
    curves = np.full((spec.n_settings, epochs + 1), np.nan)
    for k, (lr, values) in enumerate(spec.settings()):
        net = MLP((2, 16, 2), random_state=seed)
        curves[k, 0] = evaluate_loss(net, X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a diverged run is kept, as NaN from its divergence on
            history = fit(net, spec.make(net.params, backend, lr, values), X, y, epochs=epochs, batch_size=32,
                          random_state=seed)
        losses = np.asarray(history.train_loss, dtype=np.float64)
        n = len(losses) if not history.diverged else max(len(losses) - 1, 0)
        curves[k, 1: 1 + n] = losses[:n]
    return curves


def precompute(functions: Sequence[str] | None = None, optimizers: Sequence[str] = DEFAULT_OPTIMIZERS, *,
               steps: int = 150, lrs_per_decade: int = 2, mlp_epochs: int = 30, backend: str = "cpu",
               seed: int = 0) -> Explorable:
    """Run every optimizer over its grid of settings, on every function from every start, and on the MLP.

    Parameters
    ----------
    functions : sequence of str, optional
        Names in :data:`FUNCTIONS` (default all).
    optimizers : sequence of str
        Names in :data:`microdl.optim.OPTIMIZERS`: the six classic ones by default; a user's registered
        optimizer is run over a rate grid alone.
    steps : int
        Steps of each run on the test functions (the page's step control goes up to it).
    lrs_per_decade : int
        Rates per decade of the log-spaced rate grids.
    mlp_epochs : int
        Epochs of each MLP run (0: no MLP view).
    backend : {"cpu", "numpy"}
        The optimizers' backend: the Numba kernels that train models, or the NumPy reference.
    seed : int
        Seed of the MLP's data, initialisation and batches.
    """
    names = list(FUNCTIONS) if functions is None else list(functions)
    if not names:
        raise ValueError("functions must name at least one test function")
    fs = [_function(name) for name in names]
    if not optimizers or isinstance(optimizers, str):
        raise ValueError("optimizers must be a non-empty sequence of names")
    if len(set(optimizers)) != len(optimizers):
        raise ValueError(f"optimizers lists a name twice: {', '.join(optimizers)}")
    specs = [optimizer_spec(name, lrs_per_decade=lrs_per_decade) for name in optimizers]
    steps = check_int("steps", steps, 1, 10_000)
    mlp_epochs = check_int("mlp_epochs", mlp_epochs, 0, 1_000)
    backend = check_choice("backend", backend, ("cpu", "numpy"))
    seed = check_int("seed", seed, 0)
    out = Explorable(fs, specs, steps, backend)
    starts = [np.asarray(f.starts, dtype=np.float64) for f in fs]
    f_of_run = np.concatenate([np.full(len(f.starts), i) for i, f in enumerate(fs)])
    for spec in specs:
        points = np.stack([_run(spec, lr, values, fs, starts, steps, backend) for lr, values in spec.settings()])
        gaps = np.empty(points.shape[:-1])
        with np.errstate(all="ignore"):
            for i, f in enumerate(fs):
                mine = f_of_run == i
                mine_points = points[:, mine]
                gaps[:, mine] = f.value(mine_points[..., 0], mine_points[..., 1]) - f.f_min
        out.points[spec.name], out.values[spec.name] = points, gaps
        if mlp_epochs:
            out.mlp_loss[spec.name] = _mlp_curves(spec, mlp_epochs, backend, seed)
    if mlp_epochs:
        out.mlp = {"dataset": "two moons (make_moons, 200 samples, noise 0.25, standardised)",
                   "layers": [2, 16, 2], "epochs": mlp_epochs, "batch_size": 32, "seed": seed}
    return out
