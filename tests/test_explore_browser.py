"""The explorable's page in a real browser: Debian's headless Chromium driven by Playwright, offline.

Skipped when no browser is at hand, except in CI (``CI=true``), where a missing Chromium or Playwright is a
failure: ``.ci/run`` installs Debian's ``chromium`` (no browser is ever downloaded). ``MICRODL_CHROMIUM`` names
another Chromium binary.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from microdl.explore import precompute, write_page

CHROMIUM = os.environ.get("MICRODL_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
OFFLINE_SCHEMES = ("file", "data", "blob")


def _browser_or_skip():
    """Playwright's sync API and the Chromium binary, or a skip (a failure under CI=true)."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install playwright; it is in microdl's test extra)")
        sync_playwright = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(message + "; CI=true, so this is a failure, not a skip")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    pytest.importorskip("bokeh")
    # tiny: two functions, one rate per decade, 30 steps, 3 MLP epochs: seconds to write
    ex = precompute(["quadratic", "rosenbrock"], steps=30, lrs_per_decade=1, mlp_epochs=3)
    return write_page(tmp_path_factory.mktemp("explore"), ex)


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        # --no-sandbox: CI and this test run as root, where Chromium's sandbox cannot start
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox",
                                                              "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Session:
    """One offline tab: every request that is not file:, data: or blob: is aborted and recorded, and page
    errors and console errors are recorded too."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1200})
        self.remote: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console error: {m.text}"))

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).scheme in OFFLINE_SCHEMES:
            route.continue_()
        else:
            self.remote.append(url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("window.__microdl_explore && window.__microdl_explore.loaded", timeout=30_000)

    def model(self, name: str, attribute: str):
        return self.page.evaluate(f"Bokeh.documents[0].get_model_by_name({name!r}).{attribute}")

    def path(self, optimizer: str) -> list[float]:
        return self.page.evaluate(
            f"Array.from(Bokeh.documents[0].get_model_by_name('path_{optimizer}').data.x)")

    def caption(self) -> str:
        """The caption's text, tags dropped: "... SGD lr 0.01, momentum 0.9 (tuned) f − f* = 2.2e−3 ..." """
        return " ".join(re.sub(r"<[^>]+>", " ", self.model("caption", "text")).split())

    def controls(self) -> dict:
        names = ["function", "start", "steps", "lr_gd", "lr_sgd", "sgd_momentum", "adam_beta1", "adam_beta2", "tabs"]
        return {n: self.model(n, "active" if n in ("sgd_momentum", "adam_beta1", "adam_beta2", "tabs")
                              else "value") for n in names}

    def check_clean(self) -> None:
        assert self.remote == [], f"the page asked the network for {self.remote}"
        assert self.errors == [], self.errors

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def session(browser):
    s = Session(browser)
    yield s
    s.close()


def test_page_loads_offline_without_errors(page_file, session):
    session.open(page_file.as_uri())
    assert "six optimizers" in session.page.title()
    assert len(session.path("sgd")) == 31  # the start and 30 steps
    assert "Ill-conditioned quadratic" in session.caption()
    # every panel has drawn: Bokeh's canvases are there
    assert session.page.locator(".bk-Figure, .bk-GridPlot").count() >= 1
    session.check_clean()


def test_moving_controls_changes_the_paths_and_the_caption_follows(page_file, session):
    session.open(page_file.as_uri())
    before = session.path("sgd")
    labels = session.model("sgd_momentum", "labels")
    target = (session.model("sgd_momentum", "active") + 1) % len(labels)  # a momentum other than the current
    session.page.locator(".mdl-sgd-momentum").get_by_text(labels[target], exact=True).click()
    assert session.model("sgd_momentum", "active") == target
    after_momentum = session.path("sgd")
    assert after_momentum != before, "a new momentum did not change the drawn path"
    assert f"momentum {labels[target]}" in session.caption()

    # the rate slider, moved with the keyboard as a reader would: one notch is one decade here
    lr_before = session.model("lr_sgd", "value")
    handle = session.page.locator(".mdl-lr-sgd .noUi-handle")
    handle.press("ArrowLeft" if lr_before > 0 else "ArrowRight")
    lr_after = session.model("lr_sgd", "value")
    assert lr_after != lr_before
    moved = session.path("sgd")
    assert moved != after_momentum, "moving the rate slider did not change the drawn path"
    rates = session.page.evaluate("Bokeh.documents[0].get_model_by_name('lr_sgd').format.args.labels")
    assert f"lr {rates[round(lr_after)]}, momentum {labels[target]}" in session.caption()

    # another function: the paths, the ranges and the caption all switch
    session.page.locator(".mdl-function select").select_option(label="Rosenbrock")
    assert session.model("function", "value") == "rosenbrock"
    assert "Rosenbrock" in session.caption() and session.path("sgd") != moved
    assert session.page.evaluate("Bokeh.documents[0].get_model_by_name('panel_sgd').x_range.start") == -2.0

    # the steps slider shortens every path, and the caption says so
    session.page.locator(".mdl-steps .noUi-handle").press("Home")
    steps = session.model("steps", "value")
    assert steps < 30 and len(session.path("gd")) <= steps + 1
    assert f"{steps} steps" in session.caption()
    session.check_clean()


