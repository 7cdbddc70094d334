"""The explorable's runs and page (microdl.explore), checked against outside references: central finite
differences for the test functions' gradients, the naive optimizer oracle (tests/optim/naive.py) replayed along
each stored path, brute-force minima for "tuned", and the page's own decoding rule for the stored arrays."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from microdl.cli import main
from microdl.explore import (
    DEFAULT_OPTIMIZERS,
    DEFINING,
    FUNCTIONS,
    PAGE_NAME,
    build_page,
    optimizer_spec,
    precompute,
    trajectories,
    write_page,
)
from microdl.explore.grid import DIVERGED_ABOVE
from microdl.explore.page import GAP_DECADES, MISSING_CODE, _box, encode_runs
from microdl.optim import OPTIMIZERS, SGD, register_optimizer, unregister_optimizer
from tests.optim import naive

bokeh = pytest.importorskip("bokeh")


# -- the test functions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradient_matches_central_differences(name):
    f = FUNCTIONS[name]
    x0, x1, y0, y1 = f.view
    rng = np.random.default_rng(0)
    x, y = rng.uniform(x0, x1, 50), rng.uniform(y0, y1, 50)
    h = 1e-6
    dx = (f.value(x + h, y) - f.value(x - h, y)) / (2 * h)
    dy = (f.value(x, y + h) - f.value(x, y - h)) / (2 * h)
    gx, gy = f.gradient(x, y)
    scale = 1.0 + np.abs(gx) + np.abs(gy)
    np.testing.assert_allclose(gx / scale, dx / scale, atol=1e-6)
    np.testing.assert_allclose(gy / scale, dy / scale, atol=1e-6)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_minima_are_stationary_at_f_min_and_starts_are_in_view(name):
    f = FUNCTIONS[name]
    for mx, my in f.minima:
        gx, gy = f.gradient(np.array(mx), np.array(my))
        assert abs(gx) < 2e-3 and abs(gy) < 2e-3
        assert f.value(np.array(mx), np.array(my)) == pytest.approx(f.f_min, abs=1e-6)
    x0, x1, y0, y1 = f.view
    # f_min is the global minimum: nothing on a fine grid over the window lies below it
    X, Y = np.meshgrid(np.linspace(x0, x1, 401), np.linspace(y0, y1, 401))
    assert f.value(X, Y).min() >= f.f_min - 1e-9
    assert all(x0 < sx < x1 and y0 < sy < y1 for sx, sy in f.starts)


# -- the runs: microdl's optimizers, replayed by the naive oracle -----------------------------------------------
ORACLE_CASES = [
    ("gd", naive.sgd, 0.001, {}, {}),
    ("sgd", naive.sgd, 0.0005, {"momentum": 0.8}, {"momentum": 0.8}),
    ("adagrad", naive.adagrad, 0.3, {"eps": 1e-2}, {"eps": 1e-2}),
    ("rmsprop", naive.rmsprop, 0.03, {"alpha": 0.9}, {"alpha": 0.9}),
    ("adadelta", naive.adadelta, 30.0, {"rho": 0.95}, {"rho": 0.95}),
    ("adam", naive.adam, 0.1, {"betas": (0.5, 0.99)}, {"betas": (0.5, 0.99)}),
]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(("name", "oracle", "lr", "kwargs", "oracle_kwargs"), ORACLE_CASES)
def test_paths_follow_the_naive_oracle(name, oracle, lr, kwargs, oracle_kwargs, backend):
    """Replay: the gradients at the stored iterates, fed to the naive oracle from the same start, give the
    stored iterates back; so each path is the optimizer's own, step for step."""
    f = FUNCTIONS["rosenbrock"]
    run = trajectories(name, f, lr=lr, steps=40, backend=backend, **kwargs)
    assert (run.diverged_at == -1).all()
    for points in run.points:
        gx, gy = f.gradient(points[:-1, 0], points[:-1, 1])
        grads = np.stack([gx, gy], axis=1)
        history, _ = oracle(points[0], grads, lr=lr, **oracle_kwargs)
        np.testing.assert_allclose(history, points[1:], rtol=1e-9, atol=1e-12)


def test_one_buffer_for_many_runs_gives_each_run_its_own_path():
    """NOTE [one buffer, many runs]: the grid's shared buffer gives exactly the paths of single 2-parameter runs."""
    ex = precompute(["quadratic", "camel"], ["sgd", "adam"], steps=25, lrs_per_decade=1, mlp_epochs=0,
                    backend="numpy")
    for spec in ex.specs:
        for k, (lr, values) in enumerate(spec.settings()):
            if k % 3:
                continue
            for i, f in enumerate(ex.functions):
                for s, start in enumerate(f.starts):
                    alone = trajectories(spec.name, f, lr=lr, steps=25, starts=[start], backend="numpy",
                                         **spec.to_kwargs(values))
                    stored = ex.points[spec.name][k, ex.run_index(i, s)]
                    np.testing.assert_array_equal(stored, alone.points[0])


