"""Every docstring example in the package runs and prints what it shows (doctest), one test per module.

The CUDA modules refuse to import without numba-cuda and a driver (``CudaUnavailableError``); their examples
are skipped with that reason here and run under the simulator by ``tests/cuda_sim``.
"""

import doctest
import importlib
import pkgutil

import pytest

import microdl
from microdl._cuda_support import CudaUnavailableError

MODULES = ["microdl"] + sorted(m.name for m in pkgutil.walk_packages(microdl.__path__, "microdl."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_the_package_has_doctests():
    """The examples below are collected: a broken walk would make every parametrised test pass vacuously."""
    found = 0
    for name in ("microdl.nn.reference", "microdl.optim.optimizers", "microdl.sklearn", "microdl.train"):
        found += sum(len(t.examples) for t in doctest.DocTestFinder().find(importlib.import_module(name)))
    assert found >= 4


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch, tmp_path):
    from microdl.nn import activations, formulas, losses

    # examples that register an activation or a loss leave the registries as they found them
    saved = dict(activations._REGISTRY), dict(losses._REGISTRY)
    try:
        _run_docstring_examples(name, monkeypatch, tmp_path)
    finally:
        for registry, old in zip((activations._REGISTRY, losses._REGISTRY), saved):
            if registry != old:
                registry.clear()
                registry.update(old)
                formulas.registry_changed()


def _run_docstring_examples(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        module = importlib.import_module(name)
    except CudaUnavailableError as exc:
        pytest.skip(f"CUDA module without a usable numba-cuda: {exc}".splitlines()[0])
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = [t for t in finder.find(module, name) if t.examples]
    if not tests:
        pytest.skip("no docstring examples")
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
