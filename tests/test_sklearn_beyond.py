"""What the estimators offer beyond scikit-learn's MLP (NOTE [beyond scikit-learn] in microdl.sklearn): the
validation loss curve and early stopping on it, the per-epoch History, schedules, clipping, callbacks, the
progress bar, dropout, and microdl's activations and losses; each off by default, checked against outside
oracles (NumPy forward passes, scikit-learn's log_loss, an unclipped run) and tried with bad input."""

import inspect
import math
import warnings

import numpy as np
import pytest
from scipy.special import erf, expit, softmax
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import microdl.sklearn
from microdl.nn import MLP
from microdl.optim.schedules import MultiStepLR, ReduceLROnPlateau, make_schedule
from microdl.sklearn import MLPClassifier, MLPRegressor
from microdl.train import EarlyStopping, History

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_IRIS = StandardScaler().fit_transform(X_IRIS)
X_REG, Y_REG = make_regression(n_samples=150, n_features=4, noise=1.0, random_state=0)
Y_REG = Y_REG / 100
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
HAS_DROPOUT = "dropout" in inspect.signature(MLP).parameters
needs_dropout = pytest.mark.skipif(not HAS_DROPOUT, reason="microdl.nn.MLP does not take dropout= yet (the nn "
                                                          "branch adds it); the estimators pass it through then")

