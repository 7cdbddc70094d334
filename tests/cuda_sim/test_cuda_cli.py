"""`microdl train --device cuda` end to end under the CUDA simulator, against the same run on the CPU."""

import json
import sys

from microdl.cli import main

sys.setswitchinterval(2e-4)  # the simulator runs each thread in Python; see test_cuda_train.py


def _run(device, capsys):
    status = main(["train", "--dataset", "iris", "--optimizer", "adam", "--lr", "0.01", "--epochs", "2",
                   "--batch-size", "50", "--hidden", "4", "--seed", "0", "--device", device, "--json"])
    assert status == 0
    return json.loads(capsys.readouterr().out)


def test_train_on_cuda_matches_cpu(capsys):
    cuda, cpu = _run("cuda", capsys), _run("cpu", capsys)
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        assert abs(cuda[key] - cpu[key]) <= 1e-9 * max(1.0, abs(cpu[key])), key
