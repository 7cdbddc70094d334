"""Smoke tests: benchmarks/sklearn_mlp.py measures and reports (on digits, one epoch or iteration, in this
process; how fast anything is means nothing on a shared CI machine), and benchmarks/sklearn_parity.py scores
both libraries on the same folds."""

import importlib.util

import numpy as np
import pytest

from benchmarks import sklearn_mlp


@pytest.mark.parametrize("contender, solver", sklearn_mlp.CONTENDERS)
def test_worker_times_one_epoch_or_iteration(contender, solver):
    if contender == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    result = sklearn_mlp.worker(contender, solver, "digits", 1, 1)
    assert result["seconds"] > 0 and 0 <= result["accuracy"] <= 1 and result["iterations"] == 1
    if contender.startswith("microdl"):  # as it comes, a fit this small runs on NumPy; -numba forces the kernels
        assert result["backend"] == ("numba" if contender == "microdl-numba" else "numpy")


def test_plan_covers_both_problems_and_solvers():
    assert set(sklearn_mlp.EPOCHS) == set(sklearn_mlp.EPOCHS_QUICK) == {"digits", "classification_50k"}
    assert sklearn_mlp.PROBLEMS["classification_50k"] == (256, 256)
    assert {solver for _, solver in sklearn_mlp.CONTENDERS} == {"adam", "lbfgs"}


def test_parity_table_compares_the_same_folds():
    from benchmarks import sklearn_parity

    theirs, _ = sklearn_parity.cross_validate("scikit-learn", "iris", "lbfgs")
    ours, _ = sklearn_parity.cross_validate("microdl", "iris", "lbfgs")
    assert theirs.shape == ours.shape == (5,)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    X, y = sklearn_parity.load("three_targets")
    assert X.shape == (300, 8) and y.shape == (300, 3)
    np.testing.assert_allclose(y.std(axis=0), 1.0)
