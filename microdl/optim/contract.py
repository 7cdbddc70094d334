"""The contract an optimizer's three parts must keep, checked when it is registered.

An elementwise optimizer (an :class:`~microdl.optim.Optimizer` subclass) declares

* ``update``: the rule, ``update(theta, g, <state...>, s) -> (theta, <state...>)``, a plain function of scalars
  (or of whole arrays, on the NumPy backend) that each backend compiles;
* ``scalars``: its host function, ``scalars(dtype, t, <hyperparameters...>) -> Scalars``, which computes the
  step's scalars in float64 and rounds them once to ``dtype`` (NOTE [typed scalars] in :mod:`~.rules`);
* ``Scalars``: the NamedTuple the host function returns (read from its return annotation);
* ``state_names``: the state buffers, in the order the rule takes them.

:func:`check_optimizer_class` checks, and names the rule in each error:

* the rule takes ``theta, g``, then exactly the declared state, by name and in order, then the scalars;
* the host function takes ``dtype, t``, then the hyperparameters in the order the class declares them
  (NOTE [positional scalars]); more parameters only if the class passes them itself (``_scalars``);
* the rule reads only fields of its NamedTuple, and holds no numeric literal in its arithmetic: Numba types a
  Python ``0.5`` or ``1`` as 64-bit, and ``1 - beta`` with a float32 ``beta`` becomes float64, which halves the
  float32 kernel's SIMD width (only a ``0`` in a comparison such as ``s.momentum != 0`` is allowed; every other
  constant is computed by the host function);
* run once on the NumPy backend with the defaults, the rule returns a tuple of ``1 + len(state_names)`` arrays
  of the parameters' shape (an array returned instead of a tuple would otherwise be unpacked element by
  element into the parameters);
* a class that says its host function takes an array of step counts (``scalars_take_arrays``) gets, for the
  steps of :data:`CHECKED_STEPS` in one call, the very bits it gets for each step alone, in float32 and float64
  (NOTE [scalars of many steps] in :mod:`~.rules`).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from collections.abc import Callable
from types import FunctionType
from typing import Any

import numpy as np

__all__ = ["check_optimizer_class", "scalars_type", "rule_label", "CHECKED_STEPS"]

#: The step counts at which registration compares a host function's scalars for an array of steps with those of
#: each step alone: the first steps, the flush's period, and late ones, where β**t is near its limits.
CHECKED_STEPS = (1, 2, 3, 4, 5, 63, 64, 65, 999, 1000, 12345, 1_000_000)


def rule_label(cls: type) -> str:
    """``"rule lion (examples.lion) of Lion"``: how every contract error names the rule."""
    update = vars_of(cls).get("update")
    name = getattr(update, "__qualname__", repr(update))
    module = getattr(update, "__module__", "?")
    return f"rule {name} ({module}) of {cls.__name__}"


def vars_of(cls: type) -> dict[str, Any]:
    """The class attributes along the MRO (nearest first), without binding functions to anything."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass))
    return out


def scalars_type(cls: type) -> type:
    """The NamedTuple of a step's scalars: the host function's return annotation (or the rule's ``s``'s)."""
    attrs = vars_of(cls)
    for fn, key in ((attrs.get("scalars"), "return"), (attrs.get("update"), None)):
        if not isinstance(fn, FunctionType):
            continue
        if key is None:
            key = list(inspect.signature(fn).parameters)[-1]
        try:
            hint = typing.get_type_hints(fn).get(key)
        except Exception:  # an annotation that does not resolve: try the next place
            hint = None
        if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
            return hint
    raise TypeError(f"{rule_label(cls)}: annotate the host function {getattr(attrs.get('scalars'), '__name__', '?')} "
                    "with the NamedTuple it returns (def my_scalars(dtype, t, ...) -> MyScalars), defined at the top "
                    "level of its module")


def _source_tree(fn: FunctionType) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # written in a notebook cell or by exec: fall back on the bytecode
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.FunctionDef) else None


