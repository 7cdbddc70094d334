"""Each activation against NumPy/SciPy, and each derivative (computed from the output) against central
differences of the activation."""

import math

import numpy as np
import pytest
from scipy.special import expit

from microdl.nn import activations as act

Z = np.concatenate([np.linspace(-6, 6, 41) + 0.013, [-800.0, -30.0, 30.0, 800.0]])
ORACLES = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": np.tanh,
    "sigmoid": expit,
}


@pytest.mark.parametrize("name", act.ACTIVATIONS)
def test_activation_matches_numpy(name):
    code = act.ACTIVATION_CODES[name]
    got = np.array([act.activate(code, z) for z in Z])
    np.testing.assert_allclose(got, ORACLES[name](Z), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", act.ACTIVATIONS)
def test_derivative_from_the_output_matches_central_differences(name):
    code = act.ACTIVATION_CODES[name]
    h = 1e-6
    for z in Z[:41]:  # |z| <= 6, off the kink of relu at 0
        numeric = (act.activate(code, z + h) - act.activate(code, z - h)) / (2 * h)
        assert act.derivative(code, act.activate(code, z)) == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_kinks_and_nan():
    assert act.derivative(act.RELU, 0.0) == 0.0
    assert act.derivative(act.LEAKY_RELU, 0.0) == pytest.approx((1 + act.LEAKY_SLOPE) / 2)
    for code in act.ACTIVATION_CODES.values():  # a diverging run's NaN passes through every map
        assert math.isnan(act.activate(code, math.nan))
