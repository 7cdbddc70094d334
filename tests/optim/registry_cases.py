"""The optimizer test tables, derived from the registry: a newly registered built-in joins every table, and a
built-in without an oracle or a case fails :func:`test_every_builtin_has_an_oracle_and_cases` instead of going
untested.

The hyperparameters come from the cases of the naive oracle (:mod:`tests.optim.naive`, which imports nothing
from microdl): for each optimizer, the case that allocates the most state buffers (every branch of its rule
compiled), the most options breaking ties.
"""

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from microdl.optim import Optimizer, unregister_optimizer
from microdl.optim.registry import registered
from tests.optim.naive import CASES

#: The registered elementwise optimizers, in display order: ``(name, class)``.
ELEMENTWISE = [(e.name, e.cls) for e in registered() if issubclass(e.cls, Optimizer)]
#: Those that ship with microdl (a learner's own optimizer registered by a test is left out).
BUILTIN = [(name, cls) for name, cls in ELEMENTWISE if cls.__module__.startswith("microdl.")]


def _fullest(name, cls):
    cases = [hyper for _, n, hyper in CASES if n == name]
    if not cases:
        return {}
    return max(cases, key=lambda h: (len(cls(np.zeros(2), backend="numpy", **h).state), len(h)))


#: ``(name, class, hyperparameters)``: each built-in with every state buffer allocated.
ALL_OPTIONS = [(name, cls, _fullest(name, cls)) for name, cls in BUILTIN]


#: The example of a learner's own optimizer, in its own file.
LION_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_optimizer.py"


@contextlib.contextmanager
def learner_lion(module_name: str) -> Iterator[ModuleType]:
    """The example's Lion, imported from its file as a learner's module is, and unregistered afterwards."""
    spec = importlib.util.spec_from_file_location(module_name, LION_EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        unregister_optimizer("lion")
        del sys.modules[module_name]
