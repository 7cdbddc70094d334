"""The command line: training end to end on a built-in dataset or your own file, listing datasets, help
everywhere, ``python -m microdl``, and failing cleanly (NOTE [how the CLI fails] in microdl.cli): one line and
status 2 for bad values, bad output paths and a missing GPU, before any training; 130 for Ctrl-C with the old
checkpoint intact; 1 for a diverged run, with strict JSON and no silent NaN checkpoint."""

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from microdl.cli import build_parser, main
from tests.signals import train_stopped_by


def test_train_prints_progress_and_final_summary(capsys):
    status = main(["train", "--dataset", "iris", "--optimizer", "adam", "--lr", "0.01", "--epochs", "40",
                   "--batch-size", "16", "--hidden", "16", "--seed", "0"])
    out = capsys.readouterr().out
    assert status == 0
    assert "epoch    1  loss" in out and "epoch   40  loss" in out
    final = [line for line in out.splitlines() if line.startswith("final")][0]
    assert "train loss" in final and "test loss" in final and "test accuracy" in final
    assert float(final.split("test accuracy")[1].split()[0]) >= 0.9


def test_train_json_schedule_clip_patience_and_save(capsys, tmp_path):
    path = tmp_path / "model.npz"
    status = main(["train", "--dataset", "diabetes", "--optimizer", "rmsprop", "--lr", "0.001", "--epochs", "5",
                   "--hidden", "8", "4", "--schedule", "cosine", "--clip-norm", "1", "--patience", "2",
                   "--dtype", "float32", "--save", str(path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["dataset"] == "diabetes" and "test_r2" in summary
    assert path.exists()


def test_train_with_a_registered_activation_and_loss_and_their_parameters(capsys):
    status = main(["train", "--dataset", "diabetes", "--activation", "elu", "--activation-param", "alpha=0.5",
                   "--loss", "huber", "--loss-param", "delta=0.5", "--epochs", "2", "--hidden", "8", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and math.isfinite(summary["test_loss"])


def test_datasets_command(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "1797" in out and "regression" in out


@pytest.mark.parametrize("command", [[], ["train"], ["datasets"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: microdl" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["train", "--optimizer", "nadam"], "invalid choice: 'nadam'"),
        (["train", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
        (["train", "--batch-size", "-3"], "--batch-size: must be a positive integer"),
        (["train", "--lr", "-0.1"], "--lr: must be a positive number"),
        (["train", "--lr", "nan"], "--lr: must be a positive number"),
        (["train", "--hidden", "0"], "--hidden: must be a positive integer"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to gd, sgd, rmsprop, not"),
        (["train", "--validation-fraction", "1.2"], "must be between 0 and 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["train", "--target", "y"], "--target and --task go with --data"),
        (["train", "--dataset", "iris", "--data", "x.csv"], "give --dataset or --data, not both"),
        (["train", "--data", "x.csv", "--task", "ranking"], "argument --task: invalid choice: 'ranking'"),
        (["train", "--backend", "numpy", "--device", "cuda"], "--device cuda needs the cuda optimizer backend"),
        (["train", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["train", "--loss", "huber"], "--loss huber does not fit digits, a classification task"),
        (["train", "--activation", "elu", "--activation-param", "beta=2"], "takes the parameters ['alpha']"),
        (["train", "--activation-param", "alpha"], "--activation-param: must be NAME=NUMBER"),
        (["train", "--dataset", "diabetes", "--loss", "huber", "--loss-param", "delta=-1"], "must be positive"),
    ],
)
def test_bad_values_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    # one line, naming the subcommand when there is one; the usage block is --help's (NOTE [how the CLI fails])
    prefix = "microdl: error: " if args[0] == "frobnicate" else f"microdl {args[0]}: error: "
    assert len(err.splitlines()) == 1 and err.startswith(prefix) and message in err, err


def test_quiet_prints_only_the_final_line(capsys):
    assert main(["train", "--dataset", "moons", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("final") and len(out.splitlines()) == 1, out


def test_python_dash_m_microdl_microdl_cli_and_the_console_script_are_the_same_tool():
    """The three ways in: the console script and ``python -m microdl`` train to the same JSON, and ``python -m
    microdl`` and ``python -m microdl.cli`` print the same help under the name microdl."""
    script = Path(sys.executable).parent / "microdl"
    if not script.exists():
        pytest.skip("no microdl console script next to this Python")
    runs = [subprocess.run([*cmd, "train", "--dataset", "iris", "--epochs", "3", "--json"], capture_output=True,
                           text=True, timeout=120) for cmd in ([sys.executable, "-m", "microdl"], [str(script)])]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    a, b = (json.loads(r.stdout) for r in runs)
    a.pop("wall_time_s"), b.pop("wall_time_s")
    assert a == b and a["dataset"] == "iris"
    helps = [subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
             for module in ("microdl", "microdl.cli")]
    assert [h.returncode for h in helps] == [0, 0], helps[1].stderr
    assert helps[0].stdout == helps[1].stdout and helps[0].stdout.startswith("usage: microdl ")


def test_train_on_your_own_csv(tmp_path, capsys):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    path = tmp_path / "wine.csv"
    with open(path, "w") as f:
        f.write(",".join([f"x{k}" for k in range(X.shape[1])] + ["cultivar"]) + "\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v!r}" for v in row.tolist()) + f",c{label}\n")
    status = main(["train", "--data", str(path), "--target", "cultivar", "--optimizer", "adam", "--lr", "0.01",
                   "--epochs", "20", "--hidden", "16"])
    out = capsys.readouterr().out
    assert status == 0 and out.startswith("wine: 133 train / 45 test samples, 13 features, classification")
    final = [line for line in out.splitlines() if line.startswith("final")][0]
    assert float(final.split("test accuracy")[1].split()[0]) >= 0.9


def test_a_bad_data_file_exits_2_naming_line_and_column(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(path), "--target", "y"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"microdl train: error: {path}, line 3, column 'b': 'oops' is not a number; " \
                                      "every column but the target must hold numbers (encode categories as numbers " \
                                      "first)\n"


@pytest.mark.parametrize(("where", "message"), [
    ("a-file/model.npz", "is not a folder"),
    (".", "is a folder, not a file"),
])
def test_a_bad_save_path_is_refused_before_training(tmp_path, monkeypatch, capsys, where, message):
    import microdl.train

    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(microdl.train, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "iris", "--save", str(tmp_path / where)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("microdl train: error: --save") and message in err and len(err.splitlines()) == 1


def test_a_missing_gpu_is_one_line_and_status_2(capsys):
    from microdl._cuda_support import simulator_enabled
    from tests.test_cuda_unavailable import gpu_present

    if simulator_enabled() or gpu_present():
        pytest.skip("a CUDA device (or the simulator) is present")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "iris", "--device", "cuda", "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microdl train: error: ") and "CUDA" in lines[0], err


def test_ctrl_c_in_train_exits_130_with_one_line_and_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--quiet", "--save", str(path)]) == 0
    before = path.read_bytes()
    returncode, stderr = train_stopped_by(signal.SIGINT, path)
    assert returncode == 130
    assert stderr.strip().splitlines() == ["microdl train: interrupted; files written before were left as they were"]
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_a_closed_pipe_ends_train_quietly_with_status_141():
    """``microdl train | head -1``: no traceback and no "Broken pipe" line (NOTE [how the CLI fails])."""
    proc = subprocess.Popen([sys.executable, "-m", "microdl", "train", "--dataset", "iris", "--epochs", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout.readline().startswith("iris: ")
        proc.stdout.close()  # the reader goes away; the next epoch line meets a closed pipe
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, stderr) == (141, "")


def test_a_closed_pipe_is_quiet_with_buffered_output_too():
    """Without PYTHONUNBUFFERED a short output waits in the buffer until the end; the closed pipe shows up then."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "microdl", "datasets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()  # long before the interpreter has started, let alone printed
    try:
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, stderr) == (141, "")


def test_a_diverged_train_exits_1_with_strict_json_and_keeps_the_previous_checkpoint(tmp_path, capsys):
    """GD at lr 1 in float32 on diabetes blows up within 5 epochs (issue 12's case): exit 1, the reason on stderr,
    and no checkpoint written over the good one already at --save."""
    path = tmp_path / "model.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--quiet", "--save", str(path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    status = main(["train", "--dataset", "diabetes", "--optimizer", "gd", "--lr", "1", "--dtype", "float32",
                   "--epochs", "5", "--json", "--save", str(path)])
    stdout, stderr = capsys.readouterr()
    assert status == 1, stderr

    def refuse(constant):
        raise AssertionError(f"--json printed {constant}, which is not JSON")

    summary = json.loads(stdout, parse_constant=refuse)
    assert summary["diverged"] is True and summary["saved"] is None
    # the reason is on stderr too, since with --json it is nowhere else there
    assert stderr.splitlines() == [
        stderr.splitlines()[0],
        f"microdl train: nothing saved to {path}: training diverged (the file already there was left as it was)"]
    assert re.match(r"microdl train: training diverged: the training loss became \S+ in epoch \d+ with GD",
                    stderr), stderr
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_a_finite_blow_up_is_a_divergence_too(tmp_path, capsys):
    """Full-batch GD at lr 1e6 on digits: the loss grows to 1e236 without overflowing, so fit sees nothing
    wrong; train applies compare's rule (NOTE [a diverged run]), exits 1 and writes no checkpoint."""
    path = tmp_path / "model.npz"
    status = main(["train", "--dataset", "digits", "--optimizer", "gd", "--lr", "1e6", "--epochs", "20", "--quiet",
                   "--save", str(path)])
    out, err = capsys.readouterr()
    assert status == 1 and not path.exists()
    assert re.search(r"train loss \d\.\d{3}e\+\d+ ", out), out  # not 240 digits of a float
    assert re.match(r"microdl train: training diverged: the loss grew from 3\.\d+ to \S+e\+\d+, more than 1000 "
                    r"times; try a smaller --lr", err), err
    assert err.splitlines()[1] == f"microdl train: nothing saved to {path}: training diverged"


# -- L-BFGS ------------------------------------------------------------------------------------------------
def test_train_lbfgs_full_batch_to_convergence_and_a_checkpoint_that_loads(tmp_path, capsys):
    from microdl.datasets import load_dataset
    from microdl.io import load
    from microdl.optim import LBFGS
    from microdl.train import score

    path = tmp_path / "lbfgs.npz"
    status = main(["train", "--dataset", "iris", "--optimizer", "lbfgs", "--epochs", "200", "--hidden", "16",
                   "--save", str(path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "LBFGS(backend='cpu', max_fun=15000, tol=0.0001, history_size=10)" in out.splitlines()[0]
    steps = [line for line in out.splitlines() if line.startswith("iteration")]
    assert steps and all("  lr —  " in line for line in steps)  # no learning rate, not "nan"
    final = [line for line in out.splitlines() if line.startswith("final")][0]
    iterations = int(final.split("(")[1].split()[0])
    assert "iterations" in final and final.endswith("stop: converged)") and iterations < 200
    # The checkpoint gives back the L-BFGS optimizer and the model that was scored.
    ckpt = load(path)
    assert isinstance(ckpt.optimizer, LBFGS) and ckpt.optimizer.params is ckpt.model.params
    assert ckpt.optimizer.hyperparameters == {"max_fun": 15000, "tol": 1e-4, "history_size": 10}
    assert ckpt.optimizer.t == iterations == ckpt.history.epochs and ckpt.history.stop_reason == "converged"
    data = load_dataset("iris", random_state=0)
    accuracy = score(ckpt.model, data.X_test, ckpt.model.encode_targets(data.y_test))
    assert final.split("test accuracy ")[1].split()[0] == f"{accuracy:.4f}" and accuracy >= 0.9


@pytest.mark.parametrize(("option", "named"), [
    (["--lr", "0.1"], "--lr (it has no learning rate"),
    (["--momentum", "0.9"], "--momentum"),
    (["--weight-decay", "0.01"], "--weight-decay (for an L2 penalty use --alpha)"),
    (["--schedule", "cosine"], "--schedule cosine"),
    (["--clip-norm", "1"], "--clip-norm"),
    (["--clip-value", "1"], "--clip-value"),
    (["--backend", "numpy"], "--backend numpy"),
    (["--device", "cuda"], "--device cuda (it runs on the CPU only"),
])
def test_train_lbfgs_refuses_what_it_cannot_use_in_one_line_before_training(option, named, capsys, monkeypatch):
    import microdl.train

    monkeypatch.setattr(microdl.train, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "iris", "--optimizer", "lbfgs", *option])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"microdl train: error: --optimizer lbfgs takes no {named}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "compare", "sensitivity"])
def test_a_network_too_wide_for_memory_is_refused_before_anything_is_allocated(command, capsys, monkeypatch):
    """Issue 21, case 12: --hidden 200000 200000 gave a MemoryError traceback of 16-31 lines."""
    import microdl.cli
    import microdl.experiments.runs as runs
    import microdl.nn

    monkeypatch.setattr(microdl.cli, "_available_memory", lambda: 2**30)  # 1 GiB free, whatever the machine
    monkeypatch.setattr(microdl.nn, "MLP", lambda *a, **k: pytest.fail("a model was built"))
    monkeypatch.setattr(runs, "run_one", lambda spec: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as exc:
        main([command, "--dataset", "iris", "--hidden", "20000", "20000", "--epochs", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"microdl {command}: error: --hidden 20000 20000: ") and "GiB of memory" in err
    assert "more than the 1 GiB available" in err
