"""Shared test settings.

Tests under ``tests/cuda_sim`` need Numba's CUDA simulator, which must be switched on before Numba is
imported; ``tests/test_cuda_simulator.py`` runs them in their own pytest process with
``NUMBA_ENABLE_CUDASIM=1``. On a real GPU, ``MICRODL_REAL_GPU=1`` runs them without the simulator
(``scripts/gpu_check.sh``). Otherwise they are not collected.
"""

import os

_CUDA = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or os.environ.get("MICRODL_REAL_GPU") == "1"
collect_ignore_glob = [] if _CUDA else ["cuda_sim/*"]
