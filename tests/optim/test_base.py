"""microdl.optim.base: binding to a buffer, backends, the checks at every boundary, validated hyperparameters,
checkpoints, pickling."""

import copy
import importlib.util
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import microdl.optim as optim
from microdl._cuda_support import CudaUnavailableError, require_cuda, simulator_enabled
from microdl.optim import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop
from tests.optim.naive import CASES

CASE_IDS = [c[0] for c in CASES]


# -- checkpoints ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_exact(case_id, name, hyper, problem):
    theta0, grads = problem(steps=7, seed=1)
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
def test_resuming_from_state_dict_is_bit_identical(case_id, name, hyper, problem):
    theta0, grads = problem(steps=20, seed=1)
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


def test_resuming_without_the_state_would_differ(problem):
    # The previous test can fail: restarting from the parameters alone (t = 0, empty moments) differs.
    theta0, grads = problem(steps=20, seed=1)
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


def test_a_checkpoint_from_before_eps_on_loads_as_torch_placement(problem):
    # Checkpoints written before Adam had eps_on lack it; they resume with the placement they were trained with.
    theta0, grads = problem(steps=6, seed=1)
    straight = theta0.copy()
    opt = Adam(straight, backend="cpu", lr=0.01)
    for g in grads:
        opt.step(g)
    first = theta0.copy()
    opt = Adam(first, backend="cpu", lr=0.01)
    for g in grads[:3]:
        opt.step(g)
    sd = opt.state_dict()
    del sd["hyperparameters"]["eps_on"]
    resumed = Adam(first, backend="cpu", lr=0.01, eps_on="v")
    resumed.load_state_dict(sd)
    assert resumed.eps_on == "v_hat"
    for g in grads[3:]:
        resumed.step(g)
    np.testing.assert_array_equal(first, straight)


def _adam_state_dict(n=5, **hyper):
    opt = Adam(np.zeros(n), backend="numpy", **hyper)
    opt.step(np.ones(n))
    return opt.state_dict()


@pytest.mark.parametrize(
    ("make_target", "state_dict", "error", "match"),
    [
        (lambda: AdamW(np.zeros(5), backend="numpy"), _adam_state_dict(), ValueError, "'Adam', not 'AdamW'"),
        (lambda: SGD(np.zeros(5), backend="numpy", momentum=0.9), _adam_state_dict(), ValueError,
         "'Adam', not 'SGD'"),
        (lambda: Adam(np.zeros(6), backend="numpy"), _adam_state_dict(5), ValueError, "shape"),
        (lambda: Adam(np.zeros(5), backend="numpy", amsgrad=True), _adam_state_dict(), ValueError, "v_max"),
        (lambda: Adam(np.zeros(5), backend="numpy"), _adam_state_dict(amsgrad=True), ValueError, "v_max"),
        (lambda: SGD(np.zeros(5), backend="numpy"),
         SGD(np.zeros(5), backend="numpy", momentum=0.9).state_dict(), ValueError, "options"),
        (lambda: RMSprop(np.zeros(5), backend="numpy", momentum=0.9),
         RMSprop(np.zeros(5), backend="numpy", centered=True).state_dict(), ValueError, "g_avg"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "t": -1}, ValueError, "non-negative"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "t": 1.5}, ValueError, "non-negative"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "hyperparameters": {"lr": 0.1}}, ValueError, "hyperparameters"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "hyperparameters": {**_adam_state_dict()["hyperparameters"], "lr": -1.0}},
         ValueError, "lr"),
        # malformed dicts: a clear error before anything changes, never a KeyError or a kernel reading past
        # the end of a short state array
        (lambda: Adam(np.zeros(5), backend="numpy"), [1, 2], ValueError, "must be a dict"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {"optimizer": "Adam"}, ValueError, "keys"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "state": None}, ValueError,
         r"state_dict\['state'\] must be a dict"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "state": {**_adam_state_dict()["state"], "m": np.zeros(3)}}, ValueError,
         r"state 'm' has shape \(3,\)"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "state": {**_adam_state_dict()["state"], "v": np.array(["a"] * 5)}}, TypeError,
         "real numbers"),
        (lambda: Adam(np.zeros(5), backend="numpy"), {**_adam_state_dict(), "hyperparameters": None}, ValueError,
         "must be a dict"),
        (lambda: Adam(np.zeros(5), backend="numpy"),
         {**_adam_state_dict(), "hyperparameters": {**_adam_state_dict()["hyperparameters"], "betas": (1, 1)}},
         ValueError, r"betas\[0\]"),
    ],
    ids=["wrong-class-adamw", "wrong-class-sgd", "wrong-size", "amsgrad-missing", "amsgrad-extra",
         "momentum-differs", "centered-vs-momentum", "negative-t", "float-t", "missing-hyperparameters",
         "invalid-hyperparameter", "not-a-dict", "missing-keys", "state-not-a-dict", "short-state-array",
         "string-state-array", "hyperparameters-not-a-dict", "betas-one"],
)
def test_load_state_dict_rejects_mismatches(make_target, state_dict, error, match):
    target = make_target()
    before = (target.hyperparameters, target.t, {k: v.copy() for k, v in target.state.items()})
    with pytest.raises(error, match=match):
        target.load_state_dict(state_dict)
    # a failed load changes nothing
    assert target.hyperparameters == before[0] and target.t == before[1]
    for key, buf in target.state.items():
        np.testing.assert_array_equal(buf, before[2][key])


