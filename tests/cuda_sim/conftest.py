"""Shared settings of the CUDA tests (run under Numba's simulator, or on a real GPU with MICRODL_REAL_GPU=1).

Every test runs with tiny launch shapes (2×2 threads computing 2×2 outputs each in the matrix multiply, 4
threads and at most 2 blocks elsewhere), so that partial tiles, partial blocks, several K slices and several
grid-stride passes all run on tiny arrays; and, in the simulator, with a short GIL switch interval, which makes
its busy-waiting scheduler several times faster.
"""

import sys

import pytest

from microdl import config

#: The launch shapes as shipped, read before any test shrinks them.
SHIPPED = {name: getattr(config, name) for name in ("TILE", "REG", "THREADS_PER_BLOCK", "MAX_BLOCKS", "REDUCE_COLS",
                                                    "REDUCE_ROWS")}
SMALL = {"TILE": 2, "REG": 2, "THREADS_PER_BLOCK": 4, "MAX_BLOCKS": 2, "REDUCE_COLS": 2, "REDUCE_ROWS": 2}


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    for name, value in SMALL.items():
        monkeypatch.setattr(config, name, value)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(2e-4)
    yield
    sys.setswitchinterval(interval)
