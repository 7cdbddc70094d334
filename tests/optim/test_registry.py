"""microdl.optim.registry: one registry, and every list of optimizer names in the package derived from it; the
rule's contract checked at registration (microdl.optim.contract), each broken rule refused by name."""

import ast
import inspect
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import microdl
from microdl.optim import (
    OPTIMIZERS,
    SGD,
    Adam,
    Hyperparameter,
    Optimizer,
    available_optimizers,
    contract,
    optimizer_entry,
    register_optimizer,
    rules,
    unregister_optimizer,
)
from microdl.optim.base import real
from tests.optim.naive import CASES, ORACLES
from tests.optim.registry_cases import BUILTIN

PACKAGE = Path(microdl.__file__).parent


@pytest.fixture
def scratch_name():
    """A name to register under; removed again after the test."""
    name = "zz_test_optimizer"
    yield name
    if name in OPTIMIZERS:
        unregister_optimizer(name)


# -- every list derived ---------------------------------------------------------------------------------------
def test_every_builtin_has_an_oracle_and_cases():
    # a built-in registered without an independent oracle, or without cases, would pass every table untested
    names = {name for name, _ in BUILTIN}
    assert names <= set(ORACLES), f"no naive oracle for {sorted(names - set(ORACLES))} in tests/optim/naive.py"
    assert names <= {name for _, name, _ in CASES}, "every built-in needs cases in tests/optim/naive.py"


def test_the_builtins_in_display_order():
    assert list(OPTIMIZERS) == ["gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "lbfgs"]
    assert available_optimizers(article=True) == ("gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam")
    assert available_optimizers(takes_lr=False) == ("lbfgs",)


#: Files another branch owns (issue 18: the tuning presets and the report's claims about named optimizers);
#: the lead connects them to the registry at merge.
_NOT_HERE = ("experiments/tuning.py", "experiments/report/")
#: Lists of names that are not the registry's: scikit-learn's own three solvers, ``__all__``, and the explorable's
#: hand-picked control grids for the built-ins (an optimizer that table does not know still gets a rate grid).
_ALLOWED = {("sklearn.py", "_SKLEARN_SOLVERS"), ("optim/rules.py", "__all__"), ("explore/grid.py", "DEFINING")}


def test_no_module_keeps_its_own_list_of_optimizer_names():
    names = set(OPTIMIZERS)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(_NOT_HERE):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                   and any(isinstance(t, ast.Name) and (rel, t.id) in _ALLOWED
                           for t in getattr(node, "targets", [getattr(node, "target", None)]))
                   for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and id(node) not in allowed:
                elts = node.keys if isinstance(node, ast.Dict) else node.elts
                hits = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in names]
                if len(hits) >= 3:
                    found.append(f"{rel}:{node.lineno} {hits}")
    assert not found, "derive these from microdl.optim.registry:\n" + "\n".join(sorted(set(found)))


def test_a_registered_optimizer_appears_in_every_list(scratch_name):
    from microdl.cli import build_parser
    from microdl.experiments.plots import color_of
    from microdl.experiments.runs import check_optimizers, default_lr, takes_lr
    from microdl.sklearn import DEFAULT_LEARNING_RATES, SOLVERS, MLPClassifier

    class Momentumless(Adam):
        """A subclass registered under a new name: the lists must pick it up without an edit."""

    register_optimizer(scratch_name, Momentumless, default_lr=0.02, color="tab:olive")
    assert list(OPTIMIZERS)[-1] == scratch_name and OPTIMIZERS[scratch_name] is Momentumless
    assert scratch_name in SOLVERS and DEFAULT_LEARNING_RATES[scratch_name] == 0.02
    assert check_optimizers(scratch_name) == (scratch_name,) and takes_lr(scratch_name)
    assert default_lr(scratch_name) == 1e-3  # the class's own default (the estimators use default_lr)
    from matplotlib.colors import to_rgba

    assert color_of(scratch_name) == to_rgba("tab:olive")
    train = build_parser().commands["train"]
    (action,) = [a for a in train._actions if a.dest == "optimizer"]
    assert scratch_name in action.choices
    (momentum,) = [a for a in train._actions if a.dest == "momentum"]
    assert scratch_name not in momentum.help and "sgd" in momentum.help
    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver=scratch_name, max_iter=2).fit(X, y)
    assert type(clf._optimizer) is Momentumless and clf._optimizer.lr == 0.02
    unregister_optimizer(scratch_name)
    assert scratch_name not in OPTIMIZERS and scratch_name not in SOLVERS
    with pytest.raises(ValueError, match=f"unknown optimizer '{scratch_name}'"):
        optimizer_entry(scratch_name)