def test_a_diverged_run_is_nan_from_its_divergence_on_and_never_tuned():
    f = FUNCTIONS["rosenbrock"]
    run = trajectories("gd", f, lr=1.0, steps=30)
    assert (run.diverged_at > 0).all()
    for points, t in zip(run.points, run.diverged_at):
        assert np.isfinite(points[:t]).all() and np.abs(points[:t]).max() <= DIVERGED_ABOVE
        assert np.isnan(points[t:]).all()
    ex = precompute(["rosenbrock"], ["gd"], steps=30, lrs_per_decade=1, mlp_epochs=0)
    k = ex.tuned("gd", 0, 0, 30)
    assert np.isfinite(ex.values["gd"][k, 0]).all()


def test_tuned_is_the_lowest_final_gap_found_by_brute_force():
    ex = precompute(["beale", "saddle"], ["sgd", "rmsprop"], steps=40, lrs_per_decade=1, mlp_epochs=0)
    for spec in ex.specs:
        for i, f in enumerate(ex.functions):
            for s in range(len(f.starts)):
                for steps in (10, 40):
                    k = ex.tuned(spec.name, i, s, steps)
                    finals = [ex.values[spec.name][j, ex.run_index(i, s), steps] for j in range(spec.n_settings)]
                    finals = [max(v, 1e-12) if np.isfinite(v) else np.inf for v in finals]
                    assert max(finals[k], 1e-12) <= min(finals) * (1 + 1e-5)


def test_optimizer_specs_come_from_the_registry_with_the_defining_hyperparameter():
    for name in DEFAULT_OPTIMIZERS:
        spec = optimizer_spec(name)
        assert spec.cls is OPTIMIZERS[name]
        assert [c.name for c in spec.controls] == [c.name for c in DEFINING[name].controls]
        assert np.allclose(np.diff(np.log10(spec.lrs)), 0.5, atol=0.01)  # half-decades
        for control in spec.controls:
            assert control.default in control.values
    assert [c.name for c in optimizer_spec("adam").controls] == ["beta1", "beta2"]
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        optimizer_spec("nope")
    with pytest.raises(ValueError, match="lbfgs"):
        optimizer_spec("lbfgs")


class HeavyBall(SGD):
    """A user's own optimizer: SGD with momentum 0.5 built in."""

    def __init__(self, params, *, backend="cpu", lr=1e-2):
        super().__init__(params, backend=backend, lr=lr, momentum=0.5)


@pytest.fixture
def heavy_ball():
    register_optimizer("heavy_ball", HeavyBall)
    yield
    unregister_optimizer("heavy_ball")


def test_a_users_registered_optimizer_gets_a_rate_grid(heavy_ball):
    spec = optimizer_spec("heavy_ball", lrs_per_decade=1)
    assert spec.controls == () and spec.lrs[0] == pytest.approx(1e-4) and spec.lrs[-1] == pytest.approx(10.0)
    ex = precompute(["quadratic"], ["gd", "heavy_ball"], steps=10, lrs_per_decade=1, mlp_epochs=2)
    assert ex.n_settings == 5 + 6
    run = trajectories("sgd", "quadratic", lr=spec.lrs[2], momentum=0.5, steps=10)
    np.testing.assert_array_equal(ex.points["heavy_ball"][2], run.points)
    assert "HeavyBall" in build_page(ex)


def test_bad_arguments_are_refused_before_any_run():
    with pytest.raises(ValueError, match="function"):
        precompute(["nope"])
    with pytest.raises(ValueError, match="twice"):
        precompute(optimizers=["sgd", "sgd"])
    with pytest.raises(ValueError, match="steps"):
        precompute(steps=0)
    with pytest.raises(ValueError, match="backend"):
        precompute(backend="cuda")
    with pytest.raises(ValueError, match="starts"):
        trajectories("sgd", "quadratic", lr=0.1, starts=[(0.0, np.nan)])


