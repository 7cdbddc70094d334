"""The optimizer interface: checkpoints, validation, compile-once, convergence, schedules, clipping, CUDA errors."""

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest

import microdl.optim as optim
from microdl._cuda_support import CudaUnavailableError, require_cuda, simulator_enabled
from microdl.optim import (
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Constant,
    CosineWithWarmup,
    ExponentialLR,
    InverseScaling,
    ReduceLROnPlateau,
    RMSprop,
    StepLR,
    clip_grad_norm,
    clip_grad_value,
    make_optimizer,
    make_schedule,
)
from tests.optim.naive import CASES, make_problem

CASE_IDS = [c[0] for c in CASES]


def _grads(steps, n=37, seed=1):
    return make_problem(n=n, steps=steps, seed=seed)


# -- checkpoints ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_exact(case_id, name, hyper):
    theta0, grads = _grads(7)
    opt = OPTIMIZERS[name](theta0.copy(), backend="cpu", **hyper)
    for g in grads:
        opt.step(g)
    sd = opt.state_dict()
    assert sd["optimizer"] == type(opt).__name__ and sd["t"] == 7
    assert sd["hyperparameters"] == opt.hyperparameters
    assert set(sd["state"]) == set(opt.state)
    for key, buf in opt.state.items():
        np.testing.assert_array_equal(sd["state"][key], buf)
        assert sd["state"][key] is not buf and not np.shares_memory(sd["state"][key], buf), "a copy, not a view"

    other = OPTIMIZERS[name](np.zeros_like(theta0), backend="cpu", **hyper)
    other.load_state_dict(sd)
    assert other.t == 7 and other.hyperparameters == opt.hyperparameters
    for key, buf in opt.state.items():
        np.testing.assert_array_equal(other.state[key], buf)
        assert not np.shares_memory(other.state[key], sd["state"][key])
    opt.step(grads[0])  # the saved dict does not follow the optimizer it came from
    for key in opt.state:
        np.testing.assert_array_equal(sd["state"][key], other.state[key])


@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=CASE_IDS)
def test_resuming_from_state_dict_is_bit_identical(case_id, name, hyper):
    theta0, grads = _grads(20)
    straight = theta0.copy()
    opt = OPTIMIZERS[name](straight, backend="cpu", **hyper)
    for g in grads:
        opt.step(g)

    first = theta0.copy()
    opt = OPTIMIZERS[name](first, backend="cpu", **hyper)
    for g in grads[:10]:
        opt.step(g)
    sd = opt.state_dict()
    del opt
    resumed = first.copy()  # a fresh optimizer on a fresh buffer, as after loading a checkpoint
    opt = OPTIMIZERS[name](resumed, backend="cpu", **hyper)
    opt.load_state_dict(sd)
    for g in grads[10:]:
        opt.step(g)
    np.testing.assert_array_equal(resumed, straight)


def test_resuming_without_the_state_would_differ():
    # The previous test can fail: restarting from the parameters alone (t = 0, empty moments) differs.
    theta0, grads = _grads(20)
    straight, restarted = theta0.copy(), theta0.copy()
    opt = Adam(straight, backend="cpu", lr=0.01)
    for g in grads:
        opt.step(g)
    opt = Adam(restarted, backend="cpu", lr=0.01)
    for g in grads[:10]:
        opt.step(g)
    opt = Adam(restarted, backend="cpu", lr=0.01)
    for g in grads[10:]:
        opt.step(g)
    assert np.max(np.abs(restarted - straight)) > 1e-3


def test_load_state_dict_adopts_saved_hyperparameters():
    theta = np.zeros(3)
    sd = SGD(theta.copy(), backend="numpy", lr=0.5, momentum=0.9).state_dict()
    opt = SGD(theta, backend="numpy", lr=0.1, momentum=0.3)
    opt.load_state_dict(sd)
    assert opt.lr == 0.5 and opt.momentum == 0.9


def _adam_state_dict(n=5, **hyper):
    opt = Adam(np.zeros(n), backend="numpy", **hyper)
    opt.step(np.ones(n))
    return opt.state_dict()


