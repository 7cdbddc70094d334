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

* the textbook NumPy pass (:mod:`microdl.nn.reference`) applies them to whole arrays: through the activation's
  *array form* where it has one (NOTE [array forms]), else mapped element by element (``np.vectorize``);
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

NOTE [array forms]
    The NumPy pass (``MLP(backend="numpy")``, and the automatic choice for small fits: NOTE [the NumPy backend for
    small fits] in :mod:`microdl.nn.mlp`) needs each formula over a whole array. Mapping the scalar function with
    ``np.vectorize`` calls Python once per element and ran 8 times slower than scikit-learn, so an activation may
    also register an *array form*, ``f_array(z, p)`` and ``df_array(z, a, p)``: the same formula written with
    NumPy's array functions, taking and returning arrays (never changing its inputs). Each built-in has one,
    written beside its scalar form. The scalar form stays the definition: the compiled kernels use it, and
    :func:`register_activation` checks the array form against it on a range of values, so that the two cannot
    drift apart unnoticed. A user's activation without an array form still runs on the NumPy pass, element by
    element (and the automatic choice then takes the compiled kernels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any, NamedTuple

import numpy as np
from scipy import special

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
    #: The array forms of ``f`` and ``df`` for the NumPy pass, or None (NOTE [array forms]).
    f_array: Callable[..., np.ndarray] | None = None
    df_array: Callable[..., np.ndarray] | None = None


_REGISTRY: dict[str, Activation] = {}


def register_activation(name: str, f: Callable[..., float], df: Callable[..., float], *,
                        params: Mapping[str, float] | None = None, positive: tuple[str, ...] = (),
                        from_output: bool = False, f_array: Callable[..., np.ndarray] | None = None,
                        df_array: Callable[..., np.ndarray] | None = None) -> Activation:
    """Register the activation ``name``: ``f(z, p)`` and its derivative ``df(z, a, p)`` (module docstring).

    Both are plain functions that Numba can compile (arithmetic, ``math``, ``if``, calls of other plain
    functions of their module). They are tried once here, on a few values with the default parameters, so a
    wrong signature or a non-scalar result is an error now, naming the function, not a wrong model later.
    ``f_array`` and ``df_array`` are optional array forms of the same two functions for the NumPy pass (NOTE
    [array forms]); each is checked here against its scalar form on values from −30 to 30, and a disagreement
    is a ``ValueError`` naming the first value where they part.
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
    if f_array is not None or df_array is not None:
        _check_activation_arrays(name, f, df, f_array, df_array, p)
    code = _REGISTRY[name].code if name in _REGISTRY else len(_REGISTRY)
    entry = Activation(name, f, df, params, tuple(positive), bool(from_output), code, f_array, df_array)
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

#: The values an array form is checked at against its scalar form (NOTE [array forms]): both signs, the kinks
#: at 0 (both zeros), small and large magnitudes.
PROBE = np.array([-30.0, -5.0, -1.5, -0.5, -1e-3, -0.0, 0.0, 1e-3, 0.5, 1.5, 5.0, 30.0])


def check_array_form(name: str, part: str, fn: Callable[..., Any], args: tuple[Any, ...],
                     expected: np.ndarray) -> list[Any]:
    """Call the array form ``fn`` of ``part`` once on copies of ``args`` and insist that it returns ``expected``
    (the scalar form's values, element by element) to 1e-12 relative, with NaN where they have NaN. Returns
    the copies, as ``fn`` left them."""
    if not callable(fn):
        raise TypeError(f"{name}: {part} must be a function; got {fn!r}")
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        out = np.asarray(fn(*copies), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001  (any failure of a user's function is reported as its own)
        raise TypeError(f"{name}: {part} ({getattr(fn, '__name__', fn)}) failed on arrays: "
                        f"{type(exc).__name__}: {exc}") from None
    if out.shape != expected.shape:
        raise ValueError(f"{name}: {part} ({getattr(fn, '__name__', fn)}) must return an array of shape "
                         f"{expected.shape}; got {out.shape}")
    bad = ~np.isclose(out, expected, rtol=1e-12, atol=1e-300, equal_nan=True)
    if bad.any():
        k = np.flatnonzero(bad.ravel())[0]
        raise ValueError(f"{name}: {part} ({getattr(fn, '__name__', fn)}) disagrees with the scalar form: "
                         f"{out.ravel()[k]!r} against {expected.ravel()[k]!r} at element {k} of the check")
    return copies


def _check_activation_arrays(name: str, f: Callable[..., float], df: Callable[..., float],
                             f_array: Callable[..., np.ndarray] | None, df_array: Callable[..., np.ndarray] | None,
                             p: np.ndarray) -> None:
    z = PROBE
    a = np.array([f(v, p) for v in z])
    if f_array is not None:
        check_array_form(name, "f_array", f_array, (z, p), a)
    if df_array is not None:
        check_array_form(name, "df_array", df_array, (z, a, p), np.array([df(v, u, p) for v, u in zip(z, a)]))


# -- the built-ins: f(z, p) beside f'(z) ----------------------------------------------------------------------
# The maps test ``z < 0``, not ``z > 0``, so that a NaN passes through (a diverging run must show it).
def identity(z, p):
    return z


def identity_derivative(z, a, p):
    return 1.0


def identity_array(z, p):
    return z.copy()


def identity_derivative_array(z, a, p):
    return np.ones_like(z)


def relu(z, p):
    return 0.0 if z < 0 else z


def relu_derivative(z, a, p):
    return 1.0 if a > 0 else 0.0


def relu_array(z, p):
    return np.maximum(z, 0.0)  # (NaN stays NaN)


def relu_derivative_array(z, a, p):
    return (a > 0).astype(a.dtype)


def leaky_relu(z, p):
    return p[0] * z if z < 0 else z


def leaky_relu_derivative(z, a, p):
    slope = p[0]
    if a == 0:  # the kink: the mean of the two slopes
        return (1.0 + slope) / 2
    return slope if a < 0 else 1.0


def leaky_relu_array(z, p):
    return np.where(z < 0, p[0] * z, z)


def leaky_relu_derivative_array(z, a, p):
    slope = p[0]
    return np.where(a == 0, (1.0 + slope) / 2, np.where(a < 0, slope, 1.0))


def tanh(z, p):
    return math.tanh(z)


def tanh_derivative(z, a, p):
    return 1.0 - a * a


def tanh_array(z, p):
    return np.tanh(z)


def sigmoid(z, p):
    """1 / (1 + e^−z), without overflow for large |z| (as scipy.special.expit)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_derivative(z, a, p):
    return a * (1.0 - a)


def sigmoid_array(z, p):
    e = np.exp(-np.abs(z))  # e^−z for z ≥ 0, e^z otherwise: never overflows
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def elu(z, p):
    """z for z > 0, α (e^z − 1) otherwise (torch.nn.functional.elu; expm1 keeps small |z| exact)."""
    return p[0] * math.expm1(z) if z < 0 else z


def elu_derivative(z, a, p):
    return p[0] * math.exp(z) if z <= 0 else 1.0  # α at the kink, as torch's elu_backward


def elu_array(z, p):
    return np.where(z < 0, p[0] * np.expm1(np.minimum(z, 0.0)), z)  # (the minimum: no overflow in the other branch)


def elu_derivative_array(z, a, p):
    return np.where(z <= 0, p[0] * np.exp(np.minimum(z, 0.0)), 1.0)


def gelu(z, p):
    """z Φ(z) with the exact normal CDF Φ(z) = ½ (1 + erf(z/√2)) (torch's default, ``approximate="none"``)."""
    return 0.5 * z * (1.0 + math.erf(z * 0.7071067811865476))


def gelu_derivative(z, a, p):
    """Φ(z) + z φ(z), φ the standard normal density."""
    cdf = 0.5 * (1.0 + math.erf(z * 0.7071067811865476))
    return cdf + z * 0.3989422804014327 * math.exp(-0.5 * z * z)


def gelu_array(z, p):
    return 0.5 * z * (1.0 + special.erf(z * 0.7071067811865476))


def gelu_derivative_array(z, a, p):
    cdf = 0.5 * (1.0 + special.erf(z * 0.7071067811865476))
    return cdf + z * 0.3989422804014327 * np.exp(-0.5 * z * z)


def silu(z, p):
    """z σ(z) (torch.nn.functional.silu, also called swish)."""
    return z * sigmoid(z, p)


def silu_derivative(z, a, p):
    """σ(z) (1 + z (1 − σ(z)))."""
    s = sigmoid(z, p)
    return s * (1.0 + z * (1.0 - s))


def silu_array(z, p):
    return z * sigmoid_array(z, p)


def silu_derivative_array(z, a, p):
    s = sigmoid_array(z, p)
    return s * (1.0 + z * (1.0 - s))


# Each with its array forms (NOTE [array forms]); the derivatives that read only a are shared by both forms,
# being arithmetic (tanh's, sigmoid's).
register_activation("identity", identity, identity_derivative, from_output=True, f_array=identity_array,
                    df_array=identity_derivative_array)
register_activation("relu", relu, relu_derivative, from_output=True, f_array=relu_array,
                    df_array=relu_derivative_array)
# (from the output: a has the sign of z because the slope is positive)
register_activation("leaky_relu", leaky_relu, leaky_relu_derivative, params={"negative_slope": 0.01},
                    positive=("negative_slope",), from_output=True, f_array=leaky_relu_array,
                    df_array=leaky_relu_derivative_array)
register_activation("tanh", tanh, tanh_derivative, from_output=True, f_array=tanh_array, df_array=tanh_derivative)
register_activation("sigmoid", sigmoid, sigmoid_derivative, from_output=True, f_array=sigmoid_array,
                    df_array=sigmoid_derivative)
register_activation("elu", elu, elu_derivative, params={"alpha": 1.0}, positive=("alpha",), f_array=elu_array,
                    df_array=elu_derivative_array)
register_activation("gelu", gelu, gelu_derivative, f_array=gelu_array, df_array=gelu_derivative_array)
register_activation("silu", silu, silu_derivative, f_array=silu_array, df_array=silu_derivative_array)
