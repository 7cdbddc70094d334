"""scikit-learn's bundled datasets and generators, by name, standardised and split reproducibly.

Every dataset comes back as a :class:`Dataset` with a stratified (classification) train/test split whose
features are standardised with the *training* mean and standard deviation; regression targets are
standardised the same way (``y_mean`` and ``y_scale`` undo it). Nothing is downloaded: only scikit-learn's
``load_*`` and ``make_*`` functions are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl._validation import check_choice, check_int, check_real

__all__ = ["Dataset", "DATASETS", "load_dataset", "list_datasets"]


def _bundled(loader_name: str) -> Callable[[int | None, int], tuple[np.ndarray, np.ndarray]]:
    def load(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader_name)(return_X_y=True)

    return load


def _generated(maker_name: str, default_n: int, **kwargs: Any) -> Callable[[int | None, int], tuple]:
    def make(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        n = default_n if n_samples is None else n_samples
        return getattr(sklearn.datasets, maker_name)(n_samples=n, random_state=seed, **kwargs)

    return make


#: name -> (task, source, description)
DATASETS: dict[str, tuple[str, Callable, str]] = {
    "iris": ("classification", _bundled("load_iris"), "iris flowers, 3 classes"),
    "wine": ("classification", _bundled("load_wine"), "wine cultivars, 3 classes"),
    "breast_cancer": ("classification", _bundled("load_breast_cancer"), "tumour diagnosis, 2 classes"),
    "digits": ("classification", _bundled("load_digits"), "8x8 handwritten digits, 10 classes"),
    "diabetes": ("regression", _bundled("load_diabetes"), "disease progression after one year"),
    "moons": ("classification", _generated("make_moons", 1000, noise=0.2), "two interleaving half circles"),
    "circles": ("classification", _generated("make_circles", 1000, noise=0.1, factor=0.5),
                "a circle inside a circle"),
    "classification": ("classification",
                       _generated("make_classification", 2000, n_features=20, n_informative=10, n_classes=3),
                       "make_classification, 20 features, 3 classes"),
    "regression": ("regression", _generated("make_regression", 2000, n_features=20, n_informative=10, noise=10.0),
                   "make_regression, 20 features, noise 10"),
}


@dataclass
class Dataset:
    """A standardised train/test split. ``y`` holds class indices 0..n_classes-1 or standardised values."""

    name: str
    task: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    y_mean: float = 0.0
    y_scale: float = 1.0

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else 1

    @property
    def loss(self) -> str:
        """The MLP loss that fits the task."""
        return "cross_entropy" if self.task == "classification" else "squared_error"


def load_dataset(name: str, *, test_size: float = 0.25, random_state: int = 0, dtype: Any = "float64",
                 n_samples: int | None = None) -> Dataset:
    """Load ``name`` (see :data:`DATASETS`), split it and standardise it.

    Parameters
    ----------
    name : str
        One of ``iris, wine, breast_cancer, digits, diabetes, moons, circles, classification, regression``.
    test_size : float in (0, 1)
        Fraction held out for testing.
    random_state : int
        Seeds the split (and the generators).
    dtype : float32 or float64
    n_samples : int, optional
        Size of a generated dataset (ignored by the bundled ones).
    """
    check_choice("dataset", name, DATASETS)
    test_size = check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    if n_samples is not None:
        n_samples = check_int("n_samples", n_samples, 10)
    random_state = check_int("random_state", random_state, 0)
    from sklearn.model_selection import train_test_split

    task, source, _ = DATASETS[name]
    X, y = source(n_samples, random_state)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=random_state,
                                                        stratify=stratify)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    dtype = np.dtype(dtype)
    n_classes, y_mean, y_scale = None, 0.0, 1.0
    if task == "classification":
        classes, y_train = np.unique(y_train, return_inverse=True)
        y_test = np.searchsorted(classes, y_test)
        n_classes = len(classes)
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    else:
        y_mean, y_scale = float(y_train.mean()), float(y_train.std()) or 1.0
        y_train = ((y_train - y_mean) / y_scale).astype(dtype)
        y_test = ((y_test - y_mean) / y_scale).astype(dtype)
    return Dataset(name, task, X_train.astype(dtype), X_test.astype(dtype), y_train, y_test, n_classes,
                   y_mean, y_scale)


def list_datasets() -> list[dict[str, Any]]:
    """Name, task, size, features, classes and description of every dataset."""
    rows = []
    for name, (task, source, description) in DATASETS.items():
        X, y = source(None, 0)
        rows.append({"name": name, "task": task, "n_samples": X.shape[0], "n_features": X.shape[1],
                     "n_classes": len(np.unique(y)) if task == "classification" else None,
                     "description": description})
    return rows
