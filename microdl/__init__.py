"""microdl: a Numba-accelerated, autodiff-free deep-learning micro-framework.

* :mod:`microdl.nn` — the MLP, with hand-written forward and backward passes over one flat buffer;
* :mod:`microdl.optim` — GD, SGD, Adagrad, RMSprop, AdaDelta, Adam and AdamW, each rule written once and run
  by NumPy, Numba-CPU or Numba-CUDA; schedules and clipping;
* :mod:`microdl.train` — the training loop;
* :mod:`microdl.datasets` — scikit-learn's datasets by name, or your own from a CSV or ``.npz`` file or arrays,
  standardised and split;
* :mod:`microdl.io` — checkpoints, written atomically;
* :mod:`microdl.experiments` — comparisons of the optimizers, tuning, sensitivity and the claims report;
* :mod:`microdl.cli` — the ``microdl`` command (also ``python -m microdl``).

Submodules are imported on first use, so ``import microdl`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["nn", "optim", "train", "datasets", "io", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("nn", "optim", "train", "datasets", "io", "experiments", "sklearn", "cuda"):
        return importlib.import_module(f"microdl.{name}")
    if name == "compare":  # the convergence study's entry point, microdl.experiments.compare
        return importlib.import_module("microdl.experiments").compare
    raise AttributeError(f"module 'microdl' has no attribute {name!r}")
