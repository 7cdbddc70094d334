"""The checked-in dispatch of microdl's own formulas (microdl/nn/_dispatch.py) is what microdl.nn.formulas
generates, and it calls the formula each registry code names; a user's formula extends the compiled dispatch
without changing the file."""

import math

import numpy as np
import pytest

from microdl.nn import _dispatch, activations, formulas, get_activation, get_loss, losses, register_activation
from tests.nn.conftest import ACTIVATIONS, LOSSES

P = formulas.as_parameters([0.3])
Z = (-2.5, -0.0, 0.0, 0.7, 3.0)


def test_the_checked_in_dispatch_is_what_the_generator_writes():
    from pathlib import Path

    path = Path(formulas.__file__).resolve().parents[2] / formulas.DISPATCH_MODULE
    assert path.read_text() == formulas.dispatch_module_text(), (
        "microdl/nn/_dispatch.py is stale: run python -c 'from microdl.nn.formulas import write_dispatch_module; "
        "write_dispatch_module()'")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_code_runs_its_activation(name):
    a = get_activation(name)
    for z in Z:
        out = a.f(z, P)
        assert _dispatch.activate(a.code, z, P) == out
        assert _dispatch.derivative(a.code, z, out, P) == a.df(z, out, P)
        if a.from_output:
            assert _dispatch.activate_from_output(a.code, z, P) == out
            assert _dispatch.derivative_from_output(a.code, out, P) == a.df(out, out, P)
        else:
            assert _dispatch.activate_from_z(a.code, z, P) == out
            assert _dispatch.derivative_from_z(a.code, z, out, P) == a.df(z, out, P)


@pytest.mark.parametrize("name", LOSSES)
def test_each_code_runs_its_loss(name):
    loss = get_loss(name)
    z, y = np.array([0.4, -1.2, 2.0]), np.array([0.0, 1.0, 0.5])
    expected_z, got_z = z.copy(), z.copy()
    assert _dispatch.loss_and_output(loss.code, got_z, y, True, P) == loss.value(expected_z, y, True, P)
    np.testing.assert_array_equal(got_z, expected_z)
    assert _dispatch.output_delta(loss.code, 0.8, 0.5, 0.25, P) == loss.delta(0.8, 0.5, 0.25, P)


def test_a_users_activation_extends_the_compiled_dispatch_not_the_file(restore_registries):
    text = formulas.dispatch_module_text()

    def cube(z, p):
        return z * z * z

    def cube_derivative(z, a, p):
        return 3.0 * z * z

    entry = register_activation("cube_test", cube, cube_derivative)
    assert formulas.dispatch_module_text() == text
    python = formulas.compiled(lambda fn: fn, "plain Python")  # the dispatch, compiled by nothing
    assert python.activate(entry.code, 2.0, P) == 8.0
    assert python.derivative_from_z(entry.code, 2.0, 8.0, P) == 12.0
    assert python.activate(get_activation("tanh").code, 0.5, P) == math.tanh(0.5)
    assert python.loss_and_output.__module__ == formulas.__name__
    assert "# cube_test" in python.__doc__  # (the compiled module's source, with a branch for it)
    assert {activations.__name__, losses.__name__} >= {f.__module__ for f in vars(_dispatch).values()
                                                        if callable(f) and f.__module__ != _dispatch.__name__}
