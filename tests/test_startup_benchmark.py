"""Smoke test: ``python -m benchmarks.startup --smoke`` runs its fresh processes and prints the table with the
ratios to scikit-learn. It checks that the benchmark works, not how fast anything is."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_startup_benchmark_smoke_prints_every_process_and_a_ratio(tmp_path):
    out = tmp_path / "startup.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--smoke", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("| process | Numba cache | backend | imports Numba | import s | first fit s | process s | ÷ scikit-learn |"
            in proc.stdout)
    report = json.loads(out.read_text())
    rows = {(r["process"], r["Numba cache"]): r for r in report["rows"]}
    assert set(rows) == {("scikit-learn", "-"), ("microdl estimator", "warm"), ("microdl train", "warm")}
    assert rows[("scikit-learn", "-")]["÷ scikit-learn"] == 1.0
    for (process, _), row in rows.items():
        assert row["process s"] > 0
        if process != "microdl train":  # the estimators report their import and first fit from inside
            assert 0 < row["import s"] < row["process s"] and 0 < row["first fit s"] < row["process s"]
    assert [v["target"] for v in report["verdicts"]] == [f"microdl {p}, warm: ≤ 1.2 × scikit-learn's process"
                                                         for p in ("estimator", "train")]
    # the estimator says which backend it ran on, and whether it loaded Numba (a fit this small: NumPy, no)
    assert (rows[("microdl estimator", "warm")]["backend"], rows[("microdl estimator", "warm")]["imports Numba"]) \
        == ("numpy", "no")
