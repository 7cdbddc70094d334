"""microdl.optim.rules: every optimizer and option, on the NumPy and CPU backends, against the naive oracle;
first steps in closed form; and the per-step scalars beside each rule.

The oracle (``tests/optim/naive.py``) always runs in float64 on the same initial parameters and gradients as
the optimizer (rounded to the optimizer's dtype first), so float32 runs are compared with float32 rounding as
the only difference.
"""

import ast
import inspect
import math
import textwrap
import typing
from functools import cache

import numpy as np
import pytest

from microdl.optim import OPTIMIZERS, rules
from tests.optim.naive import CASES, ORACLES, make_problem
from tests.optim.registry_cases import BUILTIN

BACKENDS = ["numpy", "cpu"]
DTYPES = [np.float64, np.float32]
STEPS = 50

# float64: the oracle and the rules evaluate the same formulas in a different order (torch's rearranged
# bias corrections, products grouped differently), so they differ by a few ulp per step. Over 50 steps of
# O(1) parameters that is far below 1e-12 relative; the tiny absolute floor covers the few elements whose
# trajectory passes close to 0, where a relative bound means nothing (1e-14 is still ~50 ulp of O(1)).
# float32: each of the ~10 roundings per step costs ~6e-8 relative; 50 steps give at most a few 1e-6.
TOLERANCE = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 2e-5, "atol": 2e-6}}


@cache
def _problem(dtype):
    theta0, grads = make_problem(n=37, steps=STEPS, seed=0)
    return theta0.astype(dtype), grads.astype(dtype)


@cache
def _oracle(case_id, dtype):
    _, name, hyper = next(c for c in CASES if c[0] == case_id)
    theta0, grads = _problem(dtype)
    return ORACLES[name](theta0, grads, **hyper)  # float64 arithmetic on the dtype-rounded inputs


