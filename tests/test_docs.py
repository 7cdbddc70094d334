"""The documentation's generated parts (docs/_ext/microdl_docs.py): every public name gets an API entry, the
coverage check reports one that does not, and the estimators' HTML repr links to their entry.

The full build (``bash dev.sh docs``: Sphinx with -W, the gallery, the offline link check) runs in CI; these
tests check the generator without building, in a second or two.
"""

import importlib
import inspect
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("sphinx")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "_ext"))
microdl_docs = importlib.import_module("microdl_docs")
sys.path.pop(0)


@pytest.fixture(scope="module")
def api_pages(tmp_path_factory):
    srcdir = tmp_path_factory.mktemp("docs")
    microdl_docs.write_api_pages(SimpleNamespace(srcdir=str(srcdir)))
    return {p.stem: p.read_text() for p in (srcdir / "api" / "generated").glob("*.rst")}


def test_every_public_module_has_a_page(api_pages):
    modules = microdl_docs.public_modules()
    assert {"microdl", "microdl.optim", "microdl.nn.reference", "microdl.sklearn", "microdl.train"} <= set(modules)
    assert set(api_pages) == set(modules)
    assert not any(part.startswith("_") for m in modules for part in m.split("."))


def test_every_public_name_is_documented_once_where_it_is_defined(api_pages):
    homes = microdl_docs.canonical_homes(microdl_docs.public_modules())
    for (module, name), home in homes.items():
        obj = getattr(importlib.import_module(module), name)
        if inspect.ismodule(obj):
            assert home in api_pages
            continue
        directive = re.compile(rf"^\.\. auto\w+:: {re.escape(home)}\.{re.escape(name)}$", re.M)
        assert sum(len(directive.findall(page)) for page in api_pages.values()) == 1, f"{module}.{name}"
        assert f"{home}.{name}`" in api_pages[module], f"{module}'s table lacks {name}"
    # a re-export is documented at its definition: Adam once, in microdl.optim.optimizers
    assert homes[("microdl.optim", "Adam")] == "microdl.optim.optimizers"


def test_the_coverage_check_reports_a_name_without_an_entry(monkeypatch):
    homes = microdl_docs.canonical_homes(microdl_docs.public_modules())
    entry = SimpleNamespace(aliased=False)
    objects = {f"{home}.{name}": entry for (module, name), home in homes.items()}
    del objects["microdl.train.fit"]
    modules = {m: entry for m in microdl_docs.public_modules()}
    env = SimpleNamespace(domains={"py": SimpleNamespace(objects=objects, modules=modules)})
    warned = []
    monkeypatch.setattr(microdl_docs.logger, "warning", lambda fmt, *args, **kw: warned.append(fmt % args))
    microdl_docs.check_coverage(None, env)
    assert warned == ["public name without an API entry: microdl.train.fit"]
    objects["microdl.train.fit"] = entry
    warned.clear()
    microdl_docs.check_coverage(None, env)
    assert warned == []


def test_the_estimators_repr_links_to_their_api_entry(api_pages):
    from microdl.sklearn import DOCS_URL, MLPClassifier, MLPRegressor

    for cls in (MLPClassifier, MLPRegressor):
        link = cls()._get_doc_link()
        assert link == f"{DOCS_URL}api/generated/microdl.sklearn.html#microdl.sklearn.{cls.__name__}"
        assert f".. autoclass:: microdl.sklearn.{cls.__name__}\n" in api_pages["microdl.sklearn"]
        assert link in cls()._repr_html_()


def test_a_rule_docstring_ending_in_its_block_keeps_the_block():
    lines = ["SGD::", "", "g ← −g", "θ ← θ − γ g"]
    microdl_docs.indent_trailing_literal_block(None, "function", "sgd", None, None, lines)
    assert lines == ["SGD::", "", "    g ← −g", "    θ ← θ − γ g", "", ".."]
