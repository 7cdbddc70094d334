"""The command line: training end to end, listing datasets, help everywhere, clear errors."""

import json
import subprocess
import sys

import pytest

from microdl.cli import build_parser, main


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
        (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["train", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
        (["train", "--batch-size", "-3"], "--batch-size: must be a positive integer"),
        (["train", "--lr", "-0.1"], "--lr: must be a positive number"),
        (["train", "--lr", "nan"], "--lr: must be a positive number"),
        (["train", "--hidden", "0"], "--hidden: must be a positive integer"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to sgd, gd and rmsprop"),
        (["train", "--validation-fraction", "1.2"], "must be between 0 and 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_values_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "microdl.cli", "train", "--dataset", "moons", "--epochs", "2",
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("final")
