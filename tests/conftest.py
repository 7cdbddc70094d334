"""Shared test settings, and a summary of the tests skipped for a missing optional package.

Tests under ``tests/cuda_sim`` need Numba's CUDA simulator, which must be switched on before Numba is
imported; ``tests/test_cuda_simulator.py`` runs them in their own pytest process with
``NUMBA_ENABLE_CUDASIM=1``. On a real GPU, ``MICRODL_REAL_GPU=1`` runs them without the simulator
(``scripts/gpu_check.sh``). Otherwise they are not collected.
"""

import os

_CUDA = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or os.environ.get("MICRODL_REAL_GPU") == "1"
collect_ignore_glob = [] if _CUDA else ["cuda_sim/*"]

# Optional packages some tests need, and the extra of pyproject.toml that installs each (None: no extra has it).
OPTIONAL = {"torch": "bench", "distributed": "dask", "dask": "dask", "numba_cuda": "cuda", "sphinx": "docs",
            "pandas": None, "jax": "jax"}
#: Extras whose skips CI does not fail on: JAX is only a benchmark peer (benchmarks/jax_peer.py), and its smoke
#: test runs wherever the extra is installed.
NOT_REQUIRED_IN_CI = {"jax"}


def _missing_module(report) -> str | None:
    """The optional module whose absence skipped this test (``pytest.importorskip``'s reason), or None."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    for module in OPTIONAL:
        if f"could not import '{module}'" in reason or f"{module} is not installed" in reason:
            return module
    return None


def _skipped_for_missing(terminalreporter) -> dict[str, int]:
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        module = _missing_module(report)
        if module:
            counts[module] = counts.get(module, 0) + 1
    return counts


def pytest_sessionfinish(session, exitstatus):
    """With MICRODL_REQUIRE_EXTRAS=1 (CI), a test skipped because an extra's package is missing fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("MICRODL_REQUIRE_EXTRAS") == "1" and reporter is not None and exitstatus == 0:
        if any(OPTIONAL[m] and m not in NOT_REQUIRED_IN_CI for m in _skipped_for_missing(reporter)):
            session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say how many tests were skipped because an optional package is missing, and how to run them."""
    counts = _skipped_for_missing(terminalreporter)
    if not counts:
        return
    terminalreporter.section("skipped for a missing optional package", sep="-", yellow=True)
    for module, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        extra = OPTIONAL[module]
        how = f"pip install -e '.[{extra}]'" if extra else f"pip install {module}"
        terminalreporter.write_line(f"{n} test(s) skipped: {module} is not installed; run them with: {how}",
                                    yellow=True)
    if os.environ.get("MICRODL_REQUIRE_EXTRAS") == "1" and any(OPTIONAL[m] and m not in NOT_REQUIRED_IN_CI
                                                               for m in counts):
        terminalreporter.write_line("MICRODL_REQUIRE_EXTRAS=1: failing, since these tests must run here", red=True)
