"""Start-up (issue 20, item 1): importing microdl imports no Numba, and a small fit through the estimator or
``microdl train`` runs on the NumPy backend, compiles nothing and says so; ``backend=`` forces either backend,
and both give the same model to rounding (NOTE [the NumPy backend for small fits] in microdl.nn.mlp). The kernel
count of a compiled first fit is guarded in tests/test_train.py; the times are measured by benchmarks/startup.py,
never here."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from microdl.nn import choose_backend
from microdl.sklearn import MLPClassifier, MLPRegressor


def test_a_fresh_process_imports_no_numba_until_a_fit_needs_the_kernels():
    """One fresh process (the point is what a new process imports): microdl's modules, a small estimator fit and
    ``microdl train`` load no Numba; the first model built on the kernels does."""
    code = """
import json, sys, warnings
import microdl, microdl.nn, microdl.optim, microdl.train, microdl.sklearn, microdl.cli
report = {"after imports": "numba" in sys.modules}
from sklearn.datasets import load_digits
from microdl.sklearn import MLPClassifier
X, y = load_digits(return_X_y=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
report["estimator"] = [clf.backend_, "numba" in sys.modules, float(clf.score(X, y))]
from microdl.cli import main
main(["train", "--dataset", "digits", "--epochs", "2", "--json"])
report["train"] = "numba" in sys.modules
from microdl.nn import MLP
MLP((4, 3), backend="numba")  # a model on the kernels imports them (and Numba), before any pass
report["forced"] = "numba" in sys.modules
print(json.dumps(report))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["after imports"] is False
    backend, numba_loaded, score = report["estimator"]
    assert (backend, numba_loaded) == ("numpy", False) and score > 0.5
    train = json.loads(lines[-2])  # microdl train --json's summary
    assert train["epochs"] == 2 and train["test_accuracy"] > 0.8
    assert report["train"] is False
    assert report["forced"] is True


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_auto_takes_numpy_for_a_small_fit_and_agrees_with_the_kernels(solver):
    X, y = _digits()
    X, y = X[:300], y[:300]
    kwargs = dict(hidden_layer_sizes=(20,), max_iter=5, random_state=0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = MLPClassifier(**kwargs).fit(X, y)
        again = MLPClassifier(**kwargs).fit(X, y)
        numba = MLPClassifier(**kwargs, backend="numba").fit(X, y)
    assert auto.backend_ == "numpy" and auto._model.backend == "numpy" and numba.backend_ == "numba"
    assert "backend='numpy'" in repr(auto._model)
    if solver != "lbfgs":
        assert auto._optimizer.backend == "numpy" and numba._optimizer.backend == "cpu"
    for a, b in zip(auto.coefs_, again.coefs_):  # the same seed, the same backend: the same bits
        np.testing.assert_array_equal(a, b)
    # the same model as the kernels give, to the tolerance the suite asks between backends (tests/nn/test_reference)
    np.testing.assert_allclose(auto.loss_curve_, numba.loss_curve_, rtol=1e-12)
    for a, b in zip(auto.coefs_, numba.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_auto_follows_choose_backend_and_backend_forces_either():
    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = MLPClassifier(max_iter=200, random_state=0, n_iter_no_change=1, tol=1e9).fit(X, y)  # stops at once
        small = MLPRegressor(max_iter=3, random_state=0).fit(X, X[:, 0])
        forced = MLPClassifier(max_iter=1, random_state=0, backend="numpy").fit(X, y)
        partial = MLPClassifier(random_state=0).partial_fit(X, y, classes=np.unique(y))
    assert big.backend_ == choose_backend((64, 100, 10), 1797, 200, 200) == "numba"
    assert small.backend_ == "numpy" and forced.backend_ == "numpy"
    assert partial.backend_ == "numpy"  # one epoch per call
    with pytest.raises(ValueError, match="backend"):
        MLPClassifier(backend="jax").fit(X, y)
