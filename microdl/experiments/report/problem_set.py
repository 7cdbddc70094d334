"""The problem set of the "wide range of problems" claims, kept as data: a table a user can extend.

Each :class:`Problem` names a family (what it varies), builds its data for a seed (a :class:`RawData`, split and
standardised by :func:`microdl.datasets.load_dataset` like any user's data) and the hidden layers of the MLP
that trains on it. :data:`PROBLEMS` holds every tabular supervised dataset scikit-learn bundles (its ``load_*``
functions: iris, wine, breast_cancer, digits, diabetes, linnerud), two classic 2-D shapes, and generated families
that vary one thing at a time: conditioning, dimension, noise, class balance and sparsity of the inputs, and the
architecture (depth and width) on the same data.

To add a problem, add a row and name it in the report's settings::

    from microdl.datasets import from_arrays
    from microdl.experiments.report import ReportSettings
    from microdl.experiments.report.problem_set import PROBLEMS, Problem

    PROBLEMS["mine"] = Problem("mine", "my data", lambda seed: from_arrays(X, y, name="mine"), (64,),
                               "what it is")
    settings = ReportSettings(datasets=(*ReportSettings().datasets, "mine"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl.datasets import RawData, from_arrays

__all__ = ["Problem", "PROBLEMS", "load_problem"]

#: Samples of each generated problem: enough for 3-fold tuning and a test set, small enough to stay cheap.
GENERATED_N = 600


@dataclass(frozen=True)
class Problem:
    """A problem of the set: its ``name``, the ``family`` it belongs to (what it varies), ``make(seed)`` that
    returns its data, the ``hidden`` layer widths of the MLP trained on it, and a one-line ``note``."""

    name: str
    family: str
    make: Callable[[int], RawData]
    hidden: tuple[int, ...] = (64,)
    note: str = ""


def _bundled(loader: str, name: str, column: int | None = None) -> Callable[[int], RawData]:
    def make(seed: int) -> RawData:
        import sklearn.datasets

        X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
        if column is not None:  # linnerud has three targets; the report predicts one
            y = y[:, column]
        return from_arrays(X, y, task="regression" if loader in ("load_diabetes", "load_linnerud") else None,
                           name=name, source=f"sklearn {loader}")

    return make


def _maker(maker: str, name: str, task: str, **kwargs: Any) -> Callable[[int], RawData]:
    def make(seed: int) -> RawData:
        import sklearn.datasets

        X, y = getattr(sklearn.datasets, maker)(n_samples=GENERATED_N, random_state=seed, **kwargs)
        return from_arrays(X, y, task=task, name=name, source=f"sklearn {maker}")

    return make


def _sparse(name: str, density: float) -> Callable[[int], RawData]:
    """Binary inputs with ``density`` ones (Zipf-like: a few frequent features, many rare ones) and a logistic
    label from a sparse weight vector."""

    def make(seed: int) -> RawData:
        rng = np.random.default_rng(seed)
        d = 100
        p = density * d * (1.0 / np.arange(1, d + 1)) / np.sum(1.0 / np.arange(1, d + 1))
        X = (rng.random((GENERATED_N, d)) < np.minimum(p, 1.0)).astype(float)
        w = rng.standard_normal(d) * (rng.random(d) < 0.3)
        y = (X @ w + 0.3 * rng.standard_normal(GENERATED_N) > np.median(X @ w)).astype(int)
        return from_arrays(X, y, task="classification", name=name, source="generated sparse inputs")

    return make


#: The problem set, by name. Extend it to test the wide-range claims on your own problems.
PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    Problem("iris", "bundled", _bundled("load_iris", "iris"), note="3 classes, 4 features, 150 samples"),
    Problem("wine", "bundled", _bundled("load_wine", "wine"), note="3 classes, 13 features, 178 samples"),
    Problem("breast_cancer", "bundled", _bundled("load_breast_cancer", "breast_cancer"),
            note="2 classes, 30 features, 569 samples"),
    Problem("digits", "bundled", _bundled("load_digits", "digits"), note="10 classes, 64 features, 1797 samples"),
    Problem("diabetes", "bundled", _bundled("load_diabetes", "diabetes"),
            note="regression, 10 features, 442 samples"),
    Problem("linnerud", "bundled", _bundled("load_linnerud", "linnerud", column=0),
            note="regression (weight from three exercises), 20 samples"),
    Problem("moons", "shape", _maker("make_moons", "moons", "classification", noise=0.2),
            note="2 interleaving half circles"),
    Problem("well-conditioned", "conditioning",
            _maker("make_regression", "well-conditioned", "regression", n_features=20, noise=5.0),
            note="regression, isotropic inputs"),
    Problem("ill-conditioned", "conditioning",
            _maker("make_regression", "ill-conditioned", "regression", n_features=20, effective_rank=3,
                   tail_strength=0.05, noise=0.5),
            note="regression, inputs of effective rank 3 (a steep, narrow valley)"),
    Problem("low-dimension", "dimension",
            _maker("make_classification", "low-dimension", "classification", n_features=5, n_informative=3,
                   n_redundant=0),
            note="2 classes, 5 features"),
    Problem("high-dimension", "dimension",
            _maker("make_classification", "high-dimension", "classification", n_features=200, n_informative=20),
            note="2 classes, 200 features, 20 informative"),
    Problem("noisy-labels", "noise",
            _maker("make_classification", "noisy-labels", "classification", n_features=20, flip_y=0.3),
            note="2 classes, 30% of labels flipped"),
    Problem("imbalanced", "class balance",
            _maker("make_classification", "imbalanced", "classification", n_features=20, weights=[0.9, 0.1]),
            note="2 classes, 90% / 10%"),
    Problem("sparse-inputs", "sparsity", _sparse("sparse-inputs", 0.05),
            note="binary inputs, 5% ones, Zipf-like feature frequencies"),
    Problem("digits-deep", "architecture", _bundled("load_digits", "digits-deep"), (32, 32, 32),
            note="digits with three hidden layers of 32"),
    Problem("moons-wide", "architecture", _maker("make_moons", "moons-wide", "classification", noise=0.2),
            (256,), note="moons with one hidden layer of 256"),
)}


def load_problem(name: str, seed: int) -> Any:
    """The split, standardised data of problem ``name`` for ``seed`` (a :class:`microdl.datasets.Dataset`)."""
    from microdl.datasets import load_dataset

    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)} or add one to PROBLEMS")
    return load_dataset(PROBLEMS[name].make(seed), random_state=seed)
