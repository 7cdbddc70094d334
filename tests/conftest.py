"""Shared test settings.

Tests under ``tests/cuda_sim`` need Numba's CUDA simulator, which must be switched on before Numba is
imported; ``tests/test_cuda_simulator.py`` runs them in their own pytest process with
``NUMBA_ENABLE_CUDASIM=1``. In the main process they are not collected.
"""

import os

collect_ignore_glob = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cuda_sim/*"]
