"""Hidden-layer activations: an open registry of maps f(z), each beside its derivative f'(z), written once, per
element.

An activation is two plain scalar functions registered by :func:`register_activation`::

    f(z, p)        → a = f(z)
    df(z, a, p)    → f'(z), given the pre-activation z and the output a = f(z)

``p`` is the activation's parameter vector (read it as ``p[0]``, ``p[1]``, ...: :attr:`Activation.params` in
order; the kernels pass a tuple of floats, the textbook pass an array),
so a parameter such as the leaky slope or ELU's α belongs to the model (``MLP(activation_params=...)``), not to
this module. ``df`` may read either argument: GELU and SiLU need z; relu, tanh and sigmoid read only the output
(as scikit-learn does: tanh'(z) = 1 − a²) and say so with ``from_output=True``, which lets the fast passes skip
keeping z (one buffer and one memory trip per hidden layer fewer).

These functions are the only definition of each formula. One definition serves three ways, as the optimizer
rules of :mod:`microdl.optim.rules` do:

* the textbook NumPy pass (:mod:`microdl.nn.reference`) maps them over whole arrays (``np.vectorize``);
* the CPU kernels (:mod:`microdl.nn._cpu`) compile them with ``numba.njit(inline="always")`` into their fused
  loops;
* the CUDA kernels (:mod:`microdl.cuda.kernels`) compile them as device functions, into the epilogues of their
  matrix products.

So they use only what all three understand: arithmetic, comparisons, ``if``, the ``math`` module and calls of
other such functions. :mod:`microdl.nn.formulas` compiles every registered function for a target and picks one by
its integer code (the form the kernels take it in). The built-ins below go through the same
:func:`register_activation` a user's file calls; an edit to any of these files is picked up by the next run
(the disk cache is checked against every source a kernel was compiled from, :mod:`microdl._cache`).

======================  ==============================================  ================================
name                    f(z)                                            parameters (default)
======================  ==============================================  ================================
``identity``            z
``relu``                max(z, 0)
``leaky_relu``          z if z ≥ 0, slope · z otherwise                 ``negative_slope`` (0.01, torch)
``tanh``                tanh z
``sigmoid``             1 / (1 + e^−z)
``elu``                 z if z > 0, α (e^z − 1) otherwise               ``alpha`` (1.0, torch)
``gelu``                z Φ(z) = ½ z (1 + erf(z/√2))  (torch's exact
                        form, ``approximate="none"``)
``silu``                z σ(z)  (swish)
======================  ==============================================  ================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Activation", "register_activation", "get_activation", "activation_names", "activation_parameters"]


class Activation(NamedTuple):
    """One registered activation (see the module docstring for the contract of ``f`` and ``df``)."""

    name: str
    f: Callable[..., float]
    df: Callable[..., float]
    #: Parameter names and their defaults, in the order of the vector ``p`` the formulas receive.
    params: Mapping[str, float]
    #: Parameters that must be positive (checked when a model is built).
    positive: tuple[str, ...]
    #: ``df`` reads only the output a (not z): the fast passes then need not keep z.
    from_output: bool
    #: Position in the registry: the integer the compiled kernels branch on.
    code: int


_REGISTRY: dict[str, Activation] = {}


def register_activation(name: str, f: Callable[..., float], df: Callable[..., float], *,
                        params: Mapping[str, float] | None = None, positive: tuple[str, ...] = (),
                        from_output: bool = False) -> Activation:
    """Register the activation ``name``: ``f(z, p)`` and its derivative ``df(z, a, p)`` (module docstring).

    Both are plain functions that Numba can compile (arithmetic, ``math``, ``if``, calls of other plain
    functions of their module). They are tried once here, on a few values with the default parameters, so a
    wrong signature or a non-scalar result is an error now, naming the function, not a wrong model later.
    Registering a name again replaces it (the kernels are rebuilt for the new registry at their next use).

    >>> import math
    >>> def softplus(z, p):
    ...     return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    >>> def softplus_derivative(z, a, p):
    ...     return 1.0 / (1.0 + math.exp(-z))
    >>> register_activation("softplus_demo", softplus, softplus_derivative).name
    'softplus_demo'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an activation's name must be an identifier-like string; got {name!r}")
    params = _check_defaults(name, params, positive)
    p = np.array(list(params.values()), dtype=np.float64)
    for z in (-1.5, 0.0, 2.0):
        a = _call_scalar(name, "f", f, (z, p))
        _call_scalar(name, "df", df, (z, a, p))
    code = _REGISTRY[name].code if name in _REGISTRY else len(_REGISTRY)
    entry = Activation(name, f, df, params, tuple(positive), bool(from_output), code)
    _REGISTRY[name] = entry
    from microdl.nn import formulas  # the compiled dispatch is rebuilt for the new registry

    formulas.registry_changed()
    return entry


def get_activation(name: str) -> Activation:
    """The registered activation ``name`` (a ``ValueError`` naming the registered ones otherwise)."""
    from microdl._validation import check_choice

    return _REGISTRY[check_choice("activation", name, _REGISTRY)]


def activation_names() -> tuple[str, ...]:
    """The registered activations, in registration order (built-ins first)."""
    return tuple(_REGISTRY)


def activation_parameters(name: str, given: Mapping[str, Any] | None) -> dict[str, float]:
    """The parameters of activation ``name``: its defaults, updated with ``given`` (every key a parameter of
    that activation, every value a finite real number)."""
    entry = get_activation(name)
    return _complete_params("activation", entry.params, entry.positive, name, given)


