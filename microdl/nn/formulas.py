"""The registered activations and losses, compiled for a target, and picked by their integer code.

The kernels take the activation and the loss as small integers (a kernel compiled once serves every
activation and loss: compiling one per pair cost more first-fit latency than the branch costs at run time,
NOTE [one block for all formulas]). :func:`compiled` writes, from the registries of
:mod:`microdl.nn.activations` and :mod:`microdl.nn.losses`, these dispatch functions (for microdl's own formulas
they are checked in as ``microdl/nn/_dispatch.py``, to read and to follow in an editor)::

    activate(code, z, p)              f(z) of activation ``code``
    derivative(code, z, a, p)         f'(z) of activation ``code``
    activate_from_output(code, z, p)     f(z), for an activation registered with ``from_output=True``
    derivative_from_output(code, a, p)   f'(z) from the output alone, for the same activations
    activate_from_z(code, z, p)          f(z), for the others (the CPU's passes keep z for them)
    derivative_from_z(code, z, a, p)     f'(z), for the same others
    loss_and_output(code, z, y, has_y, p)   ℓ of loss ``code``, z overwritten with the output
    output_delta(code, a, y, c, p)    dL/dz of loss ``code``

plus the L2 terms of :mod:`microdl.nn.losses`, every one compiled by the target's ``jit``
(``numba.njit(inline="always")`` for the CPU, ``cuda.jit(device=True)`` for CUDA), calling each other's compiled
copies (:func:`microdl._jit.jit_scalar_functions`). A registration bumps :func:`version`, and the kernel modules
build their kernels again for the new registry at their next use (the built-ins alone keep the kernels' own
names, so their disk cache is the one a plain ``import microdl`` uses).

NOTE [one block for all formulas]
    Specialising the CPU block per activation and loss (a kernel per pair) was tried and dropped: every new pair
    cost a first fit a full compile of the block, and the branch on a small int is predicted perfectly inside
    the loops. So the registry's functions are chained by ``if code == k`` here, in registration order, each
    function once. Each inlined formula costs the block's compile too (Numba inlines it into its IR and types it
    again), so on the CPU the formulas of activations that keep z (GELU, SiLU, ELU: a call of ``erf`` or ``exp``
    per element anyway) are compiled as functions of their own and called, not inlined, and only into the
    block of the activations that keep z (the CPU compiles the block twice at most, with z and without: NOTE
    [two blocks] in :mod:`microdl.nn._cpu`).

NOTE [parameters as a tuple]
    The kernels take p as a tuple of ``MAX_PARAMETERS`` floats, not an array: a tuple lives in registers, while a
    load from an array inside a loop that writes another array may alias it, and LLVM then neither hoists it
    nor vectorises the loop (the CPU's relu layers ran 1.3 times slower so). One length for every formula keeps
    one compiled kernel for all of them.

NOTE [derivative from the output]
    A chain that holds a call (GELU's ``erf``, ELU's ``exp``) keeps LLVM from vectorising the loop around it,
    even in the branches not taken: the CPU's backward loop over a relu layer ran 2 to 3 times slower through the
    full ``derivative`` chain (measured, 64-128-10 network, 200 rows), and so did the forward loop through the
    full ``activate`` chain (the CPU's loss and gradient 1.3 times slower than with the chain of the arithmetic
    activations alone, relu, same network). The activations registered with ``from_output=True`` (identity, relu,
    leaky_relu, tanh, sigmoid: arithmetic only) therefore get chains of their own, ``activate_from_output`` and
    ``derivative_from_output``, which the CPU's block calls when it keeps no z; the others get
    ``activate_from_z`` and ``derivative_from_z`` (NOTE [two blocks] in :mod:`microdl.nn._cpu`).
"""

from __future__ import annotations

import hashlib
import itertools
import linecache
from collections.abc import Callable
from types import FunctionType, ModuleType
from typing import Any

from microdl._jit import jit_scalar_functions

__all__ = ["compiled", "version", "is_builtin", "registry_digest", "registry_changed", "as_parameters",
           "MAX_PARAMETERS", "dispatch_source", "dispatch_module_text", "write_dispatch_module"]

#: The most parameters an activation or a loss may declare (NOTE [parameters as a tuple]).
MAX_PARAMETERS = 4


def as_parameters(values: Any) -> tuple[float, ...]:
    """A formula's parameter vector p as the kernels take it: a tuple of ``MAX_PARAMETERS`` floats, the declared
    parameters first (NOTE [parameters as a tuple])."""
    values = [float(v) for v in values]
    if len(values) > MAX_PARAMETERS:
        raise ValueError(f"a formula takes at most {MAX_PARAMETERS} parameters; got {len(values)}")
    return tuple(values + [0.0] * (MAX_PARAMETERS - len(values)))

_version = itertools.count()
_current = next(_version)
_BUILTIN_DIGEST: str | None = None
_cache: dict[tuple[int, Any], ModuleType] = {}