def _literals(fn: FunctionType) -> list[Any]:
    """The numeric literals of ``fn``'s arithmetic (a 0 compared against is none)."""
    tree = _source_tree(fn)
    if tree is None:
        return [c for c in fn.__code__.co_consts if isinstance(c, (int, float, complex))
                and not isinstance(c, bool) and c != 0]
    compared = {id(c) for node in ast.walk(tree) if isinstance(node, ast.Compare)
                for c in [node.left, *node.comparators] if isinstance(c, ast.Constant) and c.value == 0}
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
        getattr(tree.body[0], "value", None), ast.Constant) else tree.body  # the docstring is no arithmetic
    return [node.value for stmt in body for node in ast.walk(stmt)
            if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))
            and not isinstance(node.value, bool) and id(node) not in compared]


def _fields_read(fn: FunctionType, s: str) -> set[str]:
    tree = _source_tree(fn)
    if tree is None:
        return set()
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == s}


def _positional(fn: Callable, what: str, label: str) -> list[str]:
    if not isinstance(fn, FunctionType):
        raise TypeError(f"{label}: {what} must be a plain Python function (def ...), which every backend can "
                        f"compile; got {fn!r}")
    params = list(inspect.signature(fn).parameters.values())
    odd = [p.name for p in params if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or
           p.default is not p.empty]
    if odd:
        raise TypeError(f"{label}: {what} {fn.__name__} must take plain positional parameters, without defaults, "
                        f"*args or keywords; {', '.join(odd)} is not")
    return [p.name for p in params]


def check_optimizer_class(cls: type) -> None:
    """Check ``cls``'s rule, host function, scalars and state against the contract; raise ``TypeError`` naming
    the rule and the problem. Called by :func:`~microdl.optim.register_optimizer`."""
    from microdl.optim.base import Optimizer

    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"expected an Optimizer subclass; got {cls!r}")
    attrs = vars_of(cls)
    label = rule_label(cls)
    for needed in ("update", "scalars", "state_names"):
        if attrs.get(needed) is None:
            raise TypeError(f"{cls.__name__} must declare `{needed}` (the rule, its host function and the "
                            "names of its state buffers: see microdl.optim.contract)")
    state = attrs["state_names"]
    if not (isinstance(state, tuple) and all(isinstance(n, str) and n.isidentifier() for n in state)
            and len(set(state)) == len(state)):
        raise TypeError(f"{cls.__name__}.state_names must be a tuple of distinct identifiers; got {state!r}")
    rule, host = attrs["update"], attrs["scalars"]
    from microdl.optim._elementwise import MAX_STATE

    if len(state) > MAX_STATE:
        raise TypeError(f"{cls.__name__} declares {len(state)} state buffers; a rule may have at most {MAX_STATE}")

    # the rule: theta, g, the state by name, the scalars
    params = _positional(rule, "the rule", label)
    if len(params) != len(state) + 3:
        raise TypeError(f"{label} takes {len(params)} arguments ({', '.join(params)}); with the state "
                        f"{state} it must take {len(state) + 3}: theta, g, {''.join(n + ', ' for n in state)}s")
    if tuple(params[2:-1]) != state:
        raise TypeError(f"{label} takes the state {tuple(params[2:-1])}, but {cls.__name__} declares "
                        f"state_names = {state}: name the rule's state arguments as the buffers, in the same order")
    Scalars = scalars_type(cls)
    unknown = sorted(_fields_read(rule, params[-1]) - set(Scalars._fields))
    if unknown:
        raise TypeError(f"{label} reads {', '.join(f'{params[-1]}.{f}' for f in unknown)}, which "
                        f"{Scalars.__name__} does not have (its fields: {', '.join(Scalars._fields)})")
    literals = _literals(rule)
    if literals:
        raise TypeError(f"{label} holds the numeric literal{'s' if len(literals) > 1 else ''} "
                        f"{', '.join(map(repr, literals))}: Numba types a literal as 64-bit, which widens a float32 "
                        "kernel to float64. Compute the constant (1 - beta, 0.5 ...) in the host function and pass it "
                        "in the scalars (NOTE [typed scalars] in microdl.optim.rules); only a 0 compared against "
                        "(s.momentum != 0) is allowed")

    # the host function: dtype, t, the hyperparameters in declared order
    host_params = _positional(host, "the host function", label)
    hyper = list(cls._hyperparameter_specs)
    if host_params[:2] != ["dtype", "t"] or host_params[2:2 + len(hyper)] != hyper:
        raise TypeError(f"{label}: its host function {host.__name__}({', '.join(host_params)}) must take dtype, t, "
                        f"then the hyperparameters in the order the class declares them ({', '.join(hyper)})")
    if len(host_params) > 2 + len(hyper) and "_scalars" not in _own_methods(cls):
        raise TypeError(f"{label}: its host function {host.__name__} takes {host_params[2 + len(hyper):]} besides "
                        f"the hyperparameters; only a class that overrides _scalars may pass more")

    # one step on the NumPy backend, with the defaults: the rule returns a tuple of the right length
    try:
        opt = cls(np.linspace(-1.0, 1.0, 4), backend="numpy")
    except TypeError as exc:
        raise TypeError(f"{cls.__name__}(params, backend='numpy') must work with its defaults, so that the "
                        f"rule can be checked: {exc}") from exc
    names = opt._slot_names
    if names != state:
        raise TypeError(f"{cls.__name__}._state_layout gives the buffers {names}, but state_names is {state}")
    opt.t = 1
    theta, g = np.array(opt.params), np.linspace(0.5, -0.25, 4)
    out = rule(theta, g, *opt._slots, opt._scalars())
    if not isinstance(out, tuple) or len(out) != len(state) + 1:
        got = f"a {type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple) else "")
        raise TypeError(f"{label} must return a tuple (theta{''.join(', ' + n for n in state)}) of "
                        f"{len(state) + 1}; it returned {got}")
    for name, value, before in zip(("theta", *state), out, (theta, *opt._slots)):
        if before is None:
            continue  # an option that is off (NOTE [optional state])
        if np.shape(value) != theta.shape:
            raise TypeError(f"{label} returned {name} of shape {np.shape(value)} for buffers of shape "
                            f"{theta.shape}: return the new element (or array) for each buffer, in order")
    if getattr(cls, "scalars_take_arrays", False):
        _check_scalars_take_arrays(cls, label)


