"""The tuning protocol (Choi et al. 2019): every hyperparameter, the same trials per optimizer, cross-validation
of the training data only (never the test set), defaults as a contender, edges that widen the space, several
tuning seeds; the presets cover every built-in dataset; L-BFGS, without a rate, is never tuned or swept."""

import math

import numpy as np
import pytest

from microdl.datasets import DATASETS, load_dataset
from microdl.experiments import Budget, compare, comparison, sensitivity, tuning
from microdl.experiments.runs import SIX_OPTIMIZERS, default_lr, takes_lr
from microdl.experiments.tuning import PRESETS, preset_lr


def test_tuning_never_touches_test_data(monkeypatch):
    seen = []
    real_tune = tuning.tune

    def spy(train_sets, **kwargs):
        seen.append(train_sets)
        return real_tune(train_sets, **kwargs)

    monkeypatch.setattr(comparison, "tune_hyperparameters", spy)
    kwargs = {"seeds": 2, "epochs": 2, "hidden": (8,), "tune": True, "trials": 2, "progress": False}
    clean = compare(["iris"], ["sgd", "adam"], **kwargs)
    # tune receives exactly the training arrays of each seed, nothing of the test set
    for seed, (X, y) in seen[0].items():
        d = load_dataset("iris", random_state=seed)
        np.testing.assert_array_equal(X, d.X_train)
        np.testing.assert_array_equal(y, d.y_train)

    # ... and so the picks cannot move when the test set changes completely
    real_load = comparison.load_dataset

    def scrambled(name, **kw):
        d = real_load(name, **kw)
        rng = np.random.default_rng(99)
        d.X_test = rng.standard_normal(d.X_test.shape)
        d.y_test = rng.permutation(d.y_test)
        return d

    monkeypatch.setattr(comparison, "load_dataset", scrambled)
    noisy = compare(["iris"], ["sgd", "adam"], **kwargs)
    assert noisy.tuning == clean.tuning
    assert noisy.config["lrs"] == clean.config["lrs"]
    assert {v["source"] for v in clean.config["lrs"]["iris"].values()} == {"tuned"}
    assert "tuned" in clean.lr_note() and "never the test set" in clean.lr_note()


def _fake(score):
    """A stand-in for execute: each run scores score(spec) as its final validation loss (inf: diverged)."""
    captured = []

    def run(specs, **kw):
        captured.extend(specs)
        out = []
        for spec in specs:
            v = score(spec)
            out.append({"optimizer": spec.optimizer, "lr": spec.lr, "final_val_loss": v,
                        "diverged": not math.isfinite(v)})
        return out

    return run, captured


def _tune(monkeypatch, score, optimizers=("sgd",), seeds=(0,), **kw):
    d = load_dataset("iris", random_state=0)
    run, captured = _fake(score)
    monkeypatch.setattr(tuning, "execute", run)
    result = tuning.tune({s: (d.X_train, d.y_train) for s in seeds}, layer_sizes=(4, 8, 3), loss="cross_entropy",
                         optimizers=list(optimizers), budget=Budget("epochs", 1), progress=False, **kw)
    return result, captured, d


def test_cross_validation_uses_training_rows_only_and_partitions_them(monkeypatch):
    result, captured, d = _tune(monkeypatch, lambda spec: (math.log10(spec.lr) - math.log10(0.05)) ** 2)
    train_rows = {row.tobytes() for row in d.X_train}
    for spec in captured:
        assert {row.tobytes() for row in spec.X_train} <= train_rows
        assert {row.tobytes() for row in spec.X_eval} <= train_rows
        assert len(spec.X_train) + len(spec.X_eval) == len(d.X_train)
    # every configuration is scored on FOLDS disjoint validation folds that together cover the training set
    first = [spec for spec in captured if spec.lr == captured[0].lr and spec.hyper == captured[0].hyper]
    assert len(first) == tuning.FOLDS
    assert sum(len(s.X_eval) for s in first) == len(d.X_train)
    assert len({row.tobytes() for s in first for row in s.X_eval}) == len({r.tobytes() for r in d.X_train})
    # the trial nearest the optimum of the fake loss wins
    best = result["sgd"]["per_seed"]["0"]
    assert best["score"] == min(best["scores"]) and abs(math.log10(result["sgd"]["lr"] / 0.05)) < 0.5


def test_every_optimizer_gets_the_same_number_of_trials_and_every_hyperparameter(monkeypatch):
    optimizers = ("sgd", "adam", "rmsprop", "adadelta", "adagrad")
    result, captured, _ = _tune(monkeypatch, lambda spec: 1.0 + 0.01 * math.log(spec.lr) ** 2,
                                optimizers=optimizers, trials=8, widen_rounds=0)
    per = {o: sum(spec.optimizer == o for spec in captured) for o in optimizers}
    assert set(per.values()) == {(8 + 1) * tuning.FOLDS}  # 8 trials plus the defaults, on every fold
    assert sorted(result["adam"]["hyper"]) == ["beta1", "beta2", "eps", "lr"]
    assert sorted(result["rmsprop"]["hyper"]) == ["alpha", "eps", "lr"]
    assert sorted(result["adadelta"]["hyper"]) == ["eps", "lr", "rho"]
    assert sorted(result["adagrad"]["hyper"]) == ["eps", "lr"]
    assert sorted(result["sgd"]["hyper"]) == ["lr", "momentum"]
    # the optimizer receives them under its own names (Adam's betas as a pair)
    adam = [spec for spec in captured if spec.optimizer == "adam"]
    assert all(set(spec.hyper) == {"betas", "eps"} and len(spec.hyper["betas"]) == 2 for spec in adam)
    assert len({spec.hyper["betas"] for spec in adam}) == 9


