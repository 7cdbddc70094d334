"""Compiling the same source more than one way: the model's scalar formulas for a target (calls between them
included), kernels rebuilt against other formulas, and a parallel loop's serial twin.

The activations and the loss pairs (:mod:`microdl.nn.activations`, :mod:`microdl.nn.losses`) are plain Python
functions, so that the textbook pass (:mod:`microdl.nn.reference`) and the tests call them as they are. The CPU
kernels need them compiled with ``numba.njit(inline="always")`` and the CUDA kernels with
``cuda.jit(device=True)``; and a compiled function may only call compiled functions, so
``silu``'s call of ``sigmoid`` must reach the compiled ``sigmoid`` of the same target.
:func:`jit_scalar_functions` therefore makes, per target, a copy of each function that shares its code but
looks its global names up in a namespace where every such function is the target's compiled copy. The
formulas exist once, in their modules; nothing is compiled until a kernel first calls one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import FunctionType, ModuleType
from typing import Any

__all__ = ["jit_scalar_functions", "rebuild", "serial_twin"]


def jit_scalar_functions(modules: Iterable[ModuleType], jit: Callable[[FunctionType], Any],
                         outline: tuple[Any, Callable[[FunctionType], Any]] = ((), None)) -> dict[Any, Any]:
    """Every function defined in ``modules``, compiled by ``jit``, calling each other's compiled copies: a map
    from each original function to its compiled copy. Each module keeps its own namespace (two modules may
    both define ``softplus``); a name one module imported from another finds the other's compiled copy.
    ``outline = (functions, other_jit)`` compiles those functions with ``other_jit`` instead.

    >>> import math, types
    >>> from numba import njit
    >>> m = types.ModuleType("m")
    >>> exec("import math\\ndef f(x):\\n    return math.sqrt(x)\\ndef g(x):\\n    return 2 * f(x)", vars(m))
    >>> jit_scalar_functions([m], njit)[m.g](4.0)
    4.0
    """
    compiled: dict[Any, Any] = {}
    namespaces = []
    for module in modules:
        namespace = dict(vars(module))
        namespaces.append(namespace)
        for fn in vars(module).values():
            if isinstance(fn, FunctionType) and fn.__module__ == module.__name__:
                copy = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
                copy.__qualname__, copy.__doc__, copy.__module__ = fn.__qualname__, fn.__doc__, fn.__module__
                compiled[fn] = (outline[1] if fn in outline[0] else jit)(copy)
    for namespace in namespaces:  # the copies now find each other compiled
        for name, value in namespace.items():
            if isinstance(value, FunctionType) and value in compiled:
                namespace[name] = compiled[value]
    return compiled


def rebuild(functions: dict[str, tuple[FunctionType, Callable[[FunctionType], Any] | None]],
            globals_: dict[str, Any], suffix: str) -> dict[str, Any]:
    """Copies of ``functions`` (name → (function, its jit or None for plain Python)) sharing their code, whose
    globals are ``globals_`` with every such name bound to its new copy: the same kernels compiled against other
    globals (other formulas). ``suffix`` is appended to each copy's qualified name, since Numba's disk cache
    files a kernel under its name."""
    namespace = dict(globals_)
    built = {}
    for name, (fn, jit) in functions.items():
        copy = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__qualname__, copy.__doc__, copy.__module__ = fn.__qualname__ + suffix, fn.__doc__, fn.__module__
        built[name] = copy if jit is None else jit(copy)
    namespace.update(built)
    return built


def serial_twin(fn: FunctionType, **options: Any) -> Any:
    """``fn`` (a loop written with ``prange``) compiled without ``parallel=True``, where ``prange`` is ``range``:
    the same arithmetic on the calling thread, launching no threads (NOTE [threading layer] in
    :mod:`microdl.config`).

    The copy gets its own qualified name, since Numba's disk cache files a function under its name and would
    otherwise hand the parallel build to the serial one. ``error_model="numpy"`` (a division by zero gives inf
    or NaN, as in the parallel build, instead of raising) also lets LLVM vectorise the loop: the default
    Python error model's zero-divisor test per element kept a serial Adam step 4 times slower (measured, float32,
    N = 1e5: 158 µs against 36 µs).
    """
    copy = FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__, copy.__doc__, copy.__module__ = f"{fn.__qualname__}_serial", fn.__doc__, fn.__module__
    from microdl._cache import checked_jit

    return checked_jit(nogil=True, error_model="numpy", **options)(copy)
