"""Asking for CUDA where it cannot be used raises CudaUnavailableError naming what is missing.

Runs in the normal test process, without Numba's simulator. The first test needs a machine without a GPU
(like CI's); the others fake the missing piece and run anywhere.
"""

import importlib.util

import pytest

from microdl._cuda_support import CudaUnavailableError, simulator_enabled
from microdl.nn import MLP

pytestmark = pytest.mark.skipif(simulator_enabled(), reason="the simulator counts as a device")


def gpu_present() -> bool:
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


@pytest.mark.skipif(gpu_present(), reason="a CUDA device is present here")
def test_cuda_model_without_a_gpu_says_what_is_missing():
    with pytest.raises(CudaUnavailableError, match="driver|device"):
        MLP((3, 4, 2), device="cuda")


def test_missing_numba_cuda_package_is_named(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "numba_cuda" else real_find_spec(name, *args))
    with pytest.raises(CudaUnavailableError, match=r"numba-cuda.*pip install"):
        MLP((3, 4, 2), device="cuda")


def test_no_visible_device_is_named(monkeypatch):
    from numba import cuda

    monkeypatch.setattr(cuda, "gpus", [])
    with pytest.raises(CudaUnavailableError, match="no CUDA device is visible"):
        MLP((3, 4, 2), device="cuda")


def test_cpu_models_never_need_cuda():
    assert MLP((3, 4, 2)).device == "cpu"