def test_defaults_are_a_contender_and_can_win(monkeypatch):
    result, _, _ = _tune(monkeypatch, lambda spec: 0.0 if spec.lr == default_lr("sgd") and
                         spec.hyper.get("momentum") == 0.0 else 1.0)
    seed = result["sgd"]["per_seed"]["0"]
    assert seed["chose_default"] and seed["hyper"] == {"lr": default_lr("sgd"), "momentum": 0.0}
    assert result["sgd"]["rounds"] == 1  # a default that wins says nothing about the edges


def test_a_best_value_on_an_edge_widens_the_space_and_is_reported_if_it_stays(monkeypatch):
    # the loss keeps falling as the rate grows: the best trial always sits at the top of the range
    result, captured, _ = _tune(monkeypatch, lambda spec: 1.0 / spec.lr, widen_rounds=2)
    r = result["sgd"]
    assert r["rounds"] == 3 and len(r["widened"]) == 2
    assert r["space"]["lr"]["high"] > tuning.SEARCH_SPACES["sgd"]["lr"].high * 5
    assert "lr (high)" in r["on_edge"]  # never accepted silently
    # an optimum inside the range: no widening, nothing on an edge
    inside, _, _ = _tune(monkeypatch, lambda spec: (math.log10(spec.lr) + 1.5) ** 2, optimizers=("adam",))
    assert inside["adam"]["rounds"] == 1 and "lr (low)" not in inside["adam"]["on_edge"]


def test_a_configuration_that_diverges_on_a_fold_is_never_chosen(monkeypatch):
    result, _, _ = _tune(monkeypatch, lambda spec: math.inf if spec.lr > 0.1 else 1.0 / spec.lr)
    assert result["sgd"]["lr"] <= 0.1


def test_several_tuning_seeds_give_their_choices_and_spread(monkeypatch):
    result, _, _ = _tune(monkeypatch, lambda spec: (math.log10(spec.lr) + 1.0) ** 2 + 0.1 * spec.seed,
                         seeds=(0, 1, 2))
    r = result["sgd"]
    assert set(r["per_seed"]) == {"0", "1", "2"}
    lrs = sorted(v["hyper"]["lr"] for v in r["per_seed"].values())
    assert r["spread"]["lr"] == [lrs[0], lrs[-1]] and r["lr"] == pytest.approx(lrs[1])  # the median


def test_search_space_table_registered_space_then_rate_alone():
    from microdl import optim

    assert tuning.search_space("adam") == tuning.SEARCH_SPACES["adam"]

    class Mine(optim.SGD):
        pass

    class Plain(optim.SGD):
        pass

    optim.register_optimizer("mine", Mine, search_space={"lr": (1e-3, 1.0, "log"),
                                                         "momentum": (1e-2, 1.0, "one_minus")})
    optim.register_optimizer("plain", Plain)
    try:
        space = tuning.search_space("mine")
        assert space == {"lr": tuning.Dim(1e-3, 1.0), "momentum": tuning.Dim(1e-2, 1.0, "one_minus", tuning._DECAY)}
        assert all(0.0 <= p["momentum"] <= 0.99 for p in tuning.sample(space, 8, seed=0))
        assert list(tuning.search_space("plain")) == ["lr"]
    finally:
        optim.unregister_optimizer("mine")
        optim.unregister_optimizer("plain")
    with pytest.raises(ValueError, match="unknown optimizer"):
        tuning.search_space("nope")


def test_sobol_points_fill_the_stated_log_ranges():
    space = tuning.search_space("adam")
    points = tuning.sample(space, 16, seed=3)
    assert points == tuning.sample(space, 16, seed=3) and points != tuning.sample(space, 16, seed=4)
    for p in points:
        for k, dim in space.items():
            assert -1e-6 <= dim.position(p[k]) <= 1 + 1e-6
    # on the log scale of 1 - beta1 the points spread over the whole range: some in every half
    u = np.array([space["beta1"].position(p["beta1"]) for p in points])
    assert (u < 0.5).sum() == 8 and (u >= 0.5).sum() == 8
    assert tuning.Dim(1e-2, 1.0, "one_minus").value(1.0) == 0.0  # momentum 0 is inside SGD's space


def test_presets_cover_every_builtin_dataset_with_every_hyperparameter():
    assert set(PRESETS) == set(DATASETS)
    for dataset, rows in PRESETS.items():
        assert set(SIX_OPTIMIZERS) <= set(rows), dataset
        for o in SIX_OPTIMIZERS:
            space = tuning.search_space(o)
            expected = {"lr", *tuning.to_kwargs({k: 0.5 for k in space})}
            assert set(rows[o]) == expected, (dataset, o)
    assert preset_lr("digits", "gd") == PRESETS["digits"]["gd"]["lr"]
    assert preset_lr("mine", "gd") is None and preset_lr("digits", "x") is None


def test_lbfgs_has_no_rate_to_tune_or_sweep():
    assert [takes_lr(o) for o in ("gd", "adam", "lbfgs")] == [True, True, False]
    assert default_lr("adam") == 1e-3 and default_lr("lbfgs") is None
    d = load_dataset("iris", random_state=0)
    with pytest.raises(ValueError, match="lbfgs has no learning rate to tune"):
        tuning.tune({0: (d.X_train, d.y_train)}, layer_sizes=(4, 3), loss=d.loss, optimizers=["sgd", "lbfgs"],
                    budget=Budget("epochs", 1))
    with pytest.raises(ValueError, match="sensitivity sweeps the learning rate, and lbfgs has none"):
        sensitivity("iris", ["sgd", "lbfgs"], seeds=1, epochs=1, progress=False)
