"""Runs: one run's record (a diverged run is called so whatever fit said), and many runs on joblib's local
backends giving the same numbers as one after the other, in the order of the specs."""

import numpy as np
import pytest

from microdl.datasets import load_dataset
from microdl.experiments import Budget, RunSpec, compare, run_one
from microdl.experiments.runs import blew_up, execute
from tests.experiments.tiny import TINY, numbers


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_parallel_backends_give_the_same_numbers(backend):
    # iris is small enough that every pass is one row block, so the thread count cannot change any sum
    ref = compare(["iris"], ["gd", "sgd", "adam"], **TINY)
    par = compare(["iris"], ["gd", "sgd", "adam"], jobs=2, backend=backend, **TINY)
    assert numbers(par.runs) == numbers(ref.runs)


def test_execute_keeps_the_order_of_the_specs():
    class Spec:
        def __init__(self, i):
            self.i = i

    out = execute([Spec(i) for i in range(5)], jobs=2, backend="threading", progress=False,
                  runner=lambda s: {"i": s.i})
    assert [r["i"] for r in out] == list(range(5))


def test_a_run_whose_final_loss_is_not_finite_is_diverged(monkeypatch):
    """Whatever fit reports, a record with a loss that is not finite says diverged (NOTE [a diverged run])."""
    import microdl.train

    d = load_dataset("diabetes", random_state=0)
    spec = RunSpec("sgd", 0.01, 0, (d.n_features, 4, 1), d.loss, d.X_train, d.y_train, d.X_test, d.y_test,
                   Budget("epochs", 2))
    fine = run_one(spec)
    assert not fine["diverged"] and fine["stop_reason"] == "max_epochs"
    real_fit = microdl.train.fit

    def fit_that_breaks_the_weights(model, optimizer, *args, **kwargs):
        history = real_fit(model, optimizer, *args, **kwargs)
        model.params[0] = np.inf  # what a missed last-step divergence leaves behind
        return history

    monkeypatch.setattr(microdl.train, "fit", fit_that_breaks_the_weights)
    broken = run_one(spec)
    assert broken["diverged"] and broken["stop_reason"] == "diverged" and broken["final_train_loss"] is None


@pytest.mark.parametrize(("train_loss", "others", "verdict"), [
    ([1.0, 0.5, 0.1], [0.2, 0.3], False),
    ([2.3, 0.1, 0.01], [1.5], False),  # a test loss that rose (overfitting) is no divergence
    ([2.3, 2.0, 2299.0], [], False),  # just below 1000 x the initial loss
    ([2.3, 2.0, 2301.0], [], True),
    ([1e-4, 999.0], [], False),  # a tiny initial loss: the bar is 1000 x 1
    ([1e-4, 1001.0], [], True),
    ([1.4, 1.7e23, 1.7e93], [], True),  # GD at lr 1e6 before it overflows
    ([1.0, 0.5], [float("nan")], True),
    ([1.0, float("inf")], [], True),
    ([1.0, 0.5], [None], True),
])
def test_blew_up_table(train_loss, others, verdict):
    assert blew_up(train_loss, others) is verdict


def test_a_run_of_lbfgs_has_no_rate():
    d = load_dataset("iris", random_state=0)
    spec = RunSpec("lbfgs", None, 0, (d.n_features, 4, 3), d.loss, d.X_train, d.y_train, d.X_test, d.y_test,
                   Budget("epochs", 3), batch_size=16, track_steps=True)
    run = run_one(spec)
    # one iteration per epoch (its line search may evaluate the loss more than once)
    assert run["lr"] is None and run["epoch"] == [0, 1, 2, 3] and run["grad_evals"][-1] >= 3
    assert run["step_size"] == [None] * 3  # the step in units of a learning rate it does not have
    with pytest.raises(ValueError, match="lbfgs has no learning rate; its RunSpec must have lr=None"):
        run_one(RunSpec("lbfgs", 0.1, 0, (d.n_features, 4, 3), d.loss, d.X_train, d.y_train, d.X_test, d.y_test,
                        Budget("epochs", 1)))