@pytest.mark.parametrize(
    ("make_target", "state_dict", "match"),
    [
        (lambda: AdamW(np.zeros(5), backend="numpy"), _adam_state_dict(), "'Adam', not 'AdamW'"),
        (lambda: SGD(np.zeros(5), backend="numpy", momentum=0.9), _adam_state_dict(), "'Adam', not 'SGD'"),
        (lambda: Adam(np.zeros(6), backend="numpy"), _adam_state_dict(5), "shape"),
        (lambda: Adam(np.zeros(5), backend="numpy", amsgrad=True), _adam_state_dict(), "v_max"),
        (lambda: Adam(np.zeros(5), backend="numpy"), _adam_state_dict(amsgrad=True), "v_max"),
        (lambda: SGD(np.zeros(5), backend="numpy"),
         SGD(np.zeros(5), backend="numpy", momentum=0.9).state_dict(), "options"),
        (lambda: RMSprop(np.zeros(5), backend="numpy", momentum=0.9),
         RMSprop(np.zeros(5), backend="numpy", centered=True).state_dict(), "g_avg"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "t": -1}, "non-negative"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "t": 1.5}, "non-negative"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "hyperparameters": {"lr": 0.1}}, "hyperparameters"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "hyperparameters": {**_adam_state_dict()["hyperparameters"], "lr": -1.0}}, "lr"),
    ],
    ids=["wrong-class-adamw", "wrong-class-sgd", "wrong-size", "amsgrad-missing", "amsgrad-extra",
         "momentum-differs", "centered-vs-momentum", "negative-t", "float-t", "missing-hyperparameters",
         "invalid-hyperparameter"],
)
def test_load_state_dict_rejects_mismatches(make_target, state_dict, match):
    target = make_target()
    before = (target.hyperparameters, target.t, {k: v.copy() for k, v in target.state.items()})
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state_dict)
    # a failed load changes nothing
    assert target.hyperparameters == before[0] and target.t == before[1]
    for key, buf in target.state.items():
        np.testing.assert_array_equal(buf, before[2][key])


# -- validation -------------------------------------------------------------------------------------------
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


@pytest.mark.parametrize(
    ("backend", "error", "match"),
    [("cpuu", ValueError, "backend must be one of 'numpy', 'cpu', 'cuda'; got 'cpuu'"),
     ("CPU", ValueError, "backend"), (None, TypeError, "backend must be a string")],
    ids=["typo", "upper-case", "none"],
)
def test_invalid_backend(backend, error, match):
    with pytest.raises(error, match=match):
        Adam(np.zeros(3), backend=backend)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [(np.zeros((3, 2)), ValueError, "params must be a flat 1-D buffer"),
     (np.zeros(3, dtype=np.int64), TypeError, "params must be float32 or float64"),
     (np.zeros(3, dtype=np.float16), TypeError, "params must be float32 or float64"),
     (np.zeros(6)[::2], ValueError, "params must be C-contiguous"),
     ([0.0, 1.0], TypeError, "params must be a NumPy array"),
     (np.broadcast_to(np.zeros(1), (3,)), ValueError, "params must be"),
     (np.frombuffer(b"\0" * 24), ValueError, "params must be writeable")],
    ids=["2d", "int", "float16", "strided", "list", "broadcast", "read-only"],
)
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_invalid_params(backend, params, error, match):
    with pytest.raises(error, match=match):
        SGD(params, backend=backend)


@pytest.mark.parametrize(
    ("grads", "error", "match"),
    [(np.zeros(4), ValueError, r"grads must have the shape of params \(3,\)"),
     (np.zeros((3, 1)), ValueError, "grads must be a flat 1-D buffer"),
     (np.zeros(3, dtype=np.float32), TypeError, "grads must have the dtype of params"),
     (np.zeros(3, dtype=np.int64), TypeError, "grads must be float32 or float64"),
     (np.zeros(6)[::2], ValueError, "grads must be C-contiguous"),
     ([0.0, 0.0, 0.0], TypeError, "grads must be a NumPy array")],
    ids=["wrong-length", "2d", "float32-for-float64", "int", "strided", "list"],
)
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_invalid_grads_at_step(backend, grads, error, match):
    theta = np.ones(3)
    opt = Adam(theta, backend=backend)
    with pytest.raises(error, match=match):
        opt.step(grads)
    assert opt.t == 0 and np.all(theta == 1.0), "a rejected step changes nothing"


