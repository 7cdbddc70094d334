"""Plugin files: a learner's own Python file, imported by path, that registers optimizers, activations or losses.

``microdl train --plugin FILE.py`` and ``microdl compare --plugin FILE.py`` import the file first, so that what it
registers (:func:`microdl.optim.register_optimizer`, and the model's registries) can be named on the command
line. Each file is imported once per process. A run that goes to another process (``compare --jobs 2``) takes the
list of files imported here along, and the worker imports them before the run, so that the names resolve there
too (:func:`microdl.experiments.runs.execute`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from types import ModuleType

__all__ = ["load_plugin", "load_plugins", "loaded_plugins"]

#: The plugin files imported in this process, by resolved path (a second import of the same file is a no-op).
_PLUGINS: dict[str, ModuleType] = {}


def load_plugin(path: str) -> ModuleType:
    """Import the Python file ``path`` as a module (once per process) and return it.

    Raises
    ------
    ValueError
        If ``path`` is not a Python file, or importing it fails (the message names the file and the error, on
        one line).
    """
    resolved = os.path.realpath(path)
    if resolved in _PLUGINS:
        return _PLUGINS[resolved]
    if not os.path.isfile(resolved) or not resolved.endswith(".py"):
        raise ValueError(f"--plugin {path}: no such Python file (a path ending in .py)")
    name = "microdl_plugin_" + "".join(c if c.isalnum() else "_" for c in os.path.basename(resolved)[:-3])
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that its classes pickle by reference, as an installed module's do
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"--plugin {path}: {type(exc).__name__}: {message}") from exc
    _PLUGINS[resolved] = module
    return module


def load_plugins(paths: Iterable[str]) -> None:
    """Import each of ``paths`` (:func:`load_plugin`); what a worker process calls before its runs."""
    for path in paths:
        load_plugin(path)


def loaded_plugins() -> tuple[str, ...]:
    """The resolved paths of the plugin files imported in this process, in import order."""
    return tuple(_PLUGINS)