def registry_changed() -> None:
    """Called by ``register_activation`` and ``register_loss``: the next :func:`compiled` builds anew."""
    global _current, _state
    _current = next(_version)
    _cache.clear()
    _state = None


def version() -> int:
    """A number that changes with every registration."""
    return _current


def registry_digest() -> str:
    """A short digest of the registered names and functions (part of the rebuilt kernels' names)."""
    return _registry_state()[0]


def is_builtin() -> bool:
    """Whether only microdl's own activations and losses are registered (the kernels keep their names). Cheap:
    asked before every pass, answered from what was worked out at the last registration."""
    return _registry_state()[1]


_state: tuple[str, bool] | None = None


def _registry_state() -> tuple[str, bool]:
    global _state, _BUILTIN_DIGEST
    if _state is None:
        from microdl.nn import activations, losses

        entries = [(a.name, _qual(a.f), _qual(a.df)) for a in activations._REGISTRY.values()]
        entries += [(l.name, _qual(l.value), _qual(l.delta)) for l in losses._REGISTRY.values()]
        digest = hashlib.sha256(repr(entries).encode()).hexdigest()[:10]
        if _BUILTIN_DIGEST is None:  # the registries as microdl.nn's import left them
            _BUILTIN_DIGEST = _builtin_digest()
        _state = (digest, digest == _BUILTIN_DIGEST)
    return _state


def _builtin_digest() -> str:
    from microdl.nn import activations, losses

    entries = [(a.name, _qual(a.f), _qual(a.df)) for a in activations._REGISTRY.values()
               if a.f.__module__ == activations.__name__]
    entries += [(l.name, _qual(l.value), _qual(l.delta)) for l in losses._REGISTRY.values()
                if l.value.__module__ == losses.__name__]
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:10]


