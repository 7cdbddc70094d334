"""scikit-learn's contract, checked against scikit-learn itself: the same parameters and defaults, every value it
accepts accepted with the same meaning, its errors and warnings word for word (naming the user's own labels),
L-BFGS, assignable weights, and what happens on divergence."""

import copy
import inspect
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    generate_valid_param,
    make_constraint,
)

import microdl.sklearn
from microdl._cuda_support import CudaUnavailableError, require_cuda
from microdl.sklearn import MLPClassifier, MLPRegressor

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_IRIS = StandardScaler().fit_transform(X_IRIS)
PAIRS = [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)]


def _y_for(estimator_class):
    return Y_IRIS if estimator_class in (MLPClassifier, SkMLPClassifier) else X_IRIS[:, 0] ** 2


# -- the parameters --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["classifier", "regressor"])
def test_signature_and_defaults_are_sklearns(ours, theirs):
    mine, reference = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    # the same names in the same order and of the same kind (MLPRegressor's first positional one is `loss`) ...
    assert [(p.name, p.kind) for p in mine.values()][: len(reference)] == [
        (p.name, p.kind) for p in reference.values()]
    # microdl's own, after scikit-learn's (class_weight: the classifier only; those beyond scikit-learn off by
    # default, NOTE [beyond scikit-learn])
    extra = ["device", "dtype", "activation_params", *(["loss_params"] if ours is MLPRegressor else []), "backend",
             *(["class_weight"] if ours is MLPClassifier else []), "early_stopping_metric", "lr_schedule",
             "clip_grad_norm", "clip_grad_value", "callbacks", "progress", "dropout"]
    assert list(mine)[len(reference):] == extra
    # ... and the same defaults, but for learning_rate_init (None: the solver's own rate, 0.001 for sgd and adam)
    differ = {name for name, p in reference.items() if mine[name].default != p.default}
    assert differ == {"learning_rate_init"}
    assert ours()._learning_rate_init() == theirs().learning_rate_init


def _valid_values():
    """(parameter, value) for every constraint of scikit-learn's MLPClassifier, plus values the issue names."""
    cases = []
    for name, constraints in SkMLPClassifier._parameter_constraints.items():
        for constraint in constraints:
            cases.append((name, generate_valid_param(make_constraint(constraint))))
    cases += [("verbose", 10), ("n_iter_no_change", np.inf), ("hidden_layer_sizes", 5), ("hidden_layer_sizes", []),
              ("hidden_layer_sizes", (np.int64(3), 2)), ("batch_size", np.int64(16)), ("alpha", np.float32(1e-3)),
              ("solver", "sgd"), ("solver", "lbfgs"), ("activation", "logistic"), ("activation", "tanh"),
              ("learning_rate", "adaptive"), ("validation_fraction", 0.3)]
    return cases


# What a value needs to have any effect (scikit-learn ignores some parameters for some solvers).
CONTEXT = {"momentum": {"solver": "sgd"}, "nesterovs_momentum": {"solver": "sgd"}, "power_t": {"solver": "sgd"},
           "learning_rate": {"solver": "sgd", "learning_rate_init": 0.1}, "max_fun": {"solver": "lbfgs"},
           "validation_fraction": {"early_stopping": True}, "n_iter_no_change": {"tol": 0.5}}


