"""Smoke test: the optimizer benchmark runs end to end on tiny sizes and prints its tables (the GPU benchmark's
smoke test runs under the simulator with the CUDA tests: tests/cuda_sim/test_gpu_benchmark.py).

It checks that ``python -m benchmarks.optimizers`` still works, not how fast anything is: timings on a shared
CI machine mean nothing. ``--quick`` takes a few seconds (about 7 s with a warm Numba cache on 2 cores, 12 s
cold) and needs no torch; where torch is installed its rows are filled in too.
"""

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
