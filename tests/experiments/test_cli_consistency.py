"""One CLI (issue 22, item 5; issue 20, item 4): ``--data`` wherever a dataset is taken (sensitivity too),
``--executor`` for joblib/Dask (``--backend``, its old name there, still works and says so), times in
significant figures, and a note naming the runs whose time per epoch jumped while they ran."""

import re

import pytest

from microdl.cli import main


@pytest.fixture
def houses(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    area, rooms = rng.uniform(50, 250, 120), rng.integers(1, 7, 120)
    path = tmp_path / "houses.csv"
    with open(path, "w") as fh:
        fh.write("area,rooms,price\n")
        for a, r in zip(area.tolist(), rooms.tolist()):
            fh.write(f"{a!r},{r},{2.5 * a + 30 * r + 100!r}\n")
    return path


def test_sensitivity_takes_your_own_csv(houses, tmp_path, capsys):
    """Issue 22: 'sensitivity --data houses.csv' was taken as --dataset and failed."""
    out = tmp_path / "o"
    status = main(["sensitivity", "--data", str(houses), "--target", "price", "--optimizers", "adam", "--seeds", "1",
                   "--epochs", "1", "--hidden", "4", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0 and "houses" in printed and (out / "sensitivity.json").exists()
    from microdl.experiments.sweep import load_sensitivity

    assert load_sensitivity(out).config["dataset"] == "houses"
    # times in significant figures with a unit, never 0.000
    assert re.search(r"\n13 runs in \d[\d.]* (s|ms); wrote", printed)


def test_backend_is_the_old_name_of_executor_and_says_so(tmp_path, capsys):
    status = main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1", "--hidden",
                   "4", "--backend", "threading", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 0
    assert "microdl compare: --backend is deprecated here; use --executor threading" in err


def test_the_executor_reaches_the_runs(tmp_path, monkeypatch, capsys):
    import microdl.experiments.comparison as comparison

    seen = {}
    real = comparison.execute

    def spy(specs, **kwargs):
        seen.update(kwargs)
        return real(specs, **kwargs)

    monkeypatch.setattr(comparison, "execute", spy)
    assert main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1", "--hidden",
                 "4", "--executor", "threading", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert seen["backend"] == "threading"


def test_a_run_whose_time_jumped_is_named_in_a_note(capsys):
    from microdl.experiments.cli import _print_timing_note

    steady = [0.0, *[0.01 * (k + 1) for k in range(20)]]
    jumped = [*steady[:17], *[steady[16] + 0.05 * (k + 1) for k in range(4)]]  # the last four epochs 5x slower
    runs = [{"dataset": "digits", "optimizer": "sgd", "lr": 0.1, "seed": 0, "wall_time": steady},
            {"dataset": "digits", "optimizer": "adam", "lr": 0.01, "seed": 2, "wall_time": jumped}]

    class Parser:
        prog = "microdl compare"

    _print_timing_note(runs, Parser())
    err = capsys.readouterr().err
    assert err.startswith("microdl compare: note: in 1 of 2 runs") and "digits adam lr 0.01 seed 2" in err
    assert "sgd" not in err and len(err.splitlines()) == 1
    _print_timing_note(runs[:1], Parser())
    assert capsys.readouterr().err == ""
