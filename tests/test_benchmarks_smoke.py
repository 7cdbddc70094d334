"""Smoke tests: the optimizer and GPU benchmarks run end to end on tiny sizes and print their tables.

It checks that ``python -m benchmarks.optimizers`` still works, not how fast anything is: timings on a shared
CI machine mean nothing. ``--quick`` takes a few seconds (about 7 s with a warm Numba cache on 2 cores, 12 s
cold) and needs no torch; where torch is installed its rows are filled in too.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_optimizer_benchmark_quick_prints_a_table(tmp_path):
    out = tmp_path / "optimizers.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.optimizers", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| N | optimizer |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    table = lines[lines.index(header) + 2:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[: table.index("")]]
    sizes, names = {row[0] for row in rows}, {row[1] for row in rows}
    assert len(sizes) >= 2 and {"sgd", "sgd_momentum", "adagrad", "rmsprop", "adadelta", "adam", "adamw"} <= names
    assert len(rows) == len(sizes) * len(names)  # one row per size and optimizer
    for row in rows:
        for name in ("bound ms", "numba ms", "numpy ms", "naive np ms"):
            assert float(row[columns.index(name)]) > 0, (row, name)
    assert "| N | copy GB/s | triad GB/s |" in result.stdout
    assert "| Numba cache |" in result.stdout and "| target |" in result.stdout
    assert out.read_text(encoding="utf-8") in result.stdout  # --out holds the same report


def _gpu_benchmark(*args):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_gpu_benchmark_smoke_runs_every_part_under_the_simulator(tmp_path):
    """benchmarks/gpu.py end to end on tiny sizes, so that a real-GPU session does not find its bugs."""
    out = tmp_path / "gpu.json"
    result = _gpu_benchmark("--smoke", "--json", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    rows = json.loads(out.read_text())
    updates = {row["update"]: row for row in rows["bandwidth"]}
    assert {"sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"} <= set(updates)
    assert all(row["GB/s"] > 0 for row in updates.values())
    assert [row["op"] for row in rows["matmul"]] == ["A·B", "Aᵀ·B", "A·Bᵀ"]
    assert all(row["microdl TFLOP/s"] > 0 for row in rows["matmul"])
    (epoch,) = rows["epochs"]
    assert epoch["microdl cuda s/epoch"] > 0 and epoch["microdl cpu s/epoch"] > 0
    assert "## Epoch time" in result.stdout


def test_gpu_benchmark_refuses_the_simulator_without_smoke():
    result = _gpu_benchmark("--quick")
    assert result.returncode != 0 and "the simulator is not a GPU" in result.stderr
