"""The 2-D test functions of the explorable: each a value, its analytic gradient, a view and a set of starts.

Every function takes arrays ``x`` and ``y`` of the same shape (many runs at once, see NOTE [one buffer, many
runs] in :mod:`microdl.explore.grid`) and returns arrays of that shape. The gradients are checked against
central finite differences in float64 by the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["TestFunction", "FUNCTIONS"]

Array = np.ndarray


@dataclass(frozen=True)
class TestFunction:
    """A 2-D test function as the page shows it.

    Attributes
    ----------
    name, title : str
        Key (in URLs and :data:`FUNCTIONS`) and the name a reader sees.
    value : callable
        ``value(x, y) -> f``, elementwise over arrays.
    gradient : callable
        ``gradient(x, y) -> (df_dx, df_dy)``, the analytic gradient.
    view : (x_min, x_max, y_min, y_max)
        The window drawn.
    starts : tuple of (x, y)
        The start points a reader can pick from.
    minima : tuple of (x, y)
        The global minima (drawn as stars); ``f_min`` is the value there.
    about : str
        One sentence on what the function tests.
    """

    name: str
    title: str
    value: Callable[[Array, Array], Array]
    gradient: Callable[[Array, Array], tuple[Array, Array]]
    view: tuple[float, float, float, float]
    starts: tuple[tuple[float, float], ...]
    minima: tuple[tuple[float, float], ...]
    f_min: float
    about: str


# -- an ill-conditioned quadratic: f = ½ zᵀ A z with A = R diag(1, κ) Rᵀ, R a rotation by 30° -------------------
_KAPPA = 30.0
_C, _S = math.cos(math.pi / 6), math.sin(math.pi / 6)
# A's entries: A = [[a, b], [b, d]]
_A = _C * _C + _KAPPA * _S * _S
_B = (1.0 - _KAPPA) * _C * _S
_D = _S * _S + _KAPPA * _C * _C


def _quadratic(x: Array, y: Array) -> Array:
    return 0.5 * (_A * x * x + 2.0 * _B * x * y + _D * y * y)


def _quadratic_gradient(x: Array, y: Array) -> tuple[Array, Array]:
    return _A * x + _B * y, _B * x + _D * y


# -- Rosenbrock: f = (1 - x)² + 100 (y - x²)² ---------------------------------------------------------------------
def _rosenbrock(x: Array, y: Array) -> Array:
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _rosenbrock_gradient(x: Array, y: Array) -> tuple[Array, Array]:
    r = y - x * x
    return -2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r


# -- a saddle with a way out: f = x² - y² + y⁴/4, saddle at the origin, minima (0, ±√2) with f = -1 ------------
def _saddle(x: Array, y: Array) -> Array:
    return x * x - y * y + 0.25 * y**4


def _saddle_gradient(x: Array, y: Array) -> tuple[Array, Array]:
    return 2.0 * x, -2.0 * y + y**3


# -- Beale: f = (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)², minimum (3, 0.5) ---------------------
def _beale(x: Array, y: Array) -> Array:
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_gradient(x: Array, y: Array) -> tuple[Array, Array]:
    r1, r2, r3 = 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y**3
    df_dx = 2.0 * (r1 * (y - 1.0) + r2 * (y * y - 1.0) + r3 * (y**3 - 1.0))
    df_dy = 2.0 * (r1 * x + r2 * 2.0 * x * y + r3 * 3.0 * x * y * y)
    return df_dx, df_dy


# -- six-hump camel: f = (4 - 2.1x² + x⁴/3) x² + xy + (-4 + 4y²) y², two global and four local minima ---------
def _camel(x: Array, y: Array) -> Array:
    return (4.0 - 2.1 * x * x + x**4 / 3.0) * x * x + x * y + (-4.0 + 4.0 * y * y) * y * y


def _camel_gradient(x: Array, y: Array) -> tuple[Array, Array]:
    return 8.0 * x - 8.4 * x**3 + 2.0 * x**5 + y, x - 8.0 * y + 16.0 * y**3


#: The test functions by name, in the order the page lists them.
FUNCTIONS: dict[str, TestFunction] = {f.name: f for f in (
    TestFunction("quadratic", f"Ill-conditioned quadratic (κ = {_KAPPA:g})", _quadratic, _quadratic_gradient,
                 (-3.0, 3.0, -2.0, 2.0), ((-2.5, 1.2), (2.6, 0.2), (-0.5, -1.8)), ((0.0, 0.0),), 0.0,
                 f"a narrow valley at 30° to the axes: curvatures 1 and {_KAPPA:g}, so one rate must suit both"),
    TestFunction("rosenbrock", "Rosenbrock", _rosenbrock, _rosenbrock_gradient,
                 (-2.0, 2.0, -1.0, 3.0), ((-1.2, 1.0), (-1.5, 2.5), (1.5, -0.5)), ((1.0, 1.0),), 0.0,
                 "a curved, flat-bottomed valley: easy to reach, slow to follow to (1, 1)"),
    TestFunction("saddle", "Saddle (x² − y² + y⁴/4)", _saddle, _saddle_gradient,
                 (-2.0, 2.0, -2.5, 2.5), ((1.8, 0.001), (-1.5, 0.05), (1.0, -0.3)),
                 ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0))), -1.0,
                 "a saddle at the origin: a start on the ridge has almost no gradient to leave it by"),
    TestFunction("beale", "Beale", _beale, _beale_gradient,
                 (-4.5, 4.5, -4.5, 4.5), ((1.0, 1.5), (-2.0, -1.0), (-1.0, 3.0)), ((3.0, 0.5),), 0.0,
                 "flat plateaus beside walls steep as 10⁵: a fixed rate is either too small or too large"),
    TestFunction("camel", "Six-hump camel", _camel, _camel_gradient,
                 (-2.0, 2.0, -1.2, 1.2), ((-1.5, 1.0), (1.9, 0.2), (0.5, -1.0)),
                 ((0.0898, -0.7126), (-0.0898, 0.7126)), -1.031628453489877,
                 "six minima, two of them global: where a run ends depends on its start and its momentum"),
)}
