"""The training loop: learning, full-batch GD, determinism, validation, early stopping, divergence (finite or
told), budgets, L-BFGS, scikit-learn's random stream, the whole-dataset loss, and every check before work."""

import math
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from microdl import config
from microdl.datasets import load_dataset
from microdl.nn import MLP
from microdl.optim import GD, LBFGS, SGD, Adam, Optimizer, make_optimizer
from microdl.train import DivergenceWarning, EarlyStopping, History, evaluate_loss, fit, score


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", random_state=0)


def _net(data, seed=0, **kwargs):
    return MLP((data.n_features, 16, data.n_outputs), loss=data.loss, random_state=seed, **kwargs)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamw"])
def test_iris_reaches_90_percent_test_accuracy(iris, optimizer):
    net = _net(iris)
    lr = {"sgd": 0.1, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01, "adagrad": 0.1, "adadelta": 1.0}[optimizer]
    opt = make_optimizer(optimizer, net.params, lr=lr, **({"momentum": 0.9} if optimizer == "sgd" else {}))
    history = fit(net, opt, iris.X_train, iris.y_train, epochs=60, batch_size=16, random_state=0)
    assert history.train_loss[-1] < history.train_loss[0]
    assert score(net, iris.X_test, net.encode_targets(iris.y_test)) >= 0.9


def test_gd_takes_one_full_batch_step_per_epoch(iris):
    net = _net(iris)
    opt = make_optimizer("gd", net.params, lr=0.5)
    history = fit(net, opt, iris.X_train, iris.y_train, epochs=5, batch_size=8, random_state=0)
    n = iris.X_train.shape[0]
    assert history.grad_evals == [1, 2, 3, 4, 5]
    assert history.samples_seen == [n * k for k in range(1, 6)]
    # One GD step is exactly θ - lr ∇L(θ) on the whole training set.
    net2 = _net(iris)
    net2.loss_and_grad(iris.X_train, iris.y_train)
    expected = net2.params - 0.5 * net2.grads
    net3 = _net(iris)
    fit(net3, make_optimizer("gd", net3.params, lr=0.5), iris.X_train, iris.y_train, epochs=1)
    np.testing.assert_allclose(net3.params, expected, rtol=1e-12, atol=1e-15)


def test_history_records_every_epoch(iris):
    net = _net(iris)
    h = fit(net, Adam(net.params, lr=0.01), iris.X_train, iris.y_train, epochs=4, batch_size=32,
            validation_data=(iris.X_test, iris.y_test), random_state=0)
    n = iris.X_train.shape[0]
    assert h.epochs == 4 and len(h.val_loss) == len(h.val_metric) == len(h.lr) == len(h.wall_time) == 4
    assert h.grad_evals == [math.ceil(n / 32) * k for k in range(1, 5)]
    assert h.samples_seen[-1] == 4 * n
    assert all(b > a for a, b in zip(h.wall_time, h.wall_time[1:]))
    assert 0 <= h.val_metric[-1] <= 1 and np.isfinite(h.val_loss).all()
    assert h.stop_reason == "max_epochs" and not h.diverged
    assert History.from_dict(h.to_dict()) == h


def test_same_random_state_gives_identical_results(iris):
    results = []
    for _ in range(2):
        net = _net(iris, seed=3)
        h = fit(net, SGD(net.params, lr=0.05, momentum=0.9), iris.X_train, iris.y_train, epochs=5,
                batch_size=10, random_state=11, validation_fraction=0.2)
        results.append((net.params.copy(), h.train_loss, h.val_loss))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1:] == results[1][1:]
    net = _net(iris, seed=3)
    fit(net, SGD(net.params, lr=0.05, momentum=0.9), iris.X_train, iris.y_train, epochs=5, batch_size=10,
        random_state=12, validation_fraction=0.2)
    assert not np.array_equal(net.params, results[0][0])