def test_a_failed_step_does_not_count(monkeypatch):
    theta = np.ones(3)
    opt = Adam(theta, backend="numpy")

    class Failing:
        @staticmethod
        def apply(*args):
            raise RuntimeError("kernel failed")

    monkeypatch.setattr(opt, "_backend", Failing)
    with pytest.raises(RuntimeError, match="kernel failed"):
        opt.step(np.ones(3))
    assert opt.t == 0


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_read_only_grads_are_accepted(backend):
    grads = np.frombuffer(np.array([1.0, -2.0, 4.0]).tobytes())  # read-only: grads are never written
    theta = np.zeros(3)
    SGD(theta, backend=backend, lr=0.5).step(grads)
    np.testing.assert_array_equal(theta, [-0.5, 1.0, -2.0])


def test_make_optimizer():
    theta = np.zeros(3)
    opt = make_optimizer("adamw", theta, backend="numpy", lr=0.1)
    assert isinstance(opt, AdamW) and opt.lr == 0.1 and opt.params is theta
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        make_optimizer("adamx", theta)
    with pytest.raises(TypeError, match="learning_rate"):
        make_optimizer("adam", theta, learning_rate=0.1)  # misspelt hyperparameters are not swallowed


# -- compiled once ----------------------------------------------------------------------------------------
COMPILE_CASES = [("sgd", SGD, {"momentum": 0.9}), ("adagrad", Adagrad, {}), ("rmsprop", RMSprop, {"centered": True}),
                 ("adadelta", Adadelta, {}), ("adam", Adam, {"amsgrad": True})]


@pytest.mark.parametrize(("rule", "cls", "hyper"), COMPILE_CASES, ids=[c[0] for c in COMPILE_CASES])
def test_second_step_does_not_recompile(rule, cls, hyper):
    from numba import typeof

    from microdl.optim import _cpu

    kernel = _cpu.KERNELS[rule]

    def compiled_for(opt):
        # signatures for these array types (any hyperparameter tuple): more than one means that the scalars'
        # types change from step to step, so that steps recompile
        arrays = tuple(typeof(a) for a in (opt.params, opt.params, *opt._slots))
        return [sig for sig in kernel.signatures if tuple(sig[:-1]) == arrays]

    opt64 = cls(np.ones(9), backend="cpu", **hyper)
    opt64.step(np.ones(9))
    assert len(compiled_for(opt64)) == 1
    n_signatures = len(kernel.signatures)
    for _ in range(4):  # t == 1 and t > 1 (SGD's first-step flag), decaying rates, a new learning rate
        opt64.step(np.full(9, 0.5))
        opt64.lr = 0.01
    opt64_again = cls(np.ones(9), backend="cpu", **hyper)  # a second optimizer reuses the kernel too
    opt64_again.step(np.ones(9))
    assert len(kernel.signatures) == n_signatures

    opt32 = cls(np.ones(9, dtype=np.float32), backend="cpu", **hyper)
    had_float32 = len(compiled_for(opt32))
    for _ in range(3):
        opt32.step(np.ones(9, dtype=np.float32))
    assert len(compiled_for(opt32)) == 1
    assert len(kernel.signatures) == n_signatures + (1 - had_float32), "switching dtype adds exactly one"


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


# -- schedules --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Constant(), [0.1, 0.1, 0.1, 0.1]),
        (StepLR(step_size=3, gamma=0.5), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]),
        (ExponentialLR(gamma=0.9), [0.1, 0.09, 0.081, 0.0729]),
        (InverseScaling(power_t=0.5), [0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3), 0.05]),
        (InverseScaling(power_t=1.0), [0.1, 0.05, 0.1 / 3, 0.025]),
        # warm-up 0.1·(e+1)/3 for e < 2, then ½(1 + cos(π k/4)) from 0.1 down to min_lr 0 at epoch 6, then held:
        # cos(π/4) = √2/2, so the cosine values are 1, (1+√2/2)/2, 1/2, (1−√2/2)/2, 0
        (CosineWithWarmup(total_epochs=6, warmup_epochs=2),
         [0.1 / 3, 0.2 / 3, 0.1, 0.08535533905932737, 0.05, 0.014644660940672624, 0.0, 0.0]),
        # with min_lr 0.02 the cosine runs from 0.1 to 0.02: 0.02 + 0.08 × the values above
        (CosineWithWarmup(total_epochs=4, warmup_epochs=0, min_lr=0.02),
         [0.1, 0.02 + 0.08 * 0.8535533905932737, 0.06, 0.02 + 0.08 * 0.14644660940672624, 0.02, 0.02]),
    ],
    ids=["constant", "step", "exponential", "invscaling-0.5", "invscaling-1", "cosine-warmup", "cosine-min_lr"],
)
def test_schedule_values(schedule, expected):
    got = [schedule.lr_at(epoch, 0.1) for epoch in range(len(expected))]
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-17)


