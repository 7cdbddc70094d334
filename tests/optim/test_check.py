"""microdl.optim.check_optimizer: every registered built-in passes the table; a planted bug (a sign flipped in a
copy of a rule) fails it; a learner's optimizer from a file outside the package passes it and works everywhere
a name is taken (fit, compare, the estimators, the CLI's --plugin)."""

import sys

import numpy as np
import pytest

from microdl.optim import OPTIMIZERS, Adam, check_optimizer, rules, unregister_optimizer
from microdl.optim.check import CHECKS
from tests.optim.registry_cases import ALL_OPTIONS, learner_lion
from tests.optim.registry_cases import LION_EXAMPLE as EXAMPLE


@pytest.mark.parametrize(("name", "cls", "hyper"), ALL_OPTIONS, ids=[c[0] for c in ALL_OPTIONS])
def test_every_builtin_passes_check_optimizer(name, cls, hyper):
    report = check_optimizer(cls, hyperparameters=[hyper, {}])
    assert [r.check for r in report] == list(CHECKS)
    assert all(r.status == "passed" for r in report), report


def flipped_adam(theta, g, m, v, v_max, s: rules.AdamScalars):
    """rules.adam with one sign flipped: the step goes uphill."""
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        if s.decoupled:
            theta = theta * s.decay_factor
        else:
            g = g + s.weight_decay * theta
    m = s.beta1 * m + s.one_minus_beta1 * g
    v = s.beta2 * v + s.one_minus_beta2 * g * g
    if s.amsgrad:
        v_max = np.maximum(v_max, v)
        denom = np.sqrt(v_max) / s.bias_correction2_sqrt + s.eps
    else:
        denom = np.sqrt(v) / s.bias_correction2_sqrt + s.eps
    theta = theta + s.step_size * m / denom
    return theta, m, v, v_max


class FlippedAdam(Adam):
    update = flipped_adam


def test_a_planted_sign_flip_fails_check_optimizer():
    # the flipped rule keeps the contract and agrees with itself on every backend: only convergence catches it
    # (the naive oracle catches it too, in test_rules, for the built-ins)
    with pytest.raises(AssertionError, match="FlippedAdam fails 2 of 4 checks") as info:
        check_optimizer(FlippedAdam, checks=["contract", "backends agree", "quadratic", "rosenbrock"])
    assert "failed  quadratic: not within 0.001 of the minimum" in str(info.value)
    assert "failed  rosenbrock" in str(info.value)
    report = check_optimizer(FlippedAdam, checks=["quadratic"], raise_on_failure=False)
    assert report[0].status == "failed"


def test_check_optimizer_refuses_what_it_cannot_check():
    with pytest.raises(TypeError, match="needs an Optimizer subclass"):
        check_optimizer(OPTIMIZERS["lbfgs"])
    with pytest.raises(ValueError, match="unknown checks"):
        check_optimizer(Adam, checks=["speed"])


@pytest.fixture
def lion():
    """The example's Lion, imported from its file as a learner's module is (and unregistered afterwards)."""
    with learner_lion("learner_lion") as module:
        yield module


def test_a_learners_optimizer_passes_check_optimizer(lion):
    report = check_optimizer(lion.Lion, hyperparameters=[{"weight_decay": 0.1}])
    assert all(r.status == "passed" for r in report), report


def test_a_learners_optimizer_works_wherever_a_name_is_taken(lion):
    from microdl.experiments import compare
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.sklearn import MLPClassifier
    from microdl.train import fit

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), (rng.normal(size=60) > 0).astype(int)
    net = MLP((4, 8, 2), random_state=0)
    history = fit(net, make_optimizer("lion", net.params, lr=1e-2), X, y, epochs=5)
    assert history.train_loss[-1] < history.train_loss[0]
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lion", max_iter=3, random_state=0).fit(X, y)
    assert type(clf._optimizer) is lion.Lion and clf._optimizer.lr == 1e-4  # the registered default_lr
    result = compare("iris", optimizers=["lion", "adam"], seeds=1, epochs=2, hidden=(4,), progress=False)
    assert [row["optimizer"] for row in result.summary()] == ["lion", "adam"]


def test_the_cli_imports_a_plugin_that_registers_an_optimizer(capsys, tmp_path):
    from microdl.cli import main

    try:
        assert main(["train", "--plugin", str(EXAMPLE), "--optimizer", "lion", "--dataset", "iris", "--epochs", "2",
                     "--hidden", "4", "--lr", "1e-3"]) == 0
        assert "test accuracy" in capsys.readouterr().out
        assert main(["compare", "--plugin", str(EXAMPLE), "--optimizers", "lion,adam", "--dataset", "iris",
                     "--seeds", "1", "--epochs", "1", "--hidden", "4", "--no-progress", "--out",
                     str(tmp_path / "out")]) == 0
        table = capsys.readouterr().out
        assert "\nlion " in table and "\nadam " in table
    finally:
        unregister_optimizer("lion")


def test_a_missing_or_broken_plugin_is_one_line(tmp_path, capsys):
    from microdl.cli import main

    assert main(["train", "--plugin", str(tmp_path / "nope.py")]) == 2
    assert capsys.readouterr().err == (f"microdl: error: --plugin {tmp_path / 'nope.py'}: no such Python file (a path "
                                       "ending in .py)\n")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["train", "--plugin", str(broken)]) == 2
    assert capsys.readouterr().err == f"microdl: error: --plugin {broken}: RuntimeError: boom\n"


def test_compare_with_jobs_imports_the_plugin_in_its_workers(tmp_path):
    """Worker processes import the plugin files the parent imported, so a plugin's optimizer runs with --jobs 2
    (it failed there before: the worker did not know the name)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "microdl", "compare", "--plugin", str(EXAMPLE), "--optimizers", "lion,adam",
         "--dataset", "iris", "--seeds", "2", "--epochs", "1", "--hidden", "4", "--jobs", "2", "--no-progress",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "\nlion " in proc.stdout and "\nadam " in proc.stdout
