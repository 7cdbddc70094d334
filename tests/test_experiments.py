"""The experiments: compare end to end, reloading, reproducibility, tuning without the test set, sensitivity,
the claims report, scale-out backends and clear errors. Every budget here is tiny (a few epochs on iris and
diabetes), so the whole file runs in well under a minute."""

import csv
import math

import numpy as np
import pytest

from microdl.cli import main
from microdl.datasets import load_dataset
from microdl.experiments import (
    Budget,
    compare,
    comparison,
    flat_width,
    load_results,
    load_sensitivity,
    parse_budget,
    sensitivity,
    target_loss,
    tuning,
)
from microdl.experiments.runs import execute

TINY = {"seeds": 2, "epochs": 3, "hidden": (8,), "progress": False}


def _numbers(result):
    """Everything a run measured except the clock."""
    keys = ("train_loss", "test_loss", "grad_evals", "final_train_loss", "final_test_loss", "final_test_metric",
            "diverged", "lr", "seed", "optimizer", "dataset")
    return [{k: r[k] for k in keys} for r in result.runs]


@pytest.fixture(scope="module")
def small_compare():
    return compare(["iris", "diabetes"], ["gd", "sgd", "adam"], **TINY)


def test_compare_runs_every_combination_with_shared_init_and_split(small_compare):
    r = small_compare
    assert len(r.runs) == 2 * 3 * 2
    for dataset in ("iris", "diabetes"):
        for seed in (0, 1):
            runs = [x for x in r.runs if x["dataset"] == dataset and x["seed"] == seed]
            # same initial weights and data for every optimizer of a seed: the same loss at epoch 0
            assert len({x["train_loss"][0] for x in runs}) == 1
            assert len({x["test_loss"][0] for x in runs}) == 1
    for x in r.runs:
        assert x["epoch"] == [0, 1, 2, 3] and len(x["train_loss"]) == len(x["wall_time"]) == 4
        assert x["wall_time"][0] == 0.0 and all(b >= a for a, b in zip(x["wall_time"], x["wall_time"][1:]))
    gd = [x for x in r.runs if x["optimizer"] == "gd"][0]
    sgd = [x for x in r.runs if x["optimizer"] == "sgd" and x["dataset"] == "iris"][0]
    assert gd["grad_evals"] == [0, 1, 2, 3]  # full batch: one step per epoch
    assert sgd["grad_evals"][1] == math.ceil(112 / 32)


def test_compare_table_names_target_lrs_and_metrics(small_compare):
    text = small_compare.format_tables()
    assert "iris (classification" in text and "diabetes (regression" in text
    assert "train acc" in text and "test R²" in text
    assert "target: train loss <=" in text and "epochs→target" in text and "diverged" in text
    assert "torch.optim's defaults (gd 0.001, sgd 0.001, adam 0.001)" in text
    t = small_compare.target("iris")
    assert t["target"] == pytest.approx(target_loss(t["initial"], t["best_final"], 0.9))
    assert t["best_final"] <= t["target"] <= t["initial"]


