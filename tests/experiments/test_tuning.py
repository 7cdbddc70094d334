"""Tuning picks each rate on a validation split of the training data and never sees the test set; the
presets cover every built-in dataset and the article's optimizers; L-BFGS, without a rate, is never tuned or
swept."""

import numpy as np
import pytest

from microdl.datasets import DATASETS, load_dataset
from microdl.experiments import Budget, compare, comparison, sensitivity, tuning
from microdl.experiments.runs import SIX_OPTIMIZERS, default_lr, takes_lr
from microdl.experiments.tuning import LR_GRID, PRESET_LRS, preset_lr


def test_tuning_never_touches_test_data(monkeypatch):
    seen = []
    real_tune = tuning.tune_lrs

    def spy(train_sets, **kwargs):
        seen.append(train_sets)
        return real_tune(train_sets, **kwargs)

    monkeypatch.setattr(comparison, "tune_lrs", spy)
    kwargs = {"seeds": 2, "epochs": 2, "hidden": (8,), "tune": True, "lr_grid": (1e-3, 1e-1), "progress": False}
    clean = compare(["iris"], ["sgd", "adam"], **kwargs)
    # tune_lrs receives exactly the training arrays of each seed, nothing of the test set
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


def test_tuning_trains_and_validates_on_training_rows_only(monkeypatch):
    d = load_dataset("iris", random_state=0)
    train_rows = {row.tobytes() for row in d.X_train}
    captured = []

    def runner(spec):
        captured.append(spec)
        return {"optimizer": spec.optimizer, "lr": spec.lr, "final_val_loss": 1.0 / spec.lr, "diverged": False}

    monkeypatch.setattr(tuning, "execute", lambda specs, **kw: [runner(s) for s in specs])
    picks = tuning.tune_lrs({0: (d.X_train, d.y_train)}, layer_sizes=(4, 8, 3), loss="cross_entropy",
                            optimizers=["sgd"], budget=Budget("epochs", 1), grid=(0.01, 0.1, 1.0), progress=False)
    assert picks["sgd"]["lr"] == 1.0 and picks["sgd"]["val_loss"] == [100.0, 10.0, 1.0]
    for spec in captured:
        assert {row.tobytes() for row in spec.X_train} <= train_rows
        assert {row.tobytes() for row in spec.X_eval} <= train_rows
        assert len(spec.X_train) + len(spec.X_eval) == len(d.X_train)


def test_presets_cover_every_builtin_dataset_with_rates_from_the_grid():
    assert set(PRESET_LRS) == set(DATASETS)
    for dataset, rates in PRESET_LRS.items():
        assert set(SIX_OPTIMIZERS) <= set(rates), dataset
        assert set(rates.values()) <= set(LR_GRID), dataset  # a pick of the tuning, not a hand-set number
    assert preset_lr("digits", "gd") == 1.0 and preset_lr("mine", "gd") is None and preset_lr("digits", "x") is None


def test_lbfgs_has_no_rate_to_tune_or_sweep():
    assert [takes_lr(o) for o in ("gd", "adam", "lbfgs")] == [True, True, False]
    assert default_lr("adam") == 1e-3 and default_lr("lbfgs") is None
    d = load_dataset("iris", random_state=0)
    with pytest.raises(ValueError, match="lbfgs has no learning rate to tune"):
        tuning.tune_lrs({0: (d.X_train, d.y_train)}, layer_sizes=(4, 3), loss=d.loss, optimizers=["sgd", "lbfgs"],
                        budget=Budget("epochs", 1))
    with pytest.raises(ValueError, match="sensitivity sweeps the learning rate, and lbfgs has none"):
        sensitivity("iris", ["sgd", "lbfgs"], seeds=1, epochs=1, progress=False)
