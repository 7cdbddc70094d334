"""
Your own data
=============

A CSV file (or an .npz, or arrays) through the same split, standardisation and comparison as the built-in
datasets: the two small files shipped in ``examples/data/`` (``houses.csv``, a regression with a ``price``
column, and ``arrays.npz``, holding ``X`` and ``y``).

Run with ``python examples/own_data.py`` (under 10 s: it tunes the learning rates first). ``MICRODL_QUICK=1``
makes it tiny. The shell equivalent, from ``examples/data/``, is::

    microdl train   --data houses.csv --target price
    microdl compare --data houses.csv --target price
    microdl compare --data arrays.npz --task classification
"""

import os
from pathlib import Path

import numpy as np

from microdl.datasets import from_arrays, load_dataset, read_data
from microdl.experiments import compare

quick = bool(os.environ.get("MICRODL_QUICK"))
# The shipped files (examples/data/generate.py writes them). The documentation's gallery runs this script from
# its folder without setting __file__.
DATA = (Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()) / "data"

# 1. A small CSV file with a header: two features (size_m2, rooms) and a target column "price". Every column
#    but the target must hold numbers; the target may hold numbers (regression) or class names.
path = DATA / "houses.csv"

# 2. read_data checks the file (a missing column, an empty or non-numeric cell: a ValueError naming the line
#    and column) and infers the task: prices with fractions are numbers to predict, so "regression".
raw = read_data(path, target="price")
print(f"{raw.name}: {raw.n_samples} samples, {raw.X.shape[1]} features, task {raw.task}")

# 3. load_dataset splits it (seeded) and standardises features and targets with the training statistics,
#    exactly as for load_dataset("diabetes"). y_mean and y_scale turn predictions back into prices.
data = load_dataset(raw, random_state=0)
print(f"train {data.X_train.shape}, test {data.X_test.shape}; price = y * {data.y_scale:.1f} + {data.y_mean:.1f}")

# 4. Arrays work the same way: an .npz holding X and y is read as a file, and from_arrays takes arrays you
#    already have; labels that are strings make it a classification.
print("arrays.npz:", read_data(DATA / "arrays.npz").task)
price = raw.y
labels = np.where(price > np.median(price), "expensive", "cheap")
print("from arrays:", from_arrays(raw.X, labels).task)

# 5. compare() takes your data as it takes a dataset name. There is no preset learning rate for your data,
#    so each optimizer's hyperparameters are first tuned by cross-validation of the training data (never the
#    test set).
result = compare(raw, ["sgd", "adam"], seeds=1 if quick else 2, epochs=2 if quick else 30,
                 hidden=(8,) if quick else (32,), trials=2 if quick else 16, progress=False)
print(result.format_tables())
