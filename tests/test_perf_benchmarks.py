"""Smoke tests of issue 20's benchmarks: each runs end to end in --quick mode and prints its table. They check
what the tables say about correctness (the same weights on every layout, no subnormal state left, the same loss
as JAX), never how fast anything is. The layouts and subnormal benchmarks run in this process (``main(argv)``,
what ``python -m`` calls; a process each cost more than the benchmark), and ``python -m`` finds each of them."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import layouts, subnormal

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=300):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _table(stdout, first_column):
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith(f"| {first_column} |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(columns, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def test_the_benchmarks_run_as_modules():
    for module in ("benchmarks.layouts", "benchmarks.subnormal"):
        assert _run("-m", module, "--help", timeout=60).startswith("usage: ")


def test_layouts_benchmark_gives_the_same_weights_on_every_layout(tmp_path, capsys):
    out = tmp_path / "layouts.md"
    layouts.main(["--quick", "--out", str(out)])
    stdout = capsys.readouterr().out
    rows = _table(stdout, "problem")
    assert {r["layout"] for r in rows} >= {"misaligned (byte offset)", "Fortran-ordered", "np.load(mmap_mode='r')"}
    assert all(r["same weights"] == "yes" and float(r["ratio"]) > 0 for r in rows)
    assert out.read_text(encoding="utf-8") in stdout


def test_subnormal_benchmark_leaves_no_subnormal_state(capsys):
    subnormal.main(["--quick"])
    rows = _table(capsys.readouterr().out, "backend")
    assert {r["backend"] for r in rows} == {"cpu", "numpy"}
    assert all(r["subnormal m"] == "0" and r["subnormal v"] == "0" for r in rows)  # NOTE [subnormal state]


def test_jax_benchmark_says_which_extra_it_needs_without_jax():
    code = "import sys; sys.modules['jax'] = None; from benchmarks.jax_peer import main; main([])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["benchmarks.jax_peer needs JAX and optax: pip install -e '.[jax]'"]


@pytest.mark.slow
def test_jax_benchmark_trains_the_same_network_on_the_same_batches():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    rows = _table(_run("-m", "benchmarks.jax_peer", "--quick", timeout=600), "problem")
    assert [r["batch"] for r in rows] == ["1", "32", "200"]
    for r in rows:  # the same initial weights, batches and Adam: the same loss, to float32 rounding
        assert float(r["last loss microdl"]) == pytest.approx(float(r["last loss jax"]), rel=1e-2)
        assert float(r["GEMM floor ms"]) > 0 and float(r["jax compile s"]) > 0
