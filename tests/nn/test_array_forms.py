"""The array forms of the formulas (NOTE [array forms] in microdl.nn.activations) against their scalar forms,
element by element, over the whole range (kinks, both zeros, large magnitudes, infinities, NaN) and with
parameters; the registration's checks of a user's array form; and the NumPy backend's choice
(microdl.nn.choose_backend), a verdict tested as a table."""

import numpy as np
import pytest

from microdl.nn import (
    MLP,
    NUMPY_BATCH_WORK,
    NUMPY_MAX_WORK,
    choose_backend,
    fit_work,
    get_activation,
    get_loss,
    losses,
    register_activation,
    register_loss,
)
from microdl.nn import activations as act
from tests.nn.conftest import ACTIVATIONS, LOSSES, targets

Z = np.concatenate([np.linspace(-8, 8, 161), [-800.0, -30.0, -1e-300, -0.0, 0.0, 1e-300, 30.0, 800.0,
                                               -np.inf, np.inf, np.nan]])
ACTIVATION_PARAMS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}}
LOSS_PARAMS = {"huber": {"delta": 0.7}}


def _vector(params):
    return np.array(list(params.values()), dtype=np.float64)


def _scalar_map(fn, *arrays):
    return np.array([fn(*values) for values in zip(*arrays)], dtype=np.float64)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("with_params", [False, True])
def test_activation_array_forms_equal_the_scalar_forms(name, with_params):
    a = get_activation(name)
    assert a.f_array is not None and a.df_array is not None, f"{name} has no array form"
    p = _vector(act.activation_parameters(name, ACTIVATION_PARAMS.get(name) if with_params else None))
    with np.errstate(all="ignore"):  # (inf − inf in the scalar forms as in the array forms)
        scalar = _scalar_map(lambda z: a.f(float(z), p), Z)
        z_in = Z.copy()
        array = a.f_array(z_in, p)
        np.testing.assert_array_equal(z_in, Z)  # the input is left alone
        np.testing.assert_allclose(array, scalar, rtol=1e-14, atol=1e-300, equal_nan=True)
        d_scalar = _scalar_map(lambda z, out: a.df(float(z), float(out), p), Z, scalar)
        np.testing.assert_allclose(a.df_array(Z, scalar, p), d_scalar, rtol=1e-14, atol=1e-300, equal_nan=True)
    # in a pass they meet 2-D arrays
    assert a.f_array(Z[:160].reshape(16, 10), p).shape == (16, 10)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("with_params", [False, True])
def test_loss_array_forms_equal_the_scalar_forms(name, with_params):
    loss = get_loss(name)
    assert loss.value_array is not None and loss.delta_array is not None, f"{name} has no array form"
    p = _vector(losses.loss_parameters(name, LOSS_PARAMS.get(name) if with_params else None))
    rng = np.random.default_rng(7)
    m, k = 9, 3
    Z = rng.normal(scale=4.0, size=(m, k))
    Z[0] = [40.0, -40.0, 0.0]  # a saturated row
    Z[1, 1] = np.nan  # a diverged row stays NaN
    Y = MLP((1, k), loss=name).encode_targets(targets(name, m, k, rng))
    C = rng.random((m, 1))
    with np.errstate(all="ignore"):
        for has_y in (True, False):
            out_scalar, out_array = Z.copy(), Z.copy()
            ell = np.array([loss.value(out_scalar[i], Y[i] if has_y else out_scalar[i], has_y, p) for i in range(m)])
            ell_array = loss.value_array(out_array, Y if has_y else out_array, has_y, p)
            np.testing.assert_allclose(out_array, out_scalar, rtol=1e-13, atol=1e-300, equal_nan=True)
            if has_y:  # (without targets ℓ is meaningless)
                np.testing.assert_allclose(ell_array, ell, rtol=1e-13, atol=1e-300, equal_nan=True)
        delta = np.array([[loss.delta(out_scalar[i, j], Y[i, j], C[i, 0], p) for j in range(k)] for i in range(m)])
        np.testing.assert_allclose(loss.delta_array(out_scalar, Y, C, p), delta, rtol=1e-14, atol=1e-300,
                                   equal_nan=True)


