"""The scikit-learn estimators: scikit-learn's own estimator checks, use in pipelines and searches, the kinds of
target and input, copies, and microdl's own solvers. The run-for-run comparison with scikit-learn is in
test_sklearn_parity.py, its contract (parameters, messages, L-BFGS, weights, divergence) in
test_sklearn_contract.py."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from microdl.nn import MLP
from microdl.optim import OPTIMIZERS
from microdl.sklearn import DEFAULT_LEARNING_RATES, SOLVERS, MLPClassifier, MLPRegressor

IRIS = load_iris(return_X_y=True)
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _iris_scaled():
    X, y = IRIS
    return StandardScaler().fit_transform(X), y


# -- scikit-learn's estimator checks ---------------------------------------------------------------------------
def _expected_failed_checks(estimator):
    """Checks known to fail, with the reason (none at present: every check passes). Checks that scikit-learn
    itself skips because an optional dependency (pandas) is missing are reported as skipped by pytest."""
    return {}


# Small networks and a larger learning rate, so that the checks' 100-epoch fits still learn their toy problems;
# and L-BFGS, whose fit takes another path.
@parametrize_with_checks(
    [
        MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0),
        MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0),
        MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=100, random_state=0),
        MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=100, random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
@quiet
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- in scikit-learn's tools ------------------------------------------------------------------------------------
@quiet
def test_pipeline_with_rmsprop_on_digits():
    X, y = load_digits(return_X_y=True)
    model = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(solver="rmsprop", max_iter=20,
                                                                          random_state=0))])
    model.fit(X[:1200], y[:1200])
    assert model.score(X[1200:], y[1200:]) > 0.9
    assert model.named_steps["mlp"].n_iter_ == 20


@quiet
def test_grid_search_over_solver_and_learning_rate():
    X, y = _iris_scaled()
    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, batch_size=32, random_state=0),
                          {"solver": ["adam", "rmsprop", "sgd"], "learning_rate_init": [0.001, 0.01]}, cv=3)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_params_["learning_rate_init"] == 0.01  # 40 epochs are too few for 0.001
    assert search.best_score_ > 0.85


@quiet
def test_cross_val_score_equals_sklearns():
    # the same model, fold by fold (tests/test_sklearn_parity.py compares the runs themselves)
    X, y = load_wine(return_X_y=True)
    settings = dict(hidden_layer_sizes=(32,), max_iter=60, batch_size=32, random_state=0)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**settings)), X, y, cv=cv)
    theirs = cross_val_score(make_pipeline(StandardScaler(), SkMLPClassifier(**settings)), X, y, cv=cv)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.mean() > 0.9


# -- targets ----------------------------------------------------------------------------------------------------
@quiet
def test_multiclass_attributes_and_probabilities():
    X, y = _iris_scaled()
    clf = MLPClassifier((8, 6), max_iter=30, random_state=0).fit(X, y)
    assert isinstance(clf._model, MLP) and isinstance(clf._optimizer, OPTIMIZERS["adam"])
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert [W.shape for W in clf.coefs_] == [(4, 8), (8, 6), (6, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (6,), (3,)]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X), proba.argmax(axis=1))
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)


@quiet
def test_binary_with_string_labels():
    X, y = _iris_scaled()
    X, labels = X[y < 2], np.array(["setosa", "versicolor"])[y[y < 2]]
    clf = MLPClassifier((8,), max_iter=30, batch_size=20, learning_rate_init=0.01, random_state=0).fit(X, labels)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    np.testing.assert_array_equal(clf.classes_, ["setosa", "versicolor"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert clf.score(X, labels) > 0.95


@quiet
def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    clf = MLPClassifier((32,), max_iter=50, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    assert clf.predict(X).shape == Y.shape
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))


@quiet
def test_multi_output_regression():
    X, Y = make_regression(n_samples=300, n_features=6, n_targets=3, noise=1.0, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=150, random_state=0).fit(X, Y / 100)
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 3
    assert reg.predict(X).shape == (300, 3)
    assert reg.score(X, Y / 100) > 0.9
    single = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, Y[:, 0])
    assert single.predict(X).shape == (300,)


# -- input ------------------------------------------------------------------------------------------------------
@quiet
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_sparse_csr_matches_dense(Estimator):
    X, y = _iris_scaled()
    X[np.abs(X) < 0.5] = 0
    settings = dict(hidden_layer_sizes=(8,), max_iter=10, batch_size=32, random_state=0)
    dense = Estimator(**settings).fit(X, y)
    sparse = Estimator(**settings).fit(sp.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X))


@quiet
def test_float32_is_preserved_and_dtype_can_be_forced():
    X, y = _iris_scaled()
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    assert clf._model.dtype == np.float32 and clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32
    assert MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y).coefs_[0].dtype == np.float64
    forced = MLPClassifier((8,), max_iter=5, dtype="float32", random_state=0).fit(X, y)
    assert forced.coefs_[0].dtype == np.float32
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    reg.fit(X.astype(np.float32), y.astype(np.float32))
    assert reg.predict(X.astype(np.float32)).dtype == np.float32


def test_feature_names_in():
    pd = pytest.importorskip("pandas", reason="feature_names_in_ needs a DataFrame")
    X, y = _iris_scaled()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier((4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])


# -- reproducibility, copies ------------------------------------------------------------------------------------
@quiet
def test_random_state_makes_fits_reproducible():
    X, y = _iris_scaled()
    a = MLPClassifier((8,), max_iter=10, random_state=3).fit(X, y)
    b = MLPClassifier((8,), max_iter=10, random_state=3).fit(X, y)
    c = MLPClassifier((8,), max_iter=10, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@quiet
def test_pickle_keeps_model_and_solver_state():
    X, y = _iris_scaled()
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert copy._optimizer.params is copy._model.params  # the solver is bound to the unpickled buffer
    # The Adam moments and step count survive: the next partial_fit is the same on both.
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.coefs_[0], clf.coefs_[0])
    assert copy._optimizer.t == clf._optimizer.t


@quiet
def test_clone_and_params():
    clf = MLPClassifier((8,), solver="rmsprop", activation="logistic", device="cpu", dtype="float32")
    assert clf.get_params()["solver"] == "rmsprop"
    fitted = clone(clf).fit(*_iris_scaled())
    fresh = clone(fitted)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "n_iter_")
    with pytest.raises(NotFittedError):
        fresh.predict(_iris_scaled()[0])
    assert fitted._model.activation == "sigmoid"  # scikit-learn's 'logistic'
    assert fitted.set_params(alpha=0.5) is fitted and fitted.alpha == 0.5


def test_init_only_stores_and_fit_validates():
    clf = MLPClassifier(solver="lion", hidden_layer_sizes=(0,), momentum=-1)  # no error yet
    X, y = _iris_scaled()
    for bad, match in [({"solver": "lion"}, "solver"), ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
                       ({"momentum": 2.0}, "momentum"), ({"batch_size": 0}, "batch_size"),
                       ({"learning_rate": "cosine"}, "learning_rate"), ({"dtype": "int8"}, "dtype"),
                       ({"activation": "softmax"}, "activation"), ({"max_iter": 0}, "max_iter")]:
        with pytest.raises(ValueError, match=match):
            clf.set_params(**{**MLPClassifier().get_params(), **bad}).fit(X, y)


# -- weights as views -------------------------------------------------------------------------------------------
@quiet
def test_coefs_are_views_of_the_flat_buffer():
    X, y = _iris_scaled()
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    assert np.shares_memory(clf.coefs_[0], clf._model.params)
    before = clf.predict_proba(X)
    clf.intercepts_[-1][0] += 5.0
    assert not np.allclose(clf.predict_proba(X), before)
    with pytest.raises(AttributeError):
        _ = MLPClassifier().coefs_


# -- training semantics -----------------------------------------------------------------------------------------
@quiet
@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_learns(solver):
    X, y = _iris_scaled()
    clf = MLPClassifier((16,), solver=solver, max_iter=200, batch_size=32, random_state=0).fit(X, y)
    if solver == "lbfgs":  # no rate, and no solver state kept between fits (as in scikit-learn)
        assert clf._optimizer is None and solver not in DEFAULT_LEARNING_RATES
    else:
        assert isinstance(clf._optimizer, OPTIMIZERS[solver])
        assert clf._optimizer.lr == DEFAULT_LEARNING_RATES[solver]
    assert clf.score(X, y) > 0.85


def test_convergence_warning_at_max_iter_only():
    X, y = _iris_scaled()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier((8,), max_iter=100, tol=10.0, n_iter_no_change=2, random_state=0).fit(X, y)
    # The first epoch improves on best_loss_ = inf; after it the loss never improves by tol, so training stops
    # once n_iter_no_change + 1 = 3 more epochs have failed (scikit-learn's strict ">").
    assert clf.n_iter_ == 4


@quiet
def test_stopping_rule_and_record():
    X, y = _iris_scaled()
    clf = MLPClassifier((8,), max_iter=7, random_state=0).fit(X, y)
    assert len(clf.loss_curve_) == clf.n_iter_ == 7
    assert clf.t_ == 7 * len(X)
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_early_stopping_restores_best_weights():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = MLPClassifier((32,), early_stopping=True, n_iter_no_change=3, learning_rate_init=0.05, max_iter=200,
                        random_state=0)
    seen = {}
    score = clf._score

    def spy(X_val, y_val, sw_val):  # remember the validation split that early stopping uses
        seen["val"] = X_val, y_val
        return score(X_val, y_val, sw_val)

    clf._score = spy
    clf.fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert score(*seen["val"], None) == clf.best_validation_score_  # the best epoch's weights are back ...
    assert clf.validation_scores_[-1] < clf.best_validation_score_  # ... not the last epoch's (worse here)
    assert clf.t_ == clf.n_iter_ * (len(X) - seen["val"][0].shape[0])


@quiet
def test_warm_start_continues_and_cold_start_restarts():
    X, y = _iris_scaled()
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    first = list(clf.loss_curve_)
    clf.set_params(warm_start=True).fit(X, y)
    assert len(clf.loss_curve_) == 10 and clf.n_iter_ == 5 and clf.t_ == 10 * len(X)
    assert clf.loss_curve_[5] < first[0]  # continued from the trained weights
    clf.set_params(warm_start=False).fit(X, y)
    assert clf.loss_curve_ == first  # a cold fit starts over, identically
    with pytest.raises(ValueError, match="same classes"):
        clf.set_params(warm_start=True).fit(X[y < 2], y[y < 2])


def test_partial_fit_keeps_the_solver_state():
    X, y = _iris_scaled()
    settings = dict(hidden_layer_sizes=(8,), batch_size=32, shuffle=False, n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(max_iter=4, **settings).fit(X, y)
    incremental = MLPClassifier(**settings)
    for _ in range(4):
        incremental.partial_fit(X, y, classes=[0, 1, 2])
    # Four epochs of one fit (one Adam state throughout) equal four partial_fit calls only if the state is kept.
    np.testing.assert_allclose(incremental.coefs_[0], fitted.coefs_[0], rtol=1e-12)
    assert incremental._optimizer.t == 4 * 5 and incremental.n_iter_ == 1 and incremental.t_ == 4 * len(X)
    assert incremental.loss_curve_ == pytest.approx(fitted.loss_curve_, rel=1e-12)


def test_partial_fit_classes():
    X, y = _iris_scaled()
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    clf = MLPClassifier((8,), random_state=0).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.n_outputs_ == 3  # all classes from the start, though y had two
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, y).partial_fit(X, y)
    assert len(reg.loss_curve_) == 2 and reg._optimizer.t == 2


@quiet
def test_learning_rate_schedules():
    # scikit-learn applies learning_rate to sgd (its Adam ignores it); microdl's added solvers take it as sgd does
    X, y = _iris_scaled()
    inv = MLPClassifier((8,), solver="sgd", learning_rate="invscaling", power_t=0.5, max_iter=3,
                        random_state=0).fit(X, y)
    assert inv._optimizer.lr == pytest.approx(1e-3 / (2 * len(X) + 1) ** 0.5)  # the rate of the last epoch
    # 'adaptive': after the first epoch every epoch fails tol, so every n_iter_no_change + 1 = 2 epochs (after
    # epochs 3, 5, 7, 9, 11) the rate drops by 5 until it is at most 1e-6 (1e-3 → 2e-4 → 4e-5 → 8e-6 → 1.6e-6
    # → 3.2e-7); the next time (epoch 13) training stops.
    for solver in ("sgd", "rmsprop"):
        ada = MLPClassifier((8,), solver=solver, learning_rate="adaptive", learning_rate_init=1e-3, tol=1e9,
                            n_iter_no_change=1, max_iter=100, random_state=0).fit(X, y)
        assert ada.n_iter_ == 13
        assert ada._optimizer.lr == pytest.approx(3.2e-7)


@quiet
def test_sample_weight():
    X, y = _iris_scaled()
    keep = np.arange(len(X)) % 3 > 0
    weights = keep.astype(float)
    # Full-batch gradient descent: zero weights are the same as leaving the samples out.
    a = MLPClassifier((8,), solver="gd", max_iter=10, random_state=0).fit(X, y, sample_weight=weights)
    b = MLPClassifier((8,), solver="gd", max_iter=10, random_state=0).fit(X[keep], y[keep])
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-10, atol=1e-12)
    es = MLPClassifier((8,), early_stopping=True, max_iter=5, random_state=0).fit(X, y, sample_weight=weights + 1)
    assert len(es.validation_scores_) == es.n_iter_
    with pytest.raises(ValueError, match="(?i)negative"):
        MLPClassifier().fit(X, y, sample_weight=-weights)


# -- class_weight (beyond scikit-learn's MLP; as its linear models weigh classes) ------------------------------
def _imbalanced():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 4))
    y = np.array(["rare"] * 10 + ["common"] * 60 + ["mid"] * 20)
    X[y == "rare"] += 1.0
    return X, y


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("class_weight", ["balanced", {"rare": 5.0, "mid": 0.5}])
def test_class_weight_is_an_explicit_sample_weight(class_weight, solver):
    X, y = _imbalanced()
    settings = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=15, random_state=0)
    # the oracle: scikit-learn's helper, written out (balanced: n / (k * count); a dict: 1 for unnamed labels)
    labels, counts = np.unique(y, return_counts=True)
    table = (dict(zip(labels, len(y) / (len(labels) * counts))) if class_weight == "balanced"
             else {label: class_weight.get(label, 1.0) for label in labels})
    explicit = np.array([table[label] for label in y])
    rng_weights = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(class_weight=class_weight, **settings).fit(X, y)
        reference = MLPClassifier(**settings).fit(X, y, sample_weight=explicit)
        both = MLPClassifier(class_weight=class_weight, **settings).fit(X, y, sample_weight=rng_weights)
        reference_both = MLPClassifier(**settings).fit(X, y, sample_weight=explicit * rng_weights)
        plain = MLPClassifier(**settings).fit(X, y)
    for a, b in [(weighted, reference), (both, reference_both)]:
        np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
        for ours, theirs in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(ours, theirs)
    assert not np.allclose(weighted.coefs_[0], plain.coefs_[0])  # the weights change the fit


def test_class_weight_default_is_scikit_learns_and_partial_fit():
    X, y = _imbalanced()
    assert MLPClassifier().get_params()["class_weight"] is None
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="heavy").fit(X, y)
    # a dict in partial_fit: a batch may miss a class
    weights = {"rare": 3.0}
    a = MLPClassifier((4,), class_weight=weights, random_state=0).partial_fit(X[10:], y[10:], classes=np.unique(y))
    b = MLPClassifier((4,), random_state=0).partial_fit(X[10:], y[10:], classes=np.unique(y))
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])  # no 'rare' sample in the batch: nothing changes
    a.partial_fit(X, y)
    c = MLPClassifier((4,), random_state=0).partial_fit(X[10:], y[10:], classes=np.unique(y))
    c.partial_fit(X, y, sample_weight=np.where(y == "rare", 3.0, 1.0))
    np.testing.assert_array_equal(a.coefs_[0], c.coefs_[0])


def test_registered_activations_losses_and_the_numpy_backend():
    """The estimators take every registered activation and regression loss with their parameters, and train
    the same network on the textbook backend (backend='numpy') as on the kernels."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0)
    y = y / 100
    kwargs = dict(hidden_layer_sizes=(6,), activation="elu", activation_params={"alpha": 0.5}, loss="huber",
                  loss_params={"delta": 0.2}, max_iter=4, random_state=0, solver="adam")
    fast = MLPRegressor(**kwargs, backend="numba").fit(X, y)  # (a fit this small would take NumPy by itself)
    slow = MLPRegressor(**kwargs, backend="numpy").fit(X, y)
    np.testing.assert_allclose(slow.loss_curve_, fast.loss_curve_, rtol=1e-12)
    for a, b in zip(slow.coefs_, fast.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    assert fast._model.loss_params == {"delta": 0.2} and fast._model.activation_params == {"alpha": 0.5}
    assert MLPRegressor(loss="absolute_error", max_iter=2, random_state=0).fit(X, y).out_activation_ == "identity"
    assert MLPClassifier(activation="gelu", max_iter=2, random_state=0).fit(X, y > 0).score(X, y > 0) > 0.3