def test_compare_outputs_reload(small_compare, tmp_path):
    paths = small_compare.save(tmp_path)
    for name in ("history.json", "summary.csv", "summary.txt", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert set(paths) == {"history", "summary", "tables", "curves"}
    again = load_results(tmp_path)
    assert _same_rows(again.summary(), small_compare.summary())
    assert again.format_tables() == small_compare.format_tables()
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    for row, ref in zip(rows, small_compare.summary()):
        assert row["dataset"] == ref["dataset"] and row["optimizer"] == ref["optimizer"]
        assert float(row["train_loss_mean"]) == ref["train_loss_mean"]
    with pytest.raises(FileNotFoundError, match="not a compare output"):
        load_results(tmp_path / "nowhere")


def _same_rows(a, b):
    for x, y in zip(a, b):
        for k in x:
            if isinstance(x[k], float) and math.isnan(x[k]):
                assert math.isnan(y[k])
            else:
                assert x[k] == y[k], k
    return True


def test_same_seeds_give_identical_numbers(small_compare):
    again = compare(["iris", "diabetes"], ["gd", "sgd", "adam"], **TINY)
    assert _numbers(again) == _numbers(small_compare)


def test_budgets_by_grad_evals_and_time():
    by_steps = compare(["iris"], ["gd", "sgd"], seeds=1, budget="grad_evals:10", hidden=(8,), progress=False)
    for r in by_steps.runs:
        assert r["grad_evals"][-1] >= 10 and r["grad_evals"][-2] < 10  # stops at the first epoch past the budget
    assert [r["epoch"][-1] for r in by_steps.runs] == [10, 3]
    by_time = compare(["iris"], ["sgd"], seeds=1, budget="time:0.05", epochs=100000, hidden=(8,), progress=False)
    (r,) = by_time.runs
    assert r["stop_reason"] == "time budget" and r["wall_time"][-1] >= 0.05
    assert parse_budget("time:2.5") == Budget("time", 2.5) and parse_budget("30") == Budget("epochs", 30)


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


def test_flat_width_by_hand():
    # best at 0.1 (loss 1.0); threshold 1.1. Left: 2.0 at 0.01 -> crossing 0.1 of the way down a decade
    w = flat_width([0.01, 0.1, 1.0], [2.0, 1.0, 1.05], 0.1)
    assert w["best_lr"] == pytest.approx(0.1) and w["threshold"] == pytest.approx(1.1)
    assert w["low"] == pytest.approx(10 ** (-1 - 0.1)) and w["high"] == pytest.approx(1.0)
    assert w["censored"] and w["width"] == pytest.approx(1.1)
    # a diverged neighbour ends the range at the last good point
    w = flat_width([0.01, 0.1, 1.0], [1.5, 1.0, None], 0.1)
    assert w["high"] == pytest.approx(0.1) and not w["censored"]
    assert w["low"] == pytest.approx(10 ** (-1 - 0.2))
    assert flat_width([0.1, 1.0], [None, None], 0.1)["best_lr"] is None


def test_sensitivity_sweep_plot_and_reload(tmp_path):
    result = sensitivity("iris", ["gd", "sgd", "adam"], seeds=1, epochs=2, hidden=(8,), grid=(1e-3, 1e-1, 10.0),
                         batch_sizes=(16, 64), progress=False)
    labels = [c["label"] for c in result.curves()]
    assert labels == ["gd", "sgd (batch 16)", "sgd (batch 64)", "adam"]
    for c in result.curves():
        assert len(c["val_loss"]) == 3 and c["width"] >= 0
    assert all(r["phase"] == "sensitivity" and "final_val_loss" in r for r in result.runs)
    text = result.format_table()
    assert "width (decades)" in text and "within 10%" in text
    result.save(tmp_path)
    assert (tmp_path / "sensitivity.png").stat().st_size > 0
    assert load_sensitivity(tmp_path).curves() == result.curves()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"datasets": ["mnist"]}, "unknown dataset 'mnist'"),
    ({"optimizers": ["sgd", "lbfgs"]}, "unknown optimizer 'lbfgs'"),
    ({"budget": "epochs:0"}, "budget must be positive"),
    ({"budget": "time:-1"}, "budget must be positive"),
    ({"budget": "grad_evals:0"}, "budget must be positive"),
    ({"budget": "steps:10"}, "budget kind must be"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"epochs": 5, "budget": "epochs:6"}, "contradicts"),
    ({"seeds": 0}, "seeds must be >= 1"),
    ({"seeds": [-1]}, "seed must be >= 0"),
    ({"lrs": {"adam": -1.0}}, "learning rate of adam must be a finite number in"),
    ({"target": 1.5}, "target must be a fraction"),
    ({"jobs": 0}, "jobs must be >= 1"),
    ({"backend": "mpi"}, "unknown backend 'mpi'"),
    ({"scheduler": "tcp://127.0.0.1:1"}, "only used with backend='dask'"),
])
def test_bad_options_raise_clear_value_errors(kwargs, message):
    args = {"datasets": ["iris"], "optimizers": ["sgd"], "seeds": 1, "epochs": 1, "progress": False}
    args.update(kwargs)
    if "budget" in kwargs and "epochs" not in kwargs:
        args.pop("epochs")
    with pytest.raises(ValueError, match=message):
        compare(**args)


