"""Each registered activation against torch's functional definition, written here independently with
NumPy/SciPy, and each derivative against central differences of the activation, in float64; the registry's
contract checks and parameters."""

import math

import numpy as np
import pytest
from scipy.special import erf, expit

from microdl.nn import activations as act
from microdl.nn import get_activation, register_activation
from tests.nn.conftest import ACTIVATIONS

Z = np.concatenate([np.linspace(-6, 6, 41) + 0.013, [-800.0, -30.0, 30.0, 800.0]])


def _p(name, **given):
    return np.array(list(act.activation_parameters(name, given).values()), dtype=np.float64)


# torch.nn.functional's definitions (docs of GELU, SiLU, ELU, LeakyReLU), not microdl's code
ORACLES = {
    "identity": lambda z, p: z,
    "relu": lambda z, p: np.maximum(z, 0.0),
    "leaky_relu": lambda z, p: np.where(z >= 0, z, p[0] * z),
    "tanh": lambda z, p: np.tanh(z),
    "sigmoid": lambda z, p: expit(z),
    "elu": lambda z, p: np.where(z > 0, z, p[0] * (np.exp(np.minimum(z, 0)) - 1)),
    "gelu": lambda z, p: z * 0.5 * (1 + erf(z / np.sqrt(2))),
    "silu": lambda z, p: z * expit(z),
}
PARAMS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}}


def test_every_builtin_has_an_oracle():
    assert set(ACTIVATIONS) == set(ORACLES)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("with_params", [False, True])
def test_activation_matches_torchs_definition(name, with_params):
    a = get_activation(name)
    p = _p(name, **(PARAMS.get(name, {}) if with_params else {}))
    got = np.array([a.f(z, p) for z in Z])
    np.testing.assert_allclose(got, ORACLES[name](Z, p), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("with_params", [False, True])
def test_derivative_matches_central_differences(name, with_params):
    a = get_activation(name)
    p = _p(name, **(PARAMS.get(name, {}) if with_params else {}))
    h = 1e-6
    for z in Z[:41]:  # |z| <= 6, off the kinks at 0
        numeric = (ORACLES[name](z + h, p) - ORACLES[name](z - h, p)) / (2 * h)
        assert a.df(z, a.f(z, p), p) == pytest.approx(numeric, rel=1e-6, abs=1e-9), z


def test_from_output_activations_ignore_z():
    """An activation registered with from_output=True may be given the output in place of z (the fast passes
    do that); its derivative must then not change."""
    for name in ACTIVATIONS:
        a = get_activation(name)
        if a.from_output:
            p = _p(name)
            for z in Z:
                out = a.f(z, p)
                assert a.df(z, out, p) == a.df(out, out, p)


def test_kinks_and_nan():
    p = _p("leaky_relu")
    assert get_activation("relu").df(0.0, 0.0, _p("relu")) == 0.0
    assert get_activation("leaky_relu").df(0.0, 0.0, p) == pytest.approx((1 + 0.01) / 2)
    assert get_activation("elu").df(0.0, 0.0, _p("elu", alpha=0.5)) == 0.5  # torch's elu_backward: α at 0
    for name in ACTIVATIONS:  # a diverging run's NaN passes through every map
        assert math.isnan(get_activation(name).f(math.nan, _p(name)))


def test_parameters_are_checked():
    with pytest.raises(ValueError, match=r"takes the parameters \['alpha'\]"):
        act.activation_parameters("elu", {"alpha": 1.0, "beta": 2.0})
    with pytest.raises(ValueError, match="must be positive"):
        act.activation_parameters("elu", {"alpha": 0.0})
    with pytest.raises(ValueError, match="finite real"):
        act.activation_parameters("leaky_relu", {"negative_slope": float("nan")})
    with pytest.raises(TypeError, match="dict or None"):
        act.activation_parameters("elu", 0.5)
    with pytest.raises(ValueError, match="unknown activation .swish2.; choose one of identity, relu"):
        get_activation("swish2")


def test_registration_checks_the_contract(restore_registries):
    def f(z, p):
        return z

    def df_missing_a(z, p):
        return 1.0

    def df_array(z, a, p):
        return np.ones(2)

    with pytest.raises(TypeError, match=r"bad: df \(df_missing_a\) must take 3 arguments \(z, a, p\)"):
        register_activation("bad", f, df_missing_a)
    with pytest.raises(TypeError, match=r"bad: df \(df_array\) must return one real number; got ndarray"):
        register_activation("bad", f, df_array)
    with pytest.raises(ValueError, match="identifier"):
        register_activation("no spaces", f, f)
    assert "bad" not in act.activation_names()
