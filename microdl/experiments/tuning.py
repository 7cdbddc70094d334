"""Tuning after Choi et al. (2019): every relevant hyperparameter, by quasi-random search, the same budget for all.

Choi, Shallue, Nado, Lee, Maddison & Dahl (2019), "On Empirical Comparisons of Optimizers for Deep Learning",
showed that the ranking of optimizers is decided by the tuning protocol: tuning only the learning rate, or a
search space whose best value sits on an edge, gives unstable and misleading rankings. This module is the one
protocol that ``microdl compare --rates tuned``, the preset hyperparameters (:data:`PRESETS`) and the claims
report (``microdl report``) share:

* **Every relevant hyperparameter.** :data:`SEARCH_SPACES` is the table of spaces: SGD and GD tune the rate and
  momentum; Adam the rate, β₁, β₂ and ε; RMSprop the rate, α and ε; AdaDelta the rate, ρ and ε; Adagrad the rate
  and ε. Rates and ε are searched on a log scale, the decay rates (β₁, β₂, α, ρ, momentum) as ``1 − β`` on a log
  scale, so that 0.9, 0.99 and 0.999 are equally far apart. :func:`search_space` gives the space of any optimizer:
  the table's, else the ``search_space`` the optimizer was registered with, else a log-scaled rate alone.
* **Quasi-random search, the same number of trials per optimizer.** Each tuning seed draws ``trials`` points of
  a scrambled Sobol sequence (:class:`scipy.stats.qmc.Sobol`), which covers the space more evenly than random
  points; every optimizer gets the same count.
* **Defaults as a contender.** torch.optim's defaults are scored beside the trials and win if they are best, so
  "default against tuned" is measured, not assumed.
* **Validation big enough to choose on.** A configuration's score is its mean final validation loss over
  ``folds``-fold cross-validation of the training data (stratified for classification); datasets with more than
  :data:`POOLED_ABOVE` training samples use one pooled split of a quarter instead. A configuration that diverges
  on any fold scores infinity and is never chosen. The test set is never seen.
* **Edges widen the space.** When the best trial of most tuning seeds lies in the outer :data:`EDGE` of a
  dimension's range (on its log scale) and the space may grow there, that side is pushed out by half the range
  and the search is run again from scratch with the same number of trials, at most :data:`WIDEN_ROUNDS` times.
  A best value still on an edge after that is reported in ``on_edge``, never accepted silently.
* **Several tuning seeds.** Each tuning seed (fold assignment, initialisation, Sobol scramble) runs its own
  search; the choice of each seed, and their spread, are reported. The consensus (``hyper``) is the per-dimension
  median of the seeds' choices on the search scale.

:func:`tune` runs the protocol; :func:`tune_lrs` is the same with its result keyed as ``compare`` expects.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl.experiments.runs import Budget, RunSpec, execute, takes_lr

__all__ = ["Dim", "SEARCH_SPACES", "search_space", "default_point", "to_kwargs", "sample", "tune", "tune_lrs",
           "validation_split", "folds_of", "LR_GRID", "PRESETS", "PRESET_SETUP", "preset", "preset_lr",
           "TRIALS", "FOLDS", "EDGE", "WIDEN_ROUNDS", "POOLED_ABOVE", "PRESET_TRIALS", "PRESET_EPOCHS"]

#: Half-decade steps from 1e-4 to 100, for the learning-rate *sweeps* (``microdl sensitivity``), not tuning.
LR_GRID: tuple[float, ...] = tuple(float(f"{10.0 ** (k / 2):.4g}") for k in range(-8, 5))

#: Trials per optimizer and tuning seed (a power of two keeps the Sobol points balanced).
TRIALS = 16
#: Folds of the cross-validation on small datasets.
FOLDS = 3
#: Training sets larger than this are validated on one pooled split (a quarter) instead of k folds.
POOLED_ABOVE = 3000
#: A best value within this share of a range's end (on its search scale) lies "on the edge".
EDGE = 0.1
#: How many times a space may widen before an edge is reported instead.
WIDEN_ROUNDS = 2


@dataclass(frozen=True)
class Dim:
    """One hyperparameter's search range.

    ``scale`` is ``"log"`` (the value is log-uniform in ``[low, high]``) or ``"one_minus"`` (``1 − value`` is
    log-uniform in ``[low, high]``: a decay rate β searched as 1 − β). ``limits`` bound the searched quantity
    when the range widens (a decay rate cannot exceed 1 − 1e-6 or fall below 0).
    """

    low: float
    high: float
    scale: str = "log"
    limits: tuple[float, float] = (1e-8, 1e4)

    def __post_init__(self) -> None:
        if self.scale not in ("log", "one_minus"):
            raise ValueError(f"scale must be 'log' or 'one_minus'; got {self.scale!r}")
        if not 0 < self.low < self.high:
            raise ValueError(f"a range needs 0 < low < high; got [{self.low}, {self.high}]")

    def value(self, u: float) -> float:
        """The hyperparameter at position ``u`` in [0, 1] of the range (on its log scale)."""
        q = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return float(f"{(1.0 - q if self.scale == 'one_minus' else q):.6g}")

    def position(self, value: float) -> float:
        """Where ``value`` sits in the range, 0 at ``low`` and 1 at ``high`` (outside [0, 1] if beyond)."""
        q = 1.0 - value if self.scale == "one_minus" else value
        q = max(q, 1e-300)
        return (math.log(q) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))

    def widened(self, side: str) -> Dim | None:
        """The range pushed out by half its log-width on ``side`` ("low" or "high"), within the limits; None
        if it cannot grow there."""
        half = 0.5 * (math.log(self.high) - math.log(self.low))
        if side == "low":
            low = max(self.limits[0], math.exp(math.log(self.low) - half))
            return None if low >= self.low * (1 - 1e-9) else Dim(low, self.high, self.scale, self.limits)
        high = min(self.limits[1], math.exp(math.log(self.high) + half))
        return None if high <= self.high * (1 + 1e-9) else Dim(self.low, high, self.scale, self.limits)

    def describe(self) -> str:
        what = "1 − value" if self.scale == "one_minus" else "value"
        return f"{what} log-uniform in [{self.low:.3g}, {self.high:.3g}]"


#: Searched quantity 1 − β: from 1e-4 (β = 0.9999) to 1 (β = 0), never beyond.
_DECAY = (1e-6, 1.0)
_EPS = (1e-12, 1.0)

#: The search spaces, one row per optimizer: the rate and every relevant hyperparameter (Choi et al. 2019 tune
#: all of Adam's). Ranges hold torch.optim's defaults, so the trials and the default compete in one space. A
#: momentum range reaching 1 − β = 1 includes plain SGD (momentum 0).
SEARCH_SPACES: dict[str, dict[str, Dim]] = {
    "gd": {"lr": Dim(1e-3, 10.0), "momentum": Dim(1e-2, 1.0, "one_minus", _DECAY)},
    "sgd": {"lr": Dim(1e-3, 3.0), "momentum": Dim(1e-2, 1.0, "one_minus", _DECAY)},
    "adagrad": {"lr": Dim(1e-3, 1.0), "eps": Dim(1e-10, 1e-2, "log", _EPS)},
    "rmsprop": {"lr": Dim(1e-5, 1e-1), "alpha": Dim(1e-3, 0.3, "one_minus", _DECAY),
                "eps": Dim(1e-10, 1e-2, "log", _EPS)},
    "adadelta": {"lr": Dim(1e-2, 30.0), "rho": Dim(1e-3, 0.5, "one_minus", _DECAY),
                 "eps": Dim(1e-8, 1e-2, "log", _EPS)},
    "adam": {"lr": Dim(1e-5, 1e-1), "beta1": Dim(1e-2, 1.0, "one_minus", _DECAY),
             "beta2": Dim(1e-4, 0.3, "one_minus", _DECAY), "eps": Dim(1e-10, 1e-2, "log", _EPS)},
    "adamw": {"lr": Dim(1e-5, 1e-1), "beta1": Dim(1e-2, 1.0, "one_minus", _DECAY),
              "beta2": Dim(1e-4, 0.3, "one_minus", _DECAY), "eps": Dim(1e-10, 1e-2, "log", _EPS)},
}
#: The space of an optimizer with no row and no ``search_space`` of its own: its rate, over six decades.
_LR_ONLY = {"lr": Dim(1e-5, 10.0)}


def search_space(name: str) -> dict[str, Dim]:
    """The search space of optimizer ``name``: :data:`SEARCH_SPACES`'s row, else the ``search_space`` it was
    registered with (:func:`microdl.optim.register_optimizer`: hyperparameter -> ``(low, high, scale)``), else a
    log-scaled rate alone.

    >>> sorted(search_space("adam"))
    ['beta1', 'beta2', 'eps', 'lr']
    """
    if name in SEARCH_SPACES:
        return dict(SEARCH_SPACES[name])
    from microdl.optim import OPTIMIZERS, optimizer_entry

    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    own = optimizer_entry(name).search_space  # checked at registration
    if own:
        return {key: Dim(low, high, scale, _DECAY if scale == "one_minus" else Dim.limits)
                for key, (low, high, scale) in own.items()}
    if not takes_lr(name):
        raise ValueError(f"{name} has no learning rate to tune (its line search picks each step)")
    return dict(_LR_ONLY)


def default_point(name: str, space: Mapping[str, Dim] | None = None) -> dict[str, float]:
    """torch.optim's defaults of the space's hyperparameters (``beta1``, ``beta2`` read from ``betas``)."""
    from microdl.optim import OPTIMIZERS

    params = inspect.signature(OPTIMIZERS[name]).parameters
    out = {}
    for key in space if space is not None else search_space(name):
        if key in ("beta1", "beta2") and "betas" in params:
            out[key] = float(params["betas"].default[0 if key == "beta1" else 1])
        else:
            out[key] = float(params[key].default)
    return out


def to_kwargs(point: Mapping[str, float]) -> dict[str, Any]:
    """A point of a space as the optimizer's keyword arguments, without ``lr`` (``beta1, beta2 -> betas``)."""
    out: dict[str, Any] = {k: float(v) for k, v in point.items() if k not in ("lr", "beta1", "beta2")}
    if "beta1" in point or "beta2" in point:
        out["betas"] = (float(point.get("beta1", 0.9)), float(point.get("beta2", 0.999)))
    return out


