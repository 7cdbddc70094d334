"""NOTE [subnormal state] in microdl.optim.rules: every FLUSH_EVERY steps, ``Optimizer.step`` sets the state's
entries below the dtype's smallest normal number to zero, so that a state that decays while its gradient is
exactly zero is subnormal for at most FLUSH_EVERY steps instead of for good; on every backend alike, and the
parameters still follow the naive oracle (which does not flush) within the float32 tolerance of the rule tests.
The CUDA kernel of the flush is checked in tests/cuda_sim/test_optim_cuda.py."""

import numpy as np
import pytest

from microdl.optim import OPTIMIZERS, _cpu, _numpy
from microdl.optim.base import FLUSH_EVERY
from tests.optim.naive import ORACLES

# The decaying states of each rule, with every option on that adds one.
CASES = [
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5}),
    ("adadelta", {"lr": 1.0, "rho": 0.8}),
    ("adam", {"lr": 1e-3}),
    ("adam", {"lr": 1e-3, "amsgrad": True, "betas": (0.8, 0.9)}),
]
STEPS = 1500  # Adam's m from 1e-4 passes float32's tiny (1.2e-38) after about 800 steps, v never at β₂ = 0.999


def _problem(dtype):
    """Eight parameters; the first four get a gradient at step 1 only (then exactly zero: their state decays),
    the other four a gradient of 1e-3 at every step."""
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=8).astype(dtype)
    grads = np.zeros((STEPS, 8), dtype=dtype)
    grads[0] = rng.normal(size=8) * 1e-3
    grads[:, 4:] = rng.normal(size=(STEPS, 4)) * 1e-3
    return theta0, grads


def _subnormal(a):
    a = np.asarray(a)
    return (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(("name", "hyper"), CASES, ids=lambda c: c if isinstance(c, str) else "-".join(map(str, c)))
def test_a_decaying_state_is_flushed_to_zero_not_left_subnormal(name, hyper, backend):
    # float32: float64's states would take thousands of steps more to sink that far (its tiny is 2.2e-308)
    theta0, grads = _problem(np.float32)
    params = theta0.copy()
    opt = OPTIMIZERS[name](params, backend=backend, **hyper)
    reached_below_tiny = {}
    subnormal_for = {key: np.zeros(8, dtype=int) for key in opt.state}  # steps in a row each entry has been
    for g in grads:
        opt.step(g.copy())
        for key, state in opt.state.items():
            now = _subnormal(state)
            subnormal_for[key] = np.where(now, subnormal_for[key] + 1, 0)
            assert subnormal_for[key].max() < FLUSH_EVERY, (key, opt.t, state)
            if opt.t % FLUSH_EVERY == 0:  # just flushed
                assert not now.any(), (key, opt.t, state)
            if key != "v_max":
                reached_below_tiny[key] = reached_below_tiny.get(key, False) or bool(np.any(state[:4] == 0))
    # the flush happened (else this test could not fail): a state of the zero-gradient half reached 0, where
    # without the flush it would stay subnormal for good (0.9 · 4·2⁻¹⁴⁹ rounds back to 4·2⁻¹⁴⁹)
    assert any(reached_below_tiny.values()), reached_below_tiny
    expected = ORACLES[name](theta0, grads, **hyper)[0][-1]
    np.testing.assert_allclose(params, expected, rtol=2e-5, atol=2e-6)


def test_the_backends_agree_to_the_bit_through_the_flush():
    theta0, grads = _problem(np.float32)
    finals = []
    for backend in ("numpy", "cpu"):
        params = theta0.copy()
        opt = OPTIMIZERS["adam"](params, backend=backend, lr=1e-3)
        for g in grads:
            opt.step(g.copy())
        finals.append((params, opt.state["m"].copy()))
    np.testing.assert_array_equal(finals[0][1], finals[1][1])
    np.testing.assert_allclose(finals[0][0], finals[1][0], rtol=1e-6)  # Adam's CPU kernel uses arcp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_the_flush_zeroes_exactly_the_entries_below_the_smallest_normal_number(backend, dtype):
    info = np.finfo(dtype)
    tiny, sub = info.tiny, info.smallest_subnormal
    special = np.array([tiny, -tiny, tiny * 0.5, -tiny * 0.5, sub, -sub, 0.0, -0.0, 1.0, -3.5, info.max,
                        np.inf, -np.inf, np.nan, np.nextafter(tiny, 0), np.nextafter(tiny, 1)], dtype=dtype)
    x = np.concatenate([special, np.random.default_rng(0).standard_normal(1000).astype(dtype) * tiny * 4])
    expected = x.copy()
    expected[np.abs(x) < tiny] = 0  # NaN compares False: it stays
    {"numpy": _numpy, "cpu": _cpu}[backend].flush_subnormal(x)
    np.testing.assert_array_equal(x, expected)
    assert (expected == 0).sum() > 100 and not _subnormal(x).any()  # both kinds of entry were there


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_the_flush_runs_after_the_update_of_every_multiple_of_flush_every(backend):
    # SGD with momentum and a zero gradient: b <- 0.9 b, so a subnormal b stays subnormal until a flush
    params = np.zeros(4, dtype=np.float32)
    opt = OPTIMIZERS["sgd"](params, backend=backend, lr=0.1, momentum=0.9)
    tiny = np.finfo(np.float32).tiny
    b = np.array([tiny / 4, -tiny / 8, tiny * 2, 1.0], dtype=np.float32)
    opt.load_state_dict({**opt.state_dict(), "t": FLUSH_EVERY - 2, "state": {"b": b}})
    zero = np.zeros(4, dtype=np.float32)
    opt.step(zero)  # t = FLUSH_EVERY - 1: no flush
    assert opt.t == FLUSH_EVERY - 1 and _subnormal(opt.state["b"])[:2].all()
    opt.step(zero)  # t = FLUSH_EVERY: updated, then flushed
    assert opt.t == FLUSH_EVERY
    np.testing.assert_array_equal(opt.state["b"], [0, 0, np.float32(0.9) * np.float32(0.9) * b[2],
                                                   np.float32(0.9) * np.float32(0.9)])