def test_loss_and_params_match_a_hand_written_loop(iris):
    """The loop's bookkeeping: epoch loss is the size-weighted mean of batch losses, steps use each batch."""
    net = _net(iris)
    h = fit(net, SGD(net.params, lr=0.1), iris.X_train, iris.y_train, epochs=2, batch_size=25, shuffle=False)
    ref = _net(iris)
    Y = ref.encode_targets(iris.y_train)
    n = len(Y)
    for epoch in range(2):
        total = 0.0
        for lo in range(0, n, 25):
            total += ref.loss_and_grad(iris.X_train[lo : lo + 25], Y[lo : lo + 25]) * len(Y[lo : lo + 25])
            ref.params -= 0.1 * ref.grads
        assert h.train_loss[epoch] == pytest.approx(total / n, rel=1e-12)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-12, atol=1e-14)


def test_early_stopping_restores_the_best_weights(iris):
    net = _net(iris)
    saved = {}

    class Spy:
        def on_epoch_end(self, epoch, history, model, optimizer):
            saved[epoch] = model.params.copy()
            return False

    stopper = EarlyStopping(patience=3)
    # A too-large learning rate makes the validation loss go up and down, so the best epoch is not the last.
    h = fit(net, SGD(net.params, lr=2.0), iris.X_train, iris.y_train, epochs=40, batch_size=8, random_state=0,
            validation_data=(iris.X_test, iris.y_test), callbacks=[Spy(), stopper])
    best = int(np.nanargmin(h.val_loss)) + 1
    assert h.best_epoch == best == stopper.best_epoch
    np.testing.assert_array_equal(net.params, saved[best])
    if h.stop_reason == "early_stopping":
        assert h.epochs == best + 3


def test_early_stopping_needs_validation_data_before_any_work(iris):
    net = _net(iris)
    before = net.params.copy()
    with pytest.raises(ValueError, match="no validation data"):
        fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=2, callbacks=[EarlyStopping()])
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match="patience must be >= 1"):
        EarlyStopping(patience=0)


def test_divergence_stops_with_a_clear_message_and_finite_weights(iris):
    net = _net(iris, seed=0)
    opt = SGD(net.params, lr=1e6)
    with pytest.warns(DivergenceWarning, match="diverged"):
        h = fit(net, opt, iris.X_train, iris.y_train, epochs=20, batch_size=4, random_state=0)
    assert h.diverged and "lr=1e+06" in h.stop_reason
    assert np.all(np.isfinite(net.params))
    assert h.epochs < 20


def test_callback_can_stop_and_budgets_stop(iris):
    net = _net(iris)

    class StopAtTwo:
        def on_epoch_end(self, epoch, history, model, optimizer):
            return epoch == 2

    h = fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=10, callbacks=[StopAtTwo()])
    assert h.epochs == 2 and h.stop_reason == "callback StopAtTwo"
    h = fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=100, batch_size=10, max_grad_evals=30)
    assert h.grad_evals[-1] >= 30 and h.grad_evals[-2] < 30 and h.stop_reason == "max_grad_evals"
    h = fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=10_000, max_time=0.2)
    assert h.stop_reason == "max_time" and h.epochs < 10_000


def test_schedule_and_clipping_are_applied(iris):
    net = _net(iris)
    opt = SGD(net.params, lr=0.1)
    h = fit(net, opt, iris.X_train, iris.y_train, epochs=6, schedule="step", clip_norm=0.5, random_state=0)
    assert h.lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])

    class GradNorm:
        def __init__(self):
            self.norms = []

    # With clip_norm, no step can move the parameters by more than lr * max_norm.
    net = _net(iris)
    before = net.params.copy()
    fit(net, SGD(net.params, lr=0.1), iris.X_train, iris.y_train, epochs=1, batch_size=len(iris.y_train),
        clip_norm=1e-3)
    assert np.linalg.norm(net.params - before) <= 0.1 * 1e-3 * (1 + 1e-9)


