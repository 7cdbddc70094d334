"""The simulator's ``cuda.shared.array`` is made thread-safe by :func:`microdl._cuda_support.require_cuda`.

Unpatched, two simulated threads of one block can each get their own "shared" array when the interpreter
switches threads inside the allocation; the block's reduction then misses their writes. That made
``test_cuda_train.py`` fail now and then on a loaded machine. Here a slow allocation forces the switch (about
two launches in three go wrong without the lock), and 20 launches make a pass without it all but impossible.
"""

import os
import time

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("tests a patch of Numba's CUDA simulator", allow_module_level=True)

from numba import cuda  # noqa: E402
from numba.cuda.simulator import kernelapi  # noqa: E402

from microdl._cuda_support import _make_simulator_shared_arrays_thread_safe, require_cuda  # noqa: E402

THREADS = 8
FLOAT64 = np.dtype(np.float64)


@cuda.jit
def block_total(x, out):
    buf = cuda.shared.array(THREADS, np.float64)
    t = cuda.threadIdx.x
    buf[t] = x[t]
    cuda.syncthreads()
    if t == 0:
        total = 0.0
        for i in range(THREADS):
            total += buf[i]
        out[0] = total


class _SlowAllocation:
    """The simulator module's ``np`` with an ``empty`` that sleeps, which lets the other threads run."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(*args, **kwargs):
        time.sleep(0.002)
        return np.empty(*args, **kwargs)


@pytest.fixture
def slow_allocation(monkeypatch):
    monkeypatch.setattr(kernelapi, "np", _SlowAllocation())


def test_require_cuda_installs_the_lock_once():
    require_cuda()
    patched = kernelapi.FakeCUDAShared.array
    assert patched._microdl_thread_safe
    _make_simulator_shared_arrays_thread_safe()
    assert kernelapi.FakeCUDAShared.array is patched


def test_threads_of_a_block_share_one_array_when_allocation_switches_threads(slow_allocation):
    require_cuda()
    x = np.arange(1.0, THREADS + 1)
    out = np.zeros(1)
    for _ in range(20):
        block_total[1, THREADS](x, out)
        assert out[0] == x.sum()


def test_separate_lines_still_get_separate_arrays():
    require_cuda()

    @cuda.jit
    def two_arrays(out):
        a = cuda.shared.array(2, np.float64)
        b = cuda.shared.array(2, np.float64)
        t = cuda.threadIdx.x
        a[t] = 1.0
        b[t] = 2.0
        cuda.syncthreads()
        out[t] = a[t] + 10 * b[t] + 100 * a[1 - t]

    out = np.zeros(2)
    two_arrays[1, 2](out)
    np.testing.assert_array_equal(out, [121.0, 121.0])


def test_dynamic_shared_memory_still_works():
    """``cuda.shared.array(0, ...)`` (dynamic shared memory) goes to the simulator's own method, unchanged."""
    require_cuda()

    @cuda.jit
    def dynamic(out):
        buf = cuda.shared.array(0, FLOAT64)  # a dtype: the simulator's dynamic path needs its itemsize
        t = cuda.threadIdx.x
        buf[t] = t + 1.0
        cuda.syncthreads()
        out[t] = buf[1 - t]

    out = np.zeros(2)
    dynamic[1, 2, 0, 16](out)
    np.testing.assert_array_equal(out, [2.0, 1.0])
