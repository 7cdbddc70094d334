"""microdl.optim.optimizers: the classes against torch.optim and scikit-learn, their checks, defaults and
docstrings, and convergence on known problems."""

import inspect
import math
import re

import numpy as np
import pytest

from microdl.optim import (
    LBFGS,
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Constant,
    ExponentialLR,
    Optimizer,
    RMSprop,
    make_optimizer,
    rules,
)
from microdl.optim.base import rule_math
from tests.optim.naive import CASES

# -- against torch.optim ----------------------------------------------------------------------------------
TORCH_CLASSES = {"gd": "SGD", "sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta",
                 "adam": "Adam", "adamw": "AdamW"}
TORCH_CASES = [c for c in CASES if "eps_on" not in c[2]]  # torch has only its own placement of eps
TORCH_STEPS = 30


def _torch_trajectory(torch, name, hyper, theta0, grads):
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, TORCH_CLASSES[name])([p], **hyper)
    history = np.empty(grads.shape)
    for t, g in enumerate(grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        history[t] = p.detach().numpy()
    return history


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(("case_id", "name", "hyper"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_trajectory_matches_torch_optim(case_id, name, hyper, backend, problem, torch):
    theta0, grads = problem(steps=TORCH_STEPS, seed=2)
    expected = _torch_trajectory(torch, name, hyper, theta0, grads)
    theta = theta0.copy()
    opt = OPTIMIZERS[name](theta, backend=backend, **hyper)
    history = np.empty(grads.shape)
    for t, g in enumerate(grads):
        opt.step(g)
        history[t] = theta
    # torch evaluates the same documented formulas (in its own order): a few ulp per step apart. The absolute
    # floor is for elements whose trajectory crosses 0 (see test_rules.py).
    np.testing.assert_allclose(history, expected, rtol=1e-10, atol=1e-13)


def test_defaults_match_torch(problem, torch):
    # Same names and same defaults: constructed with no hyperparameters, both take the same steps.
    theta0, grads = problem(n=5, steps=10, seed=3)
    for name in TORCH_CLASSES:
        theta = theta0.copy()
        opt = OPTIMIZERS[name](theta, backend="numpy")
        for g in grads:
            opt.step(g)
        np.testing.assert_allclose(theta, _torch_trajectory(torch, name, {}, theta0, grads)[-1], rtol=1e-10,
                                   err_msg=name)


# -- Adam's eps_on="v" against scikit-learn (NOTE [eps placement]) ------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(("lr", "betas", "eps"), [(1e-3, (0.9, 0.999), 1e-8), (0.01, (0.8, 0.99), 1e-2)],
                         ids=["defaults", "large-eps"])
def test_eps_on_v_is_scikit_learns_adam(lr, betas, eps, backend, problem):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    theta0, grads = problem(steps=200, seed=5)
    ours = theta0.copy()
    opt = Adam(ours, backend=backend, lr=lr, betas=betas, eps=eps, eps_on="v")
    theirs = theta0.copy()
    sk = AdamOptimizer([theirs], learning_rate_init=lr, beta_1=betas[0], beta_2=betas[1], epsilon=eps)
    history, expected = np.empty(grads.shape), np.empty(grads.shape)
    for t, g in enumerate(grads):
        opt.step(g)
        sk.update_params([theirs], [g])
        history[t], expected[t] = ours, theirs
    # the same numbers, evaluated in another order: a few ulp per step
    np.testing.assert_allclose(history, expected, rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(ours - theta0)) > 10 * lr  # the parameters did travel

    # ... and the placement matters: torch's placement (the default) gives another trajectory
    other = theta0.copy()
    opt = Adam(other, backend=backend, lr=lr, betas=betas, eps=eps)
    for g in grads:
        opt.step(g)
    assert np.max(np.abs(other - ours)) > 1e-9


def test_eps_on_v_hat_is_the_default_bit_for_bit(problem):
    theta0, grads = problem(steps=20, seed=5)
    finals = []
    for hyper in ({}, {"eps_on": "v_hat"}):
        theta = theta0.copy()
        opt = Adam(theta, backend="cpu", lr=0.01, **hyper)
        for g in grads:
            opt.step(g)
        finals.append(theta)
    np.testing.assert_array_equal(finals[0], finals[1])


# -- checks at construction -------------------------------------------------------------------------------
INVALID = [
    (SGD, {"lr": -0.1}, ValueError, r"lr must be a finite number in \[0"),
    (SGD, {"lr": math.nan}, ValueError, "lr"),
    (SGD, {"lr": math.inf}, ValueError, "lr"),
    (SGD, {"lr": True}, TypeError, "lr must be a real number"),
    (SGD, {"lr": "0.1"}, TypeError, "lr must be a real number"),
    (SGD, {"momentum": -0.5}, ValueError, "momentum"),
    (SGD, {"dampening": 1.5}, ValueError, "dampening"),
    (SGD, {"weight_decay": -1e-4}, ValueError, "weight_decay"),
    (SGD, {"nesterov": True}, ValueError, "nesterov=True requires momentum > 0"),
    (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError, "dampening = 0"),
    (SGD, {"nesterov": 1, "momentum": 0.9}, TypeError, "nesterov must be True or False"),
    (SGD, {"maximize": "yes"}, TypeError, "maximize"),
    (Adagrad, {"lr_decay": -0.1}, ValueError, "lr_decay"),
    (Adagrad, {"initial_accumulator_value": -1.0}, ValueError, "initial_accumulator_value"),
    (Adagrad, {"eps": -1e-10}, ValueError, "eps"),
    (RMSprop, {"alpha": 1.0}, ValueError, r"alpha must be a finite number in \[0, 1\)"),
    (RMSprop, {"alpha": -0.1}, ValueError, "alpha"),
    (RMSprop, {"eps": -1e-8}, ValueError, "eps"),
    (RMSprop, {"momentum": -0.9}, ValueError, "momentum"),
    (RMSprop, {"centered": 1}, TypeError, "centered"),
    (Adadelta, {"rho": 1.1}, ValueError, r"rho must be a finite number in \[0, 1\]"),
    (Adadelta, {"rho": -0.1}, ValueError, "rho"),
    (Adadelta, {"eps": -1.0}, ValueError, "eps"),
    (Adadelta, {"lr": -1.0}, ValueError, "lr"),
    (Adam, {"betas": (1.0, 0.999)}, ValueError, r"betas\[0\]"),
    (Adam, {"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]"),
    (Adam, {"betas": (-0.1, 0.999)}, ValueError, r"betas\[0\]"),
    (Adam, {"betas": (0.9,)}, ValueError, "betas must be a pair"),
    (Adam, {"betas": 0.9}, ValueError, "betas must be a pair"),
    (Adam, {"betas": (True, 0.999)}, TypeError, r"betas\[0\]"),
    (Adam, {"eps": -1e-8}, ValueError, "eps"),
    (Adam, {"weight_decay": -0.1}, ValueError, "weight_decay"),
    (Adam, {"amsgrad": "no"}, TypeError, "amsgrad"),
    (Adam, {"eps_on": "V"}, ValueError, "unknown eps_on 'V'; choose one of v_hat, v"),
    (Adam, {"eps_on": None}, ValueError, "eps_on"),
    (AdamW, {"weight_decay": -0.1}, ValueError, "weight_decay"),
]


INVALID_IDS = [f"{cls.__name__}-" + ",".join(f"{k}={v!r}" for k, v in hyper.items()) for cls, hyper, _, _ in INVALID]


@pytest.mark.parametrize(("cls", "hyper", "error", "match"), INVALID, ids=INVALID_IDS)
def test_invalid_hyperparameters_raise_at_construction(cls, hyper, error, match):
    with pytest.raises(error, match=match):
        cls(np.zeros(3), backend="numpy", **hyper)


def test_setting_an_invalid_lr_later_raises():
    opt = Adam(np.zeros(3), backend="numpy")
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.lr == 1e-3


def test_make_optimizer():
    theta = np.zeros(3)
    opt = make_optimizer("adamw", theta, backend="numpy", lr=0.1)
    assert isinstance(opt, AdamW) and opt.lr == 0.1 and opt.params is theta
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        make_optimizer("adamx", theta)
    with pytest.raises(TypeError, match="learning_rate"):
        make_optimizer("adam", theta, learning_rate=0.1)  # misspelt hyperparameters are not swallowed


def test_lbfgs_run_leaves_the_params_its_caller_restored_when_the_caller_stops_it():
    """fit's divergence handling restores an earlier iterate from ``on_iteration`` and stops the run; the
    minimiser's own last point must not then be written over it."""
    A = np.diag([1.0, 10.0, 100.0])
    theta = np.ones(3)
    grads = np.empty(3)

    def loss_and_grad():
        grads[...] = A @ theta
        return 0.5 * theta @ A @ theta, grads

    seen = []

    def on_iteration(loss):
        seen.append(theta.copy())
        if len(seen) == 3:
            theta[...] = seen[0]  # as fit does: back to an earlier iterate, and stop
            return True
        return False

    result = LBFGS(theta, tol=0.0).run(loss_and_grad, 50, on_iteration)
    assert result.nit == 3 and not np.array_equal(seen[2], seen[0])
    np.testing.assert_array_equal(theta, seen[0])
    # run to the end, it leaves the minimiser's final iterate
    theta[...] = 1.0
    result = LBFGS(theta).run(loss_and_grad, 50, lambda loss: False)
    np.testing.assert_array_equal(theta, result.x)


#: The elementwise optimizers: the registry's Optimizer subclasses, each with a learning rate.
ELEMENTWISE = [name for name, cls in OPTIMIZERS.items() if issubclass(cls, Optimizer)]


def test_lbfgs_is_registered_after_the_elementwise_optimizers():
    assert list(OPTIMIZERS) == ["gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "lbfgs"]
    assert ELEMENTWISE == list(OPTIMIZERS)[:7] and OPTIMIZERS["lbfgs"] is LBFGS
    theta = np.zeros(3)
    opt = make_optimizer("lbfgs", theta, backend="cpu", max_fun=50, tol=1e-6, history_size=5)
    assert isinstance(opt, LBFGS) and opt.params is theta and opt.lr is None
    assert opt.hyperparameters == {"max_fun": 50, "tol": 1e-6, "history_size": 5}
    assert make_optimizer("lbfgs", theta).hyperparameters == LBFGS(theta).hyperparameters
    with pytest.raises(TypeError, match=r"lbfgs takes no hyperparameter 'lr' \(L-BFGS has no learning rate"):
        make_optimizer("lbfgs", theta, lr=0.1)
    with pytest.raises(TypeError, match="'momentum', 'maxiter'; it takes max_fun, tol, history_size"):
        make_optimizer("lbfgs", theta, momentum=0.9, maxiter=3)
    with pytest.raises(ValueError, match="CPU only"):
        make_optimizer("lbfgs", theta, backend="cuda")
    with pytest.raises(ValueError, match="history_size"):
        make_optimizer("lbfgs", theta, history_size=0)


# -- defaults, AdamW as a variant of Adam, docstrings -----------------------------------------------------
TORCH_DEFAULT_LR = {"gd": 1e-3, "sgd": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-2, "adadelta": 1.0, "adam": 1e-3,
                    "adamw": 1e-3}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_default_lr_is_in_the_signature(name):
    # microdl.experiments.runs.default_lr reads it from here
    assert inspect.signature(OPTIMIZERS[name]).parameters["lr"].default == TORCH_DEFAULT_LR[name]
    assert OPTIMIZERS[name](np.zeros(2), backend="numpy").lr == TORCH_DEFAULT_LR[name]


def test_adamw_is_adam_with_decoupled_decay_and_its_own_default():
    adam, adamw = inspect.signature(Adam).parameters, inspect.signature(AdamW).parameters
    assert list(adam) == list(adamw)
    assert {k: p.default for k, p in adam.items() if k != "weight_decay"} == {
        k: p.default for k, p in adamw.items() if k != "weight_decay"}
    assert (adam["weight_decay"].default, adamw["weight_decay"].default) == (0.0, 1e-2)
    assert AdamW(np.zeros(2), backend="numpy").weight_decay == 1e-2
    assert Adam(np.zeros(2), backend="numpy").weight_decay == 0.0
    opt = AdamW(np.zeros(2), lr=0.05, weight_decay=0.3)
    assert isinstance(opt, Adam) and (opt.lr, opt.weight_decay, opt.decoupled) == (0.05, 0.3, True)
    with pytest.raises(TypeError, match="learning_rate"):
        AdamW(np.zeros(2), learning_rate=0.1)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_docstrings_are_composed(name):
    cls = OPTIMIZERS[name]
    doc = cls.__doc__
    assert not re.search(r"\{\w+\}", doc), "a placeholder was left unfilled"
    assert f"``torch.optim.{TORCH_CLASSES[name]}``" in doc
    if name != "gd":  # the documented default rate is the signature's
        (documented,) = re.findall(r"^lr : float, default (\S+)$", doc, re.MULTILINE)
        assert float(documented) == TORCH_DEFAULT_LR[name]
    if name in ("gd", "adamw"):  # GD points to SGD's docstring; AdamW shows only its change of the block
        return
    block = rule_math(getattr(rules, cls.rule))
    assert "θ ← " in block and block in doc, "the class shows its rule's update block"
    for parameter in inspect.signature(cls).parameters:
        assert re.search(rf"^{parameter} : ", doc, re.MULTILINE), f"{parameter} is documented"


# -- convergence ------------------------------------------------------------------------------------------
QUAD_A = np.array([0.5, 1.0, 2.0, 4.0, 1.5, 3.0, 0.7])  # curvatures: condition number 8
QUAD_C = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0, 2.5])  # the minimum

QUADRATIC = [
    ("gd", {"lr": 0.2}, 200, 1e-6),
    ("sgd-momentum", {"lr": 0.05, "momentum": 0.9}, 300, 1e-5),
    ("sgd-nesterov", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, 200, 1e-5),
    ("adagrad", {"lr": 1.0}, 500, 1e-6),
    ("rmsprop", {"lr": 0.01}, 1000, 1e-6),
    ("rmsprop-centered", {"lr": 0.01, "centered": True}, 1000, 1e-6),
    ("adadelta", {"lr": 1.0, "eps": 1e-3}, 1000, 1e-6),
    ("adam", {"lr": 0.1}, 500, 1e-6),
    ("adam-amsgrad", {"lr": 0.1, "amsgrad": True}, 500, 1e-6),
    ("adam-eps_on_v", {"lr": 0.1, "eps_on": "v"}, 500, 1e-6),
    ("adamw", {"lr": 0.1, "weight_decay": 0.0}, 500, 1e-6),
]


@pytest.mark.parametrize(("case_id", "hyper", "steps", "tol"), QUADRATIC, ids=[q[0] for q in QUADRATIC])
def test_converges_on_a_quadratic(case_id, hyper, steps, tol):
    # f(x) = ½ Σ a_i (x_i − c_i)², from x = 0
    x = np.zeros(QUAD_A.size)
    opt = OPTIMIZERS[case_id.split("-")[0]](x, backend="cpu", **hyper)
    g = np.empty_like(x)
    for _ in range(steps):
        np.multiply(QUAD_A, x - QUAD_C, out=g)
        opt.step(g)
    assert np.max(np.abs(x - QUAD_C)) < tol


def _rosenbrock_grad(x, out):
    # f(x, y) = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1)
    out[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2)
    out[1] = 200 * (x[1] - x[0] ** 2)


ROSENBROCK = [
    # (id, optimizer, hyperparameters, steps, ExponentialLR gamma per 100 steps or None, tolerance)
    ("sgd-momentum", "sgd", {"lr": 1e-3, "momentum": 0.9}, 5000, None, 1e-6),
    ("adam", "adam", {"lr": 0.02}, 5000, None, 1e-4),
    ("rmsprop-momentum", "rmsprop", {"lr": 3e-4, "momentum": 0.9}, 5000, None, 1e-3),
    ("adagrad", "adagrad", {"lr": 0.5}, 10000, None, 1e-3),
    # AdaDelta's step settles at a size set by eps and circles the valley; a decaying scale brings it home.
    ("adadelta-exponential-lr", "adadelta", {"lr": 1.0}, 10000, 0.95, 1e-3),
]


@pytest.mark.parametrize(("case_id", "name", "hyper", "steps", "gamma", "tol"), ROSENBROCK,
                         ids=[r[0] for r in ROSENBROCK])
def test_converges_on_rosenbrock(case_id, name, hyper, steps, gamma, tol):
    x = np.array([-1.2, 1.0])  # the classic start
    opt = OPTIMIZERS[name](x, backend="cpu", **hyper)
    schedule, base_lr = (ExponentialLR(gamma) if gamma else Constant()), opt.lr
    g = np.empty(2)
    for k in range(steps):
        if k % 100 == 0:
            opt.lr = schedule.lr_at(k // 100, base_lr)
        _rosenbrock_grad(x, g)
        opt.step(g)
    assert np.max(np.abs(x - 1.0)) < tol