ACTIVATIONS = {  # outside oracles: each written here from its textbook formula
    "relu": lambda z: np.maximum(z, 0.0),
    "gelu": lambda z: 0.5 * z * (1.0 + erf(z / np.sqrt(2.0))),
    "silu": lambda z: z * expit(z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
}


def _forward(coefs, intercepts, X, activation, output):
    """A NumPy forward pass from the fitted arrays, written independently of microdl."""
    A = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        A = ACTIVATIONS[activation](A @ W + b)
    Z = A @ coefs[-1] + intercepts[-1]
    return {"softmax": lambda z: softmax(z, axis=1), "identity": lambda z: z}[output](Z)


class Recorder:
    """A callback that keeps what it sees, and can stop training at a given epoch."""

    def __init__(self, stop_at=None):
        self.stop_at, self.epochs, self.params, self.val_metric, self.started = stop_at, [], [], [], 0

    def on_fit_start(self, model, optimizer):
        self.started += 1
        self.initial = model.host_params()

    def on_epoch_end(self, epoch, history, model, optimizer):
        self.epochs.append(epoch)
        self.params.append(model.host_params())
        self.val_metric.append(history.val_metric[-1])
        return epoch == self.stop_at


def _layers(flat, sizes):
    from microdl.nn.layout import layer_views

    return layer_views(flat, sizes)


# -- the validation loss, and early stopping on it ----------------------------------------------------------------
@quiet
def test_validation_loss_curve_is_the_log_loss_on_the_split(monkeypatch):
    """Every entry of validation_loss_curve_ is scikit-learn's log_loss of the epoch's weights on the held-out
    rows, plus the penalty α/(2 n_val)‖W‖², computed here from a NumPy forward pass."""
    splits = []
    real_split = microdl.sklearn.train_test_split

    def recording_split(*arrays, **kwargs):
        parts = real_split(*arrays, **kwargs)
        splits.append(parts)
        return parts

    monkeypatch.setattr(microdl.sklearn, "train_test_split", recording_split)
    recorder = Recorder()
    clf = MLPClassifier((6,), alpha=0.01, early_stopping=True, max_iter=8, n_iter_no_change=100,
                        learning_rate_init=0.01, random_state=0, callbacks=[recorder]).fit(X_IRIS, Y_IRIS)
    X_val, y_val = splits[0][1], splits[0][5]
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ == 8
    sizes = clf._model.layer_sizes
    for flat, val_loss, score in zip(recorder.params, clf.validation_loss_curve_, clf.validation_scores_):
        coefs, intercepts = _layers(flat, sizes)
        proba = _forward(coefs, intercepts, X_val, "relu", "softmax")
        penalty = 0.01 / (2 * len(y_val)) * sum(float(np.sum(W**2)) for W in coefs)
        assert val_loss == pytest.approx(log_loss(y_val, proba, labels=clf.classes_) + penalty, rel=1e-10)
        assert score == pytest.approx(np.mean(clf.classes_[proba.argmax(axis=1)] == y_val))
    assert clf.best_validation_loss_ == min(clf.validation_loss_curve_)
    # the History says the same, and its val_metric is validation_scores_ (what a callback saw, too)
    np.testing.assert_allclose(clf.history_.val_loss, clf.validation_loss_curve_, rtol=1e-12)
    assert clf.history_.val_metric == clf.validation_scores_ == recorder.val_metric


@quiet
def test_validation_loss_of_multi_output_regression_is_on_the_scale_of_loss_curve(monkeypatch):
    """scikit-learn's squared error averages over outputs (half the mean squared error); so does the curve."""
    splits = []
    real_split = microdl.sklearn.train_test_split
    monkeypatch.setattr(microdl.sklearn, "train_test_split",
                        lambda *arrays, **kwargs: splits.append(real_split(*arrays, **kwargs)) or splits[-1])
    X, Y = make_regression(n_samples=120, n_features=4, n_targets=3, noise=1.0, random_state=1)
    Y = Y / 100
    recorder = Recorder()
    reg = MLPRegressor(hidden_layer_sizes=(6,), alpha=0.1, early_stopping=True, max_iter=4, random_state=0,
                       callbacks=[recorder]).fit(X, Y)
    X_val, Y_val = splits[0][1], splits[0][3]
    for flat, val_loss in zip(recorder.params, reg.validation_loss_curve_):
        coefs, intercepts = _layers(flat, reg._model.layer_sizes)
        prediction = _forward(coefs, intercepts, X_val, "relu", "identity")
        penalty = 0.1 / (2 * len(X_val)) * sum(float(np.sum(W**2)) for W in coefs)
        assert val_loss == pytest.approx(0.5 * np.mean((prediction - Y_val) ** 2) + penalty, rel=1e-10)


@quiet
def test_without_a_split_there_is_no_validation_curve():
    clf = MLPClassifier((6,), max_iter=3, random_state=0).fit(X_IRIS, Y_IRIS)
    assert clf.validation_loss_curve_ is None and clf.best_validation_loss_ is None
    assert all(math.isnan(v) for v in clf.history_.val_loss)
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0, early_stopping=True).fit(X_REG, Y_REG)
    assert len(reg.validation_loss_curve_) == 3
    assert not hasattr(MLPClassifier((6,), solver="lbfgs", max_iter=3).fit(X_IRIS, Y_IRIS), "validation_loss_curve_")


def _rule(curve, tol, patience):
    """scikit-learn's stopping rule, on a loss: the epoch (1-based) at which it stops, or None."""
    best, count = math.inf, 0
    for epoch, value in enumerate(curve, start=1):
        count = 0 if value <= best - tol else count + 1
        best = min(best, value)
        if count > patience:
            return epoch
    return None


def test_early_stopping_on_the_validation_loss(capsys):
    recorder = Recorder()
    settings = dict(hidden_layer_sizes=(16,), early_stopping=True, learning_rate_init=0.05, n_iter_no_change=5,
                    tol=1e-3, max_iter=300, random_state=0)
    clf = MLPClassifier(**settings, early_stopping_metric="loss", callbacks=[recorder], verbose=True)
    clf.fit(X_IRIS, Y_IRIS)
    printed = capsys.readouterr().out
    curve = clf.validation_loss_curve_
    assert clf.n_iter_ < 300 and clf.n_iter_ == _rule(curve, 1e-3, 5)
    best = int(np.argmin(curve))
    np.testing.assert_array_equal(clf._model.host_params(), recorder.params[best])  # the best loss's weights
    assert clf.best_validation_loss_ == curve[best] and clf.history_.best_epoch == best + 1
    assert "Validation loss did not improve more than tol=0.001000 for 5 consecutive epochs. Stopping." in printed
    assert f"Validation loss: {curve[0]:f}" in printed
    assert clf.history_.stop_reason == ("n_iter_no_change: Validation loss did not improve more than tol=0.001000 "
                                        "for 5 consecutive epochs. Stopping.")
    # the default watches the score, scikit-learn's rule: another stopping epoch on this problem
    by_score = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    assert by_score.n_iter_ != clf.n_iter_
    assert by_score.validation_scores_ == clf.validation_scores_[: by_score.n_iter_]
    assert by_score.history_.best_epoch == 1 + int(np.argmax(by_score.validation_scores_))


