"""Same random stream, same model: microdl's estimators against scikit-learn's own, run for run.

For the same settings and ``random_state``, ``microdl.sklearn`` must reproduce scikit-learn's training run
(NOTE [same random stream, same model] in microdl/sklearn.py): the initial weights and intercepts, the shuffled
batches of every epoch, the early-stopping split, the update rules (SGD's velocity, Adam's ε) and the record.
Every test fits both estimators in float64 and compares ``loss_curve_`` (to 1e-6 relative; it agrees to about
1e-12), the weights, and what else the case is about. scikit-learn is the outside reference here.
"""

import warnings
from functools import cache

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

from microdl.sklearn import MLPClassifier, MLPRegressor

RTOL = 1e-6


@cache
def dataset(name):
    """Small standardised problems, one per kind of target."""
    if name == "iris":
        X, y = load_iris(return_X_y=True)
    elif name == "digits":
        X, y = load_digits(return_X_y=True)
        X, y = X[:600], y[:600]
    elif name == "binary":
        X, y = load_breast_cancer(return_X_y=True)
    elif name == "multilabel":
        X, y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    elif name == "multioutput":  # the three-target problem of issue 13
        X, y = make_regression(n_samples=300, n_features=8, n_targets=3, noise=5.0, random_state=0)
        y = y / y.std(axis=0)
    elif name == "poisson":
        rng = np.random.RandomState(0)
        X = rng.normal(size=(200, 5))
        y = rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.5)).astype(float)
    else:
        raise ValueError(name)
    return StandardScaler().fit_transform(X), y


