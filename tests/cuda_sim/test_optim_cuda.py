"""The optimizers and clipping on ``backend="cuda"``, against the naive oracle; pickling, and the checks that
keep the kernels inside their buffers.

Launches are shrunk to 4 threads per block and at most 2 blocks (in :mod:`microdl.config`, which the kernels
read at every launch), so that with 11 parameters the grid-stride loop makes a second, partial pass, and with
3 parameters a block is only partly used.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU (scripts/gpu_check.sh).
"""

import copy
import os
import pickle

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from numba import cuda  # noqa: E402

from microdl import config  # noqa: E402
from microdl.optim import OPTIMIZERS, Adam, clip_grad_norm, clip_grad_value  # noqa: E402
from tests.optim.naive import CASES, ORACLES, make_problem  # noqa: E402
from tests.optim.registry_cases import BUILTIN  # noqa: E402

# Derived from the registry: every case of every registered built-in.
CUDA_CASES = [c for c in CASES if c[1] in dict(BUILTIN)]
STEPS = 5
TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 2e-5, "atol": 2e-6}}


def _problem(dtype, n=11, steps=STEPS):
    theta0, grads = make_problem(n=n, steps=steps, seed=4)
    return theta0.astype(dtype), grads.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("case_id", "name", "hyper"), CUDA_CASES, ids=[c[0] for c in CUDA_CASES])
def test_cuda_matches_naive_oracle(case_id, name, hyper, dtype):
    theta0, grads = _problem(dtype)
    expected_history, expected_state = ORACLES[name](theta0, grads, **hyper)
    params = cuda.to_device(theta0)
    opt = OPTIMIZERS[name](params, backend="cuda", **hyper)
    g = cuda.device_array_like(params)
    for t in range(STEPS):
        g.copy_to_device(grads[t])
        opt.step(g)
        np.testing.assert_allclose(params.copy_to_host(), expected_history[t], **TOL[dtype], err_msg=f"step {t}")
    assert set(opt.state) == set(expected_state)
    for key, expected in expected_state.items():
        np.testing.assert_allclose(opt.state[key].copy_to_host(), expected, **TOL[dtype], err_msg=key)


@pytest.mark.parametrize("n", [3, 11, 23], ids=["partial-block", "two-passes", "three-passes"])
def test_every_element_is_updated_once(n):
    # SGD with lr 1 from 0 and g = 1..n lands at exactly -g: an element skipped or updated twice would show.
    g = np.arange(1.0, n + 1)
    params = cuda.to_device(np.zeros(n))
    OPTIMIZERS["sgd"](params, backend="cuda", lr=1.0).step(cuda.to_device(g))
    np.testing.assert_array_equal(params.copy_to_host(), -g)


def test_host_grads_go_through_one_staging_buffer():
    theta0, grads = _problem(np.float64)
    params = cuda.to_device(theta0)
    opt = Adam(params, backend="cuda", lr=0.01)
    opt.step(grads[0])
    staging = opt._g_device
    assert staging is not None
    for g in grads[1:]:
        opt.step(g)
        assert opt._g_device is staging, "allocated once, reused"
    expected, _ = ORACLES["adam"](theta0, grads, lr=0.01)
    np.testing.assert_allclose(params.copy_to_host(), expected[-1], **TOL[np.float64])
    with pytest.raises(ValueError, match="shape of params"):
        opt.step(np.zeros(4))
    with pytest.raises(TypeError, match="dtype of params"):
        opt.step(np.zeros(11, dtype=np.float32))


def test_host_params_are_rejected_on_cuda():
    with pytest.raises(TypeError, match="must be a CUDA array"):
        Adam(np.zeros(3), backend="cuda")