# -- shared by the loss registry ------------------------------------------------------------------------------
def _check_defaults(name: str, params: Mapping[str, float] | None, positive: tuple[str, ...]) -> dict[str, float]:
    from microdl.nn.formulas import MAX_PARAMETERS

    params = {} if params is None else dict(params)
    if len(params) > MAX_PARAMETERS:
        raise ValueError(f"{name}: at most {MAX_PARAMETERS} parameters; got {len(params)}")
    if not set(positive) <= set(params):
        raise ValueError(f"{name}: positive names {sorted(set(positive) - set(params))}, which are not parameters")
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{name}: parameter names must be identifiers; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"{name}: the default of {key!r} must be a finite real number; got {value!r}")
        params[key] = float(value)
    _check_positive(name, params, positive)
    return params


def _check_positive(name: str, params: Mapping[str, float], positive: tuple[str, ...]) -> None:
    for key in positive:
        if not params[key] > 0:
            raise ValueError(f"{name}: parameter {key!r} must be positive; got {params[key]!r}")


def _complete_params(kind: str, defaults: Mapping[str, float], positive: tuple[str, ...], name: str,
                     given: Mapping[str, Any] | None) -> dict[str, float]:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise TypeError(f"{kind}_params must be a dict or None; got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{kind} {name!r} takes the parameters {sorted(defaults)}; got {unknown}")
    out = dict(defaults)
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"{kind}_params[{key!r}] must be a finite real number; got {value!r}")
        out[key] = float(value)
    _check_positive(f"{kind} {name!r}", out, positive)
    return out


def _call_scalar(name: str, part: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> float:
    """Call a formula once in Python and insist on one real number."""
    if not callable(fn):
        raise TypeError(f"{name}: {part} must be a function; got {fn!r}")
    try:
        out = fn(*args)
    except TypeError as exc:
        raise TypeError(f"{name}: {part} ({getattr(fn, '__name__', fn)}) must take {len(args)} arguments "
                        f"({', '.join(_ARG_NAMES[part])}): {exc}") from None
    if isinstance(out, (bool, np.bool_)) or not isinstance(out, (Real, np.floating, np.integer)):
        raise TypeError(f"{name}: {part} ({getattr(fn, '__name__', fn)}) must return one real number; "
                        f"got {type(out).__name__}")
    return float(out)


_ARG_NAMES = {"f": ("z", "p"), "df": ("z", "a", "p"), "value": ("z", "y", "has_y", "p"),
              "delta": ("a", "y", "c", "p")}


# -- the built-ins: f(z, p) beside f'(z) ----------------------------------------------------------------------
# The maps test ``z < 0``, not ``z > 0``, so that a NaN passes through (a diverging run must show it).
def identity(z, p):
    return z


def identity_derivative(z, a, p):
    return 1.0


def relu(z, p):
    return 0.0 if z < 0 else z


def relu_derivative(z, a, p):
    return 1.0 if a > 0 else 0.0


def leaky_relu(z, p):
    return p[0] * z if z < 0 else z


def leaky_relu_derivative(z, a, p):
    slope = p[0]
    if a == 0:  # the kink: the mean of the two slopes
        return (1.0 + slope) / 2
    return slope if a < 0 else 1.0


def tanh(z, p):
    return math.tanh(z)


def tanh_derivative(z, a, p):
    return 1.0 - a * a


def sigmoid(z, p):
    """1 / (1 + e^−z), without overflow for large |z| (as scipy.special.expit)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_derivative(z, a, p):
    return a * (1.0 - a)


def elu(z, p):
    """z for z > 0, α (e^z − 1) otherwise (torch.nn.functional.elu; expm1 keeps small |z| exact)."""
    return p[0] * math.expm1(z) if z < 0 else z


def elu_derivative(z, a, p):
    return p[0] * math.exp(z) if z <= 0 else 1.0  # α at the kink, as torch's elu_backward


def gelu(z, p):
    """z Φ(z) with the exact normal CDF Φ(z) = ½ (1 + erf(z/√2)) (torch's default, ``approximate="none"``)."""
    return 0.5 * z * (1.0 + math.erf(z * 0.7071067811865476))


def gelu_derivative(z, a, p):
    """Φ(z) + z φ(z), φ the standard normal density."""
    cdf = 0.5 * (1.0 + math.erf(z * 0.7071067811865476))
    return cdf + z * 0.3989422804014327 * math.exp(-0.5 * z * z)


def silu(z, p):
    """z σ(z) (torch.nn.functional.silu, also called swish)."""
    return z * sigmoid(z, p)


def silu_derivative(z, a, p):
    """σ(z) (1 + z (1 − σ(z)))."""
    s = sigmoid(z, p)
    return s * (1.0 + z * (1.0 - s))


register_activation("identity", identity, identity_derivative, from_output=True)
register_activation("relu", relu, relu_derivative, from_output=True)
# (from the output: a has the sign of z because the slope is positive)
register_activation("leaky_relu", leaky_relu, leaky_relu_derivative, params={"negative_slope": 0.01},
                    positive=("negative_slope",), from_output=True)
register_activation("tanh", tanh, tanh_derivative, from_output=True)
register_activation("sigmoid", sigmoid, sigmoid_derivative, from_output=True)
register_activation("elu", elu, elu_derivative, params={"alpha": 1.0}, positive=("alpha",))
register_activation("gelu", gelu, gelu_derivative)
register_activation("silu", silu, silu_derivative)