def test_sensitivity_bad_options():
    with pytest.raises(ValueError, match="unknown dataset"):
        sensitivity("mnist")
    with pytest.raises(ValueError, match="within must be"):
        sensitivity("iris", within=-0.1)
    with pytest.raises(ValueError, match="epochs or budget"):
        sensitivity("iris", epochs=2, budget="epochs:2")


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--dataset", "mnist"], "argument --dataset: unknown dataset 'mnist'"),
    (["compare", "--dataset", "iris,mnist"], "unknown dataset 'mnist'"),
    (["compare", "--optimizers", "sgd,lbfgs"], "argument --optimizers: unknown optimizer 'lbfgs'"),
    (["compare", "--budget", "epochs:0"], "argument --budget: budget must be positive"),
    (["compare", "--budget", "time:-2"], "argument --budget: budget must be positive"),
    (["compare", "--budget", "grad_evals:x"], "argument --budget: budget must look like"),
    (["compare", "--epochs", "0"], "argument --epochs: must be a positive integer"),
    (["compare", "--seeds", "0"], "argument --seeds: seeds must be >= 1"),
    (["compare", "--seeds", "a,b"], "argument --seeds: must be a number of seeds or a comma list"),
    (["compare", "--lr", "adam"], "argument --lr: must be OPTIMIZER=RATE"),
    (["compare", "--lr", "adam=0"], "the rate of adam must be a positive number"),
    (["compare", "--backend", "mpi"], "invalid choice: 'mpi'"),
    (["compare", "--scheduler", "tcp://x:1"], "microdl compare: error: --scheduler needs --backend dask"),
    (["compare", "--epochs", "3", "--budget", "epochs:4"], "disagree"),
    (["sensitivity", "--within", "-5"], "argument --within: must be a positive number"),
    (["sensitivity", "--sgd-batch-sizes", "8,0"], "must be a positive integer"),
    (["sensitivity", "--dataset", "iris,wine"], "sensitivity takes one --dataset"),
])
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_compare_prints_tables_and_writes_files(tmp_path, capsys):
    status = main(["compare", "--dataset", "iris", "--dataset", "wine", "--optimizers", "sgd,adam", "--seeds",
                   "0,3", "--epochs", "2", "--hidden", "8", "--lr", "sgd=0.1", "--out", str(tmp_path),
                   "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert "iris (classification" in out and "wine (classification" in out and "seeds 0, 3" in out
    assert "0.1 (given)" in out and "0.001 (default)" in out
    assert "8 runs in" in out and (tmp_path / "curves.png").exists()
    assert load_results(tmp_path).config["seeds"] == [0, 3]


def test_cli_compare_tune_says_which_rates(tmp_path, capsys):
    status = main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1",
                   "--hidden", "4", "--tune", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and "(tuned)" in out and "tuned learning rates" in out and "iris: sgd" in out


def test_cli_sensitivity(tmp_path, capsys):
    status = main(["sensitivity", "--dataset", "iris", "--optimizers", "sgd,adam", "--seeds", "1", "--epochs", "1",
                   "--hidden", "4", "--sgd-batch-sizes", "16,32", "--within", "20%", "--out", str(tmp_path),
                   "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and "within 20%" in out and (tmp_path / "sensitivity.png").exists()


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_parallel_backends_give_the_same_numbers(small_compare, backend):
    # iris is small enough that every pass is one row block, so the thread count cannot change any sum
    ref = compare(["iris"], ["gd", "sgd", "adam"], **TINY)
    par = compare(["iris"], ["gd", "sgd", "adam"], jobs=2, backend=backend, **TINY)
    assert _numbers(par) == _numbers(ref)


def test_dask_backend_with_a_local_cluster():
    distributed = pytest.importorskip("dask.distributed")
    ref = compare(["iris"], ["sgd", "adam"], **TINY)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        par = compare(["iris"], ["sgd", "adam"], backend="dask", scheduler=cluster.scheduler_address, **TINY)
    assert _numbers(par) == _numbers(ref)


def test_execute_keeps_the_order_of_the_specs():
    class Spec:
        def __init__(self, i):
            self.i = i

    out = execute([Spec(i) for i in range(5)], jobs=2, backend="threading", progress=False,
                  runner=lambda s: {"i": s.i})
    assert [r["i"] for r in out] == list(range(5))


@pytest.mark.parametrize("command", ["compare", "sensitivity", "report"])
def test_help_of_the_experiment_commands(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: microdl {command}" in out and "--backend {loky,threading,dask}" in out
