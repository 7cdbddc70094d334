"""The experiment commands: options checked before anything runs (bad values, output folders), tables and
files, your own data, help, and Ctrl-C leaving the previous results intact."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from microdl.cli import main
from microdl.experiments import load_results
from tests.signals import ctrl_c_as_at_a_terminal


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--dataset", "mnist"], "argument --dataset: unknown dataset 'mnist'"),
    (["compare", "--dataset", "iris,mnist"], "unknown dataset 'mnist'"),
    (["compare", "--optimizers", "sgd,nadam"], "argument --optimizers: unknown optimizer 'nadam'"),
    (["compare", "--budget", "epochs:0"], "argument --budget: budget must be positive"),
    (["compare", "--budget", "time:-2"], "argument --budget: budget must be positive"),
    (["compare", "--budget", "grad_evals:x"], "argument --budget: budget must look like"),
    (["compare", "--epochs", "0"], "argument --epochs: must be a positive integer"),
    (["compare", "--seeds", "0"], "argument --seeds: seeds must be >= 1"),
    (["compare", "--seeds", "a,b"], "argument --seeds: must be a number of seeds or a comma list"),
    (["compare", "--lr", "adam"], "argument --lr: must be OPTIMIZER=RATE"),
    (["compare", "--lr", "adam=0"], "the rate of adam must be a positive number"),
    (["compare", "--backend", "mpi"], "invalid choice: 'mpi'"),
    (["compare", "--executor", "mpi"], "invalid choice: 'mpi'"),
    (["compare", "--backend", "dask", "--executor", "loky"], "--backend dask and --executor loky disagree"),
    (["compare", "--epoch", "3"], "unrecognized arguments: --epoch 3"),  # no silent abbreviations
    (["sensitivity", "--dat", "x.csv"], "unrecognized arguments: --dat x.csv"),
    (["report", "--exec", "dask"], "unrecognized arguments: --exec dask"),
    (["sensitivity", "--dataset", "iris", "--data", "x.csv"], "give --dataset or --data, not both"),
    (["sensitivity", "--data", "nowhere.csv", "--target", "y"], "microdl sensitivity: error: nowhere.csv: no such"),
    (["compare", "--rates", "best"], "invalid choice: 'best'"),
    (["compare", "--rates", "torch", "--tune"], "microdl compare: error: --tune contradicts --rates torch"),
    (["compare", "--scheduler", "tcp://x:1"], "microdl compare: error: --scheduler needs --executor dask"),
    (["compare", "--epochs", "3", "--budget", "epochs:4"], "disagree"),
    (["compare", "--target", "y"], "--target and --task go with --data"),
    (["compare", "--data", "nowhere.csv", "--target", "y"], "microdl compare: error: nowhere.csv: no such file"),
    (["sensitivity", "--within", "-5"], "argument --within: must be a positive number"),
    (["sensitivity", "--sgd-batch-sizes", "8,0"], "must be a positive integer"),
    (["sensitivity", "--dataset", "iris,wine"], "sensitivity takes one --dataset"),
    (["compare", "--lr", "lbfgs=0.1"], "argument --lr: lbfgs has no learning rate"),
    (["sensitivity", "--optimizers", "sgd,lbfgs"], "argument --optimizers: lbfgs has no learning rate to sweep"),
    (["report", "--seed", "-1"], "argument --seed: must be a non-negative integer"),
    (["report", "--seed", "x"], "argument --seed: must be a non-negative integer"),
])
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"microdl {argv[0]}: error: ") and message in err, err


@pytest.mark.parametrize("command", ["compare", "sensitivity"])
def test_a_bad_out_is_refused_before_any_run(command, tmp_path, capsys, monkeypatch):
    import microdl.experiments.runs as runs

    monkeypatch.setattr(runs, "run_one", lambda spec: pytest.fail("a run started"))
    (tmp_path / "mine.txt").write_text("keep me")
    for out, message in [(tmp_path, "did not write (mine.txt"), (tmp_path / "mine.txt", "not a folder")]:
        with pytest.raises(SystemExit) as exc:
            main([command, "--dataset", "iris", "--epochs", "1", "--out", str(out), "--no-progress"])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_compare_prints_tables_and_writes_files(tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["compare", "--dataset", "iris", "--dataset", "wine", "--optimizers", "sgd,adam", "--seeds",
                   "0,3", "--epochs", "2", "--hidden", "8", "--lr", "sgd=0.1", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "iris (classification" in printed and "wine (classification" in printed and "seeds 0, 3" in printed
    from microdl.experiments.tuning import PRESETS

    adam = f"{PRESETS['iris']['adam']['lr']:.3g} (preset)"
    assert "0.1 (given)" in printed and adam in printed and "'preset' hyperparameters were tuned" in printed
    assert "8 runs in" in printed and (out / "curves.png").exists()
    # times in significant figures with their unit (issue 20: "0.000" on small problems), then "diverged"
    assert re.search(r"\d (s|ms|µs)\s+0/2\n", printed) and "time (s)" not in printed
    assert load_results(out).config["seeds"] == [0, 3]
    # a second run replaces the folder it wrote before
    assert main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1",
                 "--hidden", "4", "--rates", "torch", "--out", str(out), "--no-progress"]) == 0
    assert load_results(out).config["optimizers"] == ["sgd"] and "0.001 (torch)" in (out / "summary.txt").read_text()


def test_cli_compare_tune_says_which_rates(tmp_path, capsys):
    status = main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1",
                   "--hidden", "4", "--tune", "--out", str(tmp_path / "o"), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and "(tuned)" in out and "tuned hyperparameters" in out and "iris: sgd: lr" in out


def test_cli_compare_on_your_own_csv(tmp_path, capsys):
    from sklearn.datasets import load_iris

    iris = load_iris()
    path = tmp_path / "flowers.csv"
    with open(path, "w") as f:
        f.write("sepal_l,sepal_w,petal_l,petal_w,species\n")
        for row, label in zip(iris.data, iris.target_names[iris.target]):
            f.write(",".join(f"{v:g}" for v in row) + f",{label}\n")
    out = tmp_path / "o"
    status = main(["compare", "--data", str(path), "--target", "species", "--optimizers", "sgd,adam", "--seeds", "1",
                   "--epochs", "2", "--hidden", "4", "--lr", "sgd=0.1", "--lr", "adam=0.01", "--out", str(out),
                   "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0 and f"flowers ({path}; classification; 112 train / 38 test samples" in printed
    assert load_results(out).datasets["flowers"]["n_outputs"] == 3


def test_cli_sensitivity(tmp_path, capsys):
    status = main(["sensitivity", "--dataset", "iris", "--optimizers", "sgd,adam", "--seeds", "1", "--epochs", "1",
                   "--hidden", "4", "--sgd-batch-sizes", "16,32", "--within", "20%", "--out", str(tmp_path / "o"),
                   "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and "within 20%" in out and (tmp_path / "o" / "sensitivity.png").exists()


@pytest.mark.parametrize("command", ["compare", "sensitivity", "report"])
def test_help_of_the_experiment_commands(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: microdl {command}" in out and "--executor {loky,threading,dask}" in out
    assert "--backend" not in out  # its old name still works, unadvertised (NOTE [--backend is the optimizer kernels])


def test_ctrl_c_in_compare_exits_130_with_one_line_and_keeps_the_old_results(tmp_path):
    out = tmp_path / "out"
    # all six optimizers, so that the child finds every kernel in Numba's cache: a first compile is one long C
    # call that Ctrl-C cannot cut short
    assert main(["compare", "--dataset", "iris", "--seeds", "1", "--epochs", "1", "--hidden", "4", "--out", str(out),
                 "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "microdl", "compare", "--dataset", "digits", "--budget", "time:60",
                             "--out", str(out), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        time.sleep(6)  # past the imports, inside the first runs (each trains for 60 s)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["microdl compare: interrupted; files written before were left as they "
                                           "were"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads((out / "history.json").read_text())["config"]["datasets"] == ["iris"]
    assert np.all([not p.name.startswith(".") for p in tmp_path.iterdir()])
