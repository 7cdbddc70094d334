"""The scikit-learn estimators with device="cuda" against device="cpu": same seed, data and solver give the
same record and weights to float tolerance; the fitted attributes are host arrays.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU. Tiny sizes: the simulator runs every GPU thread in Python.
"""

import os
import sys
import warnings

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from microdl.cuda import kernels as K  # noqa: E402
from microdl.optim import _cuda as optim_cuda  # noqa: E402
from microdl.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Tiny launch shapes and a short GIL switch interval (see test_cuda_train.py)."""
    for name, value in {"TILE": 2, "REG": 2, "THREADS_PER_BLOCK": 4, "MAX_BLOCKS": 2, "REDUCE_COLS": 2,
                        "REDUCE_ROWS": 2}.items():
        monkeypatch.setattr(K, name, value)
    monkeypatch.setattr(optim_cuda, "THREADS_PER_BLOCK", 4)
    monkeypatch.setattr(optim_cuda, "MAX_BLOCKS", 2)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(2e-4)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_cuda_estimator_matches_cpu(Estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(13, 3))
    y = rng.integers(0, 3, 13) if Estimator is MLPClassifier else rng.normal(size=13)
    settings = dict(hidden_layer_sizes=(4,), batch_size=5, max_iter=3, learning_rate_init=0.05, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = Estimator(device="cuda", **settings).fit(X, y)
        cpu = Estimator(device="cpu", **settings).fit(X, y)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-10)
    for a, b in zip(gpu.coefs_ + gpu.intercepts_, cpu.coefs_ + cpu.intercepts_):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-9, atol=1e-12)
    gpu.partial_fit(X, y)  # the device solver is kept
    assert gpu._optimizer.backend == "cuda" and gpu.n_iter_ == 1