def _check_scalars_take_arrays(cls: type, label: str) -> None:
    """The scalars of :data:`CHECKED_STEPS` from one call with an array of step counts equal, bit for bit, those
    of each step alone, in both dtypes (NOTE [scalars of many steps] in :mod:`~.rules`)."""
    steps = np.asarray(CHECKED_STEPS)
    for dtype in (np.float32, np.float64):
        opt = cls(np.zeros(2, dtype=dtype), backend="numpy")
        alone = []
        for t in CHECKED_STEPS:
            opt.t = t
            alone.append(np.array(opt._scalars(), dtype=np.float64))
        try:
            rows = opt._scalars_at(steps)
        except Exception as exc:
            raise TypeError(f"{label}: {cls.__name__}.scalars_take_arrays is True, but its host function fails for an "
                            f"array of step counts ({type(exc).__name__}: {exc}); use np.sqrt for math.sqrt and "
                            "microdl.optim.rules.power(x, t) for x ** t, or set scalars_take_arrays = False") from exc
        if not np.array_equal(rows, np.array(alone)):
            bad = next(t for t, a, b in zip(CHECKED_STEPS, rows, alone) if not np.array_equal(a, b))
            raise TypeError(f"{label}: {cls.__name__}.scalars_take_arrays is True, but its host function's scalars "
                            f"for an array of step counts differ from those of each step alone at t = {bad} "
                            f"({np.dtype(dtype).name}); raise to the power t with microdl.optim.rules.power (NumPy's "
                            "vectorised power may round differently), or set scalars_take_arrays = False")


def _own_methods(cls: type) -> set[str]:
    """Names defined by ``cls`` or a parent below :class:`Optimizer`."""
    from microdl.optim.base import Optimizer

    return {name for klass in cls.__mro__ if klass is not Optimizer and issubclass(klass, Optimizer)
            for name in vars(klass)}