def test_a_wrong_array_form_is_refused_at_registration(restore_registries):
    def f(z, p):
        return z if z > 0 else 0.0

    def df(z, a, p):
        return 1.0 if z > 0 else 0.0

    def f_off_at_the_kink(z, p):  # the kink on the wrong side: 0 is sent to 1e-3, not 0
        return np.where(z >= 0, np.maximum(z, 1e-3), 0.0)

    def f_scalar_only(z, p):
        return f(z, p)  # (an `if` on an array)

    def f_wrong_shape(z, p):
        return np.maximum(z, 0.0).sum()

    with pytest.raises(ValueError, match=r"mine: f_array \(f_off_at_the_kink\) disagrees with the scalar form"):
        register_activation("mine", f, df, f_array=f_off_at_the_kink)
    with pytest.raises(TypeError, match=r"mine: f_array \(f_scalar_only\) failed on arrays: ValueError"):
        register_activation("mine", f, df, f_array=f_scalar_only)
    with pytest.raises(ValueError, match=r"must return an array of shape \(12,\); got \(\)"):
        register_activation("mine", f, df, f_array=f_wrong_shape)
    with pytest.raises(TypeError, match="df_array must be a function"):
        register_activation("mine", f, df, df_array=1.0)
    assert "mine" not in act.activation_names()
    with pytest.raises(ValueError, match=r"mine: delta_array \(_twice\) disagrees"):
        register_loss("mine", losses.squared_error, losses.canonical_delta, output="identity", targets="real",
                      delta_array=_twice)
    with pytest.raises(ValueError, match="value_array .* must leave the outputs in Z"):
        register_loss("mine", losses.poisson, losses.canonical_delta, output="exp", targets="non_negative",
                      value_array=_poisson_without_outputs)
    assert "mine" not in losses.loss_names()


def _twice(a, y, c, p):  # twice the canonical delta
    return 2 * (a - y) * c


def _poisson_without_outputs(Z, Y, has_y, p):
    return losses.poisson_array(Z.copy(), Y, has_y, p)


def test_a_users_activation_without_array_forms_runs_on_numpy_element_by_element(restore_registries):
    """No array form: the NumPy pass maps the scalar form (np.vectorize) and gives the network's loss as written
    out here with NumPy, and the automatic choice takes the kernels, which are faster for it."""
    def softsign(z, p):
        return z / (1.0 + abs(z))

    def softsign_derivative(z, a, p):
        return 1.0 / ((1.0 + abs(z)) ** 2)

    register_activation("softsign_test", softsign, softsign_derivative)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    net = MLP((3, 4, 2), activation="softsign_test", random_state=0, backend="numpy")
    Z1 = X @ net.weights[0] + net.biases[0]
    logits = (Z1 / (1 + np.abs(Z1))) @ net.weights[1] + net.biases[1]
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(20), y])
    assert net.loss_and_grad(X, y) == pytest.approx(expected, rel=1e-12)
    assert choose_backend((3, 4, 2), 20, 1, activation="softsign_test") == "numba"
    assert choose_backend((3, 4, 2), 20, 1, activation="relu") == "numpy"


# -- the choice: a verdict, so a table -----------------------------------------------------------------------
DIGITS = (64, 100, 10)  # 7,510 parameters, MLPClassifier's default network on digits


@pytest.mark.parametrize("n_samples, epochs, batch_size, device, expected", [
    (1797, 1, 200, "cpu", "numpy"),     # the start-up benchmark's fit
    (1797, 100, 200, "cpu", "numpy"),   # digits for 100 epochs: 1.71e9 units, within the budget
    (1797, 200, 200, "cpu", "numba"),   # scikit-learn's default max_iter: the kernels repay their loading
    (1797, 30, 1, "cpu", "numba"),      # online SGD: 53,910 batches of Python calls
    (1797, 1, 200, "cuda", "numba"),    # the NumPy backend runs on the CPU only
    (60000, 1, 200, "cpu", "numpy"),    # MNIST-sized for one epoch: 5.7e8 units, done before Numba loads
    (60000, 5, 200, "cpu", "numba"),    # ... and for five
    (0, 5, None, "cpu", "numpy"),
])
def test_choose_backend(n_samples, epochs, batch_size, device, expected):
    assert choose_backend(DIGITS, n_samples, epochs, batch_size, device=device) == expected


def test_the_choice_turns_at_the_named_constant():
    n = MLP(DIGITS).n_params
    assert fit_work(n, 1797, 3, 200) == 3 * (1797 * n + 9 * NUMPY_BATCH_WORK)
    assert fit_work(n, 1797, 3, None) == 3 * (1797 * n + NUMPY_BATCH_WORK)  # the full batch: one batch
    # the largest whole number of full-batch epochs within NUMPY_MAX_WORK, and one more
    epochs = NUMPY_MAX_WORK // fit_work(n, 1797, 1)
    assert choose_backend(DIGITS, 1797, epochs) == "numpy"
    assert choose_backend(DIGITS, 1797, epochs + 1) == "numba"


def test_choose_backend_checks_its_arguments():
    with pytest.raises(ValueError, match="n_samples"):
        choose_backend(DIGITS, -1, 1)
    with pytest.raises(ValueError, match="batch_size"):
        choose_backend(DIGITS, 10, 1, batch_size=0)
    with pytest.raises(ValueError, match="unknown device"):
        choose_backend(DIGITS, 10, 1, device="tpu")
    with pytest.raises(ValueError, match="unknown activation"):
        choose_backend(DIGITS, 10, 1, activation="nope")
