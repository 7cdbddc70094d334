"""Write the two small data files the README and the examples use; run from anywhere to regenerate them.

* ``houses.csv``: 300 houses, a regression problem with a header line: ``size_m2``, ``rooms`` and the target
  ``price`` (in thousands), price = 3 size + 20 rooms + noise.
* ``arrays.npz``: ``X`` (300 x 8, float64) and ``y`` (300 class labels 0, 1, 2), from scikit-learn's
  ``make_classification`` with ``random_state=0``.

Both are deterministic: ``tests/test_readme.py`` checks that the shipped files hold what this makes.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification

HERE = Path(__file__).resolve().parent


def houses_csv() -> str:
    rng = np.random.default_rng(0)
    size, rooms = rng.uniform(30, 200, 300), rng.integers(1, 7, 300)
    price = 3.0 * size + 20.0 * rooms + rng.normal(0, 15, 300)
    return "size_m2,rooms,price\n" + "".join(f"{s:.1f},{r},{p:.1f}\n" for s, r, p in zip(size, rooms, price))


def arrays() -> dict[str, np.ndarray]:
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return {"X": X, "y": y}


if __name__ == "__main__":
    (HERE / "houses.csv").write_text(houses_csv())
    np.savez(HERE / "arrays.npz", **arrays())
    print(f"wrote {HERE / 'houses.csv'} and {HERE / 'arrays.npz'}")