def _run(name, hyper, backend, dtype, steps=STEPS):
    theta0, grads = _problem(dtype)
    params = theta0.copy()
    opt = OPTIMIZERS[name](params, backend=backend, **hyper)
    history = np.empty((steps, params.size))
    for t in range(steps):
        opt.step(grads[t].copy())
        history[t] = params
    assert opt.params is params and opt.t == steps
    return history, opt


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=[c[0] for c in CASES])
def test_matches_naive_oracle(case_id, name, hyper, backend, dtype):
    history, opt = _run(name, hyper, backend, dtype)
    expected_history, expected_state = _oracle(case_id, dtype)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(history, expected_history, **tol)
    assert set(opt.state) == set(expected_state), "state buffers are named after the math symbols"
    for key, expected in expected_state.items():
        assert opt.state[key].dtype == dtype
        np.testing.assert_allclose(opt.state[key], expected, **tol, err_msg=f"state {key!r}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=[c[0] for c in CASES])
def test_numpy_and_cpu_backends_agree(case_id, name, hyper, dtype):
    # Both apply the same rule in the same order, so they agree to rounding, closer than either to the oracle.
    reference, _ = _run(name, hyper, "numpy", dtype)
    compiled, _ = _run(name, hyper, "cpu", dtype)
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(compiled, reference, rtol=rtol, atol=rtol)


def test_oracle_is_not_trivially_satisfied():
    # The trajectories move by O(1) and differ between options, so matching them means something.
    theta0, _ = _problem(np.float64)
    finals = {}
    for case_id, _, _ in CASES:
        history, _ = _oracle(case_id, np.float64)
        assert np.all(np.isfinite(history))
        assert np.max(np.abs(history[-1] - theta0)) > 0.005, case_id
        finals[case_id] = history[-1]
    for case_id, final in finals.items():
        others = [other for other, f in finals.items() if other != case_id and np.allclose(f, final, rtol=1e-6)]
        assert others in ([], ["sgd"], ["gd"]), f"{case_id} has the same trajectory as {others}"


# -- first steps in closed form ---------------------------------------------------------------------------
# One step from theta = 0 with gradients far above eps; the closed forms are those torch's docs imply.
def _first_step(name, hyper, backend, dtype):
    g = np.array([3.0, -1.0, 1.5, -7.0, 2.0, -1.25, 10.0], dtype=dtype)
    theta = np.zeros(g.size, dtype=dtype)
    OPTIMIZERS[name](theta, backend=backend, **hyper).step(g)
    return theta.astype(np.float64), g.astype(np.float64)


FIRST_STEP = [
    # (id, optimizer, hyperparameters, expected step as a function of g, rtol from the neglected eps)
    ("sgd", "sgd", {"lr": 0.1}, lambda g: -0.1 * g, 0),
    ("sgd-momentum", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, lambda g: -0.1 * g, 0),
    ("sgd-nesterov", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, lambda g: -0.1 * 1.9 * g, 0),
    ("gd", "gd", {"lr": 0.1}, lambda g: -0.1 * g, 0),
    ("adagrad", "adagrad", {"lr": 0.1}, lambda g: -0.1 * np.sign(g), 1e-9),
    ("adagrad-initial_accumulator", "adagrad", {"lr": 0.1, "initial_accumulator_value": 3.0},
     lambda g: -0.1 * g / np.sqrt(3.0 + g**2), 1e-9),
    ("rmsprop", "rmsprop", {"lr": 0.01}, lambda g: -10 * 0.01 * np.sign(g), 1e-6),
    ("rmsprop-centered", "rmsprop", {"lr": 0.01, "centered": True},
     lambda g: -0.01 / np.sqrt(0.01 * 0.99) * np.sign(g), 1e-6),
    ("adadelta", "adadelta", {}, lambda g: -np.sqrt(1e-6 / (1 - 0.9)) * np.sign(g), 1e-4),
    ("adadelta-lr", "adadelta", {"lr": 0.5, "rho": 0.5}, lambda g: -0.5 * np.sqrt(1e-6 / 0.5) * np.sign(g), 1e-5),
    ("adam", "adam", {"lr": 0.01}, lambda g: -0.01 * np.sign(g), 1e-7),
    ("adam-amsgrad", "adam", {"lr": 0.01, "amsgrad": True}, lambda g: -0.01 * np.sign(g), 1e-7),
    ("adam-maximize", "adam", {"lr": 0.01, "maximize": True}, lambda g: 0.01 * np.sign(g), 1e-7),
    # scikit-learn's placement: γ √(1 − β₂)/(1 − β₁) · (1 − β₁) g / (√(1 − β₂) |g| + ε) = γ g / (|g| + ε/√(1 − β₂))
    ("adam-eps_on-v", "adam", {"lr": 0.01, "eps": 0.1, "eps_on": "v"},
     lambda g: -0.01 * g / (np.abs(g) + 0.1 / np.sqrt(1 - 0.999)), 1e-7),
    ("adamw", "adamw", {"lr": 0.01}, lambda g: -0.01 * np.sign(g), 1e-7),  # decay of theta = 0 is 0
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case_id", "name", "hyper", "closed_form", "rtol"), FIRST_STEP,
                         ids=[c[0] for c in FIRST_STEP])
def test_first_step_closed_form(case_id, name, hyper, closed_form, rtol, backend, dtype):
    theta, g = _first_step(name, hyper, backend, dtype)
    rtol = max(rtol, 1e-15 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(theta, closed_form(g), rtol=rtol, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_first_step_is_exact(backend):
    g = np.array([0.5, -2.0, 3.0])
    theta = np.array([1.0, 1.0, 1.0])
    from microdl.optim import SGD

    SGD(theta, backend=backend, lr=0.25).step(g)  # powers of two: no rounding anywhere
    np.testing.assert_array_equal(theta, [0.875, 1.5, 0.25])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adamw_decays_before_the_moments(backend):
    # With g = 0 everywhere Adam's step is 0/(0 + eps) = 0, so only AdamW's decoupled decay moves theta,
    # by the factor (1 - lr * weight_decay) per step; coupled Adam turns the same decay into an Adam step.
    from microdl.optim import Adam, AdamW

    theta = np.array([2.0, -4.0])
    opt = AdamW(theta, backend=backend, lr=0.1, weight_decay=0.5, eps=1e-8)
    opt.step(np.zeros(2))
    opt.step(np.zeros(2))
    np.testing.assert_allclose(theta, np.array([2.0, -4.0]) * 0.95**2, rtol=1e-15)
    theta = np.array([2.0, -4.0])
    Adam(theta, backend=backend, lr=0.1, weight_decay=0.5).step(np.zeros(2))
    np.testing.assert_allclose(theta, [2.0 - 0.1, -4.0 + 0.1], rtol=1e-7)  # -lr * sign(weight_decay * theta)


# -- the per-step scalars beside each rule ----------------------------------------------------------------
RULES = {  # rule: (its NamedTuple, its host function, hyperparameters with every option on)
    "sgd": (rules.SGDScalars, rules.sgd_scalars, {"lr": 0.1, "momentum": 0.9, "dampening": 0.25,
                                                   "weight_decay": 0.1, "nesterov": False, "maximize": True}),
    "adagrad": (rules.AdagradScalars, rules.adagrad_scalars, {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1,
                                                               "initial_accumulator_value": 0.5, "eps": 1e-3,
                                                               "maximize": True}),
    "rmsprop": (rules.RMSpropScalars, rules.rmsprop_scalars, {"lr": 0.1, "alpha": 0.9, "eps": 1e-3,
                                                               "weight_decay": 0.1, "momentum": 0.5,
                                                               "centered": True, "maximize": True}),
    "adadelta": (rules.AdadeltaScalars, rules.adadelta_scalars, {"lr": 0.5, "rho": 0.8, "eps": 1e-3,
                                                                  "weight_decay": 0.1, "maximize": True}),
    "adam": (rules.AdamScalars, rules.adam_scalars, {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-3,
                                                      "weight_decay": 0.1, "amsgrad": True, "maximize": True,
                                                      "eps_on": "v", "decoupled": True}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("rule", list(RULES))
def test_scalars_are_typed_in_the_parameters_dtype(rule, dtype):
    # NOTE [typed scalars]: every number arrives rounded to the parameters' dtype, every flag as a bool.
    cls, host, hyper = RULES[rule]
    s = host(np.dtype(dtype), 3, **hyper)
    assert type(s) is cls
    for field, value in zip(cls._fields, s):
        if typing.get_type_hints(cls)[field] is bool:
            assert type(value) is bool, field
        else:
            assert type(value) is dtype, field


def _by_hand(t=3):
    """Every field of every rule's scalars at step 3, worked out here from the formulas beside the rules, with
    hyperparameters that all differ, so that two swapped fields cannot go unnoticed."""
    return {
        "sgd": ({"lr": 0.5, "momentum": 0.25, "dampening": 0.125, "weight_decay": 2.0, "nesterov": True,
                 "maximize": False},
                {"lr": 0.5, "momentum": 0.25, "one_minus_dampening": 0.875, "weight_decay": 2.0, "nesterov": True,
                 "maximize": False, "first_step": False}),
        "adagrad": ({"lr": 0.5, "lr_decay": 0.25, "weight_decay": 2.0, "initial_accumulator_value": 4.0,
                     "eps": 0.125, "maximize": True},
                    {"decayed_lr": 0.5 / (1 + 2 * 0.25), "weight_decay": 2.0, "eps": 0.125, "maximize": True}),
        "rmsprop": ({"lr": 0.5, "alpha": 0.75, "eps": 0.125, "weight_decay": 2.0, "momentum": 0.25, "centered": True,
                     "maximize": False},
                    {"lr": 0.5, "alpha": 0.75, "one_minus_alpha": 0.25, "eps": 0.125, "weight_decay": 2.0,
                     "momentum": 0.25, "centered": True, "maximize": False}),
        "adadelta": ({"lr": 0.5, "rho": 0.75, "eps": 0.125, "weight_decay": 2.0, "maximize": True},
                     {"lr": 0.5, "rho": 0.75, "one_minus_rho": 0.25, "eps": 0.125, "weight_decay": 2.0,
                      "maximize": True}),
        "adam": ({"lr": 0.5, "betas": (0.5, 0.75), "eps": 0.125, "weight_decay": 0.25, "amsgrad": True,
                  "maximize": False, "eps_on": "v_hat", "decoupled": True},
                 {"beta1": 0.5, "one_minus_beta1": 0.5, "beta2": 0.75, "one_minus_beta2": 0.25, "eps": 0.125,
                  "weight_decay": 0.25, "decay_factor": 1 - 0.5 * 0.25, "step_size": 0.5 / (1 - 0.5**3),
                  "bias_correction2_sqrt": math.sqrt(1 - 0.75**3), "decoupled": True, "amsgrad": True,
                  "maximize": False}),
    }


@pytest.mark.parametrize("rule", list(RULES))
def test_every_scalar_by_name(rule):
    hyper, expected = _by_hand()[rule]
    s = RULES[rule][1](np.dtype(np.float64), 3, **hyper)
    assert s._asdict() == pytest.approx(expected, rel=1e-15)


def test_the_placement_of_eps_changes_only_eps():
    hyper, _ = _by_hand()["adam"]
    v_hat = rules.adam_scalars(np.dtype(np.float64), 3, **hyper)
    v = rules.adam_scalars(np.dtype(np.float64), 3, **{**hyper, "eps_on": "v"})
    assert v.eps == 0.125 / math.sqrt(1 - 0.75**3)  # NOTE [eps placement]
    assert v._replace(eps=v_hat.eps) == v_hat


def test_sgd_knows_its_first_step():
    hyper, _ = _by_hand()["sgd"]
    assert [rules.sgd_scalars(np.dtype(np.float32), t, **hyper).first_step for t in (1, 2, 3)] == [True, False, False]


def test_every_builtin_rule_has_its_hand_worked_scalars():
    assert set(RULES) == {cls.rule for _, cls in BUILTIN}
    assert all(RULES[cls.rule][1] is cls.scalars for _, cls in BUILTIN)


@pytest.mark.parametrize("name", [name for name, _ in BUILTIN])
def test_the_optimizers_pass_their_hyperparameters_in_the_host_functions_order(name):
    # Optimizer._scalars passes the hyperparameters positionally, in declaration order (the fastest call)
    cls = OPTIMIZERS[name]
    host = cls.scalars
    parameters = list(inspect.signature(host).parameters)
    assert parameters[:2] == ["dtype", "t"]
    assert parameters[2:] == list(cls._hyperparameter_specs) + (["decoupled"] if cls.rule == "adam" else [])


def _rule_tree(rule):
    return ast.parse(textwrap.dedent(inspect.getsource(getattr(rules, rule))))


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_reads_its_scalars_by_name_and_holds_no_literal(rule):
    tree = _rule_tree(rule)
    function = tree.body[0]
    body = function.body[1:]  # after the docstring
    # NOTE [typed scalars]: a numeric literal in the arithmetic would be typed float64 and promote a float32
    # kernel; the only literal allowed is the 0 of a test such as ``s.momentum != 0``, which is no arithmetic.
    tests_against_zero = {id(c) for stmt in body for node in ast.walk(stmt) if isinstance(node, ast.Compare)
                          for c in node.comparators if isinstance(c, ast.Constant) and c.value == 0}
    literals = [node.value for stmt in body for node in ast.walk(stmt)
                if isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool) and id(node) not in tests_against_zero]
    assert literals == [], f"numeric literals in rules.{rule}: {literals}"
    # the rule reads the NamedTuple s by field name, every field and nothing else, and never unpacks it
    scalars = function.args.args[-1].arg
    nodes = [node for stmt in body for node in ast.walk(stmt)]
    reads = [node.attr for node in nodes
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == scalars]
    uses = [node for node in nodes if isinstance(node, ast.Name) and node.id == scalars]
    assert set(reads) == set(RULES[rule][0]._fields)
    assert len(uses) == len(reads), f"{scalars} is used only as {scalars}.<field>"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=[c[0] for c in CASES])
def test_the_scalars_of_many_steps_are_those_of_each_step_alone(case_id, name, hyper, dtype):
    """NOTE [scalars of many steps]: one call of a built-in host function with an array of step counts gives, bit
    for bit, what each step's own call gives (the compiled runs read the one, Optimizer.step the other), over the
    first 3,000 steps and late ones, where β**t is near its limits."""
    opt = OPTIMIZERS[name](np.zeros(3, dtype=dtype), backend="numpy", **hyper)
    assert opt.scalars_take_arrays
    steps = np.concatenate([np.arange(1, 3001), [10**5, 10**6 + 7, 2**31 + 1]])
    rows = opt._scalars_at(steps)
    alone = np.empty_like(rows)
    for k, t in enumerate(steps.tolist()):
        opt.t = t
        alone[k] = opt._scalars()
    np.testing.assert_array_equal(rows, alone)
    assert rows.dtype == np.float64 and rows.shape == (steps.size, len(opt._scalars()))
    opt.t = 7
    np.testing.assert_array_equal(opt._scalar_rows(3), alone[7:10])  # steps t + 1 .. t + 3, t left as it was
    assert opt.t == 7
