"""Each output/loss pair against SciPy and scikit-learn, and the one output delta against central differences
of the loss with respect to the logits."""

import numpy as np
import pytest
from scipy.special import expit, logsumexp, softmax
from sklearn.metrics import mean_poisson_deviance

from microdl.nn import losses
from tests.nn.conftest import targets

RNG = np.random.default_rng(5)


def _pair(loss, z, y):
    out = np.array(z, dtype=float)
    ell = losses.loss_and_output(losses.LOSS_CODES[loss], out, np.asarray(y, dtype=float), True)
    return ell, out


def _one_hot_or(loss, y, k):
    return np.eye(k)[y] if loss == "cross_entropy" else y


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_loss_and_output_match_scipy_and_sklearn(loss):
    for z in (RNG.normal(size=4) * 3, np.array([1e4, -1e4, 0.0, 5.0])):
        y = _one_hot_or(loss, targets(loss, 1, 4, RNG)[0], 4)
        if loss == "poisson":
            z = np.clip(z, -20, 20)  # e^z must stay finite for a finite loss
        ell, out = _pair(loss, z, y)
        if loss == "cross_entropy":
            expected, expected_out = logsumexp(z) - y @ z, softmax(z)
        elif loss == "binary_cross_entropy":
            expected, expected_out = np.sum(np.logaddexp(0, z) - y * z), expit(z)
        elif loss == "squared_error":
            expected, expected_out = 0.5 * np.sum((z - y) ** 2), z
        else:  # half the Poisson deviance, summed over outputs
            expected_out = np.exp(z)
            expected = sum(mean_poisson_deviance([yk], [ok]) / 2 for yk, ok in zip(y, expected_out))
        assert ell == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(out, expected_out, rtol=1e-14)
        assert np.isfinite(ell)  # huge logits are no problem: the losses work from the logits


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_output_delta_is_the_gradient_of_the_loss(loss):
    z = RNG.normal(size=3)
    y = _one_hot_or(loss, targets(loss, 1, 3, RNG)[0], 3)
    _, out = _pair(loss, z, y)
    h = 1e-6
    for k in range(3):
        zp, zm = z.copy(), z.copy()
        zp[k] += h
        zm[k] -= h
        numeric = (_pair(loss, zp, y)[0] - _pair(loss, zm, y)[0]) / (2 * h)
        assert losses.output_delta(out[k], y[k], 1.0) == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    assert losses.output_delta(0.75, 0.25, 2.0) == 1.0  # (a - y) w_i/Σw


def test_without_targets_only_the_output_is_written():
    z = np.array([0.5, -1.0, 2.0])
    out = z.copy()
    losses.loss_and_output(losses.CROSS_ENTROPY, out, out, False)
    np.testing.assert_allclose(out, softmax(z), rtol=1e-14)