def test_sample_weight_zero_ignores_samples(iris):
    X, y = iris.X_train, iris.y_train
    w = np.ones(len(y))
    w[::2] = 0.0
    a, b = _net(iris), _net(iris)
    fit(a, SGD(a.params, lr=0.1), X, y, epochs=1, batch_size=None, sample_weight=w)
    fit(b, SGD(b.params, lr=0.1), X[1::2], y[1::2], epochs=1, batch_size=None)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-13)


def test_regression_and_float32(iris):
    data = load_dataset("diabetes", random_state=0, dtype="float32")
    net = MLP((data.n_features, 32, 1), loss="squared_error", dtype="float32", random_state=0)
    h = fit(net, Adam(net.params, lr=0.01), data.X_train, data.y_train, epochs=30, batch_size=32, random_state=0,
            validation_data=(data.X_test, data.y_test))
    assert net.params.dtype == np.float32
    assert h.val_metric[-1] > 0.2  # R² on held-out diabetes data (a linear model gets about 0.3-0.5 here)


def test_bad_arguments(iris):
    net = _net(iris)
    other = _net(iris)
    X, y = iris.X_train, iris.y_train
    with pytest.raises(ValueError, match="bound to model.params"):
        fit(net, Adam(other.params), X, y)
    with pytest.raises(TypeError, match="optimizer must be"):
        fit(net, "adam", X, y)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        fit(net, Adam(net.params), X, y, batch_size=0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit(net, Adam(net.params), X, y, epochs=0)
    with pytest.raises(ValueError, match="not both"):
        fit(net, Adam(net.params), X, y, validation_data=(X, y), validation_fraction=0.1)
    with pytest.raises(ValueError, match="validation_fraction"):
        fit(net, Adam(net.params), X, y, validation_fraction=1.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        fit(net, Adam(net.params), X, y, schedule="warmup")
    with pytest.raises(ValueError, match="X has 4 samples but y has 5"):
        fit(net, Adam(net.params), X[:4], y[:5])
    with pytest.raises(ValueError, match="clip_norm"):
        fit(net, Adam(net.params), X, y, clip_norm=-1.0)
    assert isinstance(Adam(net.params), Optimizer)


def test_progress_bar_runs_quietly(iris, capsys):
    net = _net(iris)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=3, progress=True)
    assert capsys.readouterr().out == ""


# -- finite or told ---------------------------------------------------------------------------------------------
def _ok(loss, dtype):
    return math.isfinite(loss) and abs(loss) <= float(np.finfo(dtype).max)


def _last_finite_state(net, opt, X, Y, batches, lrs=None):
    """The oracle of NOTE [finite or told]: step through the batches by hand, and stop at the last good state:
    weights and optimizer state finite, and its loss on its batch finite and within the dtype's range."""
    def state():
        return net.params.copy(), {k: v.copy() for k, v in opt.state.items()}, opt.t

    def restore(saved):
        net.params[...] = saved[0]
        for k, v in saved[1].items():
            opt.state[k][...] = v
        opt.t = saved[2]

    good = None  # the last state whose loss was fine
    for j, idx in enumerate(batches):
        if lrs is not None:
            opt.lr = lrs[j]
        if not _ok(net.loss_and_grad(X[idx], Y[idx]), net.dtype):
            if good is not None:
                restore(good)  # this state's loss is not fine: the one before it
            break
        good = state()
        opt.step(net.grads)
        if not (np.isfinite(net.params).all() and all(np.isfinite(v).all() for v in opt.state.values())):
            restore(good)
            break
    return state()


@pytest.mark.parametrize("epochs", [5, 6])
def test_a_diverging_float32_run_ends_finite_and_marked(epochs):
    """GD(lr=1) on diabetes in float32: the last update of the last epoch is the bad one (5 epochs), or the
    epoch starts from it (6); either way the run is marked diverged and its weights are finite."""
    data = load_dataset("diabetes", random_state=0, dtype="float32")
    net = MLP((10, 32, 1), loss="squared_error", dtype="float32", random_state=0)
    opt = GD(net.params, lr=1.0)
    with pytest.warns(DivergenceWarning, match="the last good weights and optimizer state"):
        h = fit(net, opt, data.X_train, data.y_train, epochs=epochs)
    assert h.diverged and h.stop_reason.startswith("diverged")
    assert np.isfinite(net.params).all() and np.isfinite(net.predict(data.X_test)).all()
    assert math.isfinite(evaluate_loss(net, data.X_train, data.y_train))  # a good state: its loss is finite too
    ref = MLP((10, 32, 1), loss="squared_error", dtype="float32", random_state=0)
    ref_opt = GD(ref.params, lr=1.0)
    n = len(data.y_train)
    params, _, t = _last_finite_state(ref, ref_opt, data.X_train, ref.encode_targets(data.y_train),
                                      [np.arange(n)] * epochs)
    np.testing.assert_array_equal(net.params, params)
    assert opt.t == t


def test_divergence_restores_the_exact_last_finite_state_mid_epoch(iris):
    net = _net(iris, seed=0)
    opt = SGD(net.params, lr=1e6, momentum=0.5)
    with pytest.warns(DivergenceWarning):
        h = fit(net, opt, iris.X_train, iris.y_train, epochs=20, batch_size=4, shuffle=False)
    assert h.diverged
    ref = _net(iris, seed=0)
    ref_opt = SGD(ref.params, lr=1e6, momentum=0.5)
    n = len(iris.y_train)
    batches = [np.arange(lo, min(lo + 4, n)) for lo in range(0, n, 4)] * 20
    params, state, t = _last_finite_state(ref, ref_opt, iris.X_train, ref.encode_targets(iris.y_train), batches)
    np.testing.assert_array_equal(net.params, params)
    for k in state:
        np.testing.assert_array_equal(opt.state[k], state[k])
    assert opt.t == t and t > 0


def test_divergence_at_an_epochs_first_batch_goes_back_into_the_epoch_before():
    """A bad loss at the first batch of an epoch condemns the state the previous epoch ended in: the run must
    replay that epoch, in its own shuffled order and at its own learning rate, to its last good state."""
    from microdl.optim.schedules import ExponentialLR

    data = load_dataset("iris", random_state=0, dtype="float32")
    n, where = len(data.y_train), set()
    for lr, batch_size, seed in [(30.0, 30, 1), (30.0, 40, 0), (100.0, 60, 2), (100.0, 30, 0)]:
        net = MLP((4, 8, 3), random_state=seed, dtype="float32")
        opt = SGD(net.params, lr=lr, momentum=0.5)
        with pytest.warns(DivergenceWarning):
            h = fit(net, opt, data.X_train, data.y_train, epochs=100, batch_size=batch_size,
                    random_state=np.random.RandomState(seed), schedule=ExponentialLR(0.9))
        assert h.diverged
        where.add("of the epoch before" in h.stop_reason)
        # the oracle: scikit-learn's stream of permutations, the schedule's rate per epoch, stepped by hand
        rs, order, batches, lrs = np.random.RandomState(seed), np.arange(n), [], []
        for epoch in range(100):
            order = order[rs.permutation(n)]
            for lo in range(0, n, batch_size):
                batches.append(order[lo : lo + batch_size])
                lrs.append(lr * 0.9**epoch)
        ref = MLP((4, 8, 3), random_state=seed, dtype="float32")
        ref_opt = SGD(ref.params, lr=lr, momentum=0.5)
        params, state, t = _last_finite_state(ref, ref_opt, data.X_train, ref.encode_targets(data.y_train),
                                              batches, lrs)
        np.testing.assert_array_equal(net.params, params)
        np.testing.assert_array_equal(opt.state["b"], state["b"])
        assert opt.t == t
    assert where == {True, False}  # both paths taken: into the epoch before, and within the epoch


def test_a_loss_beyond_float32_counts_as_divergence():
    """Inputs near 1e20 are finite float32, but the float32 loss is not: the run is stopped at once."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 3)) * 1e20).astype(np.float32)
    net = MLP((3, 4, 1), loss="squared_error", dtype="float32", random_state=0)
    before = net.params.copy()
    with pytest.warns(DivergenceWarning, match="training loss became"):
        h = fit(net, SGD(net.params, lr=1e-3), X, rng.normal(size=64), epochs=3)
    assert h.diverged and h.epochs == 0
    np.testing.assert_array_equal(net.params, before)


# -- the whole-dataset loss --------------------------------------------------------------------------------------
def test_evaluate_loss_counts_the_penalty_once_over_many_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10_000, 20)), rng.integers(0, 3, 10_000)
    net = MLP((20, 16, 3), alpha=1.0, random_state=0)
    whole = net.loss_and_grad(X, y)  # one batch of every row
    assert config.EVAL_CHUNK < 10_000
    assert evaluate_loss(net, X, y) == pytest.approx(whole, rel=1e-12)
    monkeypatch.setattr(config, "EVAL_CHUNK", 7)
    assert evaluate_loss(net, X[:50], y[:50]) == pytest.approx(net.loss_and_grad(X[:50], y[:50]), rel=1e-12)


def test_score_and_evaluate_loss_refuse_rows_that_do_not_match(iris):
    net = _net(iris)
    for call in (score, evaluate_loss):
        with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
            call(net, iris.X_train[:5], iris.y_train[:4])
    reg = MLP((4, 3, 1), loss="squared_error", random_state=0)
    with pytest.raises(ValueError, match="X has 5 samples but y has 1"):  # would broadcast to an R² silently
        score(reg, iris.X_train[:5], np.ones((1, 1)))


def test_train_penalty_is_the_l2_share_of_the_loss(iris):
    net = _net(iris, alpha=0.5)
    ref = _net(iris, alpha=0.5)
    h = fit(net, SGD(net.params, lr=0.1), iris.X_train, iris.y_train, epochs=2, batch_size=None)
    n = len(iris.y_train)
    for epoch in range(2):  # one full-batch step per epoch: the penalty at the weights before it
        assert h.train_penalty[epoch] == pytest.approx(ref.penalty(n), rel=1e-12)
        ref.loss_and_grad(iris.X_train, iris.y_train)
        ref.params -= 0.1 * ref.grads
    assert all(0 < p < loss for p, loss in zip(h.train_penalty, h.train_loss))
    assert History.from_dict(h.to_dict()) == h


# -- scikit-learn's random stream --------------------------------------------------------------------------------
def test_a_random_state_object_shuffles_as_sklearn_does(iris):
    from sklearn.utils import shuffle

    X, y = iris.X_train, iris.y_train
    net, ref = _net(iris), _net(iris)
    fit(net, SGD(net.params, lr=0.05), X, y, epochs=3, batch_size=16, random_state=np.random.RandomState(4))
    rs, Y, order = np.random.RandomState(4), ref.encode_targets(y), np.arange(len(y))
    for _ in range(3):  # sklearn's _fit_stochastic: sample_idx = shuffle(sample_idx, random_state=rs)
        order = shuffle(order, random_state=rs)
        for lo in range(0, len(y), 16):
            idx = order[lo : lo + 16]
            ref.loss_and_grad(X[idx], Y[idx])
            ref.params -= 0.05 * ref.grads
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-12, atol=1e-14)


# -- L-BFGS --------------------------------------------------------------------------------------------------------
def test_lbfgs_runs_one_iteration_per_epoch_and_says_why_it_stopped(iris):
    from scipy.optimize import minimize

    net = _net(iris, alpha=0.01)
    opt = LBFGS(net.params)
    h = fit(net, opt, iris.X_train, iris.y_train, epochs=15)
    assert h.epochs == opt.result.nit == 15 and h.stop_reason == "max_epochs"
    assert h.grad_evals[-1] == opt.result.nfev and math.isnan(h.lr[0])
    assert all(b <= a for a, b in zip(h.train_loss, h.train_loss[1:]))  # L-BFGS-B never accepts a worse point
    # the same iterates as SciPy on the plain loss function
    ref = _net(iris, alpha=0.01)

    def fun(x):
        ref.params[...] = x
        return ref.loss_and_grad(iris.X_train, iris.y_train), ref.grads.copy()

    res = minimize(fun, ref.params.copy(), jac=True, method="L-BFGS-B", options={"maxiter": 15, "gtol": 1e-4})
    np.testing.assert_allclose(net.params, res.x, rtol=1e-9, atol=1e-12)
    assert h.train_loss[-1] == pytest.approx(res.fun, rel=1e-12)
    h = fit(net, LBFGS(net.params, tol=1e-1), iris.X_train, iris.y_train, epochs=500)
    assert h.stop_reason == "converged" and h.epochs < 500
    h = fit(net, LBFGS(net.params, max_fun=5, tol=0.0), iris.X_train, iris.y_train, epochs=500)
    assert h.stop_reason == "max_fun" and h.grad_evals[-1] <= 6


@pytest.mark.parametrize("bad_call", [3, 5, 8])
def test_lbfgs_divergence_restores_the_iterate_before(iris, bad_call):
    """SciPy's L-BFGS-B accepts an iterate whose loss is NaN; fit must stop there, restore the iterate before,
    and the minimiser's return must not write the NaN point back over it."""
    net = _net(iris)
    calls = []
    real = net._batch_loss_and_grad

    def nan_from_the_kth_call(*args):
        data_loss, penalty = real(*args)
        calls.append(1)
        return (math.nan if len(calls) >= bad_call else data_loss), penalty

    net._batch_loss_and_grad = nan_from_the_kth_call
    with pytest.warns(DivergenceWarning, match="the iterate of the iteration before was restored"):
        h = fit(net, LBFGS(net.params), iris.X_train, iris.y_train, epochs=50)
    assert h.diverged and np.isfinite(net.params).all()
    ref = _net(iris)  # the same minimiser, stopped at the last good iterate, never sees a NaN
    fit(ref, LBFGS(ref.params, tol=0.0), iris.X_train, iris.y_train, epochs=h.epochs)
    np.testing.assert_array_equal(net.params, ref.params)


def test_lbfgs_with_callbacks_and_bad_combinations(iris):
    net = _net(iris)
    h = fit(net, LBFGS(net.params), iris.X_train, iris.y_train, epochs=100, validation_fraction=0.2,
            callbacks=[EarlyStopping(patience=2, min_delta=10.0)], random_state=0)
    assert h.stop_reason == "early_stopping" and h.epochs == 3 and np.isfinite(h.val_loss).all()
    # EarlyStopping put back the first iterate's weights
    first = _net(iris)
    fit(first, LBFGS(first.params), iris.X_train, iris.y_train, epochs=1, validation_fraction=0.2, random_state=0)
    np.testing.assert_array_equal(net.params, first.params)
    with pytest.raises(ValueError, match="no schedule"):
        fit(net, LBFGS(net.params), iris.X_train, iris.y_train, schedule="cosine")
    with pytest.raises(ValueError, match="no gradient clipping"):
        fit(net, LBFGS(net.params), iris.X_train, iris.y_train, clip_norm=1.0)
    with pytest.raises(ValueError, match="CPU only"):
        LBFGS(net.params, backend="cuda")
    with pytest.raises(ValueError, match="max_fun must be >= 1"):
        LBFGS(net.params, max_fun=0)
    opt = LBFGS(net.params)
    with pytest.raises(ValueError, match="tol must be a finite number"):
        opt.tol = -1.0  # assignments are checked as the constructor checks
    with pytest.raises(TypeError, match="history_size must be an integer"):
        opt.history_size = 2.5
    assert (opt.tol, opt.history_size) == (1e-4, 10)


# -- checks before any work ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"validation_data": "X"}, ValueError, "a pair"),
    ({"max_time": "5"}, TypeError, "max_time must be a real number"),
    ({"max_time": -1.0}, ValueError, "max_time"),
    ({"max_grad_evals": 0}, ValueError, "max_grad_evals must be >= 1"),
    ({"shuffle": "no"}, TypeError, "shuffle must be True or False"),
    ({"progress": 1}, TypeError, "progress must be True or False"),
    ({"callbacks": [object()]}, TypeError, r"callbacks\[0\] \(object\) has no on_epoch_end"),
    ({"sample_weight": np.ones(3)}, ValueError, "sample_weight must have shape"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"validation_fraction": 0.99}, ValueError, r"into 1 for training .* at least one per class \(3\) on each side"),
])
def test_every_argument_is_checked_before_the_first_epoch(iris, kwargs, error, match):
    net = _net(iris)
    before = net.params.copy()
    with pytest.raises(error, match=match):
        fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=2, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_validation_data_must_match_before_any_work(iris):
    net = _net(iris)
    X, y = iris.X_train, iris.y_train
    with pytest.raises(ValueError, match="X_val has 5 samples but y_val has 4"):
        fit(net, Adam(net.params), X, y, validation_data=(X[:5], y[:4]))
    # far more validation rows than labels: refused, never read past the end of y_val
    big = np.zeros((200_000, 4))
    with pytest.raises(ValueError, match="X_val has 200000 samples but y_val has 1"):
        fit(net, Adam(net.params), X, y, validation_data=(big, y[:1]))
    with pytest.raises(ValueError, match="X_val has 3 features"):
        fit(net, Adam(net.params), X, y, validation_data=(X[:, :3], y))