@quiet
def test_default_early_stopping_is_still_sklearns():
    settings = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=40, learning_rate_init=0.01,
                    random_state=0)
    ours = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    theirs = SkMLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# -- history_ -------------------------------------------------------------------------------------------------------
@quiet
def test_history_is_fits_record_over_every_epoch():
    clf = MLPClassifier((6,), batch_size=40, max_iter=5, random_state=0).fit(X_IRIS, Y_IRIS)
    h = clf.history_
    assert isinstance(h, History) and h.epochs == len(clf.loss_curve_) == 5
    np.testing.assert_allclose(h.train_loss, clf.loss_curve_, rtol=1e-12)
    steps = math.ceil(150 / 40)
    assert h.grad_evals == [steps * k for k in range(1, 6)] and h.samples_seen == [150 * k for k in range(1, 6)]
    assert h.lr == [0.001] * 5 and h.stop_reason == "max_epochs" and not h.diverged
    assert all(b >= a >= 0 for a, b in zip(h.wall_time, h.wall_time[1:]))
    # warm starts and partial_fit add to it, their counts continuing; a cold fit starts it again
    clf.set_params(warm_start=True, max_iter=2).fit(X_IRIS, Y_IRIS)
    clf.partial_fit(X_IRIS, Y_IRIS)
    h = clf.history_
    assert h.epochs == len(clf.loss_curve_) == 8
    assert h.grad_evals == [steps * k for k in range(1, 9)] and h.samples_seen[-1] == 8 * 150
    assert all(b >= a for a, b in zip(h.wall_time, h.wall_time[1:]))
    clf.set_params(warm_start=False).fit(X_IRIS, Y_IRIS)
    assert clf.history_.epochs == 2
    # L-BFGS: one entry per iteration, a gradient evaluation per loss evaluation
    lbfgs = MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=15, random_state=0).fit(X_REG, Y_REG)
    assert lbfgs.history_.epochs == len(lbfgs.loss_curve_) == lbfgs.n_iter_
    assert lbfgs.history_.grad_evals[-1] >= lbfgs.n_iter_


# -- lr_schedule ---------------------------------------------------------------------------------------------------
@quiet
@pytest.mark.parametrize("schedule", ["cosine", "CosineAnnealingLR", "step", "OneCycleLR"])
def test_a_named_schedule_spans_max_iter(schedule):
    clf = MLPClassifier((6,), solver="sgd", learning_rate_init=0.1, max_iter=12, random_state=0,
                        lr_schedule=schedule).fit(X_IRIS, Y_IRIS)
    expected = make_schedule(schedule, epochs=12)
    np.testing.assert_allclose(clf.history_.lr, [expected.lr_at(k, 0.1) for k in range(12)], rtol=1e-12)
    assert clf.lr_schedule == schedule


