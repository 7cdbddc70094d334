"""An explorable: the six optimizers side by side on 2-D test functions and on a small MLP, in one page.

``microdl explore --out DIR`` writes ``DIR/index.html``: one self-contained page (Bokeh's scripts inline, every
run embedded) that opens from a file with no network. Every path on it was computed beforehand by microdl's own
optimizer classes over a grid of settings (:func:`precompute`); the page's script only looks them up. The page
needs the optional Bokeh (``pip install microdl[explore]``); the runs do not.

>>> from microdl.explore import precompute, write_page     # doctest: +SKIP
>>> write_page("explore", precompute())                     # doctest: +SKIP
PosixPath('explore/index.html')
"""

from microdl.explore.functions import FUNCTIONS, TestFunction
from microdl.explore.grid import (
    DEFAULT_OPTIMIZERS,
    DEFINING,
    Control,
    Explorable,
    OptimizerSpec,
    Trajectories,
    optimizer_spec,
    precompute,
    trajectories,
)
from microdl.explore.page import PAGE_NAME, build_page, write_page

__all__ = ["FUNCTIONS", "TestFunction", "DEFAULT_OPTIMIZERS", "DEFINING", "Control", "Explorable", "OptimizerSpec",
           "Trajectories", "optimizer_spec", "precompute", "trajectories", "PAGE_NAME", "build_page", "write_page"]