# -- pickle and deepcopy ----------------------------------------------------------------------------------
COPY_CASES = [c for c in CASES if c[0] in {"sgd-all", "adagrad-all", "rmsprop-centered-momentum", "adadelta",
                                           "adam-all", "adamw-eps_on-v-all"}]


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))], ids=["deepcopy", "pickle"])
@pytest.mark.parametrize(("case_id", "name", "hyper"), COPY_CASES, ids=[c[0] for c in COPY_CASES])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_copy_steps_exactly_like_the_original(backend, case_id, name, hyper, clone, problem):
    theta0, grads = problem(steps=10, seed=1)
    opt = OPTIMIZERS[name](theta0.copy(), backend=backend, **hyper)
    for g in grads[:5]:
        opt.step(g)
    twin = clone(opt)
    assert type(twin) is type(opt) and twin.backend == backend and twin.t == opt.t
    assert twin.hyperparameters == opt.hyperparameters
    assert not np.shares_memory(twin.params, opt.params), "the copy has its own parameters"
    for g in grads[5:]:
        opt.step(g)
        twin.step(g)
    np.testing.assert_array_equal(twin.params, opt.params)
    assert twin.t == opt.t == 10
    for key, buf in opt.state.items():
        np.testing.assert_array_equal(twin.state[key], buf)
        assert not np.shares_memory(twin.state[key], buf)


# -- hyperparameters, checked on construction and on every assignment ------------------------------------
# (construction with an invalid value: test_optimizers.INVALID; here the same checks apply to assignments)
ASSIGNMENTS = [
    (SGD, {}, "lr", -1.0, ValueError, "lr"),
    (SGD, {}, "lr", "0.1", TypeError, "lr must be a real number"),
    (SGD, {"momentum": 0.9}, "momentum", -5, ValueError, "momentum"),  # issue 12: accepted before
    (SGD, {}, "dampening", 1.5, ValueError, "dampening"),
    (SGD, {}, "weight_decay", math.nan, ValueError, "weight_decay"),
    (SGD, {}, "nesterov", True, ValueError, "nesterov=True requires momentum > 0"),  # the cross-field rule
    (SGD, {"momentum": 0.9, "nesterov": True}, "dampening", 0.1, ValueError, "dampening = 0"),
    (SGD, {"momentum": 0.9}, "nesterov", "yes", TypeError, "nesterov must be True or False"),
    (SGD, {}, "maximize", 1, TypeError, "maximize"),
    (Adagrad, {}, "lr_decay", -0.1, ValueError, "lr_decay"),
    (Adagrad, {}, "eps", -1e-10, ValueError, "eps"),
    (RMSprop, {}, "alpha", 1.0, ValueError, r"alpha must be a finite number in \[0, 1\)"),
    (RMSprop, {"momentum": 0.5}, "momentum", -0.9, ValueError, "momentum"),
    (optim.Adadelta, {}, "rho", 1.1, ValueError, "rho"),
    (Adam, {}, "betas", (1, 1), ValueError, r"betas\[0\]"),  # issue 12: ZeroDivisionError in step before
    (Adam, {}, "betas", (0.9, 1.0), ValueError, r"betas\[1\]"),
    (Adam, {}, "betas", 0.9, ValueError, "betas must be a pair"),
    (Adam, {}, "betas", (True, 0.999), TypeError, r"betas\[0\]"),
    (Adam, {}, "eps", -1e-8, ValueError, "eps"),
    (Adam, {}, "eps_on", "sqrt_v", ValueError, "unknown eps_on 'sqrt_v'; choose one of v_hat, v"),
    (AdamW, {}, "weight_decay", -0.1, ValueError, "weight_decay"),
    # options that decide which state buffers exist are fixed at construction
    (SGD, {}, "momentum", 0.9, ValueError, r"momentum=0.9 would change the state buffers .*\[\] -> \['b'\]"),
    (SGD, {"momentum": 0.9}, "momentum", 0.0, ValueError, "build a new optimizer"),
    (Adam, {}, "amsgrad", True, ValueError, "v_max"),
    (RMSprop, {}, "centered", True, ValueError, "g_avg"),
    (RMSprop, {}, "momentum", 0.5, ValueError, r"\['b', 'v'\]"),
]


@pytest.mark.parametrize(("cls", "hyper", "name", "value", "error", "match"), ASSIGNMENTS,
                         ids=[f"{c.__name__}-{n}={v!r}" for c, _, n, v, _, _ in ASSIGNMENTS])
