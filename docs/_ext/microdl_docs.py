"""Sphinx extension: the pages microdl's documentation derives from the package, and the check that they cover it.

* **API reference** (``api/generated/<module>.rst``): one page per public module (every module of the package
  whose dotted name has no part starting with ``_``), listing its ``__all__`` in a summary table and
  documenting each name where it is defined. A name a package re-exports from one of its modules (``Adam`` in
  :mod:`microdl.optim`, defined in :mod:`microdl.optim.optimizers`) is listed in the package's table and
  documented once, on the defining module's page. New modules and new names get entries with no edit here.
* **Optimizer pages** (``optimizers/generated/<name>.md``): for each optimizer of the article, its update block
  and conventions from the class docstring, its defaults from the constructor's signature, how torch, Keras,
  optax and scikit-learn differ (``CONVENTIONS``), the article's claims about it from the report's registry,
  and a figure of it training on digits.
* **Coverage check** (``env-check-consistency``): every name in every public module's ``__all__`` must have an
  entry in the Python domain; a missing one is a warning, so the ``-W`` build fails.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
PACKAGE = "microdl"

# The article's six, in order of increasing complexity (the order of microdl.optim.optimizers).
ARTICLE_OPTIMIZERS = ("gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam")

# How the other libraries differ from microdl (= torch.optim) for each optimizer: one row per library.
# Source: /work/shared/reference/optimizers-across-libraries.md (torch stable, Keras 3.16, optax 0.2.9.dev,
# scikit-learn 1.7/1.8), the parity reference the tests were written against.
CONVENTIONS: dict[str, dict[str, str]] = {
    "gd": {
        "torch": "`torch.optim.SGD` with every sample in one batch (the loop is yours).",
        "Keras": "`keras.optimizers.SGD(learning_rate=0.01)` with `fit(batch_size=n)`.",
        "optax": "`optax.sgd(learning_rate)` on the full-batch gradient (the loop is yours).",
        "scikit-learn": "`solver='sgd'`, `batch_size=n_samples`, `momentum=0`; scikit-learn's true full-batch "
                        "solver is `'lbfgs'` (microdl has it too: `LBFGS`, `solver='lbfgs'`).",
    },
    "sgd": {
        "torch": "The same rule and defaults (`lr=1e-3`, `momentum=0`, `dampening=0`, `nesterov=False`).",
        "Keras": "`SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`; a velocity v ← μv − γg that includes "
                 "the learning rate, so it equals torch's only while γ is constant; no dampening.",
        "optax": "`sgd(learning_rate, momentum=None, nesterov=False)`: a trace m ← g + μm scaled by −γ afterwards, "
                 "which is torch's rule with τ = 0.",
        "scikit-learn": "`solver='sgd'`, `learning_rate_init=0.001`, `momentum=0.9`, `nesterovs_momentum=True`: "
                        "Keras's velocity form; `invscaling` counts samples seen, not steps.",
    },
    "adagrad": {
        "torch": "The same rule and defaults (`lr=1e-2`, `lr_decay=0`, `initial_accumulator_value=0`, "
                 "`eps=1e-10`, ε outside the root).",
        "Keras": "`Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)`; ε inside the root "
                 "(√(S + ε)); no `lr_decay` (use a schedule).",
        "optax": "`adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7)`; 1/√(S + ε), and no update "
                 "where S = 0.",
        "scikit-learn": "Not offered (a pull request adding it was declined); microdl's estimators take "
                        "`solver='adagrad'`.",
    },
    "rmsprop": {
        "torch": "The same rule and defaults (`lr=1e-2`, `alpha=0.99`, `eps=1e-8`, ε outside the root, no bias "
                 "correction).",
        "Keras": "`RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)`; ε inside the root; its momentum buffer "
                 "holds learning-rate-scaled steps.",
        "optax": "`rmsprop(learning_rate, decay=0.9, eps=1e-8, eps_in_sqrt=True)`: ε inside the root unless "
                 "`eps_in_sqrt=False`; optional bias correction.",
        "scikit-learn": "Not offered; microdl's estimators take `solver='rmsprop'`.",
    },
    "adadelta": {
        "torch": "The same rule and defaults (`lr=1.0`, `rho=0.9`, `eps=1e-6`); γ scales only the applied step.",
        "Keras": "The same recurrence with `learning_rate=0.001`, `rho=0.95`, `epsilon=1e-7`: its first steps are "
                 "about 2000 times smaller than torch's (why \"Adadelta doesn't learn\" in Keras unless lr = 1).",
        "optax": "The same recurrence, `rho=0.9`, `eps=1e-6`; pass an explicit learning rate (`None` leaves the "
                 "update unscaled and unsigned).",
        "scikit-learn": "Not offered; microdl's estimators take `solver='adadelta'`.",
    },
    "adam": {
        "torch": "The same rule and defaults (`lr=1e-3`, `betas=(0.9, 0.999)`, `eps=1e-8` on the bias-corrected "
                 "√v̂, `amsgrad=False`).",
        "Keras": "`Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`; ε̂ on the uncorrected √v "
                 "(ε_torch = ε̂/√(1 − β₂ᵗ)): microdl's `eps_on=\"v\"`.",
        "optax": "`adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0)`: torch's form, plus an optional "
                 "ε inside the root.",
        "scikit-learn": "`solver='adam'` (the default), `beta_1=0.9`, `beta_2=0.999`, `epsilon=1e-8` placed as "
                        "Keras does: microdl's `MLPClassifier` uses `eps_on=\"v\"` to match it to 1e-14.",
    },
}


# ---------------------------------------------------------------------------------------------------------------
# The public modules and where each of their names is defined


def public_modules() -> list[str]:
    """Every module of the package with no ``_``-prefixed part, in dotted order, the package first; the CUDA
    modules only where they import (with numba-cuda: conf.py switches on the simulator), see
    :func:`unimportable_modules`."""
    return [m for m in _all_public_modules() if m not in unimportable_modules()]


def _all_public_modules() -> list[str]:
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE] + [m.name for m in pkgutil.walk_packages(package.__path__, PACKAGE + ".",
                                                                onerror=lambda name: None)]
    return sorted((n for n in names if not any(part.startswith("_") for part in n.split("."))),
                  key=lambda n: n.split("."))


def unimportable_modules() -> dict[str, str]:
    """Public modules that refuse to import here (the CUDA ones without numba-cuda), with the reason."""
    from microdl._cuda_support import CudaUnavailableError

    refused = {}
    for m in _all_public_modules():
        try:
            importlib.import_module(m)
        except CudaUnavailableError as exc:
            refused[m] = str(exc).splitlines()[0]
    return refused


def public_names(module: Any) -> list[str]:
    """The module's ``__all__``; a module without one (``microdl.config``) exposes what it defines: its
    functions and classes, and its UPPER_CASE constants."""
    if hasattr(module, "__all__"):
        return [n for n in module.__all__ if not n.startswith("__")]
    names = []
    for n, obj in vars(module).items():
        if n.startswith("_"):
            continue
        defined_here = (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__
        constant = n.isupper() and len(n) > 1 and isinstance(obj, (int, float, str, tuple, frozenset))
        if defined_here or constant:
            names.append(n)
    return names


def canonical_homes(modules: list[str]) -> dict[tuple[str, str], str]:
    """``(module, name) -> module`` that documents it: where the object is defined (its ``__module__``, when
    that module lists it), else the deepest public module listing the same object under the same name; a
    submodule re-exported by its package (``microdl.nn`` in ``microdl.__all__``) is documented as a module."""
    loaded = {m: importlib.import_module(m) for m in modules}
    listed: dict[tuple[str, int], list[str]] = {}
    for m, mod in loaded.items():
        for n in public_names(mod):
            listed.setdefault((n, id(getattr(mod, n))), []).append(m)
    homes = {}
    for m, mod in loaded.items():
        for n in public_names(mod):
            obj = getattr(mod, n)
            owners = listed[(n, id(obj))]
            defined_in = getattr(obj, "__module__", None)
            if inspect.ismodule(obj):
                homes[(m, n)] = obj.__name__
            elif defined_in in owners:
                homes[(m, n)] = defined_in
            else:
                homes[(m, n)] = max(owners, key=lambda o: o.count("."))
    return homes


def directive_for(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or callable(obj) and hasattr(obj, "py_func"):
        return "autofunction"
    return "autodata"


def first_sentence(text: str | None) -> str:
    """The first sentence of a docstring, as plain reStructuredText: roles become literals (a table row is
    read in another module's context, where relative references would not resolve)."""
    para = inspect.cleandoc(text or "").split("\n\n")[0].replace("\n", " ").strip()
    para = re.sub(r":[\w:]+:`~?(?:[^`<]*<)?([^`>]+)>?`", r"``\1``", para)
    cut = 0
    while True:
        cut = para.find(". ", cut + 1)
        if cut < 0:
            break
        if para[:cut].count("``") % 2 == 0:
            para = para[:cut + 1]
            break
    return para.rstrip(":").replace("|", "\\|")


def attribute_doc(home: str, name: str) -> str | None:
    """The ``#:`` comment above a module constant, as autodoc reads it."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        docs = ModuleAnalyzer.for_module(home).find_attr_docs()
    except Exception:  # a module without source (never here; the table just has no summary)
        return None
    lines = docs.get(("", name))
    return "\n".join(lines) if lines else None


def summary_table(rows: list[tuple[str, str]]) -> list[str]:
    lines = [".. list-table::", "   :widths: 30 70", ""]
    for target, summary in rows:
        lines += [f"   * - {target}", f"     - {summary or ''}"]
    return lines + [""]


def write_api_pages(app: Sphinx) -> None:
    for m, why in unimportable_modules().items():
        logger.warning("%s is not documented: it does not import here (%s)", m, why, type="microdl", subtype="api")
    out = Path(app.srcdir) / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    modules = public_modules()
    homes = canonical_homes(modules)
    written = set()
    for m in modules:
        mod = importlib.import_module(m)
        lines = [m, "=" * len(m), "", f".. automodule:: {m}", "   :no-members:", ""]
        names = public_names(mod)
        rows = []
        for n in names:
            obj = getattr(mod, n)
            home = homes[(m, n)]
            if inspect.ismodule(obj):
                rows.append((f":mod:`{obj.__name__}`", first_sentence(obj.__doc__)))
                continue
            own_doc = obj.__doc__ if directive_for(obj) != "autodata" else attribute_doc(home, n)
            where = "" if home == m else f" (from :mod:`{home}`)"
            rows.append((f":obj:`~{home}.{n}`", first_sentence(own_doc) + where))
        if rows:
            lines += [".. rubric:: Public names", ""]
            lines += summary_table(rows)
        own = [n for n in names if homes[(m, n)] == m]
        for n in own:
            obj = getattr(mod, n)
            directive = directive_for(obj)
            lines += [f".. {directive}:: {m}.{n}"]
            if directive == "autoclass":
                # scikit-learn generates set_*_request methods on its estimators; they are its API, not ours
                lines += ["   :members:", "   :exclude-members: set_fit_request, set_partial_fit_request, "
                          "set_score_request", ""]
            elif directive == "autodata":
                lines += ["   :no-value:" if _long_value(obj) else "", ""]
            else:
                lines += [""]
        lines += [f".. minigallery:: {' '.join(f'{m}.{n}' for n in own)}", "   :add-heading: Examples using these",
                  ""] if own else []
        page = out / f"{m}.rst"
        text = "\n".join(lines) + "\n"
        if not page.exists() or page.read_text() != text:  # unchanged pages keep their time stamps: no rebuild
            page.write_text(text)
        written.add(page.name)
    for stale in out.glob("*.rst"):
        if stale.name not in written:
            stale.unlink()
    toc = ["API reference", "=" * 13, "",
           "One page per public module, generated from its ``__all__`` (``docs/_ext/microdl_docs.py``); the build "
           "fails when a public name has no entry. A name a package re-exports (``microdl.optim.Adam``) is "
           "documented where it is defined (``microdl.optim.optimizers``) and may be referred to by either path.",
           ""]
    toc += summary_table([(f":mod:`{m}`", first_sentence(importlib.import_module(m).__doc__)) for m in modules])
    toc += [".. toctree::", "   :hidden:", ""] + [f"   generated/{m}" for m in modules]
    index = Path(app.srcdir) / "api" / "index.rst"
    text = "\n".join(toc) + "\n"
    if not index.exists() or index.read_text() != text:
        index.write_text(text)


def indent_trailing_literal_block(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                                   lines: list[str]) -> None:
    """Keep a ``::`` block that ends its docstring (the rules of :mod:`microdl.optim.rules`) a block: the
    docstring's common indentation is taken from its later lines, and numpydoc dedents its extended summary, so
    a block with no text after it loses its indent and ``::`` is left with none. The block is re-indented and
    followed by an empty comment (``..``), which renders as nothing."""
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        end = j
        while end < len(lines) and lines[end].strip():
            end += 1
        if j < len(lines) and not any(x.strip() for x in lines[end:]):
            if not lines[j][:1].isspace():
                lines[j:end] = ["    " + x for x in lines[j:end]]
            lines[end:] = ["", ".."]
        break


def _long_value(obj: Any) -> bool:
    return len(repr(obj)) > 200


# ---------------------------------------------------------------------------------------------------------------
# The optimizer pages


def update_block(doc: str) -> tuple[str, str, str]:
    """``(summary, block, after)`` from a class docstring: its first line, the indented block after the first
    ``::`` and the prose between that block and the Parameters section."""
    doc = inspect.cleandoc(doc)
    summary = doc.split("\n\n")[0].replace("\n", " ")
    if "::" not in doc:
        return summary, "", doc.split("Parameters\n---")[0].split("\n\n", 1)[-1]
    before, rest = doc.split("::", 1)
    lines = rest.split("\n")[1:]
    while lines and not lines[0].strip():
        lines.pop(0)
    block = []
    while lines and (not lines[0].strip() or lines[0].startswith(" ")):
        block.append(lines.pop(0))
    after = "\n".join(lines).split("Parameters\n---")[0].strip()
    return summary, textwrap.dedent("\n".join(block)).strip("\n"), after


def rst_literals_to_md(text: str) -> str:
    """The prose of a numpydoc docstring as MyST: ``x`` -> `x`, :func:`a.b` -> {func}`a.b`."""
    import re

    text = re.sub(r":(\w+):`([^`]+)`", r"{\1}`\2`", text)
    return text.replace("``", "`")


def claims_about(name: str) -> list[Any]:
    try:
        from microdl.experiments.report import CLAIMS
    except ImportError:  # the report moved: the page still builds, without its claims
        return []
    return [c for c in CLAIMS if getattr(c, "optimizer", None) == name]


def measured_verdicts() -> dict[str, Any] | None:
    """The report's verdicts as ``docs/verdicts.py`` snapshotted them (``docs/_data/verdicts.json``), or None."""
    import json

    path = Path(__file__).resolve().parent.parent / "_data" / "verdicts.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def claims_section(name: str) -> list[str]:
    claims = claims_about(name)
    if not claims:
        return ["See {doc}`../../report-protocol`."]
    lines = ["`microdl report` puts each of the article's claims to an experiment built so that it could come out "
             "either way, and decides it by a rule fixed in advance: **supported**, **not supported**, "
             "**inconclusive** (an interval straddles the threshold) or **mixed** (its parts disagree), and "
             "**unstable** where independent replications of the whole design disagree "
             "(see {doc}`../../report-protocol`)."]
    snapshot = measured_verdicts()
    if snapshot is None:
        lines += ["Run `microdl report --out report/` for the measured verdicts.", "",
                  "| claim | kind | decided by |", "|---|---|---|"]
        lines += [f"| {getattr(c, 'text', c)} | {getattr(c, 'kind', '')} | `{getattr(c, 'experiment', '')}` |"
                  for c in claims]
        return lines
    lines += [f"The verdicts below were measured by `{snapshot['command']}` at commit `{snapshot['commit']}` on "
              f"{snapshot['date']} (2 shared cores); the report's `results.json` holds every number behind them, "
              "and a rerun with another `--seed` can move a verdict that sits near its threshold.", "",
              "| claim | kind | measured verdict | evidence |", "|---|---|---|---|"]
    for c in claims:
        v = snapshot["verdicts"].get(getattr(c, "id", ""))
        verdict, evidence = (f"**{v['verdict']}**", v["evidence"].replace("|", "\\|").replace("\n", " ")) if v \
            else ("not measured", "")
        lines.append(f"| {getattr(c, 'text', c)} | {getattr(c, 'kind', '')} | {verdict} | {evidence} |")
    return lines


def training_figure(path: Path, name: str) -> str:
    """Every article optimizer on digits at its preset rate (one seed, 30 epochs), ``name`` in colour: the
    training loss per epoch. Returns the caption. Computed once per build, cached between pages."""
    curves = _digits_curves()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for other, (lr, history) in curves.items():
        highlight = other == name
        style = dict(color="C0" if highlight else "0.7", lw=2.2 if highlight else 1.0, zorder=3 if highlight else 1,
                     label=f"{other} (lr {lr:g})" if highlight else None)
        ax1.semilogy(range(1, len(history.train_loss) + 1), history.train_loss, **style)
        ax2.plot(range(1, len(history.val_metric) + 1), history.val_metric, **style)
    ax1.set(xlabel="epoch", ylabel="training loss (log)", title="training loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0.8, 1.0))
    ax1.legend(loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (f"{name} (blue) and the other five (grey) on digits: MLP 64-64-10 ReLU, batch 32 (gd: full batch), "
            "seed 0, each at its preset rate (`microdl.experiments.tuning.PRESET_LRS`), 10 % of the training data "
            "held out for validation. Computed while the documentation was built.")


_CURVES: dict[str, Any] = {}


def _digits_curves() -> dict[str, Any]:
    if not _CURVES:
        from microdl.datasets import load_dataset
        from microdl.experiments.tuning import preset_lr
        from microdl.nn import MLP
        from microdl.optim import make_optimizer
        from microdl.train import fit

        data = load_dataset("digits", random_state=0)
        for name in ARTICLE_OPTIMIZERS:
            net = MLP((data.X_train.shape[1], 64, 10), activation="relu", loss="cross_entropy", random_state=0)
            lr = preset_lr("digits", name)
            opt = make_optimizer(name, net.params, lr=lr)
            history = fit(net, opt, data.X_train, data.y_train, epochs=30, batch_size=32, random_state=0,
                          validation_fraction=0.1)
            _CURVES[name] = (lr, history)
    return _CURVES


def write_optimizer_pages(app: Sphinx) -> None:
    from microdl.optim import OPTIMIZERS

    out = Path(app.srcdir) / "optimizers" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    for name in ARTICLE_OPTIMIZERS:
        cls = OPTIMIZERS[name]
        qual = f"microdl.optim.{cls.__name__}"
        summary, block, after = update_block(cls.__doc__ or "")
        rule = getattr(cls, "rule", None)
        defaults = [(p.name, p.default) for p in inspect.signature(cls).parameters.values()
                    if p.default is not inspect.Parameter.empty and p.name != "backend"]
        lines = [f"# {cls.__name__} (`{name}`)", "", "```{currentmodule} microdl.optim", "```", "",
                 f"{{class}}`{qual}` · `make_optimizer(\"{name}\", params)` · "
                 f"`microdl train --optimizer {name}` · `MLPClassifier(solver=\"{name}\")`", "",
                 rst_literals_to_md(summary), "", "## The update", ""]
        if block:
            lines += ["```text", block, "```", ""]
        if after:
            lines += [rst_literals_to_md(after), ""]
        if rule:
            lines += [f"The rule is {{func}}`microdl.optim.rules.{rule}` (its entry links to its source); the class, "
                      f"its checks and its state are {{class}}`{qual}`. The NumPy, CPU and CUDA backends all run that "
                      "one function ({doc}`../../tour/4-backends`).", ""]
        lines += ["## Implementations", "", "| `backend=` | runs on | how the rule is applied |", "|---|---|---|",
                  "| `\"numpy\"` | CPU | once, on whole arrays (the readable reference; allocates temporaries) |",
                  "| `\"cpu\"` (default) | CPU, Numba threads | inlined into one `prange` loop over the flat buffer, "
                  "compiled once per dtype and cached on disk |",
                  "| `\"cuda\"` | NVIDIA GPU (tested under Numba's CUDA simulator) | a device function called by one "
                  "grid-stride kernel; parameters, gradients and state stay on the GPU |", ""]
        lines += ["## Defaults", "", "| parameter | default |", "|---|---|"]
        lines += [f"| `{p}` | `{d!r}` |" for p, d in defaults]
        lines += ["", "The defaults are torch.optim's. Every hyperparameter is checked at construction and on "
                  "every later assignment (`opt.lr = 0.01`).", "",
                  "## Conventions in other libraries", "", "| library | how it differs |", "|---|---|"]
        lines += [f"| {lib} | {text} |" for lib, text in CONVENTIONS[name].items()]
        lines += ["", "## The article's claims about it", ""]
        lines += claims_section(name)
        caption = training_figure(out / f"{name}.png", name)
        lines += ["", "## At work", "", f"```{{figure}} {name}.png", f":alt: {name} training on digits", "",
                  caption, "```", "",
                  "```{eval-rst}", f".. minigallery:: {qual} microdl.optim.optimizers.{cls.__name__}",
                  f"   :add-heading: Examples using {cls.__name__}", "```", ""]
        page = out / f"{name}.md"
        text = "\n".join(lines)
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


# ---------------------------------------------------------------------------------------------------------------
# The coverage check


def register_aliases(app: Sphinx, env: Any) -> None:
    """``microdl.optim.Adam`` resolves to the entry of ``microdl.optim.optimizers.Adam``: every re-exported
    name is an alias of its documented home, so references may use either import path."""
    domain = env.domains["py"]
    for (m, n), home in canonical_homes(public_modules()).items():
        alias, target = f"{m}.{n}", f"{home}.{n}"
        if home != m and target in domain.objects and alias not in domain.objects:
            entry = domain.objects[target]
            domain.objects[alias] = entry._replace(aliased=True)


def check_coverage(app: Sphinx, env: Any) -> None:
    objects = env.domains["py"].objects
    documented_modules = env.domains["py"].modules
    homes = canonical_homes(public_modules())
    missing = []
    for (m, n), home in sorted(homes.items()):
        is_module = inspect.ismodule(getattr(importlib.import_module(m), n))
        target = home if is_module else f"{home}.{n}"
        if target in documented_modules or (target in objects and not objects[target].aliased):
            continue
        missing.append(f"{m}.{n}")
    for m in public_modules():
        if m not in documented_modules:
            missing.append(f"{m} (module)")
    for name in missing:
        logger.warning("public name without an API entry: %s", name, type="microdl", subtype="api")


def _patch_dict_unparse() -> None:
    """Sphinx 9.0's source parser fails on a dict display with ``**`` unpacking in a decorator
    (``@compose_doc(x={**DOCS, ...})`` in :mod:`microdl.optim.optimizers`), and viewcode then silently drops
    that module's source page. Unparse ``**mapping`` items as Python writes them."""
    import ast

    from sphinx.pycode import ast as sphinx_ast

    def visit_Dict(self: Any, node: ast.Dict) -> str:
        items = (f"**{self.visit(v)}" if k is None else f"{self.visit(k)}: {self.visit(v)}"
                 for k, v in zip(node.keys, node.values))
        return "{" + ", ".join(items) + "}"

    sphinx_ast._UnparseVisitor.visit_Dict = visit_Dict


def setup(app: Sphinx) -> dict[str, Any]:
    _patch_dict_unparse()
    app.connect("builder-inited", write_api_pages)
    app.connect("autodoc-process-docstring", indent_trailing_literal_block, priority=400)  # before numpydoc (500)
    app.connect("builder-inited", write_optimizer_pages)
    app.connect("env-updated", register_aliases)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