@pytest.mark.parametrize("name, value", _valid_values(), ids=lambda v: repr(v)[:20])
def test_every_value_sklearn_accepts_means_the_same(name, value, capsys):
    settings = {"hidden_layer_sizes": (4,), "max_iter": 4, "batch_size": 50, "random_state": 0,
                **CONTEXT.get(name, {}), name: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning
        reference = SkMLPClassifier(**copy.deepcopy(settings)).fit(X_IRIS, Y_IRIS)
        printed = capsys.readouterr().out
        candidate = MLPClassifier(**copy.deepcopy(settings)).fit(X_IRIS, Y_IRIS)
    assert capsys.readouterr().out == printed
    assert candidate.n_iter_ == reference.n_iter_
    assert candidate.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    for a, b in zip(candidate.coefs_, reference.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def _invalid_values():
    cases = []
    for name, constraints in SkMLPClassifier._parameter_constraints.items():
        for constraint in constraints:
            try:
                cases.append((name, generate_invalid_param_val(make_constraint(constraint))))
            except NotImplementedError:
                pass
    return cases + [("shuffle", "yes"), ("random_state", "0"), ("hidden_layer_sizes", "10")]


@pytest.mark.parametrize("name, value", _invalid_values(), ids=lambda v: repr(v)[:20])
def test_every_value_sklearn_refuses_is_refused_with_its_message(name, value):
    errors = []
    for estimator in (SkMLPClassifier(**{name: value}), MLPClassifier(**{name: value})):
        with pytest.raises(InvalidParameterError) as info:
            estimator.fit(X_IRIS, Y_IRIS)
        errors.append(str(info.value))
    if name in ("activation", "solver", "learning_rate_init"):  # microdl takes more: the lists differ, not the start
        errors = [e.split(" must be ")[0] for e in errors]
    assert errors[1] == errors[0]


def test_hidden_layer_sizes_message():
    for estimator in (SkMLPClassifier(hidden_layer_sizes=(4, 0)), MLPClassifier(hidden_layer_sizes=(4, 0))):
        with pytest.raises(ValueError, match=r"^hidden_layer_sizes must be > 0, got \[4, 0\]\.$"):
            estimator.fit(X_IRIS, Y_IRIS)


@pytest.mark.parametrize("bad, match", [({"dtype": "int8"}, "dtype"), ({"device": "tpu"}, "device"),
                                        ({"solver": "lion"}, "solver"), ({"loss": "cross_entropy"}, "loss"),
                                        ({"activation": "swish"}, "activation"), ({"backend": "jax"}, "backend")])
def test_microdls_own_parameters_are_declared(bad, match):
    estimator = MLPRegressor(**bad)  # __init__ only stores
    with pytest.raises(InvalidParameterError, match=f"'{match}' parameter of MLPRegressor"):
        estimator.fit(X_IRIS, X_IRIS[:, 0])


# -- L-BFGS ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["classifier", "regressor"])
def test_lbfgs_has_no_partial_fit(ours, theirs):
    assert not hasattr(ours(solver="lbfgs"), "partial_fit")
    assert hasattr(ours(solver="sgd"), "partial_fit") and hasattr(ours(solver="rmsprop"), "partial_fit")
    if theirs is SkMLPClassifier:  # scikit-learn 1.9's regressor keeps it by mistake (module docstring)
        assert not hasattr(theirs(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match=f"^This '{ours.__name__}' has no attribute 'partial_fit'$"):
        ours(solver="lbfgs").partial_fit(X_IRIS, _y_for(ours))


@pytest.mark.parametrize("max_iter, max_fun", [(5, 15000), (200, 8)])
def test_lbfgs_limits_and_convergence_warning_are_sklearns(max_iter, max_fun):
    # max_iter bounds the iterations and max_fun the loss evaluations; the warning is scikit-learn's, word for word
    messages, results = [], []
    for estimator in (SkMLPClassifier, MLPClassifier):
        with pytest.warns(ConvergenceWarning) as record:
            fitted = estimator((8,), solver="lbfgs", max_iter=max_iter, max_fun=max_fun, random_state=0).fit(
                X_IRIS, Y_IRIS)
        messages.append([str(w.message) for w in record if w.category is ConvergenceWarning])
        results.append(fitted)
    assert messages[1] == messages[0]
    reference, candidate = results
    assert candidate.n_iter_ == reference.n_iter_ <= max_iter
    assert len(candidate.loss_curve_) == candidate.n_iter_
    assert candidate.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    assert candidate.t_ == reference.t_ == 0  # scikit-learn counts no samples for lbfgs
    assert not hasattr(candidate, "best_loss_") and not hasattr(candidate, "validation_scores_")


def test_lbfgs_tol_is_the_gradient_tolerance():
    # a loose tol stops early, converged: no warning, as in scikit-learn
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reference = SkMLPClassifier((8,), solver="lbfgs", tol=1e-2, random_state=0).fit(X_IRIS, Y_IRIS)
        candidate = MLPClassifier((8,), solver="lbfgs", tol=1e-2, random_state=0).fit(X_IRIS, Y_IRIS)
    assert candidate.n_iter_ == reference.n_iter_ < 200


def test_lbfgs_warm_start_and_sample_weight():
    weights = np.linspace(0.5, 2.0, len(Y_IRIS))
    settings = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = SkMLPClassifier(**settings).fit(X_IRIS, Y_IRIS, sample_weight=weights)
        candidate = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS, sample_weight=weights)
        reference.fit(X_IRIS, Y_IRIS, sample_weight=weights)
        candidate.fit(X_IRIS, Y_IRIS, sample_weight=weights)
    assert candidate.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    assert len(candidate.loss_curve_) == 20


def test_lbfgs_is_cpu_only():
    with pytest.raises(ValueError, match="lbfgs.*CPU only"):
        MLPClassifier(solver="lbfgs", device="cuda").fit(X_IRIS, Y_IRIS)


# -- assignable weights ------------------------------------------------------------------------------------------------
def _fitted_pair(**settings):
    settings = {"hidden_layer_sizes": (8,), "max_iter": 5, "random_state": 0, **settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SkMLPClassifier(**settings).fit(X_IRIS, Y_IRIS), MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)


def test_assigned_weights_are_used_by_predict_and_partial_fit():
    reference, candidate = _fitted_pair(random_state=1)
    donor = SkMLPClassifier((8,), max_iter=50, random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        donor.fit(X_IRIS, Y_IRIS)
    for estimator in (reference, candidate):  # whole lists, as scikit-learn users set them
        estimator.coefs_ = [W.copy() for W in donor.coefs_]
        estimator.intercepts_ = [b.copy() for b in donor.intercepts_]
    np.testing.assert_allclose(candidate.predict_proba(X_IRIS), donor.predict_proba(X_IRIS), rtol=1e-12)
    for estimator in (reference, candidate):  # item assignment, and writes into an item
        estimator.coefs_[1] = estimator.coefs_[1] * 0.5
        estimator.intercepts_[0][0] += 1.0
    np.testing.assert_allclose(candidate.predict_proba(X_IRIS), reference.predict_proba(X_IRIS), rtol=1e-12)
    reference.partial_fit(X_IRIS, Y_IRIS)
    candidate.partial_fit(X_IRIS, Y_IRIS)
    np.testing.assert_allclose(candidate.coefs_[0], reference.coefs_[0], rtol=1e-9)


def test_weights_keep_their_shapes_and_copies_are_lists():
    _, candidate = _fitted_pair()
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have the shape .*\(4, 8\)"):
        candidate.coefs_[0] = np.zeros((4, 9))
    with pytest.raises(ValueError, match="intercepts_ must hold 2 arrays"):
        candidate.intercepts_ = [np.zeros(8)]
    assert type(copy.deepcopy(candidate.coefs_)) is list
    assert not hasattr(MLPClassifier(), "coefs_")


# -- errors and warnings: scikit-learn's text, the user's labels ------------------------------------------------------
def test_too_few_members_names_the_users_labels():
    # scikit-learn's message names its encoded column ('True'), as its own test_mlp expects; the user's label follows
    labels = np.array(["cat"] * 20 + ["dog"])
    X = np.random.RandomState(0).normal(size=(21, 3))
    with pytest.raises(ValueError, match=r"^The least populated classes in y have only 1 member.*: \['True'\] "
                                         r"\(in the labels of y: \['dog'\]\)$"):
        MLPClassifier(early_stopping=True, random_state=0).fit(X, labels)


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["classifier", "regressor"])
def test_warnings_and_errors_are_sklearns(ours, theirs):
    y = _y_for(ours)
    for kwargs, category in [({"max_iter": 2}, ConvergenceWarning), ({"batch_size": 1000, "max_iter": 1}, UserWarning)]:
        messages = []
        for estimator in (theirs, ours):
            with pytest.warns(category) as record:
                estimator(hidden_layer_sizes=(4,), random_state=0, **kwargs).fit(X_IRIS, y)
            messages.append(sorted(str(w.message) for w in record))
        assert messages[1] == messages[0]
    for kwargs, fit in [({"early_stopping": True, "validation_fraction": 0.005}, "fit"),
                        ({"early_stopping": True}, "partial_fit")]:
        errors = []
        for estimator in (theirs, ours):
            with pytest.raises(ValueError) as info:
                extra = {"classes": np.arange(3)} if fit == "partial_fit" and ours is MLPClassifier else {}
                getattr(estimator(hidden_layer_sizes=(4,), random_state=0, **kwargs), fit)(X_IRIS, y, **extra)
            errors.append(str(info.value))
        assert errors[1] == errors[0]


def test_verbose_output_is_sklearns(capsys):
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                    early_stopping=True, tol=0.2, n_iter_no_change=2, max_iter=30, random_state=0, verbose=True)
    SkMLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    printed = capsys.readouterr().out
    MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    assert capsys.readouterr().out == printed
    assert "Setting learning rate to" in printed and "Validation score:" in printed


def test_interrupt_warns_and_keeps_the_epochs_done(monkeypatch):
    # scikit-learn catches KeyboardInterrupt in its epoch loop, warns, and keeps what it has
    record = microdl.sklearn._StochasticRecord.on_epoch_end

    def interrupted_in_epoch_3(self, *args):
        if self.est.n_iter_ == 2:
            raise KeyboardInterrupt
        return record(self, *args)

    monkeypatch.setattr(microdl.sklearn._StochasticRecord, "on_epoch_end", interrupted_in_epoch_3)
    with pytest.warns(UserWarning, match=r"^Training interrupted by user\.$"):
        clf = MLPClassifier((4,), max_iter=10, random_state=0).fit(X_IRIS, Y_IRIS)
    assert clf.n_iter_ == len(clf.loss_curve_) == 2
    assert clf.score(X_IRIS, Y_IRIS) > 0


# -- divergence --------------------------------------------------------------------------------------------------------
def _diverging():
    X, y = make_regression(n_samples=100, n_features=4, random_state=0)
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=20,
                    random_state=0)
    return X, y * 100, settings


