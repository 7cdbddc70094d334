"""Run each file of ``tests/cuda_sim`` in its own pytest process under Numba's CUDA simulator.

The simulator must be switched on before Numba is imported, hence a subprocess per file. A failure is never
retried: the CUDA results must match the CPU's on every run (an intermittent mismatch here was a race in the
simulator's shared arrays, closed by :func:`microdl._cuda_support.require_cuda`; see
``tests/cuda_sim/test_simulator_shared.py``).
"""

import os
import pathlib
import subprocess
import sys

import pytest

SIM_DIR = pathlib.Path(__file__).parent / "cuda_sim"
SIM_FILES = sorted(p.name for p in SIM_DIR.glob("test_*.py"))


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="already inside the simulator run")
@pytest.mark.parametrize("name", SIM_FILES)
def test_under_cuda_simulator(name):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SIM_DIR / name)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"simulator tests in {name} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
