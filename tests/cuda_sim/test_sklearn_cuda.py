"""The scikit-learn estimators with device="cuda" against device="cpu": same seed, data and solver give the
same record and weights to float tolerance; the fitted attributes are host arrays.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU, with the tiny launch shapes of tests/cuda_sim/conftest.py. Tiny sizes: the
simulator runs every GPU thread in Python.
"""

import os
import warnings

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from microdl.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


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


def test_cuda_sgd_momentum_follows_a_changing_rate_and_weights_are_assignable():
    # 'invscaling' rescales the device momentum buffer between epochs (NOTE [same random stream, same model])
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(13, 3)), rng.integers(0, 2, 13)
    settings = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                    batch_size=5, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = MLPClassifier(device="cuda", **settings).fit(X, y)
        cpu = MLPClassifier(device="cpu", **settings).fit(X, y)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(gpu._optimizer.state["b"].copy_to_host(), cpu._optimizer.state["b"], rtol=1e-9)
    for est in (gpu, cpu):
        est.coefs_[0] = np.ones((3, 4))  # item assignment reaches the device buffer
        est.intercepts_ = [np.zeros(4), np.full(1, 0.5)]
    np.testing.assert_array_equal(gpu.coefs_[0], np.ones((3, 4)))
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), rtol=1e-12)


def test_cuda_validation_loss_schedule_and_clipping_match_cpu():
    """The parameters beyond scikit-learn on the GPU: the validation loss, early stopping on it, a schedule and
    clipping by norm give the CPU's record and weights."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, 30)
    settings = dict(hidden_layer_sizes=(4,), batch_size=8, max_iter=3, learning_rate_init=0.05, random_state=0,
                    early_stopping=True, validation_fraction=0.3, early_stopping_metric="loss",
                    lr_schedule="cosine", clip_grad_norm=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = MLPClassifier(device="cuda", **settings).fit(X, y)
        cpu = MLPClassifier(device="cpu", **settings).fit(X, y)
    np.testing.assert_allclose(gpu.validation_loss_curve_, cpu.validation_loss_curve_, rtol=1e-9)
    assert gpu.history_.lr == cpu.history_.lr and gpu.history_.grad_evals == cpu.history_.grad_evals
    for a, b in zip(gpu.coefs_ + gpu.intercepts_, cpu.coefs_ + cpu.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