@quiet
def test_a_schedule_instance_is_copied_and_steps_through_partial_fit():
    schedule = MultiStepLR([2, 4], gamma=0.5)
    clf = MLPClassifier((6,), solver="adam", learning_rate_init=0.02, max_iter=6, random_state=0,
                        lr_schedule=schedule).fit(X_IRIS, Y_IRIS)
    assert clf.history_.lr == [0.02, 0.02, 0.01, 0.01, 0.005, 0.005]
    assert clf.get_params()["lr_schedule"] is schedule  # stored unchanged (scikit-learn's rule)
    incremental = MLPClassifier((6,), learning_rate_init=0.02, random_state=0, lr_schedule=schedule)
    for _ in range(6):
        incremental.partial_fit(X_IRIS, Y_IRIS, classes=np.unique(Y_IRIS))
    assert incremental.history_.lr == clf.history_.lr
    # a schedule with state starts afresh at every fit, and the parameter's own state is never touched
    plateau = ReduceLROnPlateau(factor=0.5, patience=0)
    est = MLPClassifier((6,), learning_rate_init=0.5, max_iter=30, random_state=0, lr_schedule=plateau)
    first = est.fit(X_IRIS, Y_IRIS).history_.lr
    assert min(first) < 0.5 and plateau._scale == 1.0 and math.isinf(plateau._best)
    assert est.fit(X_IRIS, Y_IRIS).history_.lr == first
    assert clone(est).fit(X_IRIS, Y_IRIS).history_.lr == first


@quiet
def test_a_constant_schedule_changes_nothing():
    settings = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.05, max_iter=10, random_state=0)
    plain = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    scheduled = MLPClassifier(**settings, lr_schedule="constant").fit(X_IRIS, Y_IRIS)
    assert scheduled.loss_curve_ == plain.loss_curve_
    np.testing.assert_array_equal(scheduled.coefs_[0], plain.coefs_[0])


def test_schedule_refusals():
    with pytest.raises(ValueError, match="learning_rate='invscaling' and lr_schedule='cosine' would both set"):
        MLPClassifier(solver="sgd", learning_rate="invscaling", lr_schedule="cosine").fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="learning_rate='adaptive' and lr_schedule="):  # adam too: ambiguous
        MLPClassifier(learning_rate="adaptive", lr_schedule=MultiStepLR([3])).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="lr_schedule needs a learning rate, and solver='lbfgs' has none"):
        MLPClassifier(solver="lbfgs", lr_schedule="cosine").fit(X_IRIS, Y_IRIS)
    with pytest.raises(InvalidParameterError, match="'lr_schedule' parameter of MLPRegressor must be a str among"):
        MLPRegressor(lr_schedule="cosin").fit(X_REG, Y_REG)
    with pytest.raises(InvalidParameterError, match="'lr_schedule' parameter"):
        MLPRegressor(lr_schedule=0.5).fit(X_REG, Y_REG)


# -- gradient clipping ----------------------------------------------------------------------------------------------
def _one_full_batch_step(**clip):
    """θ1 − θ0 of one plain SGD step on the full batch (so Δθ = −lr · g)."""
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((6,), solver="sgd", momentum=0.0, batch_size=150, learning_rate_init=0.1, shuffle=False,
                      max_iter=1, random_state=0, callbacks=[recorder], **clip).fit(X_IRIS, Y_IRIS)
    return recorder.params[0] - recorder.initial


def test_clipping_is_torchs_on_the_gradient():
    step = _one_full_batch_step()  # −lr · g, the oracle for the clipped steps
    lr = 0.1
    norm = float(np.linalg.norm(step / lr))
    assert norm > 0.05
    np.testing.assert_allclose(_one_full_batch_step(clip_grad_norm=0.05), step * 0.05 / norm, rtol=1e-5)
    np.testing.assert_allclose(_one_full_batch_step(clip_grad_norm=10 * norm), step, rtol=1e-12)
    value = 0.5 * float(np.max(np.abs(step / lr)))
    np.testing.assert_allclose(_one_full_batch_step(clip_grad_value=value), np.clip(step, -lr * value, lr * value),
                               rtol=1e-12, atol=1e-15)


def test_clipping_refusals():
    with pytest.raises(ValueError, match="clip_grad_norm applies to the stochastic solvers; solver='lbfgs'"):
        MLPClassifier(solver="lbfgs", clip_grad_norm=1.0).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="clip_grad_value applies to the stochastic solvers"):
        MLPRegressor(solver="lbfgs", clip_grad_value=1.0).fit(X_REG, Y_REG)
    for bad in (0.0, -1.0, "1", np.inf * 0):
        with pytest.raises(InvalidParameterError, match="'clip_grad_norm' parameter"):
            MLPClassifier(clip_grad_norm=bad).fit(X_IRIS, Y_IRIS)


