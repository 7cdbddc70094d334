"""benchmarks/gpu.py end to end on tiny sizes under the simulator (``--smoke``), so that a real-GPU session does
not find its bugs; and its refusal to time the simulator without ``--smoke``. Simulator only: on a real GPU the
benchmark itself is what runs."""

import json
import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("the simulator's smoke run of benchmarks/gpu.py", allow_module_level=True)

from benchmarks import gpu  # noqa: E402


def test_gpu_benchmark_smoke_runs_every_part_under_the_simulator(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    text = gpu.main(["--smoke", "--json", str(out)])
    rows = json.loads(out.read_text())
    updates = {row["update"]: row for row in rows["bandwidth"]}
    assert {"sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"} <= set(updates)
    assert all(row["GB/s"] > 0 for row in updates.values())
    assert [row["op"] for row in rows["matmul"]] == ["A·B", "Aᵀ·B", "A·Bᵀ"]
    assert all(row["microdl TFLOP/s"] > 0 for row in rows["matmul"])
    (epoch,) = rows["epochs"]
    assert epoch["microdl cuda s/epoch"] > 0 and epoch["microdl cpu s/epoch"] > 0
    assert "## Epoch time" in capsys.readouterr().out and "## Epoch time" in text


def test_gpu_benchmark_refuses_the_simulator_without_smoke():
    with pytest.raises(SystemExit, match="the simulator is not a GPU"):
        gpu.main(["--quick"])