def fit_both(name, **settings):
    """Fit scikit-learn's estimator and microdl's with the same settings on ``dataset(name)``."""
    X, y = dataset(name)
    regression = name in ("multioutput", "poisson")
    ours, theirs = (MLPRegressor, SkMLPRegressor) if regression else (MLPClassifier, SkMLPClassifier)
    settings = {"hidden_layer_sizes": (8,), "batch_size": 32, "max_iter": 50, "n_iter_no_change": 50,
                "random_state": 0, **settings}
    sample_weight = settings.pop("sample_weight", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning and the batch-size clip
        reference = theirs(**settings).fit(X, y, sample_weight=sample_weight)
        candidate = ours(**settings).fit(X, y, sample_weight=sample_weight)
    return reference, candidate


def assert_same_run(reference, candidate, rtol=RTOL):
    assert candidate.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(candidate.loss_curve_, reference.loss_curve_, rtol=rtol)
    assert candidate.t_ == reference.t_
    for ours, theirs in zip(candidate.coefs_ + candidate.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-9)
    if reference.validation_scores_ is not None:
        np.testing.assert_allclose(candidate.validation_scores_, reference.validation_scores_, rtol=rtol)
        assert candidate.best_validation_score_ == pytest.approx(reference.best_validation_score_, rel=rtol)
    else:
        assert candidate.validation_scores_ is None
        assert candidate.best_loss_ == pytest.approx(reference.best_loss_, rel=rtol)


# Learning rates large enough that 50 epochs move far from the start, so a wrong step would show.
CASES = {
    "iris-sgd": ("iris", dict(solver="sgd", momentum=0.0, learning_rate_init=0.1)),
    "iris-sgd-momentum": ("iris", dict(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.05)),
    "iris-sgd-nesterov": ("iris", dict(solver="sgd", learning_rate_init=0.05)),
    "iris-adam": ("iris", dict(solver="adam", learning_rate_init=0.01)),
    "digits-sgd-nesterov": ("digits", dict(solver="sgd", learning_rate_init=0.05, hidden_layer_sizes=(16,))),
    "digits-adam": ("digits", dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(16,))),
    "binary-sgd-momentum": ("binary", dict(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.01)),
    "binary-adam-tanh": ("binary", dict(solver="adam", activation="tanh", learning_rate_init=0.005)),
    "multilabel-sgd-logistic": ("multilabel", dict(solver="sgd", activation="logistic", learning_rate_init=0.1)),
    "multilabel-adam-logistic": ("multilabel", dict(solver="adam", activation="logistic", learning_rate_init=0.01)),
    "multioutput-sgd": ("multioutput", dict(solver="sgd", learning_rate_init=0.01, hidden_layer_sizes=(32,))),
    "multioutput-adam": ("multioutput", dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(32,))),
    "poisson-adam": ("poisson", dict(loss="poisson", solver="adam", learning_rate_init=0.01)),
    "two-layers-identity": ("iris", dict(solver="adam", activation="identity", hidden_layer_sizes=(6, 5),
                                         learning_rate_init=0.01, alpha=0.1)),
    "uneven-last-batch": ("iris", dict(solver="sgd", batch_size=40, learning_rate_init=0.05)),
    "full-batch": ("iris", dict(solver="adam", batch_size="auto", learning_rate_init=0.01)),
    "no-shuffle": ("binary", dict(solver="sgd", shuffle=False, learning_rate_init=0.01)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loss_curve_matches_sklearn(case):
    name, settings = CASES[case]
    assert_same_run(*fit_both(name, **settings))


# -- schedules: the rate changes, and SGD's momentum must follow scikit-learn's velocity ---------------------------
def test_invscaling_with_momentum_matches_sklearn():
    # scikit-learn's velocity holds the rate; microdl's buffer is rescaled by γ_old/γ_new between epochs.
    reference, candidate = fit_both("iris", solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                                    power_t=0.25)
    assert_same_run(reference, candidate)
    assert candidate._learning_rate_init() * candidate._schedule.scale == pytest.approx(
        reference._optimizer.learning_rate, rel=1e-12)


def test_adaptive_with_momentum_matches_sklearn():
    # tol this large makes every epoch after the first fail it: the rate drops by 5 every 3 epochs until it is at
    # most 1e-6, then training stops.
    reference, candidate = fit_both("iris", solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                                    tol=0.05, n_iter_no_change=2)
    assert reference.n_iter_ < 50  # it stopped on the rule, after several drops
    assert_same_run(reference, candidate)
    assert candidate._learning_rate_init() * candidate._schedule.scale == pytest.approx(
        reference._optimizer.learning_rate, rel=1e-12)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_adam_ignores_learning_rate_as_sklearn_does(learning_rate):
    reference, candidate = fit_both("iris", solver="adam", learning_rate=learning_rate, learning_rate_init=0.01,
                                    tol=0.05, n_iter_no_change=2)
    assert reference.n_iter_ < 50  # 'adaptive' stops Adam where 'constant' would
    assert_same_run(reference, candidate)


# -- the stopping rule and early stopping: the same split, the same scores ----------------------------------------
def test_stopping_rule_matches_sklearn():
    reference, candidate = fit_both("iris", solver="adam", learning_rate_init=0.01, tol=1e-3, n_iter_no_change=3,
                                    max_iter=200)
    assert reference.n_iter_ < 200
    assert_same_run(reference, candidate)


@pytest.mark.parametrize("name", ["binary", "iris", "multilabel", "multioutput"])
def test_early_stopping_matches_sklearn(name):
    # binary targets are split stratified, the others not; the best epoch's weights are restored
    reference, candidate = fit_both(name, solver="adam", learning_rate_init=0.01, early_stopping=True,
                                    validation_fraction=0.2, n_iter_no_change=5, max_iter=100)
    assert_same_run(reference, candidate)


def test_sample_weight_matches_sklearn():
    X, y = dataset("iris")
    weights = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    assert_same_run(*fit_both("iris", solver="sgd", learning_rate_init=0.05, sample_weight=weights))
    assert_same_run(*fit_both("iris", solver="adam", learning_rate_init=0.01, sample_weight=weights,
                              early_stopping=True, n_iter_no_change=5))


# -- continuing: partial_fit and warm_start --------------------------------------------------------------------------
def test_partial_fit_matches_sklearn():
    # issue 13: ten partial_fit calls with adam on digits reached 0.68 accuracy against scikit-learn's 0.82.
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    settings = dict(hidden_layer_sizes=(32,), random_state=0)
    reference, candidate = SkMLPClassifier(**settings), MLPClassifier(**settings)
    for _ in range(10):
        reference.partial_fit(X, y, classes=np.arange(10))
        candidate.partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_allclose(candidate.loss_curve_, reference.loss_curve_, rtol=RTOL)
    np.testing.assert_allclose(candidate.coefs_[0], reference.coefs_[0], rtol=RTOL, atol=1e-9)
    assert candidate.score(X, y) == reference.score(X, y)


def test_warm_start_matches_sklearn():
    X, y = dataset("iris")
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, max_iter=10, warm_start=True,
                    random_state=0)
    reference, candidate = SkMLPClassifier(**settings), MLPClassifier(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(3):
            reference.fit(X, y)
            candidate.fit(X, y)
    assert len(candidate.loss_curve_) == 30
    assert_same_run(reference, candidate)


# -- L-BFGS ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["iris", "binary", "poisson"])
def test_lbfgs_matches_sklearn(name):
    # For a single output (and for classification) microdl hands SciPy the same loss and gradient as scikit-learn,
    # so L-BFGS takes the same iterates: the same iteration count, loss and weights.
    reference, candidate = fit_both(name, solver="lbfgs", max_iter=30,
                                    **({"loss": "poisson"} if name == "poisson" else {}))
    assert candidate.n_iter_ == reference.n_iter_
    assert candidate.loss_ == pytest.approx(reference.loss_, rel=RTOL)
    assert candidate.loss_curve_[-1] == pytest.approx(candidate.loss_, rel=1e-12)
    for ours, theirs in zip(candidate.coefs_ + candidate.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


# -- weights assigned to an unfitted estimator (scikit-learn's test_fit) --------------------------------------
def _assign_weights(est, n_features, rng):
    # what scikit-learn's test_fit sets, on a 2-hidden-unit network: the lists first, filled in place after
    est.coefs_ = [0] * 2
    est.intercepts_ = [0] * 2
    est.coefs_[0] = rng.normal(size=(n_features, 2))
    est.coefs_[1] = rng.normal(size=(2, 1))
    est.intercepts_[0] = rng.normal(size=2)
    est.intercepts_[1] = rng.normal(size=1)
    est.n_outputs_, est.n_layers_, est.n_features_in_, est.out_activation_ = 1, 3, n_features, "logistic"
    est.n_iter_, est.t_, est.loss_curve_, est.best_loss_, est._no_improvement_count = 0, 0, [], np.inf, 0
    est.validation_scores_ = est.best_validation_score_ = None


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_assigned_weights_train_as_in_sklearn(how):
    X, y = dataset("binary")
    settings = dict(hidden_layer_sizes=2, solver="sgd", learning_rate_init=0.05, activation="logistic", max_iter=5,
                    random_state=0, warm_start=how == "warm_start")
    reference, candidate = SkMLPClassifier(**settings), MLPClassifier(**settings)
    for est in (reference, candidate):
        _assign_weights(est, X.shape[1], np.random.RandomState(3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.partial_fit(X, y, classes=[0, 1]) if how == "partial_fit" else est.fit(X, y)
    assert len(candidate.loss_curve_) == (1 if how == "partial_fit" else 5)
    assert_same_run(reference, candidate)


def test_assigned_weights_are_discarded_by_a_cold_fit_and_checked():
    X, y = dataset("binary")
    cold = MLPClassifier(hidden_layer_sizes=2, max_iter=3, random_state=0)
    _assign_weights(cold, X.shape[1], np.random.RandomState(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X, y)
        plain = MLPClassifier(hidden_layer_sizes=2, max_iter=3, random_state=0).fit(X, y)
    for ours, theirs in zip(cold.coefs_ + cold.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(ours, theirs)  # as scikit-learn: fit without warm_start starts afresh
    wrong = MLPClassifier(hidden_layer_sizes=3, warm_start=True)
    _assign_weights(wrong, X.shape[1], np.random.RandomState(3))
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have the shape"):
        wrong.fit(X, y)
