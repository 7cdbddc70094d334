"""Your own data: a CSV file (or an .npz, or arrays) through the same split, standardisation and comparison
as the built-in datasets.

Run with ``python examples/own_data.py`` (about 20 s: it tunes the learning rates first). ``MICRODL_QUICK=1``
makes it tiny. The shell equivalent is::

    microdl train   --data houses.csv --target price
    microdl compare --data houses.csv --target price
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from microdl.datasets import from_arrays, load_dataset, read_data
from microdl.experiments import compare

quick = bool(os.environ.get("MICRODL_QUICK"))
folder = Path(os.environ.get("MICRODL_OUT") or tempfile.mkdtemp(prefix="microdl-own-data-"))
folder.mkdir(parents=True, exist_ok=True)

# 1. A small CSV file with a header: two features and a target column "price". Every column but the target
#    must hold numbers; the target may hold numbers (regression) or class names (classification).
rng = np.random.default_rng(0)
size, rooms = rng.uniform(30, 200, 300), rng.integers(1, 7, 300)
price = 3.0 * size + 20.0 * rooms + rng.normal(0, 15, 300)
path = folder / "houses.csv"
with open(path, "w") as f:
    f.write("size_m2,rooms,price\n")
    f.writelines(f"{s:.1f},{r},{p:.1f}\n" for s, r, p in zip(size, rooms, price))

# 2. read_data checks the file (a missing column, an empty or non-numeric cell: a ValueError naming the line
#    and column) and infers the task: prices with fractions are numbers to predict, so "regression".
raw = read_data(path, target="price")
print(f"{raw.name}: {raw.n_samples} samples, {raw.X.shape[1]} features, task {raw.task}")

# 3. load_dataset splits it (seeded) and standardises features and targets with the training statistics,
#    exactly as for load_dataset("diabetes"). y_mean and y_scale turn predictions back into prices.
data = load_dataset(raw, random_state=0)
print(f"train {data.X_train.shape}, test {data.X_test.shape}; price = y * {data.y_scale:.1f} + {data.y_mean:.1f}")

# 4. Arrays work the same way; labels that are strings make it a classification.
labels = np.where(price > np.median(price), "expensive", "cheap")
print("from arrays:", from_arrays(np.column_stack([size, rooms]), labels).task)

# 5. compare() takes your data as it takes a dataset name. There is no preset learning rate for your data,
#    so each optimizer's hyperparameters are first tuned by cross-validation of the training data (never the
#    test set).
result = compare(raw, ["sgd", "adam"], seeds=1 if quick else 2, epochs=2 if quick else 30,
                 hidden=(8,) if quick else (32,), trials=2 if quick else 16, progress=False)
print(result.format_tables())