def test_state_lives_on_the_device_and_round_trips():
    theta0, grads = _problem(np.float64, steps=8)
    straight = cuda.to_device(theta0)
    opt = OPTIMIZERS["rmsprop"](straight, backend="cuda", lr=0.01, centered=True, momentum=0.5)
    for g in grads:
        opt.step(g)

    first = cuda.to_device(theta0)
    opt = OPTIMIZERS["rmsprop"](first, backend="cuda", lr=0.01, centered=True, momentum=0.5)
    for g in grads[:4]:
        opt.step(g)
    assert all(not isinstance(buf, np.ndarray) and hasattr(buf, "copy_to_host") for buf in opt.state.values())
    sd = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd["state"].values()) and sd["t"] == 4

    resumed = cuda.to_device(first.copy_to_host())
    other = OPTIMIZERS["rmsprop"](resumed, backend="cuda", lr=0.1)  # not centred, no momentum: other state
    with pytest.raises(ValueError, match="g_avg"):
        other.load_state_dict(sd)
    other = OPTIMIZERS["rmsprop"](resumed, backend="cuda", lr=0.1, centered=True, momentum=0.9)
    other.load_state_dict(sd)  # the same state; the saved lr and momentum replace these
    assert (other.lr, other.momentum) == (0.01, 0.5)
    for key in sd["state"]:
        np.testing.assert_array_equal(other.state[key].copy_to_host(), sd["state"][key])
    for g in grads[4:]:
        other.step(g)
    np.testing.assert_array_equal(resumed.copy_to_host(), straight.copy_to_host())

    # and a CUDA checkpoint resumes on the CPU (to rounding: a different machine's arithmetic)
    host = first.copy_to_host()
    cpu = OPTIMIZERS["rmsprop"](host, backend="cpu", lr=0.01, centered=True, momentum=0.5)
    cpu.load_state_dict(sd)
    for g in grads[4:]:
        cpu.step(g)
    np.testing.assert_allclose(host, straight.copy_to_host(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clipped", "untouched"])
def test_clip_grad_norm_on_the_device(max_norm, dtype):
    g = np.random.default_rng(5).normal(size=11).astype(dtype)
    d = cuda.to_device(g)
    norm = clip_grad_norm(d, max_norm)
    expected = np.linalg.norm(g.astype(np.float64))
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(norm.copy_to_host(), [expected], rtol=rtol)  # a device array: no sync
    scale = min(1.0, max_norm / (expected + 1e-6))
    np.testing.assert_allclose(d.copy_to_host(), g * scale, rtol=rtol)


def test_clip_grad_norm_on_the_device_resets_its_accumulator_without_the_host(monkeypatch):
    """Back-to-back calls: each norm is its own (the Σg² accumulator is zeroed on the device), and after the
    first call nothing is copied between host and device, which would synchronise every step."""
    rng = np.random.default_rng(7)
    g1, g2 = rng.normal(size=11), rng.normal(size=11) * 3
    d1, d2 = cuda.to_device(g1), cuda.to_device(g2)
    clip_grad_norm(d1, 0.5)

    def no_transfer(*args, **kwargs):
        raise AssertionError("clip_grad_norm copied between host and device")

    with monkeypatch.context() as m:
        for name in ("to_device", "device_array", "device_array_like"):
            m.setattr(cuda, name, no_transfer)
        m.setattr(type(d2), "copy_to_device", no_transfer)
        m.setattr(type(d2), "copy_to_host", no_transfer)
        norm = clip_grad_norm(d2, 0.5)
    expected = np.linalg.norm(g2)
    np.testing.assert_allclose(norm.copy_to_host(), [expected], rtol=1e-12)
    np.testing.assert_allclose(d2.copy_to_host(), g2 * 0.5 / (expected + 1e-6), rtol=1e-12)
    np.testing.assert_allclose(d1.copy_to_host(), g1 * 0.5 / (np.linalg.norm(g1) + 1e-6), rtol=1e-12)


def test_clip_grad_norm_on_the_device_accumulates_in_float64():
    d = cuda.to_device(np.full(11, 1e30, dtype=np.float32))  # squares overflow float32
    norm = clip_grad_norm(d, 1.0)
    np.testing.assert_allclose(norm.copy_to_host(), [1e30 * np.sqrt(11)], rtol=1e-6)
    np.testing.assert_allclose(d.copy_to_host(), 1 / np.sqrt(11), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_clip_grad_value_on_the_device(dtype):
    g = (np.random.default_rng(6).normal(size=11) * 2).astype(dtype)
    d = cuda.to_device(g)
    clip_grad_value(d, 1.0)
    np.testing.assert_array_equal(d.copy_to_host(), np.clip(g, -1.0, 1.0))


def test_launch_shape_comes_from_config_at_call_time(monkeypatch):
    seen = []
    real = config.launch_1d

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(config, "launch_1d", spy)
    params = cuda.to_device(np.zeros(7))
    Adam(params, backend="cuda").step(cuda.to_device(np.ones(7)))
    clip_grad_value(params, 1.0)
    assert seen == [7, 7]


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))], ids=["deepcopy", "pickle"])
def test_a_copy_steps_exactly_like_the_original(clone):
    theta0, grads = _problem(np.float64, steps=6)
    params = cuda.to_device(theta0)
    opt = OPTIMIZERS["adamw"](params, backend="cuda", lr=0.01, amsgrad=True)
    for g in grads[:3]:
        opt.step(g)  # host gradients: the staging buffer is not part of the copy
    twin = clone(opt)
    assert twin.backend == "cuda" and twin.t == 3 and twin.hyperparameters == opt.hyperparameters
    assert all(hasattr(buf, "copy_to_host") for buf in (twin.params, *twin.state.values())), "on the device"
    for g in grads[3:]:
        opt.step(g)
        twin.step(cuda.to_device(g))
    np.testing.assert_array_equal(twin.params.copy_to_host(), params.copy_to_host())
    for key, buf in opt.state.items():
        np.testing.assert_array_equal(twin.state[key].copy_to_host(), buf.copy_to_host())


