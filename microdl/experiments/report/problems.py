"""Problems built for the report, each with a known answer: a teacher network, Zipf-sparse inputs, 2-D test
functions with known minima, and the 2-D optimizer runs over them.

The scikit-learn datasets used elsewhere have no known optimum. These do: a teacher network generates the
targets (so a student of the same shape can reach the teacher's loss), a linear teacher over sparse inputs has
known weights (so the error of each weight is measurable), and the 2-D functions have tabulated minima.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from microdl.nn import MLP

__all__ = ["Teacher", "zipf_problem", "rosenbrock", "camel", "CAMEL_MINIMA", "CAMEL_GLOBAL", "run_2d"]


# -- a teacher network ---------------------------------------------------------------------------------------
@dataclass
class Teacher:
    """A fixed random network ``f(x)`` whose outputs, plus Gaussian noise of standard deviation ``noise``,
    are the targets; inputs are standard normal. The signal is scaled to unit variance, so the best possible
    (half squared error) loss is ``noise² / 2`` and a constant prediction scores about ``(1 + noise²) / 2``.
    """

    n_features: int
    hidden: int
    noise: float
    seed: int
    activation: str = "tanh"

    def __post_init__(self) -> None:
        self.net = MLP((self.n_features, self.hidden, 1), activation=self.activation, loss="squared_error",
                       random_state=self.seed)
        probe = self.net.forward(np.random.default_rng(self.seed).standard_normal((4096, self.n_features)))[:, 0]
        self.shift, self.scale = float(probe.mean()), float(probe.std())

    @property
    def noise_floor(self) -> float:
        """The expected loss of the teacher itself: the lowest loss any model can reach on fresh data."""
        return 0.5 * self.noise**2

    def targets(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """``f(X)`` plus noise drawn from ``rng`` (no noise when ``rng`` is None)."""
        y = (self.net.forward(X)[:, 0] - self.shift) / self.scale
        return y if rng is None else y + self.noise * rng.standard_normal(X.shape[0])

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh samples ``(X, y)``."""
        X = rng.standard_normal((n, self.n_features))
        return X, self.targets(X, rng)


# -- sparse inputs with Zipf-distributed features --------------------------------------------------------------
def zipf_problem(n: int, d: int, seed: int, *, nnz: int = 5, exponent: float = 1.1, sparse: bool = True,
                 noise: float = 0.1) -> dict[str, np.ndarray]:
    """A linear regression over ``d`` features with known weights ``w`` (standard normal).

    With ``sparse`` each row holds ``nnz`` features drawn with probability ∝ 1/rankᵉˣᵖᵒⁿᵉⁿᵗ (Zipf: feature 0
    is in most rows, the last ones in very few), each with a standard normal value, as a CSR matrix. The
    dense control has every feature in every row, standard normal values scaled so that the signal ``X @ w``
    has the variance it has in the sparse problem of the same seed.
    Returns ``X``, ``y`` and ``w`` and the per-feature frequency ``freq`` (the share of rows holding it).
    """
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    if sparse:
        p = 1.0 / np.arange(1, d + 1) ** exponent
        cols = np.stack([rng.choice(d, size=nnz, replace=False, p=p / p.sum()) for _ in range(n)])
        vals = rng.standard_normal((n, nnz))
        X = csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
        X.sort_indices()
        freq = np.bincount(cols.ravel(), minlength=d) / n
    else:
        X = rng.standard_normal((n, d))
        sparse_signal = zipf_problem(n, d, seed, nnz=nnz, exponent=exponent, noise=0.0)["y"]
        X *= np.std(sparse_signal) / np.std(X @ w)
        freq = np.ones(d)
    y = X @ w + noise * rng.standard_normal(n)
    return {"X": X, "y": np.asarray(y).ravel(), "w": w, "freq": freq}


# -- 2-D test functions --------------------------------------------------------------------------------------
def rosenbrock(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rosenbrock's valley f = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1). ``P`` holds points as rows;
    returns the values and the gradients (same shape as ``P``)."""
    x, y = P[:, 0], P[:, 1]
    f = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    g = np.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], axis=1)
    return f, g


def camel(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The six-hump camel f = (4 − 2.1x² + x⁴/3) x² + xy + (4y² − 4) y²: six minima (table
    :data:`CAMEL_MINIMA`), two of them global (f ≈ −1.0316), and saddles between them."""
    x, y = P[:, 0], P[:, 1]
    f = (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (4 * y**2 - 4) * y**2
    g = np.stack([8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3], axis=1)
    return f, g


#: The six minima of the camel (rounded), from the standard tables of optimisation test functions.
CAMEL_MINIMA = np.array([[0.0898, -0.7126], [-0.0898, 0.7126], [-1.7036, 0.7961], [1.7036, -0.7961],
                         [-1.6071, -0.5687], [1.6071, 0.5687]])
#: Its global minimum value.
CAMEL_GLOBAL = -1.0316


def run_2d(name: str, fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], starts: np.ndarray, steps: int,
           lr: float, *, noise: float = 0.0, seed: int = 0, anneal: bool = False, **hyper: float) -> np.ndarray:
    """Run the microdl optimizer ``name`` from every row of ``starts`` for ``steps`` steps; returns the
    trajectories, shape (steps + 1, n_starts, 2).

    All starts share one flat buffer of 2·n_starts parameters: every update rule is elementwise, so each pair
    of entries follows exactly the path it would follow alone. ``noise`` adds Gaussian noise of that standard
    deviation to every gradient (a stand-in for mini-batch noise); ``anneal`` lowers the rate along a cosine
    to zero, so that a noisy run comes to rest. A start whose run diverges ends as NaN or infinity in the
    trajectory (the caller counts it as diverged); the others are unaffected.
    """
    from microdl.optim import make_optimizer

    params = np.array(starts, dtype=float).ravel()
    opt = make_optimizer(name, params, backend="numpy", lr=lr, **hyper)
    rng = np.random.default_rng(seed)
    path = np.empty((steps + 1, len(starts), 2))
    path[0] = starts
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            if anneal:
                opt.lr = lr * 0.5 * (1 + np.cos(np.pi * t / steps))
            _, g = fn(params.reshape(-1, 2))
            if noise:
                g = g + noise * rng.standard_normal(g.shape)
            opt.step(g.ravel())
            path[t + 1] = params.reshape(-1, 2)
    return path