def test_mlp_curves_are_fits_of_each_setting():
    from sklearn.datasets import make_moons

    from microdl.nn import MLP
    from microdl.train import fit

    ex = precompute(["quadratic"], ["adam"], steps=5, lrs_per_decade=1, mlp_epochs=4)
    spec = ex.specs[0]
    k = 7
    lr, values = spec.settings()[k]
    X, y = make_moons(n_samples=200, noise=0.25, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = MLP((2, 16, 2), random_state=0)
    history = fit(net, spec.make(net.params, "cpu", lr, values), X, y, epochs=4, batch_size=32, random_state=0)
    np.testing.assert_allclose(ex.mlp_loss["adam"][k, 1:], history.train_loss, rtol=1e-12)


# -- the page ---------------------------------------------------------------------------------------------------
def decode(q, low, high):
    """NOTE [quantised runs], written again from the note (as the page's script does)."""
    q = q.astype(np.float64)
    return np.where(q == MISSING_CODE, np.nan, low + q / (MISSING_CODE - 1) * (high - low))


def test_stored_arrays_decode_to_the_runs():
    ex = precompute(["rosenbrock", "camel"], ["gd", "adam"], steps=20, lrs_per_decade=1, mlp_epochs=0)
    codes = encode_runs(ex).reshape(-1, 21, 3)
    n_total = ex.n_settings
    for i, f in enumerate(ex.functions):
        x0, x1, y0, y1 = _box(f)
        for s in range(len(f.starts)):
            r = ex.run_index(i, s)
            offset = 0
            for spec in ex.specs:
                for k in range(spec.n_settings):
                    rec = codes[r * n_total + offset + k]
                    points, gaps = ex.points[spec.name][k, r], ex.values[spec.name][k, r]
                    inside = (points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1)
                    np.testing.assert_allclose(decode(rec[inside, 0], x0, x1), points[inside, 0],
                                               atol=(x1 - x0) / 60000)
                    np.testing.assert_allclose(decode(rec[inside, 1], y0, y1), points[inside, 1],
                                               atol=(y1 - y0) / 60000)
                    assert (rec[~inside, :2] == MISSING_CODE).all()
                    log_gap = decode(rec[:, 2], *GAP_DECADES)
                    finite = np.isfinite(gaps)
                    assert np.array_equal(np.isnan(log_gap), ~finite)  # "diverged" is exactly NaN
                    expected = np.clip(np.log10(np.maximum(gaps[finite], 1e-300)), *GAP_DECADES)
                    np.testing.assert_allclose(log_gap[finite], expected, atol=5e-4)
                offset += spec.n_settings


def test_page_is_self_contained_and_says_what_it_holds(tmp_path):
    ex = precompute(["quadratic", "saddle"], steps=12, lrs_per_decade=1, mlp_epochs=2)
    path = write_page(tmp_path / "out", ex)
    assert path == tmp_path / "out" / PAGE_NAME
    text = path.read_text()
    assert not re.search(r"<script[^>]+src=", text), "a script is loaded from elsewhere"
    # the markup outside the (inline) scripts links nothing remote; what the scripts fetch when they run is the
    # browser test's business (Bokeh's own code holds URLs of features the page does not use, such as MathJax)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", markup), "the page links a remote resource"
    assert "cdn.bokeh.org" not in text
    assert f"{ex.n_settings} settings" in text and f"{ex.n_runs} runs" in text
    assert ex.n_settings == 5 + 5 * 4 * 4 + 5 * 12
    assert "pytest" not in text and "A fair comparison?" in text


@pytest.mark.slow
def test_default_page_is_under_8_mb(tmp_path):
    path = write_page(tmp_path, precompute())
    assert path.stat().st_size <= 8_000_000


# -- the command line -------------------------------------------------------------------------------------------
TINY = ["--steps", "10", "--lrs-per-decade", "1", "--mlp-epochs", "2", "--functions", "quadratic,beale"]


def test_cli_writes_the_page(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "--out", "ex", *TINY, "--optimizers", "gd,adam"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrote ex/index.html \(\d+\.\d MB: 65 settings, 390 runs\)", out), out
    assert (tmp_path / "ex" / PAGE_NAME).stat().st_size > 1_000_000  # Bokeh's scripts are inline


@pytest.mark.parametrize(("args", "message"), [
    (["--optimizers", "nope"], "unknown optimizer 'nope'"),
    (["--optimizers", "lbfgs"], "cannot be explored"),
    (["--functions", "nope"], "unknown function 'nope'"),
    (["--steps", "0"], "--steps"),
    (["--mlp-epochs", "-1"], "mlp_epochs"),
])
def test_cli_refuses_bad_options_in_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["explore", "--out", str(tmp_path / "ex"), *TINY, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("microdl explore: error:"), err
    assert not (tmp_path / "ex").exists()


def test_cli_without_bokeh_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh now raises ImportError
    with pytest.raises(SystemExit) as exc:
        main(["explore", "--out", str(tmp_path / "ex"), *TINY])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "microdl explore: error: the explorable needs Bokeh: pip install microdl[explore]\n"
    assert not (tmp_path / "ex").exists()



def test_cli_refuses_an_output_that_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["explore", "--out", str(tmp_path / "taken"), *TINY])
    assert exc.value.code == 2
    assert "is not a folder" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "mine"