def test_reduce_on_plateau_follows_torch_semantics():
    # patience 2: the rate drops on the 3rd epoch in a row without a relative improvement of 1e-4; then one
    # epoch of cooldown in which bad epochs are not counted; min_lr floors the rate.
    s = ReduceLROnPlateau(factor=0.5, patience=2, threshold=1e-4, cooldown=1, min_lr=0.2)
    assert s.lr_at(0, 1.0, None) == 1.0  # no loss yet
    losses = [10.0,  # best 10
              10.0, 9.9995,  # bad 1, bad 2 (9.9995 > 10·(1 − 1e-4) = 9.999: not a relative improvement)
              10.0,  # bad 3 > patience: halve; cooldown 1
              10.0,  # in cooldown: not counted
              10.0, 10.0, 10.0,  # bad 1, 2, 3: halve again
              9.0,  # improvement (and the cooldown epoch)
              9.0, 9.0,  # bad 1, 2
              8.9999,  # 8.9999 > 9·(1 − 1e-4) = 8.9991: bad 3: 0.25 halves to 0.125, floored at min_lr 0.2
              1.0]  # improvement: the rate stays where it is
    expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125]
    expected = [max(e, 0.2) for e in expected]
    got = [s.lr_at(epoch, 1.0, loss) for epoch, loss in enumerate(losses, start=1)]
    assert got == expected


def test_reduce_on_plateau_skips_reductions_below_eps():
    # torch's eps: 1e-7 halves to 5e-8, 2.5e-8, 1.25e-8; the next halving would change it by 6.25e-9 <= 1e-8
    s = ReduceLROnPlateau(factor=0.5, patience=0, eps=1e-8)
    got = [s.lr_at(epoch, 1e-7, 1.0) for epoch in range(7)]
    np.testing.assert_allclose(got, [1e-7, 5e-8, 2.5e-8, 1.25e-8, 1.25e-8, 1.25e-8, 1.25e-8], rtol=1e-15)


def test_reduce_on_plateau_state_dict_resumes():
    rng = np.random.default_rng(0)
    losses = list(np.cumsum(rng.normal(0, 1, 40)))
    a = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    straight = [a.lr_at(e, 1.0, m) for e, m in enumerate(losses)]
    b = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    first = [b.lr_at(e, 1.0, m) for e, m in enumerate(losses[:20])]
    c = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    c.load_state_dict(b.state_dict())
    second = [c.lr_at(e, 1.0, m) for e, m in enumerate(losses[20:], start=20)]
    assert first + second == straight
    assert min(straight) < 1.0  # the sequence did reduce


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [(lambda: StepLR(step_size=0), ValueError, "step_size"), (lambda: StepLR(gamma=0.0), ValueError, "gamma"),
     (lambda: ExponentialLR(gamma=1.5), ValueError, "gamma"),
     (lambda: CosineWithWarmup(total_epochs=5, warmup_epochs=5), ValueError, "warmup_epochs"),
     (lambda: CosineWithWarmup(total_epochs=0), ValueError, "total_epochs"),
     (lambda: InverseScaling(power_t=-1.0), ValueError, "power_t"),
     (lambda: ReduceLROnPlateau(factor=1.0), ValueError, "factor"),
     (lambda: ReduceLROnPlateau(patience=-1), ValueError, "patience"),
     (lambda: ReduceLROnPlateau(min_lr=-1.0), ValueError, "min_lr"),
     (lambda: make_schedule("cosin"), ValueError, "unknown schedule 'cosin'")],
    ids=["step_size", "step-gamma", "exp-gamma", "warmup", "total", "power_t", "factor", "patience", "min_lr",
         "name"],
)
def test_invalid_schedules(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_make_schedule_defaults():
    assert isinstance(make_schedule(None), Constant)
    cosine = make_schedule("cosine", epochs=40)
    assert isinstance(cosine, CosineWithWarmup) and cosine.total_epochs == 40 and cosine.warmup_epochs == 2
    step = make_schedule("step", epochs=30)
    assert [step.lr_at(e, 1.0) for e in (9, 10, 20)] == [1.0, 0.1, pytest.approx(0.01)]
    mine = ExponentialLR(0.5)
    assert make_schedule(mine) is mine


# -- clipping ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_clip_grad_norm(dtype):
    g = np.array([3.0, 4.0], dtype=dtype)
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0, rel=1e-12)  # the norm before clipping
    np.testing.assert_allclose(g, np.array([0.6, 0.8]) * 5 / (5 + 1e-6), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert g.dtype == dtype

    g = np.array([3.0, 4.0], dtype=dtype)
    assert clip_grad_norm(g, 10.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # below max_norm: untouched

    rng = np.random.default_rng(0)
    g = rng.normal(size=37).astype(dtype)
    norm = np.linalg.norm(g.astype(np.float64))
    assert clip_grad_norm(g, 0.5) == pytest.approx(norm, rel=1e-6 if dtype == np.float32 else 1e-13)
    assert np.linalg.norm(g.astype(np.float64)) == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_accumulates_in_float64():
    g = np.full(4, 1e30, dtype=np.float32)  # squares overflow float32
    assert clip_grad_norm(g, 1.0) == pytest.approx(2e30, rel=1e-6)
    np.testing.assert_allclose(g, 0.5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_clip_grad_value(dtype):
    g = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 1.0], dtype=dtype)
    assert clip_grad_value(g, 1.0) is None
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.25, 1.0, 1.0])
    assert g.dtype == dtype


