"""The report's building blocks against outside references: the 2-D test functions against their published
minima and finite differences, the flat-buffer 2-D runs against one optimizer per start, the Zipf problem's
frequencies, the statement counts against a hand count of the rules, and the Markdown/HTML rendering."""

import numpy as np
import pytest

from microdl.experiments.report.markup import Card, Document
from microdl.experiments.report.problems import (
    CAMEL_GLOBAL,
    CAMEL_MINIMA,
    Teacher,
    camel,
    rosenbrock,
    run_2d,
    zipf_problem,
)


@pytest.mark.parametrize("fn", [rosenbrock, camel])
def test_2d_gradients_are_central_differences(fn):
    P = np.random.default_rng(0).uniform(-1.5, 1.5, (6, 2))
    _, g = fn(P)
    h = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = (fn(P + e)[0] - fn(P - e)[0]) / (2 * h)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-6, atol=1e-6)


def test_camel_minima_are_the_published_ones():
    f, g = camel(CAMEL_MINIMA)
    np.testing.assert_allclose(g, 0.0, atol=2e-3)  # the table's minima, rounded to 4 decimals
    assert f[:2] == pytest.approx([CAMEL_GLOBAL] * 2, abs=1e-4)
    assert np.all(f[2:] > CAMEL_GLOBAL + 0.5)
    assert rosenbrock(np.array([[1.0, 1.0]]))[0][0] == 0.0


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "rmsprop", "adadelta"])
def test_one_flat_buffer_runs_every_start_as_if_alone(name):
    starts = np.array([[-1.2, 1.0], [0.5, -0.3], [1.5, 0.2]])
    together = run_2d(name, rosenbrock, starts, 30, 1e-3)
    for k, start in enumerate(starts):
        alone = run_2d(name, rosenbrock, start[None], 30, 1e-3)
        np.testing.assert_array_equal(together[:, k], alone[:, 0])


def test_noisy_runs_are_reproducible_and_annealed_runs_settle():
    starts = np.array([[0.5, 0.5]])
    a = run_2d("sgd", camel, starts, 200, 0.01, noise=2.0, seed=3, anneal=True)
    b = run_2d("sgd", camel, starts, 200, 0.01, noise=2.0, seed=3, anneal=True)
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a[-1] - a[-2]) < 1e-3


def test_zipf_features_get_rarer_and_the_dense_control_keeps_the_signal():
    p = zipf_problem(4000, 200, seed=0)
    assert p["X"].format == "csr" and p["X"].nnz == 4000 * 5
    freq = p["freq"]
    assert freq[:10].mean() > 10 * freq[-50:].mean()
    d = zipf_problem(4000, 200, seed=0, sparse=False)
    np.testing.assert_array_equal(d["w"], p["w"])  # the same weights to learn
    assert np.var(d["X"] @ d["w"]) == pytest.approx(np.var(p["X"] @ p["w"]), rel=1e-9)


def test_teacher_targets_have_unit_signal_and_the_stated_noise():
    t = Teacher(6, 5, 0.5, seed=1)
    X, y = t.sample(20000, np.random.default_rng(0))
    signal = t.targets(X, None)
    assert np.var(signal) == pytest.approx(1.0, rel=0.05)
    assert 0.5 * np.mean((y - signal) ** 2) == pytest.approx(t.noise_floor, rel=0.05)


def test_statement_counts_match_a_hand_count_of_the_rules():
    from microdl.experiments.report.code import _executed_statements

    # at default settings: SGD θ ← θ − γg; Adagrad S, θ; RMSprop v, denom, θ; AdaDelta v, Δ, u, θ; Adam m, v, denom, θ
    hand = {"gd": 1, "sgd": 1, "adagrad": 2, "rmsprop": 3, "adadelta": 4, "adam": 4}
    assert {o: _executed_statements(o)[0] for o in hand} == hand
    assert _executed_statements("adam")[1] > 4  # the options (AMSGrad, weight decay) add statements


def test_markdown_and_html_render_the_same_blocks():
    doc = Document("T")
    doc.heading("H", anchor="h")
    doc.paragraph("**bold** and *rule* with `code` & <tag>, a [link](#h) and [[not supported]]")
    doc.table(["a", "b|c"], [[1, "x"]], caption="cap")
    doc.bullets(["one"])
    doc.summary("lead", ["point"])
    doc.image("f.png", "alt")
    doc.evidence([("g.png", "fig")], [Card("claim-x", "gd: “X”", "depends", [["p", "1 [0, 2]", "> 1", "[[depends]]"]],
                                         "evidence", "rule", ["note"])])
    doc.pre("a < b")
    md, html = doc.markdown(), doc.html()
    assert md.startswith("# T\n") and '<a id="h"></a>\n## H' in md and "| a | b\\|c |" in md and "![alt](f.png)" in md
    assert "**not supported**" in md and '<a id="claim-x"></a>' in md and "![fig](g.png)" in md
    assert "<strong>bold</strong> and <em>rule</em> with <code>code</code> &amp; &lt;tag&gt;" in html
    assert '<a href="#h">link</a>' in html and '<span class="badge v-not-supported">not supported</span>' in html
    assert '<h2 id="h">' in html and "<th>b|c</th>" in html and "<caption>cap</caption>" in html
    assert '<div class="card c-depends" id="claim-x">' in html and '<img src="g.png" alt="fig">' in html
    assert "<pre>a &lt; b</pre>" in html and "<pre>" not in html.split("<pre>a")[0]


