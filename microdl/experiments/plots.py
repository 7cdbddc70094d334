"""Plot helpers: a figure without pyplot's global state, and a mean line with a min–max band over seeds.

matplotlib is imported only here, when a figure is drawn (so that ``import microdl`` stays quick), and with the
Agg canvas, so plots work on servers without a display.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["new_figure", "band_plot", "color_of", "seed_dots"]

def color_of(name: str) -> Any:
    """A fixed colour per optimizer, the same in every figure: the one it was registered with
    (:func:`microdl.optim.register_optimizer`), else one of tab10 picked from its name."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    from microdl.optim.registry import OPTIMIZERS, optimizer_entry

    if name in OPTIMIZERS and optimizer_entry(name).color is not None:
        return to_rgba(optimizer_entry(name).color)
    # (a slot from a hash that is the same in every process, unlike Python's hash())
    return colormaps["tab10"](zlib.crc32(name.encode()) % 10)


def new_figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, list[list[Any]]]:
    """A Figure (Agg canvas, no pyplot) and its axes as a rows × cols nested list."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [list(r) for r in axes]


def band_plot(ax: Any, xs: Sequence[Sequence[float]], ys: Sequence[Sequence[float | None]], label: str,
              on_grid: bool = False, color: Any = None) -> None:
    """Mean of the curves ``(xs[i], ys[i])`` as a line, their min–max as a band.

    With ``on_grid`` the curves have different x values (wall time) and are interpolated onto a common grid
    first, up to the end of the shortest one (so the mean always averages every run). Otherwise they share x
    (epochs) and may differ in length (a diverged run stops early).
    """
    color = color_of(label) if color is None else color
    curves = [(np.asarray(x, float), np.array([np.nan if v is None else v for v in y], float)) for x, y in zip(xs, ys)]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return
    if on_grid:
        grid = np.linspace(0.0, min(x[-1] for x, _ in curves), 200)
        stack = np.full((len(curves), grid.size), np.nan)
        for i, (x, y) in enumerate(curves):
            inside = grid <= x[-1]
            stack[i, inside] = np.interp(grid[inside], x, y)
    else:
        longest = max(curves, key=lambda c: len(c[0]))[0]
        grid = longest
        stack = np.full((len(curves), grid.size), np.nan)
        for i, (_, y) in enumerate(curves):
            stack[i, : y.size] = y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns where every run has ended
        mean, low, high = np.nanmean(stack, 0), np.nanmin(stack, 0), np.nanmax(stack, 0)
    ax.plot(grid, mean, color=color, lw=1.5, label=label)
    if len(curves) > 1:
        ax.fill_between(grid, low, high, color=color, alpha=0.2, lw=0)


def seed_dots(ax: Any, x: float, values: Sequence[float], color: Any, width: float = 0.5,
              log: bool = True) -> None:
    """One value per seed as dots at ``x``, and their mean (geometric with ``log``) as a short thick bar: the
    honest form of a bar chart on a log axis, which has no zero to start a bar from."""
    v = np.asarray([np.nan if a is None else a for a in values], dtype=float)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if not v.size:
        return
    centre = float(np.exp(np.mean(np.log(v)))) if log else float(np.mean(v))
    ax.plot([x - width / 2, x + width / 2], [centre, centre], color=color, lw=3, solid_capstyle="butt")
    ax.plot(np.full(v.size, x), v, "o", color=color, ms=4, mec="k", mew=0.4, alpha=0.85)