def test_assigning_an_invalid_hyperparameter_raises_and_changes_nothing(cls, hyper, name, value, error, match):
    opt = cls(np.zeros(3), backend="numpy", **hyper)
    before = opt.hyperparameters
    with pytest.raises(error, match=match):
        setattr(opt, name, value)
    assert opt.hyperparameters == before
    opt.step(np.ones(3))  # and it still steps
    assert np.all(np.isfinite(opt.params))


def test_assignments_are_checked_and_canonical():
    opt = SGD(np.zeros(3), backend="numpy", momentum=0.9)
    opt.lr = np.float32(0.5)  # numpy scalars are accepted wherever Python numbers are
    opt.momentum = np.int64(1)
    opt.nesterov = np.bool_(True)
    assert (opt.lr, opt.momentum, opt.nesterov) == (0.5, 1.0, True)
    assert type(opt.lr) is float and type(opt.momentum) is float and type(opt.nesterov) is bool
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0 and dampening = 0"):
        opt.dampening = 0.5  # the cross-field rule holds for assignments too
    opt.nesterov = False
    opt.dampening = 0.5
    assert opt.hyperparameters == {"lr": 0.5, "momentum": 1.0, "dampening": 0.5, "weight_decay": 0.0,
                                   "nesterov": False, "maximize": False}
    adam = Adam(np.zeros(3), backend="numpy", betas=[np.float32(0.5), np.float64(0.75)], eps=np.int64(1))
    assert adam.betas == (0.5, 0.75) and type(adam.betas) is tuple and adam.eps == 1.0 and type(adam.eps) is float
    adam.betas = [0.8, 0.9]
    assert adam.betas == (0.8, 0.9)


def test_assigned_hyperparameters_take_effect_at_the_next_step():
    # SGD from 0 with g = 1: lr 0.5 for one step, then 0.25, then the momentum buffer's μ changes too
    theta = np.zeros(2)
    opt = SGD(theta, backend="cpu", lr=0.5, momentum=0.5)
    opt.step(np.ones(2))  # b = 1; θ = -0.5
    opt.lr = 0.25
    opt.step(np.ones(2))  # b = 0.5 + 1 = 1.5; θ = -0.5 - 0.375
    opt.momentum = 1.0
    opt.step(np.ones(2))  # b = 1.5 + 1 = 2.5; θ = -0.875 - 0.625
    np.testing.assert_array_equal(theta, [-1.5, -1.5])


@pytest.mark.parametrize(("attribute", "value"), [("params", np.zeros(5)), ("backend", "numpy"),
                                                  ("dtype", np.float32)])
def test_the_binding_cannot_be_changed(attribute, value):
    # a kernel indexes the state up to params.size: rebinding params to a longer array would read past it
    opt = Adam(np.zeros(3), backend="cpu")
    with pytest.raises(AttributeError):
        setattr(opt, attribute, value)


def test_repr_names_every_hyperparameter():
    text = repr(AdamW(np.zeros(3), backend="numpy", lr=0.1))
    assert text == ("AdamW(backend='numpy', lr=0.1, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, "
                    "amsgrad=False, maximize=False, eps_on='v_hat')")


# -- buffers: the checks before any kernel runs -----------------------------------------------------------
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
     (np.zeros(2), ValueError, r"grads must have the shape of params \(3,\); got \(2,\)"),
     (np.zeros((3, 1)), ValueError, "grads must be a flat 1-D buffer"),
     (np.zeros(3, dtype=np.float32), TypeError, "grads must have the dtype of params"),
     (np.zeros(3, dtype=np.int64), TypeError, "grads must be float32 or float64"),
     (np.zeros(6)[::2], ValueError, "grads must be C-contiguous"),
     (np.zeros(3)[::-1], ValueError, "grads must be C-contiguous"),
     ([0.0, 0.0, 0.0], TypeError, "grads must be a NumPy array"),
     (np.float64(1.0), TypeError, "grads must be a NumPy array")],
    ids=["too-long", "too-short", "2d", "float32-for-float64", "int", "strided", "reversed", "list", "scalar"],
)
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_invalid_grads_at_step(backend, grads, error, match):
    theta = np.ones(3)
    opt = Adam(theta, backend=backend, amsgrad=True)
    with pytest.raises(error, match=match):
        opt.step(grads)
    assert opt.t == 0 and np.all(theta == 1.0), "a rejected step changes nothing"
    assert all(np.all(buf == 0) for buf in opt.state.values())


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
        "import sys, copy, numpy as np\n"
        "import microdl, microdl.optim as optim\n"
        "theta = np.zeros(3)\n"
        "optim.SGD(theta, backend='cpu').step(np.ones(3))\n"
        "copy.deepcopy(optim.Adam(theta, backend='numpy')).step(np.ones(3))\n"
        "optim.clip_grad_norm(np.ones(3), 1.0)\n"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda was imported'\n"
        "assert 'microdl.optim._cuda' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