def sample(space: Mapping[str, Dim], n: int, seed: int) -> list[dict[str, float]]:
    """``n`` points of a scrambled Sobol sequence over ``space`` (the seed scrambles it)."""
    from scipy.stats import qmc

    names = list(space)
    m = max(0, math.ceil(math.log2(max(n, 1))))
    u = qmc.Sobol(len(names), scramble=True, seed=seed).random_base2(m)[:n]
    return [{k: space[k].value(float(row[j])) for j, k in enumerate(names)} for row in u]


def validation_split(X: np.ndarray, y: np.ndarray, fraction: float, seed: int,
                     classification: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_fit, y_fit, X_val, y_val)``: a (stratified, for classification) split of training data."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {fraction!r}")
    from sklearn.model_selection import train_test_split

    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=fraction, random_state=seed,
                                                  stratify=y if classification else None)
    return X_fit, y_fit, X_val, y_val


def folds_of(X: np.ndarray, y: np.ndarray, folds: int, seed: int,
             classification: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The validation splits a configuration is scored on: ``folds``-fold cross-validation (stratified for
    classification, when every class has that many samples) or, above :data:`POOLED_ABOVE` samples, one pooled
    split of a quarter."""
    if len(X) > POOLED_ABOVE or folds < 2:
        return [validation_split(X, y, 0.25, seed, classification)]
    from sklearn.model_selection import KFold, StratifiedKFold

    stratify = classification and np.unique(y, return_counts=True)[1].min() >= folds
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=seed)
    return [(X[a], y[a], X[b], y[b]) for a, b in splitter.split(X, y if stratify else None)]


def tune(train_sets: Mapping[int, tuple[np.ndarray, np.ndarray]], *, layer_sizes: Sequence[int], loss: str,
         optimizers: Sequence[str], budget: Budget, batch_size: int = 32, activation: str = "relu",
         trials: int = TRIALS, folds: int = FOLDS, widen_rounds: int = WIDEN_ROUNDS,
         labels: Mapping[str, Any] | None = None, jobs: int = 1, backend: str = "loky",
         scheduler: str | None = None, progress: bool | None = None,
         threads: int | None = None) -> dict[str, dict[str, Any]]:
    """Tune every optimizer's hyperparameters by the protocol of this module, once per tuning seed.

    Parameters
    ----------
    train_sets : mapping of tuning seed to (X_train, y_train)
        Training data only, one set per tuning seed (at least three for a spread). The seed also fixes the
        folds, the initialisation, the batch order and the Sobol scramble.
    layer_sizes, loss, activation, batch_size, budget
        The model and training set-up of each trial (keep the budget short: there are many trials).
    optimizers : sequence of str
        Names of optimizers with something to tune (``"lbfgs"`` has nothing: ValueError).
    trials : int
        Quasi-random points per optimizer and seed, the same for every optimizer (the defaults come on top).
    folds : int
        Folds of the cross-validation (datasets above :data:`POOLED_ABOVE` samples: one pooled split).
    widen_rounds : int
        How often a space may widen at an edge (0: never; an edge is then only reported).

    Returns
    -------
    dict
        Per optimizer: ``hyper`` (the consensus: per-dimension median of the seeds' choices on the search
        scale), ``lr``, ``kwargs`` (the optimizer's keyword arguments besides ``lr``), ``per_seed`` (per seed:
        its ``hyper``, ``score``, the defaults' ``default_score``, ``chose_default``, and every trial's ``points``
        and ``scores``), ``spread`` (per dimension, the lowest and highest choice), ``space`` (the final
        ranges), ``trials``, ``rounds``, ``widened`` (what grew) and ``on_edge`` (dimensions whose best value
        still lies on an edge).
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer; got {trials!r}")
    if not train_sets:
        raise ValueError("tuning needs at least one training set")
    spaces = {o: search_space(o) for o in optimizers}
    classification = loss == "cross_entropy"
    splits = {seed: folds_of(X, y, folds, seed, classification) for seed, (X, y) in train_sets.items()}
    state = {o: {"space": spaces[o], "round": 0, "widened": []} for o in optimizers}
    results: dict[str, dict[int, dict[str, Any]]] = {}
    pending = list(optimizers)
    while pending:
        batch: dict[str, dict[int, list[dict[str, float]]]] = {}
        specs: list[RunSpec] = []
        keys: list[tuple[str, int, int]] = []
        for o in pending:
            space = state[o]["space"]
            batch[o] = {}
            for seed in train_sets:
                points = [default_point(o, space), *sample(space, trials, seed + 7919 * state[o]["round"])]
                batch[o][seed] = points
                for k, point in enumerate(points):
                    for X_fit, y_fit, X_val, y_val in splits[seed]:
                        specs.append(RunSpec(o, point.get("lr"), seed, tuple(layer_sizes), loss, X_fit, y_fit,
                                             X_val, y_val, budget, batch_size, activation, eval_name="val",
                                             threads=threads, hyper=to_kwargs(point),
                                             labels={**dict(labels or {}), "phase": "tune"}))
                        keys.append((o, seed, k))
        runs = execute(specs, jobs=jobs, backend=backend, scheduler=scheduler, progress=progress, desc="tuning")
        scores: dict[tuple[str, int, int], list[float]] = {}
        for key, r in zip(keys, runs):
            v = r["final_val_loss"]
            scores.setdefault(key, []).append(math.inf if r["diverged"] or v is None else float(v))
        again = []
        for o in pending:
            space = state[o]["space"]
            results[o] = {}
            for seed, points in batch[o].items():
                s = [float(np.mean(scores[(o, seed, k)])) for k in range(len(points))]
                best = int(np.argmin(s))  # ties go to the defaults (index 0)
                results[o][seed] = {"hyper": points[best], "score": s[best], "default_score": s[0],
                                    "chose_default": best == 0, "points": points[1:], "scores": s[1:]}
            edges = _edges(space, [results[o][seed] for seed in train_sets])
            grown = dict(space)
            for dim, side in edges:
                wider = grown[dim].widened(side)
                if wider is not None:
                    grown[dim] = wider
            if grown != space and state[o]["round"] < widen_rounds:
                state[o]["widened"].append({d: space[d].describe() + " -> " + grown[d].describe()
                                            for d in grown if grown[d] != space[d]})
                state[o]["space"], state[o]["round"] = grown, state[o]["round"] + 1
                again.append(o)
        pending = again
    out = {}
    for o in optimizers:
        space = state[o]["space"]
        per_seed = results[o]
        chosen = [per_seed[seed]["hyper"] for seed in train_sets]
        consensus = {d: _median_on_scale(space[d], [c[d] for c in chosen]) for d in space}
        out[o] = {"hyper": consensus, "lr": consensus.get("lr"), "kwargs": to_kwargs(consensus),
                  "per_seed": {str(seed): v for seed, v in per_seed.items()},
                  "spread": {d: [min(c[d] for c in chosen), max(c[d] for c in chosen)] for d in space},
                  "space": {d: {"low": space[d].low, "high": space[d].high, "scale": space[d].scale} for d in space},
                  "defaults": default_point(o, space), "trials": trials, "rounds": state[o]["round"] + 1,
                  "widened": state[o]["widened"],
                  "on_edge": [f"{d} ({side})" for d, side in _edges(space, list(per_seed.values()), growable=False)],
                  "folds": len(next(iter(splits.values()))), "seeds": [int(s) for s in train_sets]}
    return out


def _edges(space: Mapping[str, Dim], picks: Sequence[Mapping[str, Any]],
           growable: bool = True) -> list[tuple[str, str]]:
    """(dimension, side) where the best trial of more than half of the tuning seeds lies in the outer EDGE of
    the range (``growable``: and the range could still grow there). With a handful of quasi-random trials the
    best of one seed falls near some edge by chance alone; an edge that most seeds agree on is the signal. A
    decay rate of 0 (1 − β = 1: plain SGD, no momentum) is a natural end, never an edge. A seed whose defaults
    won counts as inside the range."""
    hits: dict[tuple[str, str], int] = {}
    for pick in picks:
        if pick["chose_default"] or not math.isfinite(pick["score"]):
            continue
        for d, dim in space.items():
            u = dim.position(pick["hyper"][d])
            natural_high = dim.scale == "one_minus" and dim.high >= 1.0
            if u < EDGE and (not growable or dim.widened("low") is not None):
                hits[(d, "low")] = hits.get((d, "low"), 0) + 1
            if u > 1 - EDGE and not natural_high and (not growable or dim.widened("high") is not None):
                hits[(d, "high")] = hits.get((d, "high"), 0) + 1
    return sorted(edge for edge, n in hits.items() if n > len(picks) / 2)


def _median_on_scale(dim: Dim, values: Sequence[float]) -> float:
    """The median of ``values`` on the dimension's search scale (log of the value, or of 1 − value)."""
    q = [max(1.0 - v if dim.scale == "one_minus" else v, 1e-300) for v in values]
    m = math.exp(float(np.median(np.log(q))))
    return float(f"{(1.0 - m if dim.scale == 'one_minus' else m):.6g}")


def tune_lrs(train_sets: Mapping[int, tuple[np.ndarray, np.ndarray]], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`tune` under the name ``compare`` has always used; each optimizer's entry carries ``lr`` and the
    other hyperparameters as ``kwargs``."""
    return tune(train_sets, **kwargs)


# -- presets -----------------------------------------------------------------------------------------------
#: Trials, trial epochs and tuning seeds of :data:`PRESETS`.
PRESET_TRIALS, PRESET_EPOCHS, PRESET_SEEDS = 8, 10, (0, 1, 2)

#: The set-up :data:`PRESETS` were tuned for: ``compare``'s defaults, with short trials.
PRESET_SETUP = f"hidden 64, relu, batch 32 (gd: full), tuned on {PRESET_EPOCHS}-epoch trials"

#: Hyperparameters chosen by :func:`tune` for each built-in dataset and optimizer (``lr`` plus the optimizer's
#: other keyword arguments), for :data:`PRESET_SETUP`: PRESET_TRIALS Sobol trials plus the defaults per
#: optimizer, 3-fold cross-validation of the training data, tuning seeds 0, 1, 2, consensus of the three.
#: Regenerated with ``python -m microdl.experiments.tuning > presets.py`` (:func:`_regenerate`; numba 0.68,
#: numpy 2.4) and pasted here.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "iris": {
        "gd": {"lr": 0.312275, "momentum": 0.735285},
        "sgd": {"lr": 0.436423, "momentum": 0.95136},
        "adagrad": {"lr": 0.189525, "eps": 4.1059e-08},
        "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-08},
        "adadelta": {"lr": 3.26253, "rho": 0.949812, "eps": 1.76675e-05},
        "adam": {"lr": 0.0252547, "eps": 1.1768e-05, "betas": (0.719539, 0.998175)},
        "adamw": {"lr": 0.0252547, "eps": 1.1768e-05, "betas": (0.719539, 0.998175)},
    },
    "wine": {
        "gd": {"lr": 0.451599, "momentum": 0.735285},
        "sgd": {"lr": 0.147385, "momentum": 0.477142},
        "adagrad": {"lr": 0.0979635, "eps": 4.91038e-05},
        "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-08},
        "adadelta": {"lr": 0.985025, "rho": 0.999598, "eps": 4.15928e-06},
        "adam": {"lr": 0.024285, "eps": 1.1768e-05, "betas": (0.719539, 0.996222)},
        "adamw": {"lr": 0.024285, "eps": 1.1768e-05, "betas": (0.719539, 0.996222)},
    },
    "breast_cancer": {
        "gd": {"lr": 0.312275, "momentum": 0.735285},
        "sgd": {"lr": 0.13573, "momentum": 0.735285},
        "adagrad": {"lr": 0.0226305, "eps": 2.16519e-09},
        "rmsprop": {"lr": 0.00111638, "alpha": 0.99635, "eps": 8.67828e-05},
        "adadelta": {"lr": 0.60273, "rho": 0.996183, "eps": 3.44254e-06},
        "adam": {"lr": 0.00244645, "eps": 3.61731e-05, "betas": (0.764449, 0.990772)},
        "adamw": {"lr": 0.00759139, "eps": 3.61731e-05, "betas": (0.820718, 0.990772)},
    },
    "digits": {
        "gd": {"lr": 0.451599, "momentum": 0.745371},
        "sgd": {"lr": 0.147385, "momentum": 0.735285},
        "adagrad": {"lr": 0.0742853, "eps": 4.91038e-05},
        "rmsprop": {"lr": 0.00421774, "alpha": 0.99, "eps": 1e-08},
        "adadelta": {"lr": 4.75218, "rho": 0.997984, "eps": 8.77217e-08},
        "adam": {"lr": 0.00759139, "eps": 3.61731e-05, "betas": (0.820718, 0.990772)},
        "adamw": {"lr": 0.024285, "eps": 8.249e-08, "betas": (0.820718, 0.996222)},
    },
    "diabetes": {
        "gd": {"lr": 0.0177569, "momentum": 0.898947},
        "sgd": {"lr": 0.00732631, "momentum": 0.849515},
        "adagrad": {"lr": 0.0565536, "eps": 5.59745e-08},
        "rmsprop": {"lr": 0.01, "alpha": 0.998974, "eps": 1e-08},
        "adadelta": {"lr": 0.384017, "rho": 0.997984, "eps": 0.000284332},
        "adam": {"lr": 0.00759139, "eps": 3.61731e-05, "betas": (0.820718, 0.990772)},
        "adamw": {"lr": 0.00759139, "eps": 3.61731e-05, "betas": (0.820718, 0.990772)},
    },
    "moons": {
        "gd": {"lr": 1.08865, "momentum": 0.477142},
        "sgd": {"lr": 0.0384017, "momentum": 0.95136},
        "adagrad": {"lr": 0.327457, "eps": 3.1043e-09},
        "rmsprop": {"lr": 0.012007, "alpha": 0.995336, "eps": 1.80916e-09},
        "adadelta": {"lr": 0.972804, "rho": 0.858069, "eps": 1.76675e-05},
        "adam": {"lr": 0.0287634, "eps": 7.15014e-08, "betas": (0.969737, 0.999976)},
        "adamw": {"lr": 0.0287634, "eps": 3.69737e-09, "betas": (0.969737, 0.999963)},
    },
    "circles": {
        "gd": {"lr": 2.41653, "momentum": 0.653195},
        "sgd": {"lr": 0.247044, "momentum": 0.906802},
        "adagrad": {"lr": 0.493493, "eps": 6.79957e-10},
        "rmsprop": {"lr": 0.0332601, "alpha": 0.995336, "eps": 1.80916e-09},
        "adadelta": {"lr": 0.972804, "rho": 0.897955, "eps": 0.000568889},
        "adam": {"lr": 0.0287634, "eps": 3.69737e-09, "betas": (0.969737, 0.999963)},
        "adamw": {"lr": 0.0287634, "eps": 3.69737e-09, "betas": (0.969737, 0.999963)},
    },
    "classification": {
        "gd": {"lr": 0.312275, "momentum": 0.477142},
        "sgd": {"lr": 0.147385, "momentum": 0.735285},
        "adagrad": {"lr": 0.0979635, "eps": 4.20371e-05},
        "rmsprop": {"lr": 0.00421774, "alpha": 0.930229, "eps": 1.15554e-05},
        "adadelta": {"lr": 0.60273, "rho": 0.995901, "eps": 3.44254e-06},
        "adam": {"lr": 0.00547451, "eps": 2.1866e-08, "betas": (0.942596, 0.931215)},
        "adamw": {"lr": 0.00547451, "eps": 2.1866e-08, "betas": (0.942596, 0.931215)},
    },
    "regression": {
        "gd": {"lr": 0.0494191, "momentum": 0.95136},
        "sgd": {"lr": 0.0296804, "momentum": 0.847493},
        "adagrad": {"lr": 0.113744, "eps": 7.54435e-07},
        "rmsprop": {"lr": 0.01, "alpha": 0.923721, "eps": 1e-08},
        "adadelta": {"lr": 0.985025, "rho": 0.999598, "eps": 4.15928e-06},
        "adam": {"lr": 0.0287634, "eps": 7.15014e-08, "betas": (0.969737, 0.999963)},
        "adamw": {"lr": 0.0287634, "eps": 7.15014e-08, "betas": (0.969737, 0.999963)},
    },
}


def preset(dataset: str | None, optimizer: str) -> dict[str, Any] | None:
    """The preset hyperparameters (``lr`` and keyword arguments) of ``optimizer`` on the built-in ``dataset``;
    None if there are none (your own data, or an optimizer that was not tuned)."""
    if dataset is None:
        return None
    found = PRESETS.get(dataset, {}).get(optimizer)
    return None if found is None else dict(found)


def preset_lr(dataset: str, optimizer: str) -> float | None:
    """The preset rate of ``optimizer`` on ``dataset`` (None if there is none)."""
    found = preset(dataset, optimizer)
    return None if found is None else float(found["lr"])


def _regenerate(datasets: Sequence[str] | None = None, jobs: int = 1) -> str:
    """The Python source of :data:`PRESETS`, tuned anew (the command in its comment)."""
    from microdl.datasets import DATASETS, load_dataset

    optimizers = ("gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
    lines = ["PRESETS: dict[str, dict[str, dict[str, Any]]] = {"]
    for name in datasets or DATASETS:
        data = {s: load_dataset(name, random_state=s) for s in PRESET_SEEDS}
        d = data[PRESET_SEEDS[0]]
        result = tune({s: (v.X_train, v.y_train) for s, v in data.items()},
                      layer_sizes=(d.n_features, 64, d.n_outputs), loss=d.loss, optimizers=optimizers,
                      budget=Budget("epochs", PRESET_EPOCHS), trials=PRESET_TRIALS, jobs=jobs, progress=False)
        lines.append(f"    {name!r}: {{")
        for o in optimizers:
            entry = {"lr": result[o]["lr"], **result[o]["kwargs"]}
            lines.append(f"        {o!r}: {entry!r},")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the command that regenerates PRESETS
    import sys

    print(_regenerate(sys.argv[1].split(",") if len(sys.argv) > 1 else None,
                      jobs=int(sys.argv[2]) if len(sys.argv) > 2 else 1))
