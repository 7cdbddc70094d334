"""NOTE [subnormal state] in microdl.optim.rules: a state that decays while its gradient is exactly zero is flushed
to zero instead of staying subnormal (it may be subnormal for one step, never two in a row), on every backend
alike, and the parameters still follow the naive oracle (which does not flush) within the float32 tolerance of
the rule tests."""

import numpy as np
import pytest

from microdl.optim import OPTIMIZERS
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
    was_subnormal = {key: np.zeros(8, dtype=bool) for key in opt.state}
    for g in grads:
        opt.step(g.copy())
        for key, state in opt.state.items():
            # a state that has just fallen below tiny is stored once, and 0 from the next step on
            now = _subnormal(state)
            assert not (now & was_subnormal[key]).any(), (key, opt.t, state)
            was_subnormal[key] = now
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