# -- callbacks and the progress bar ---------------------------------------------------------------------------------
def test_a_callback_sees_every_epoch_and_can_stop_training():
    recorder = Recorder(stop_at=3)
    clf = MLPClassifier((6,), max_iter=50, random_state=0, callbacks=[recorder])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped by a callback: no convergence warning
        clf.fit(X_IRIS, Y_IRIS)
    assert recorder.epochs == [1, 2, 3] and clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.history_.stop_reason == "callback Recorder"
    np.testing.assert_array_equal(recorder.params[-1], clf._model.host_params())
    assert clf.get_params()["callbacks"][0] is recorder  # not copied: the user's object keeps what it saw
    # ... and with L-BFGS, one call per iteration
    lbfgs_recorder = Recorder()
    lbfgs = MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=7, random_state=0,
                         callbacks=(lbfgs_recorder,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lbfgs.fit(X_REG, Y_REG)
    assert lbfgs_recorder.epochs == list(range(1, lbfgs.n_iter_ + 1))


@quiet
def test_microdls_early_stopping_callback_watches_the_validation_loss():
    callback = EarlyStopping(patience=3, monitor="val_loss")
    clf = MLPClassifier((6,), early_stopping=True, n_iter_no_change=1000, max_iter=300, learning_rate_init=0.05,
                        random_state=0, callbacks=[callback]).fit(X_IRIS, Y_IRIS)
    assert clf.history_.stop_reason == "early_stopping" and clf.n_iter_ < 300
    assert callback.best == min(clf.history_.val_loss)


def test_callback_refusals():
    with pytest.raises(TypeError, match=r"callbacks\[1\] \(function\) has no on_epoch_end"):
        MLPClassifier(callbacks=[Recorder(), lambda *a: False]).fit(X_IRIS, Y_IRIS)
    with pytest.raises(InvalidParameterError, match="'callbacks' parameter"):
        MLPClassifier(callbacks=Recorder()).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss', but there is no validation data"):
        MLPClassifier(max_iter=2, callbacks=[EarlyStopping()]).fit(X_IRIS, Y_IRIS)


class FakeBar:
    made = []

    def __init__(self, total=None, **kwargs):
        self.total, self.kwargs, self.n, self.closed, self.postfix = total, kwargs, 0, False, None
        FakeBar.made.append(self)

    def update(self, k):
        self.n += k

    def set_postfix(self, shown):
        self.postfix = shown

    def close(self):
        self.closed = True


@quiet
def test_progress_draws_a_bar_over_the_epochs(monkeypatch, capsys):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    FakeBar.made = []
    MLPClassifier((6,), max_iter=4, random_state=0).fit(X_IRIS, Y_IRIS)
    assert FakeBar.made == []  # off by default
    clf = MLPClassifier((6,), max_iter=4, random_state=0, early_stopping=True, progress=True).fit(X_IRIS, Y_IRIS)
    (bar,) = FakeBar.made
    assert bar.total == 4 and bar.n == clf.n_iter_ == 4 and bar.closed and "val_loss" in bar.postfix
    assert capsys.readouterr().out == ""  # the printed lines stay verbose's, and off
    with pytest.raises(InvalidParameterError, match="'progress' parameter"):
        MLPClassifier(progress="yes").fit(X_IRIS, Y_IRIS)


# -- the parameters' contract -----------------------------------------------------------------------------------------
BEYOND = dict(early_stopping_metric="loss", lr_schedule=MultiStepLR([5]), clip_grad_norm=1.0, clip_grad_value=0.5,
              callbacks=[Recorder()], progress=False, dropout=0.0)


@quiet
def test_the_new_parameters_follow_sklearns_rules():
    est = MLPClassifier(**BEYOND)
    params = est.get_params()
    assert all(params[name] is value for name, value in BEYOND.items())  # __init__ stores them unchanged
    copy = clone(est)
    assert isinstance(copy.lr_schedule, MultiStepLR) and copy.lr_schedule is not BEYOND["lr_schedule"]
    est.set_params(clip_grad_norm=None, early_stopping_metric="score")
    assert est.get_params()["clip_grad_norm"] is None
    search = GridSearchCV(MLPClassifier((6,), max_iter=20, early_stopping=True, random_state=0),
                          {"early_stopping_metric": ["score", "loss"], "clip_grad_norm": [None, 1.0]}, cv=2)
    assert len(search.fit(X_IRIS, Y_IRIS).cv_results_["params"]) == 4
    with pytest.raises(InvalidParameterError, match="'early_stopping_metric' parameter of MLPClassifier must be a "
                                                    "str among {'score', 'loss'}"):
        MLPClassifier(early_stopping_metric="accuracy").fit(X_IRIS, Y_IRIS)


# -- dropout --------------------------------------------------------------------------------------------------------
@quiet
@pytest.mark.parametrize("off", [None, 0.0, 0, [0.0, 0.0], (0, 0)])
def test_no_dropout_builds_the_network_as_before(off):
    settings = dict(hidden_layer_sizes=(6, 5), max_iter=5, random_state=0)
    plain = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    other = MLPClassifier(**settings, dropout=off).fit(X_IRIS, Y_IRIS)
    assert other.loss_curve_ == plain.loss_curve_


def test_dropout_refusals_that_need_no_model():
    with pytest.raises(ValueError, match=r"one per hidden layer \(2 for hidden_layer_sizes=\(6, 5\)\); got 3"):
        MLPClassifier((6, 5), dropout=[0.1, 0.1, 0.1]).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match=r"dropout\[1\] must be a rate in \[0, 1\); got 1.0"):
        MLPClassifier((6, 5), dropout=[0.1, 1.0]).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="applies to hidden layers, and hidden_layer_sizes=\\[\\] has none"):
        MLPClassifier([], dropout=0.2).fit(X_IRIS, Y_IRIS)
    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(InvalidParameterError, match="'dropout' parameter"):
            MLPClassifier(dropout=bad).fit(X_IRIS, Y_IRIS)