def test_one_model_is_fitted_by_one_thread_at_a_time(iris):
    net = _net(iris)
    started, release = threading.Event(), threading.Event()

    class Hold:
        def on_epoch_end(self, epoch, history, model, optimizer):
            started.set()
            release.wait(10)
            return True

    worker = threading.Thread(target=fit, args=(net, Adam(net.params), iris.X_train, iris.y_train),
                              kwargs={"callbacks": [Hold()]})
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            fit(net, Adam(net.params), iris.X_train, iris.y_train)
    finally:
        release.set()
        worker.join()
    fit(net, Adam(net.params), iris.X_train, iris.y_train, epochs=1)  # free again


def test_a_first_fit_compiles_few_kernels(tmp_path):
    """A guard on compile latency (a user feels the first fit): the kernels a first fit compiles, counted in a
    fresh process with an empty Numba cache. This is a count, not a timing: a change that adds kernels to the
    first fit (a second specialisation, a parallel wrapper for a small batch) shows up here."""
    import os
    import subprocess
    import sys

    code = """
import numpy as np
from numba.core.event import install_recorder
from sklearn.datasets import load_digits
from microdl import config
from microdl.nn import MLP
from microdl.optim import Adam
from microdl.train import fit
config.machine_is_busy = lambda: False  # a quiet machine's first fit, however loaded the test machine is
X, y = load_digits(return_X_y=True)
with install_recorder("numba:compile") as rec:
    net = MLP((64, 100, 10), random_state=0)   # MLPClassifier's default network and solver on digits
    fit(net, Adam(net.params), X / 16, y, epochs=1, batch_size=200)
names = sorted({ev.data["dispatcher"].py_func.__qualname__ for _, ev in rec.buffer if ev.is_start
                and "dispatcher" in ev.data and ev.data["dispatcher"].py_func.__module__.startswith("microdl")})
print(",".join(names))
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    compiled = proc.stdout.split()[-1].split(",")
    # the block pass (forward and backward alike; digits' batches are too small for a parallel launch), Adam's
    # step on 7,510 parameters (serial, below config.MIN_PARALLEL_ELEMENTS); a rule kernel is named by its rule,
    # its fast-math flags and a fingerprint of the code it inlines. (The per-epoch finiteness scan of so few
    # parameters is NumPy's, microdl.nn.all_finite; the NumPy backend's first fit compiles nothing:
    # tests/test_startup.py.)
    compiled = [re.sub(r"_[0-9a-f]{8}(?=_serial$|$)", "", name) for name in compiled]
    # (relu's f' reads only its output, so the block is compiled without the code that keeps z and without the
    # formulas of the activations that need it: NOTE [two blocks] in microdl.nn._cpu). Then the compiled run of
    # steps (NOTE [compiled runs of steps] in microdl._runs), named by its rule's number of state buffers and the
    # types of its scalars, which calls the block and the step by their addresses, and the flush it links.
    assert compiled == ["_block", "_flush_subnormal", "adam_arcp_serial", "run_3_dddddddddbbb"], compiled


def test_both_devices_batches_implement_the_loops_protocol():
    """The loop's batches interface is declared (microdl.train.Batches); each device's batches implement every
    member of it."""
    import inspect

    from microdl.train import Batches, HostBatches

    members = {name for name, _ in inspect.getmembers(Batches) if not name.startswith("_")}
    members |= set(Batches.__annotations__)
    assert members >= {"set_order", "loss_and_grad", "epoch_losses", "validator", "n", "bounds"}
    net = MLP((2, 2), loss="squared_error")
    host = HostBatches(net, np.zeros((4, 2)), np.zeros((4, 2)), None, 2)
    for name in members:
        assert hasattr(host, name), name
    import microdl

    source = (Path(microdl.__file__).parent / "cuda" / "batches.py").read_text()  # (read: no CUDA needed)
    for name in members - set(Batches.__annotations__):
        assert f"def {name}(" in source, name



# -- issue 21: state carried between fits, and weights at the edge of the floats -----------------------------
def test_an_early_stopping_object_reused_for_a_second_fit_starts_afresh(iris):
    """Case 19: the second fit got the first model's best weights back (bit-equal, best_epoch of the first)."""
    stopper = EarlyStopping(patience=3)
    first = MLP((4, 8, 3), random_state=0)
    fit(first, Adam(first.params, lr=0.05), iris.X_train, iris.y_train, epochs=30, validation_fraction=0.2,
        callbacks=[stopper], random_state=0)
    first_best = stopper.best_params.copy()
    second = MLP((4, 8, 3), random_state=1)
    fresh = EarlyStopping(patience=3)
    history = fit(second, Adam(second.params, lr=1e-6), iris.X_train, iris.y_train, epochs=4,
                  validation_fraction=0.2, callbacks=[stopper], random_state=1)
    alone = MLP((4, 8, 3), random_state=1)
    fit(alone, Adam(alone.params, lr=1e-6), iris.X_train, iris.y_train, epochs=4, validation_fraction=0.2,
        callbacks=[fresh], random_state=1)
    assert not np.array_equal(second.host_params(), first_best)
    np.testing.assert_array_equal(second.host_params(), alone.host_params())
    assert stopper.best_epoch == fresh.best_epoch and history.epochs == 4
    other = MLP((4, 5, 3), random_state=0)  # another architecture: no error after training either
    fit(other, Adam(other.params), iris.X_train, iris.y_train, epochs=2, validation_fraction=0.2,
        callbacks=[stopper])


def test_sample_weights_are_scale_free_down_to_the_smallest_float(iris):
    """Case 20: weights of 5e-324 each (valid: finite, positive) gave an infinite loss and NaN gradients."""
    net = MLP((4, 8, 3), random_state=0)
    X, y = iris.X_train, iris.y_train
    loss = net.loss_and_grad(X, y)
    grad = net.grads.copy()
    for scale in (5e-324, 1e-300, 1e300):
        assert net.loss_and_grad(X, y, np.full(len(y), scale)) == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(net.grads, grad, rtol=1e-10, atol=1e-14)
    a, b = MLP((4, 8, 3), random_state=0), MLP((4, 8, 3), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        history = fit(a, Adam(a.params), X, y, epochs=3, sample_weight=np.full(len(y), 5e-324), random_state=0)
    fit(b, Adam(b.params), X, y, epochs=3, random_state=0)
    assert not history.diverged
    np.testing.assert_allclose(a.host_params(), b.host_params(), rtol=1e-12, atol=1e-14)
