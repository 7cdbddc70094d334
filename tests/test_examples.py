"""Every script in examples/ runs to the end, in its quick mode (MICRODL_QUICK=1), in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))

# script -> a line its output must contain (scripts not listed only have to succeed)
EXPECTED = {
    "train_one_model.py": "test accuracy",
    "compare_optimizers.py": "picked lr",
    "gd_vs_sgd.py": "per epoch",
    "custom_schedule.py": "WarmupThenHalve(warmup=3, every=8)",
    "own_data.py": "houses: 300 samples, 2 features, task regression",
    "custom_optimizer.py": "MLPClassifier(solver='lion'): training accuracy",
    "custom_activation.py": "the compiled kernels and the textbook pass agree",
}


def test_the_learner_examples_exist():
    assert set(EXPECTED) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "MICRODL_QUICK": "1", "MICRODL_OUT": str(tmp_path / "out")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXPECTED.get(script, "") in proc.stdout