@pytest.mark.parametrize("clip", [clip_grad_norm, clip_grad_value], ids=["norm", "value"])
@pytest.mark.parametrize(
    ("grads", "limit", "error", "match"),
    [(np.ones(3), 0.0, ValueError, "must be a finite number in \\(0"), (np.ones(3), -1.0, ValueError, "in \\(0"),
     (np.ones(3), math.nan, ValueError, "finite"), (np.ones(3), True, TypeError, "real number"),
     (np.ones(3), "1", TypeError, "real number"),
     (np.ones(3, dtype=np.int64), 1.0, TypeError, "grads must be float32 or float64"),
     (np.ones((3, 2)), 1.0, ValueError, "grads must be a flat 1-D buffer"),
     ([1.0, 2.0], 1.0, TypeError, "grads must be a NumPy array")],
    ids=["zero", "negative", "nan", "bool", "str", "int-grads", "2d-grads", "list-grads"],
)
def test_clip_rejects_invalid_arguments(clip, grads, limit, error, match):
    with pytest.raises(error, match=match):
        clip(grads, limit)


# -- CUDA, asked for where there is none ------------------------------------------------------------------
def _cuda_is_usable():
    try:
        require_cuda()
    except CudaUnavailableError:
        return False
    return True


@pytest.mark.skipif(simulator_enabled(), reason="the simulator counts as a device")
def test_cuda_backend_without_a_gpu_names_what_is_missing():
    if _cuda_is_usable():
        pytest.skip("a CUDA device is present")
    with pytest.raises(CudaUnavailableError, match="driver|device"):
        Adam(np.zeros(3), backend="cuda")


@pytest.mark.skipif(simulator_enabled(), reason="the simulator counts as a device")
def test_cuda_backend_without_numba_cuda_names_the_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "numba_cuda" else real_find_spec(name, *args))
    with pytest.raises(CudaUnavailableError, match="'numba-cuda' package, which is not installed"):
        Adam(np.zeros(3), backend="cuda")
    with pytest.raises(CudaUnavailableError, match="numba-cuda"):
        optim.OPTIMIZERS["sgd"](np.zeros(3), backend="cuda")


def test_cpu_use_never_imports_numba_cuda():
    code = (
        "import sys, numpy as np\n"
        "import microdl, microdl.optim as optim\n"
        "theta = np.zeros(3)\n"
        "optim.SGD(theta, backend='cpu').step(np.ones(3))\n"
        "optim.Adam(theta, backend='numpy').step(np.ones(3))\n"
        "optim.clip_grad_norm(np.ones(3), 1.0)\n"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda was imported'\n"
        "assert 'microdl.optim._cuda' not in sys.modules\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