@pytest.mark.parametrize(
    ("make_grads", "error", "match"),
    [(lambda: cuda.to_device(np.zeros(12)), ValueError, r"grads must have the shape of params \(11,\)"),
     (lambda: cuda.to_device(np.zeros(10)), ValueError, "shape of params"),
     (lambda: cuda.to_device(np.zeros(11, dtype=np.float32)), TypeError, "dtype of params"),
     (lambda: cuda.to_device(np.zeros(11, dtype=np.int64)), TypeError, "float32 or float64"),
     (lambda: cuda.to_device(np.zeros((11, 1))), ValueError, "flat 1-D"),
     (lambda: cuda.to_device(np.zeros(22))[::2], ValueError, "C-contiguous"),
     (lambda: np.zeros(22)[::2], ValueError, "C-contiguous"),  # host gradients are staged: checked first
     (lambda: np.zeros(12), ValueError, "shape of params"),
     (lambda: [0.0] * 11, TypeError, "grads must be a CUDA array")],
    ids=["device-long", "device-short", "device-float32", "device-int", "device-2d", "device-strided",
         "host-strided", "host-long", "list"],
)
def test_invalid_grads_on_the_device_are_refused_before_any_launch(make_grads, error, match):
    params = cuda.to_device(np.ones(11))
    opt = Adam(params, backend="cuda")
    with pytest.raises(error, match=match):
        opt.step(make_grads())
    assert opt.t == 0
    np.testing.assert_array_equal(params.copy_to_host(), np.ones(11))


def test_strided_device_params_are_refused():
    with pytest.raises(ValueError, match="params must be C-contiguous"):
        Adam(cuda.to_device(np.zeros(22))[::2], backend="cuda")


@pytest.mark.parametrize("clip", [clip_grad_norm, clip_grad_value], ids=["norm", "value"])
@pytest.mark.parametrize(
    ("make_grads", "error", "match"),
    [(lambda: cuda.to_device(np.ones((3, 2))), ValueError, "grads must be a flat 1-D buffer"),
     (lambda: cuda.to_device(np.ones(3, dtype=np.int64)), TypeError, "grads must be float32 or float64")],
    ids=["2d", "int"],
)
def test_clip_refuses_invalid_device_arrays(clip, make_grads, error, match):
    with pytest.raises(error, match=match):
        clip(make_grads(), 1.0)


def test_a_learners_rule_runs_on_cuda_compiled_from_the_same_rule():
    # Lion from the example file, outside the package: the CUDA kernel is built from its rule at first use and
    # agrees with the NumPy and CPU backends (check_optimizer's "backends agree" ran CUDA here)
    import importlib.util
    import sys
    from pathlib import Path

    from microdl.optim import check_optimizer, unregister_optimizer

    path = Path(__file__).resolve().parents[2] / "examples" / "custom_optimizer.py"
    spec = importlib.util.spec_from_file_location("learner_lion_cuda", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        (line,) = check_optimizer(module.Lion, hyperparameters=[{"weight_decay": 0.1}], checks=["backends agree"])
        assert line.status == "passed" and "cuda agree" in line.detail, line
    finally:
        unregister_optimizer("lion")
        del sys.modules[spec.name]


def test_clipping_on_the_device_needs_no_model_kernel():
    # NOTE: the optimizer package has its own Σ g² kernel (microdl.optim._cuda), not the model's
    import ast
    from pathlib import Path

    import microdl.optim

    for path in Path(microdl.optim.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {m for m in imported if m and m.startswith(("microdl.cuda", "microdl.nn._cpu"))}, path


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_flush_of_subnormal_state_matches_the_host(dtype):
    # NOTE [subnormal state] in microdl.optim.rules: the device kernel zeroes exactly what the host's does, and a
    # step at a multiple of FLUSH_EVERY runs it (SGD, zero gradient: b <- 0.9 b keeps a subnormal b subnormal)
    from microdl.optim import _cuda, _numpy
    from microdl.optim.base import FLUSH_EVERY

    info = np.finfo(dtype)
    x = np.array([info.tiny, -info.tiny / 2, info.smallest_subnormal, 0.0, 1.0, np.inf, np.nan, -info.tiny * 3,
                  info.tiny / 3, -5.0, info.tiny * 0.999], dtype=dtype)
    on_device = cuda.to_device(x)
    _cuda.flush_subnormal(on_device)
    _numpy.flush_subnormal(x)
    np.testing.assert_array_equal(on_device.copy_to_host(), x)

    b = np.array([info.tiny / 4, info.tiny * 2, 1.0], dtype=dtype)
    opts = [OPTIMIZERS["sgd"](params, backend=backend, lr=0.1, momentum=0.9)
            for params, backend in ((cuda.to_device(np.zeros(3, dtype)), "cuda"), (np.zeros(3, dtype), "numpy"))]
    for opt in opts:
        opt.load_state_dict({**opt.state_dict(), "t": FLUSH_EVERY - 1, "state": {"b": b}})
        opt.step(np.zeros(3, dtype))
    flushed = opts[0].state["b"].copy_to_host()
    np.testing.assert_array_equal(flushed, opts[1].state["b"])
    assert flushed[0] == 0 and flushed[1] != 0