def test_tuned_button_jumps_to_the_best_setting(page_file, session):
    session.open(page_file.as_uri())
    session.page.locator(".mdl-sgd-momentum").get_by_text("0.99", exact=True).click()
    session.page.locator(".mdl-lr-sgd .noUi-handle").press("Home")
    assert "SGD lr 1e-4, momentum 0.99 f − f*" in session.caption()
    session.page.locator(".mdl-tuned-sgd").get_by_role("button").click()
    caption = session.caption()
    assert "SGD lr 1e-4, momentum 0.99" not in caption
    assert session.model("panel_sgd", "title.text").endswith("· tuned")
    assert re.search(r"SGD lr [^ ]+, momentum [^ ]+ \(tuned\) ", caption), caption
    # "tune all" tunes the other five as well
    session.page.locator(".mdl-tune-all").get_by_role("button").click()
    assert session.caption().count("(tuned)") == 6
    session.check_clean()


def test_state_round_trips_through_the_url(page_file, browser, session):
    session.open(page_file.as_uri())
    session.page.locator(".mdl-function select").select_option(label="Rosenbrock")
    session.page.locator(".mdl-start select").select_option(index=2)
    session.page.locator(".mdl-adam-beta1").get_by_text("0", exact=True).click()
    session.page.locator(".mdl-adam-beta2").get_by_text("0.9", exact=True).click()
    session.page.locator(".mdl-lr-gd .noUi-handle").press("End")
    session.page.locator(".bk-tab", has_text="MLP on two moons").click()
    state, caption, url = session.controls(), session.caption(), session.page.url
    assert "#" in url and "f=rosenbrock" in url and "start=3" in url and "view=mlp" in url
    assert state["function"] == "rosenbrock" and state["start"] == "2" and state["tabs"] == 1

    fresh = Session(browser)  # a new tab opened on the shared link
    try:
        fresh.open(url)
        assert fresh.controls() == state
        assert fresh.caption() == caption
        assert fresh.path("adam") == session.path("adam")
        fresh.check_clean()
    finally:
        fresh.close()

    # a hand-written link: values snap to the grid; unknown keys are ignored
    link = page_file.as_uri() + "#f=quadratic&start=2&steps=12&sgd=lr:0.011,momentum:0.8&nonsense=1"
    session.page.goto("about:blank")
    session.open(link)
    assert session.model("function", "value") == "quadratic" and session.model("start", "value") == "1"
    assert "SGD lr 0.01, momentum 0.8 " in session.caption()
    session.check_clean()


def test_clicking_near_a_start_picks_it(page_file, session):
    session.open(page_file.as_uri())
    assert session.model("start", "value") == "0"
    # the quadratic's third start, (-0.5, -1.8), in the GD panel's screen coordinates
    box = session.page.evaluate("""(() => {
        const view = Bokeh.index.get_one(Bokeh.documents[0].get_model_by_name('panel_gd'));
        const frame = view.frame, r = view.el.getBoundingClientRect();  // the scales give canvas pixels
        return [r.left + frame.x_scale.compute(-0.5) + 3, r.top + frame.y_scale.compute(-1.8) - 2];
    })()""")
    session.page.mouse.click(*box)
    assert session.model("start", "value") == "2"
    assert "from start 3 (-0.5, -1.8)" in session.caption()
    session.check_clean()


def test_a_page_without_controls_or_mlp_works(tmp_path, session):
    """Edge of the layout: one function, one optimizer with no hyperparameter control, no MLP runs."""
    path = write_page(tmp_path, precompute(["saddle"], ["gd"], steps=8, lrs_per_decade=1, mlp_epochs=0))
    session.open(path.as_uri())
    assert len(session.path("gd")) == 9
    assert "Saddle" in session.caption() and "GD lr" in session.caption()
    session.page.locator(".mdl-lr-gd .noUi-handle").press("Home")
    assert "GD lr 1e-4 " in session.caption()
    session.check_clean()