def _qual(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def compiled(jit: Callable[[FunctionType], Any], key: Any, outline: Callable[[FunctionType], Any] | None = None,
             ) -> ModuleType:
    """The dispatch functions and every registered formula compiled by ``jit`` (``key`` names the target),
    as the attributes of a module object (a kernel calls ``F.activate(...)``; Numba resolves a module's
    attributes at compile time); for microdl's own formulas its code reads as ``microdl/nn/_dispatch.py``.
    Built once per registry version and target. With ``outline``, the formulas of activations that keep z
    (GELU, SiLU, ELU) are compiled by it instead, as functions of their own (NOTE [one block for all
    formulas])."""
    hit = _cache.get((_current, key))
    if hit is None:
        hit = _cache[(_current, key)] = _build(jit, key, outline)
    return hit


def _build(jit: Callable[[FunctionType], Any], key: Any, outline: Callable[[FunctionType], Any] | None,
           ) -> ModuleType:
    import sys

    from microdl.nn import activations, losses

    acts = list(activations._REGISTRY.values())
    loss_list = list(losses._REGISTRY.values())
    functions = [a.f for a in acts] + [a.df for a in acts] + [l.value for l in loss_list] + [l.delta for l in loss_list]
    functions += [losses.l2_penalty, losses.l2_gradient]
    # Compile every function of the modules the formulas come from (lazily: only what a kernel calls is
    # compiled), so that a formula may call its module's helpers (silu calls sigmoid).
    modules = {losses.__name__: losses, activations.__name__: activations}
    for fn in functions:
        module = sys.modules.get(getattr(fn, "__module__", ""))
        if module is not None:
            modules.setdefault(module.__name__, module)
    heavy = {fn for a in acts if not a.from_output for fn in (a.f, a.df)} if outline is not None else set()
    copies = jit_scalar_functions(modules.values(), jit, (heavy, outline))
    for fn in functions:  # a formula that is not a module-level function (a closure): compiled on its own
        if fn not in copies:
            copies[fn] = (outline if fn in heavy else jit)(fn)

    source, symbols = dispatch_source(acts, loss_list)
    namespace: dict[str, Any] = {symbol: copies[fn] for symbol, fn in symbols.items()}
    filename = f"<microdl formulas {registry_digest()}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
    exec(compile(source, filename, "exec"), namespace)
    target = ModuleType(f"microdl.nn.formulas ({key})")
    target.__doc__ = source
    for name in ("activate", "derivative", "activate_from_output", "derivative_from_output", "activate_from_z",
                 "derivative_from_z", "loss_and_output", "output_delta"):
        fn = namespace[name]
        fn.__module__ = __name__
        setattr(target, name, jit(fn))
    target.l2_penalty = copies[losses.l2_penalty]
    target.l2_gradient = copies[losses.l2_gradient]
    return target


def dispatch_source(acts: list[Any], loss_list: list[Any]) -> tuple[str, dict[str, Callable[..., Any]]]:
    """The source of the dispatch functions for the activations ``acts`` and the losses ``loss_list`` (the
    registries' entries, in registration order), and the formula each of its free names stands for: ``{"activate_1":
    relu, ...}``. :func:`compiled` binds those names to the target's compiled copies; ``microdl/nn/_dispatch.py``
    is this source for the built-in registries, checked in for reading (:func:`write_dispatch_module`)."""
    symbols: dict[str, Callable[..., Any]] = {}
    lines: list[str] = []

    def chain(name: str, args: str, entries: list[Any], attr: str, call: str | None = None) -> None:
        """``def name(code, args)``: the function ``attr`` of the entry registered under ``code``. Entries that
        share a function share a branch, and the function most of them share is the fallback, so that each
        function is inlined once (NOTE [one block for all formulas])."""
        call = call or args
        groups: dict[Any, list[Any]] = {}
        for entry in entries:
            groups.setdefault(getattr(entry, attr), []).append(entry)
        ordered = sorted(groups.items(), key=lambda item: item[1][0].code)
        fallback = max(ordered, key=lambda item: len(item[1]))[0]
        lines.append(f"def {name}(code, {args}):")
        for fn, group in ordered:
            symbol = f"{name}_{group[0].code}"
            symbols[symbol] = fn
            names = ", ".join(e.name for e in group)
            if fn is fallback:
                continue
            test = " or ".join(f"code == {e.code}" for e in group)
            lines.append(f"    if {test}:  # {names}")
            lines.append(f"        return {symbol}({call})")
        group = groups[fallback]
        lines.append(f"    return {name}_{group[0].code}({call})  # {', '.join(e.name for e in group)}")
        lines.append("")

    from_output = [a for a in acts if a.from_output]
    from_z = [a for a in acts if not a.from_output] or acts
    chain("activate", "z, p", acts, "f")  # (the CUDA epilogues': any activation)
    chain("derivative", "z, a, p", acts, "df")
    # The CPU's, each as short as it can be (NOTE [derivative from the output]): the activations whose f' reads
    # only the output (f' called with a for z); and those that keep z.
    chain("activate_from_output", "z, p", from_output or acts, "f")
    chain("derivative_from_output", "a, p", from_output or acts, "df", "a, a, p")
    chain("activate_from_z", "z, p", from_z, "f")
    chain("derivative_from_z", "z, a, p", from_z, "df")
    chain("loss_and_output", "z, y, has_y, p", loss_list, "value")
    chain("output_delta", "a, y, c, p", loss_list, "delta")
    return "\n".join(lines), symbols


#: The checked-in dispatch of the built-in formulas (:func:`dispatch_module_text`).
DISPATCH_MODULE = "microdl/nn/_dispatch.py"


def dispatch_module_text() -> str:
    """The text of ``microdl/nn/_dispatch.py``: the dispatch functions :func:`compiled` compiles for microdl's
    own activations and losses, as plain Python over the plain formulas, so that a reader (and an editor's
    go-to-definition) can follow ``F.activate(code, z, p)`` to the formula it runs. ``tests/nn/test_dispatch.py``
    checks that the file is this text; :func:`write_dispatch_module` writes it after a built-in formula is
    added."""
    from microdl.nn import activations, losses

    own = (activations.__name__, losses.__name__)
    acts = [a for a in activations._REGISTRY.values() if a.f.__module__ == activations.__name__]
    loss_list = [l for l in losses._REGISTRY.values() if l.value.__module__ == losses.__name__]
    source, symbols = dispatch_source(acts, loss_list)
    imports = []
    for module in own:
        names = sorted((fn.__name__, symbol) for symbol, fn in symbols.items() if fn.__module__ == module)
        imports.append(f"from {module} import (\n" + "".join(f"    {n} as {s},\n" for n, s in names) + ")")
    header = ('"""The dispatch of microdl\'s own formulas, as :mod:`microdl.nn.formulas` writes it (written by\n'
              "``microdl.nn.formulas.write_dispatch_module()``; do not edit).\n\n"
              "The kernels take an activation and a loss as their registry codes and call ``F.activate(code, z, p)``"
              ",\n``F.loss_and_output(code, z, y, has_y, p)``, ...; ``F`` is this code compiled for the kernels' "
              "target,\nwith each name below bound to the target's compiled copy of the formula it is imported as "
              "here. A\nuser's registered formulas add branches to the compiled dispatch, not to this file.\n"
              '"""\n\n# ruff: noqa: I001  (the imports are in the order the generator writes them)\n\n')
    return header + "\n".join(imports) + "\n\n\n" + source.replace("\n\ndef ", "\n\n\ndef ").rstrip() + "\n"


def write_dispatch_module() -> None:
    """Write ``microdl/nn/_dispatch.py`` anew (:func:`dispatch_module_text`)."""
    from pathlib import Path

    (Path(__file__).resolve().parents[2] / DISPATCH_MODULE).write_text(dispatch_module_text())