@pytest.mark.skipif(HAS_DROPOUT, reason="microdl.nn.MLP takes dropout=: the estimators use it")
def test_dropout_without_the_models_support_says_so():
    with pytest.raises(ValueError, match=r"needs microdl.nn.MLP\(dropout=...\), which this version"):
        MLPClassifier(dropout=0.3).fit(X_IRIS, Y_IRIS)


@needs_dropout
@quiet
@pytest.mark.parametrize("dropout", [0.3, [0.3, 0.0]])
def test_dropout_trains_with_masks_and_predicts_without(dropout):
    settings = dict(hidden_layer_sizes=(16, 8), max_iter=30, learning_rate_init=0.01, random_state=0)
    plain = MLPClassifier(**settings).fit(X_IRIS, Y_IRIS)
    dropped = MLPClassifier(**settings, dropout=dropout).fit(X_IRIS, Y_IRIS)
    assert dropped.loss_curve_ != plain.loss_curve_  # the masks change training
    again = MLPClassifier(**settings, dropout=dropout).fit(X_IRIS, Y_IRIS)
    assert again.loss_curve_ == dropped.loss_curve_  # the same random_state, the same masks
    proba = dropped.predict_proba(X_IRIS)  # no mask at prediction: the plain forward pass of the weights
    np.testing.assert_allclose(proba, _forward(dropped.coefs_, dropped.intercepts_, X_IRIS, "relu", "softmax"),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(dropped.predict_proba(X_IRIS), proba)
    assert dropped.score(X_IRIS, Y_IRIS) > 0.8


@needs_dropout
def test_dropout_refusals_that_need_the_model():
    with pytest.raises(ValueError, match="solver='lbfgs' cannot take"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X_IRIS, Y_IRIS)
    clf = MLPClassifier((6,), max_iter=2, random_state=0, dropout=0.2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="differs from the rates the network was built with"):
        clf.set_params(dropout=0.5).fit(X_IRIS, Y_IRIS)


# -- microdl's activations and losses ------------------------------------------------------------------------------
@quiet
@pytest.mark.parametrize("activation", ["gelu", "silu", "elu"])
def test_each_added_activation_reaches_the_classifier(activation):
    clf = MLPClassifier((16,), activation=activation, max_iter=200, learning_rate_init=0.01, random_state=0)
    clf.fit(X_IRIS, Y_IRIS)
    np.testing.assert_allclose(clf.predict_proba(X_IRIS),
                               _forward(clf.coefs_, clf.intercepts_, X_IRIS, activation, "softmax"), rtol=1e-9,
                               atol=1e-12)
    assert clf.score(X_IRIS, Y_IRIS) > 0.9


@quiet
@pytest.mark.parametrize("loss, grad", [
    ("huber", lambda r: np.clip(r, -0.1, 0.1)),  # delta = 0.1
    ("absolute_error", np.sign),
])
def test_each_added_loss_reaches_the_regressor(loss, grad):
    params = {"delta": 0.1} if loss == "huber" else None
    reg = MLPRegressor(hidden_layer_sizes=(8,), loss=loss, loss_params=params, solver="sgd", momentum=0.0,
                       batch_size=150, shuffle=False, alpha=0.0, learning_rate_init=0.05, max_iter=1, random_state=0)
    recorder = Recorder()
    reg.set_params(callbacks=[recorder]).fit(X_REG, Y_REG)
    # the output layer's bias moved by −lr · mean ∂loss/∂prediction, that loss's own derivative
    coefs0, intercepts0 = _layers(recorder.initial, reg._model.layer_sizes)
    residual = _forward(coefs0, intercepts0, X_REG, "relu", "identity").ravel() - Y_REG
    step = reg.intercepts_[-1] - intercepts0[-1]
    np.testing.assert_allclose(step, -0.05 * np.mean(grad(residual)), rtol=1e-9)
    assert reg.out_activation_ == "identity"


_UNSET = object()


class RecordingMLP(MLP):
    """An MLP that takes ``dropout=`` and records what the estimator passed (and whether it passed it)."""

    passed: list = []

    def __init__(self, *args, dropout=_UNSET, **kwargs):
        RecordingMLP.passed.append(dropout)
        super().__init__(*args, **kwargs)


@quiet
@pytest.mark.parametrize("dropout, passed", [(None, _UNSET), (0, _UNSET), ([0.0, 0.0], _UNSET), (0.25, 0.25),
                                             (np.float32(0.5), 0.5), ([0.1, 0], [0.1, 0.0]),
                                             (np.array([0.0, 0.2]), [0.0, 0.2])])
def test_dropout_reaches_the_model_only_when_it_drops_something(monkeypatch, dropout, passed):
    monkeypatch.setattr(microdl.sklearn, "MLP", RecordingMLP)
    RecordingMLP.passed = []
    MLPClassifier((6, 5), max_iter=1, random_state=0, dropout=dropout).fit(X_IRIS, Y_IRIS)
    assert RecordingMLP.passed == [passed]
    assert type(RecordingMLP.passed[0]) is type(passed)


# scikit-learn's estimator checks, with microdl's own parameters set (fit must not change them, clones must
# give the same fits, ...): a schedule instance, clipping, a callback list
@parametrize_with_checks(
    [
        MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0,
                      lr_schedule=MultiStepLR([50]), clip_grad_norm=10.0, clip_grad_value=5.0, callbacks=[]),
        MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0,
                     lr_schedule=ReduceLROnPlateau(patience=3), clip_grad_norm=10.0, early_stopping_metric="loss"),
    ],
)
@quiet
def test_sklearn_estimator_checks_with_the_new_parameters(estimator, check):
    check(estimator)
