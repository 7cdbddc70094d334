"""Sphinx configuration of microdl's documentation (``bash dev.sh docs`` builds it into docs/_build/html).

The API reference and the optimizer pages are generated at build time from the package itself
(``docs/_ext/microdl_docs.py``): one page per public module, listing its ``__all__``, and one page per optimizer
of the article, from its class. Nothing generated is committed.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

# The CUDA modules import under Numba's CUDA simulator, so that the API reference documents them on a machine
# without a GPU. Set before Numba is imported; the gallery's examples run on the CPU and never touch it.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import microdl  # noqa: E402

project = "microdl"
author = "the microdl developers"
copyright = "microdl developers"
release = version = microdl.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "microdl_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**/GALLERY_HEADER.rst", "README.md"]
templates_path = ["_templates"]
root_doc = "index"

# Cross-references are checked (-n on the command line): every :func:, :class:, {doc} and [link](page.md) must
# resolve. Names from other libraries are not documented here and no inventory is fetched (the build is offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sklearn|torch|numba|dask|distributed|joblib|matplotlib|threadpoolctl|tqdm|cupy)"
               r"(\..*)?"),
    (r"py:.*", r"(typing|collections|pathlib|concurrent|os|io|abc|enum|dataclasses|types|builtins)(\..*)?"),
    (r"py:.*", r"(ndarray|array|array-like|optional|callable|sequence|mapping|iterable|path-like|string)"),
    (r"py:.*", r"(tracemalloc|threading|pickle|json|csv|signal|multiprocessing|warnings|math|time)(\..*)?"),
    # private modules are not documented; a docstring may still point a reader at one
    (r"py:.*", r"microdl(\.\w+)*\._\w+(\..*)?"),
    # relative names (``params``, ``MLP.loss_and_grad``, ``QUICK``) that a docstring uses in its own module's
    # words: Sphinx resolves them only from the page of that module, not from tables and tours; qualified names
    # (``microdl.train.fit``) are always checked
    (r"py:.*", r"[A-Za-z_]\w*(\.[a-z_]\w*)?"),
]

# Glossary terms come only from docstrings that autodoc inherits from Python's own classes (a NamedTuple's).
suppress_warnings = ["ref.term"]

myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

autodoc_typehints = "none"  # numpydoc's Parameters sections say the types; annotations would need inventories
autodoc_member_order = "bysource"
autosummary_generate = False  # the API pages are written by microdl_docs from each module's __all__
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py",
    "ignore_pattern": r"(__init__|conftest|generate)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "doc_module": ("microdl",),
    "backreferences_dir": "_gen/backreferences",
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "abort_on_example_error": True,
    "min_reported_time": 1,
}

# The one home of the site's address: the estimators' HTML repr links to it too.
from microdl.sklearn import DOCS_URL  # noqa: E402

html_baseurl = DOCS_URL
html_theme = "pydata_sphinx_theme"
html_title = f"microdl {release}"
html_static_path = ["_static"]
html_css_files = ["microdl.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "navigation_with_keys": False,
}
html_show_sourcelink = False
html_last_updated_fmt = None