def test_the_estimators_map_their_optimizer_parameters_through_the_registry():
    from microdl.sklearn import MLPClassifier

    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2
    kw = dict(hidden_layer_sizes=(4,), max_iter=1, epsilon=1e-3, momentum=0.5, beta_2=0.99)
    hyper = {s: MLPClassifier(solver=s, **kw).fit(X, y)._optimizer.hyperparameters
             for s in ("sgd", "adam", "adagrad", "adadelta")}
    assert hyper["sgd"]["momentum"] == 0.5 and hyper["sgd"]["nesterov"]
    assert hyper["adam"]["betas"] == (0.9, 0.99) and hyper["adam"]["eps"] == 1e-3 and hyper["adam"]["eps_on"] == "v"
    assert hyper["adagrad"]["eps"] == 1e-3
    assert hyper["adadelta"]["eps"] == 1e-6  # keeps torch's ε under its roots


def test_registering_twice_is_an_error_unless_replacing(scratch_name):
    register_optimizer(scratch_name, SGD)
    with pytest.raises(ValueError, match="registered already"):
        register_optimizer(scratch_name, Adam)
    register_optimizer(scratch_name, Adam, replace=True)
    assert OPTIMIZERS[scratch_name] is Adam


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "Bad-Name"}, "lower-case Python identifier"),
    ({"search_space": {"lr": (1e-3, 1e-1)}}, r"\(low, high, 'log' or 'one_minus'\)"),
    ({"search_space": {"lr": (0.0, 1.0, "log")}}, "finite 0 < low < high"),
    ({"search_space": {"momentum": (1e-3, 1.0, "one_minus")}}, "does not take"),
    ({"estimator_params": ("momentum",)}, "does not take"),
    ({"estimator_params": ("nesterov",)}, "unknown 'nesterov'"),
    ({"default_lr": -1.0}, "default_lr"),
])
def test_bad_registrations_are_refused(kwargs, match, scratch_name):
    kwargs = {"name": scratch_name, **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        register_optimizer(kwargs.pop("name"), Adam, **kwargs)
    assert scratch_name not in OPTIMIZERS


def test_register_refuses_a_class_that_is_no_optimizer(scratch_name):
    with pytest.raises(TypeError, match="neither an Optimizer subclass"):
        register_optimizer(scratch_name, dict)


# -- the rule's contract ------------------------------------------------------------------------------------------
class StepScalars(NamedTuple):
    lr: float
    one_minus_beta: float
    beta: float


def step_scalars(dtype: np.dtype, t: int, lr: float, beta: float) -> StepScalars:
    f = dtype.type
    return StepScalars(f(lr), f(1.0 - beta), f(beta))


def good(theta, g, m, s: StepScalars):
    m = s.beta * m + s.one_minus_beta * g
    return theta - s.lr * m, m


def wrong_arity(theta, g, s: StepScalars):
    return (theta - s.lr * g,)


def wrong_state_name(theta, g, b, s: StepScalars):
    return theta - s.lr * g, b


def returns_an_array(theta, g, m, s: StepScalars):
    return theta - s.lr * g


def returns_too_few(theta, g, m, s: StepScalars):
    return (theta - s.lr * g,)


def float_literal(theta, g, m, s: StepScalars):
    m = 0.9 * m + s.one_minus_beta * g
    return theta - s.lr * m, m


def int_literal(theta, g, m, s: StepScalars):
    m = s.beta * m + (1 - s.beta) * g
    return theta - s.lr * m, m


def unknown_field(theta, g, m, s: StepScalars):
    m = s.beta * m + s.one_minus_beta * g
    return theta - s.learning_rate * m, m


def compares_with_zero(theta, g, m, s: StepScalars):
    if s.beta != 0:
        m = s.beta * m + s.one_minus_beta * g
    return theta - s.lr * m, m


def beta_first(dtype: np.dtype, t: int, beta: float, lr: float) -> StepScalars:
    return step_scalars(dtype, t, lr, beta)


def _class(rule, host=step_scalars, state=("m",)):
    class Custom(Optimizer):
        update = rule
        scalars = host
        state_names = state
        beta = Hyperparameter(real(0.0, 1.0))

        def __init__(self, params, *, backend="cpu", lr=0.1, beta=0.9):
            super().__init__(params, backend=backend, hyperparameters=dict(lr=lr, beta=beta))

    return Custom


@pytest.mark.parametrize(("rule", "host", "match"), [
    (wrong_arity, step_scalars, r"takes 3 arguments \(theta, g, s\); with the state \('m',\) it must take 4"),
    (wrong_state_name, step_scalars, r"takes the state \('b',\), but Custom declares state_names = \('m',\)"),
    (returns_an_array, step_scalars, r"must return a tuple \(theta, m\) of 2; it returned a ndarray"),
    (returns_too_few, step_scalars, r"must return a tuple \(theta, m\) of 2; it returned a tuple of length 1"),
    (float_literal, step_scalars, r"holds the numeric literal 0\.9: .*widens a float32 kernel"),
    (int_literal, step_scalars, r"holds the numeric literal 1: "),
    (unknown_field, step_scalars, r"reads s\.learning_rate, which StepScalars does not have"),
    (good, beta_first, r"host function beta_first\(dtype, t, beta, lr\) must take dtype, t, then the hyperparameters "
                       r"in the order the class declares them \(lr, beta\)"),
], ids=lambda x: getattr(x, "__name__", None))
def test_a_broken_rule_is_refused_at_registration_naming_it(rule, host, match, scratch_name):
    cls = _class(rule, host)
    with pytest.raises(TypeError, match=match) as info:
        register_optimizer(scratch_name, cls)
    assert f"rule {rule.__name__} (tests.optim.test_registry) of " in str(info.value) or "Custom" in str(info.value)
    assert scratch_name not in OPTIMIZERS


def test_a_good_rule_registers_and_runs_on_every_host_backend(scratch_name):
    for rule in (good, compares_with_zero):
        cls = _class(rule)
        register_optimizer(scratch_name, cls, replace=True)
        results = []
        for backend in ("numpy", "cpu"):
            theta = np.linspace(-1.0, 1.0, 7, dtype=np.float32)
            opt = microdl.optim.make_optimizer(scratch_name, theta, backend=backend, lr=0.5)
            for _ in range(3):
                opt.step(np.ones(7, np.float32))
            results.append(theta)
        np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
        # by hand: m = 0.1, 0.19, 0.271; θ falls by 0.5 Σ m
        np.testing.assert_allclose(results[0] - np.linspace(-1.0, 1.0, 7), -0.5 * (0.1 + 0.19 + 0.271), rtol=1e-5)


def test_a_rule_from_outside_the_package_is_never_disk_cached_and_a_builtin_is():
    from microdl.optim import _cpu

    def on_disk(kernel):
        return type(kernel._cache).__name__ != "NullCache"

    assert not on_disk(_cpu.kernels_for(_class(good)).parallel)
    assert not on_disk(_cpu.kernels_for(_class(good)).serial)
    assert on_disk(_cpu.kernels_for(SGD).parallel) and on_disk(_cpu.kernels_for(SGD).serial)


def test_kernels_are_built_once_per_rule():
    from microdl.optim import _cpu

    first = _cpu.kernels_for(Adam)
    assert _cpu.kernels_for(microdl.optim.AdamW) is first  # the same rule and flags: the same kernels
    assert _cpu.kernels_for(SGD) is _cpu.kernels_for(microdl.optim.GD)


def test_a_builtin_kernel_is_named_by_what_it_inlines(tmp_path, monkeypatch):
    # an edit to the rule's file gives the kernel a new name, so that Numba's disk cache (which checks only the
    # file that defines the loop) cannot hand back the kernel compiled before the edit
    from microdl.optim import _cpu, _elementwise

    rule_file = tmp_path / "rules_copy.py"
    source = Path(inspect.getfile(rules)).read_text(encoding="utf-8")
    rule_file.write_text(source, encoding="utf-8")
    monkeypatch.setattr(inspect, "getfile", lambda fn: str(rule_file))
    at = _elementwise.element_update(rules.sgd, rules.SGDScalars, ("b",))
    before = _cpu._fingerprint(rules.sgd, at.__source__)
    rule_file.write_text(source.replace("theta = theta - s.lr * g", "theta = theta + s.lr * g"), encoding="utf-8")
    assert _cpu._fingerprint(rules.sgd, at.__source__) != before


def test_the_generated_update_is_readable():
    from microdl.optim import _elementwise

    at = _elementwise.element_update(rules.adam, rules.AdamScalars, ("m", "v", "v_max"))
    assert at.__source__.splitlines()[0] == "def adam_at(i, theta, g, h, m_, v_, v_max_):"
    assert "        v_max_[i] = v_max_new\n" in at.__source__


def test_a_builtin_kernel_has_the_same_name_in_every_process():
    # the name is the disk cache's key: a name that changed with the hash seed would recompile every time
    import subprocess
    import sys

    code = ("import numpy as np; from microdl.optim import Adam; "
            "print(Adam(np.zeros(2))._kernels.serial.py_func.__qualname__)")
    names = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(names) == 1, names


def test_a_rule_with_too_many_state_buffers_is_refused(scratch_name):
    from microdl.optim._elementwise import MAX_STATE

    cls = _class(good, state=tuple(f"b{k}" for k in range(MAX_STATE + 1)))
    with pytest.raises(TypeError, match=f"at most {MAX_STATE}"):
        register_optimizer(scratch_name, cls)


# -- a host function that says it takes an array of step counts (NOTE [scalars of many steps]) --------------------
def sqrt_by_math(dtype: np.dtype, t: int, lr: float, beta: float) -> StepScalars:
    f = dtype.type
    return StepScalars(f(lr / math.sqrt(t)), f(1.0 - beta), f(beta))


def power_by_numpy(dtype: np.dtype, t: int, lr: float, beta: float) -> StepScalars:
    f = dtype.type
    return StepScalars(f(lr / (1.0 - np.power(0.999, t))), f(1.0 - beta), f(beta))  # SVML's pow on AVX-512


def power_by_rules(dtype: np.dtype, t: int, lr: float, beta: float) -> StepScalars:
    f = dtype.type
    return StepScalars(f(lr / (1.0 - rules.power(0.999, t))), f(1.0 - beta), f(beta))


def _arrays_class(host, says=True):
    cls = _class(good, host)
    cls.scalars_take_arrays = says
    return cls


def test_a_host_function_that_says_it_takes_arrays_and_does_not_is_refused(scratch_name):
    with pytest.raises(TypeError, match=r"scalars_take_arrays is True, but its host function fails for an array of "
                                        r"step counts .*use np\.sqrt for math\.sqrt"):
        register_optimizer(scratch_name, _arrays_class(sqrt_by_math))
    assert scratch_name not in OPTIMIZERS
    register_optimizer(scratch_name, _arrays_class(sqrt_by_math, says=False))  # called once per step: fine


def test_a_host_function_whose_arrays_round_otherwise_is_refused_or_registered_as_the_bits_say(scratch_name):
    """np.power over an array may round otherwise than Python's ** (NumPy's SVML power on AVX-512): registration
    compares the bits, and refuses the class only where they differ on this machine; rules.power always agrees."""
    steps = np.asarray(contract.CHECKED_STEPS)
    numpy_agrees = all(np.power(0.999, steps)[k] == 0.999 ** int(t) for k, t in enumerate(steps))
    if numpy_agrees:
        register_optimizer(scratch_name, _arrays_class(power_by_numpy))
        unregister_optimizer(scratch_name)
    else:
        with pytest.raises(TypeError, match=r"differ from those of each step alone at t = \d+ \(float\d\d\); raise "
                                            r"to the power t with microdl.optim.rules.power"):
            register_optimizer(scratch_name, _arrays_class(power_by_numpy))
    register_optimizer(scratch_name, _arrays_class(power_by_rules))
    opt = OPTIMIZERS[scratch_name](np.zeros(3), lr=0.1)
    opt.t = 41
    rows = opt._scalar_rows(5)
    for k in range(5):
        opt.t = 42 + k
        np.testing.assert_array_equal(rows[k], np.array(opt._scalars(), dtype=np.float64))


def test_a_subclass_with_its_own_host_function_makes_no_claim_for_it():
    """scalars_take_arrays is a claim about one host function: a subclass that brings its own (scalars or
    _scalars) does not inherit it, unless it makes it again; one that keeps its parent's host function does."""
    class OwnHost(Adam):
        scalars = staticmethod(rules.adam_scalars)

    class OwnScalars(SGD):
        def _scalars(self):
            return super()._scalars()

    class Claims(SGD):
        scalars_take_arrays = True

        def _scalars(self):
            return super()._scalars()

    assert not OwnHost.scalars_take_arrays and not OwnScalars.scalars_take_arrays
    assert Claims.scalars_take_arrays
    assert OPTIMIZERS["adamw"].scalars_take_arrays and OPTIMIZERS["gd"].scalars_take_arrays