# -- the report as an application: its interface, its problem set, its literature, its stability ---------------
def test_every_experiment_implements_the_declared_interface_and_no_core_module_imports_the_report():
    import pathlib
    import re

    import microdl
    from microdl.experiments.report import CLAIMS, EXPERIMENTS
    from microdl.experiments.report.context import Experiment

    assert all(isinstance(e, Experiment) for e in EXPERIMENTS)
    assert {c.experiment for c in CLAIMS} <= {e.KEY for e in EXPERIMENTS}
    root = pathlib.Path(microdl.__file__).parent
    for path in root.rglob("*.py"):
        if "experiments" in path.relative_to(root).parts:
            continue
        assert not re.search(r"microdl\.experiments\.report|from \.+experiments", path.read_text()), path


def test_every_problem_of_the_set_loads_for_two_seeds():
    from microdl.experiments.report.problem_set import PROBLEMS, load_problem

    families = {p.family for p in PROBLEMS.values()}
    assert {"bundled", "conditioning", "dimension", "noise", "class balance", "sparsity", "architecture"} <= families
    for name in PROBLEMS:
        a, b = load_problem(name, 0), load_problem(name, 1)
        assert a.X_train.shape[1] == b.X_train.shape[1] and np.all(np.isfinite(a.X_train)), name
        assert a.task in ("classification", "regression")
    # every tabular dataset scikit-learn bundles with a load_* function
    assert {"iris", "wine", "breast_cancer", "digits", "diabetes", "linnerud"} <= set(PROBLEMS)
    with pytest.raises(ValueError, match="unknown problem"):
        load_problem("nope", 0)


def test_every_claim_cites_sources_that_are_in_the_references():
    from microdl.experiments.report import CLAIMS
    from microdl.experiments.report.literature import LITERATURE, REFERENCES, comparison

    assert set(LITERATURE) == {c.id for c in CLAIMS}
    for claim, finding in LITERATURE.items():
        assert finding.sources and set(finding.sources) <= set(REFERENCES), claim
    cited = {s for f in LITERATURE.values() for s in f.sources}
    for key in ("Kingma & Ba 2015", "Duchi et al. 2011", "Zeiler 2012", "Tieleman & Hinton 2012",
                "Bottou & Bousquet 2008", "Wilson et al. 2017", "Choi et al. 2019", "Schmidt et al. 2021",
                "Sivaprasad et al. 2020"):
        assert key in cited
    assert "agrees" in comparison("adagrad-per-param", "supported")
    assert "departs" in comparison("adagrad-per-param", "not supported")
    assert "cannot tell" in comparison("adagrad-per-param", "unstable")


def test_stable_verdicts_keep_the_majority_and_label_the_rest_unstable():
    from microdl.experiments.report.driver import stable_verdicts
    from microdl.experiments.report.stats import Estimate
    from microdl.experiments.report.verdicts import judge

    def rep(low, high):
        return {"gd-combine": judge("gd-combine", {"combined": Estimate(0.5, low, high, 10, "x")}, "e")}

    three = [rep(0.5, 0.9), rep(0.5, 0.9), rep(1.1, 1.3)]
    v = stable_verdicts(three)["gd-combine"]
    assert v.verdict == "supported" and v.replications == ["supported", "supported", "not supported"]
    assert v.stability == pytest.approx(2 / 3) and v.to_dict()["stability"] == pytest.approx(2 / 3)
    split = stable_verdicts([rep(0.5, 0.9), rep(1.1, 1.3), rep(0.9, 1.1)])["gd-combine"]
    assert split.verdict == "unstable" and split.stability == pytest.approx(1 / 3)


def test_best_rate_widens_a_grid_whose_best_sits_on_an_edge():
    from microdl.experiments.report.context import EXTEND_STEPS, best_rate

    lr, scores = best_rate([0.01, 0.1, 1.0], lambda lr: abs(np.log10(lr) - 2.5))  # best at 10^2.5, off the grid
    assert len(scores) == 3 + EXTEND_STEPS and lr == max(scores) == pytest.approx(100.0)
    lr, scores = best_rate([0.01, 0.1, 1.0], lambda lr: abs(np.log10(lr) + 1))  # inside: nothing added
    assert lr == 0.1 and len(scores) == 3


def test_a_diverged_test_loss_is_penalised_by_the_runs_that_did_not_diverge():
    # a run flagged diverged whose last loss is a finite 1e7 must not set the penalty: the failure counts
    # FAILURE_FACTOR times the worst loss of a run that did not diverge, however far the diverged run went
    from microdl.experiments.report import stats, wide

    def phase(losses, diverged):
        return {o: {"final_test_loss": list(losses), "diverged": list(diverged)} for o in wide.SIX}

    r = {"datasets": {"p": {"tuned": phase([1.0, 1e7], [False, True]), "default": phase([2.0, 3.0], [False, False])}}}
    tuned, default = wide._test_losses(r)
    assert tuned[0, :, 1] == pytest.approx(stats.FAILURE_FACTOR * 3.0)
    assert tuned[0, :, 0] == pytest.approx(1.0) and default[0, :, 1] == pytest.approx(3.0)