def test_divergence_raises_sklearns_error_with_finite_weights():
    X, y, settings = _diverging()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's overflow warnings and ConvergenceWarning
        with pytest.raises(ValueError) as reference:
            SkMLPRegressor(**settings).fit(X, y)
        candidate = MLPRegressor(**settings)
        with pytest.raises(ValueError) as info:
            candidate.fit(X, y)
    assert str(info.value).startswith(str(reference.value))
    assert "diverged" in str(info.value)
    assert all(np.all(np.isfinite(a)) for a in candidate.coefs_ + candidate.intercepts_)


def test_divergence_with_early_stopping_keeps_the_best_weights():
    # scikit-learn scores a diverged epoch NaN and restores the best epoch's weights; so does microdl
    X, y, settings = _diverging()
    settings.update(early_stopping=True, learning_rate_init=0.5, n_iter_no_change=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SkMLPRegressor(**settings).fit(X, y)
        with pytest.warns(RuntimeWarning, match="diverged"):
            candidate = MLPRegressor(**settings).fit(X, y)
    diverged_at = candidate.n_iter_ - 1
    assert np.isnan(candidate.validation_scores_[-1]) and np.isnan(reference.validation_scores_[diverged_at])
    np.testing.assert_allclose(candidate.validation_scores_[:diverged_at], reference.validation_scores_[:diverged_at],
                               rtol=1e-6)
    assert candidate.best_validation_score_ == pytest.approx(reference.best_validation_score_, rel=1e-6)
    np.testing.assert_allclose(candidate.predict(X), reference.predict(X), rtol=1e-6)


# -- the GPU -----------------------------------------------------------------------------------------------------------
def test_cuda_device_matches_cpu():
    try:
        require_cuda()
    except CudaUnavailableError as exc:
        pytest.skip(f"needs a CUDA device: {exc}")
    gpu = MLPClassifier((8,), device="cuda", max_iter=20, random_state=0).fit(X_IRIS, Y_IRIS)
    cpu = MLPClassifier((8,), device="cpu", max_iter=20, random_state=0).fit(X_IRIS, Y_IRIS)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(gpu.coefs_[0], cpu.coefs_[0], rtol=1e-6, atol=1e-8)
    gpu.coefs_[0] = cpu.coefs_[0] * 2  # assignment reaches the device
    cpu.coefs_[0] = cpu.coefs_[0] * 2
    np.testing.assert_allclose(gpu.predict_proba(X_IRIS), cpu.predict_proba(X_IRIS), rtol=1e-9)
