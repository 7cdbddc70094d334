"""Each registered loss against SciPy, scikit-learn and torch's definitions (written here independently with
NumPy), and each loss's output delta against central differences of the loss with respect to the logits; the
registry's contract checks."""

import numpy as np
import pytest
from scipy.special import expit, logsumexp, softmax
from sklearn.metrics import mean_poisson_deviance

from microdl.nn import get_loss, losses, register_loss
from tests.nn.conftest import LOSSES, targets

RNG = np.random.default_rng(5)
PARAMS = {"huber": {"delta": 0.7}}


def _p(loss, **given):
    return np.array(list(losses.loss_parameters(loss, given).values()), dtype=np.float64)


def _pair(loss, z, y, p=None):
    out = np.array(z, dtype=float)
    ell = get_loss(loss).value(out, np.asarray(y, dtype=float), True, _p(loss) if p is None else p)
    return ell, out


def _one_hot_or(loss, y, k):
    return np.eye(k)[y] if loss == "cross_entropy" else y


def _expected(loss, z, y, p):
    """torch / scikit-learn / SciPy's definitions, summed over the outputs."""
    r = z - y
    if loss == "cross_entropy":
        return logsumexp(z) - y @ z, softmax(z)
    if loss == "binary_cross_entropy":
        return np.sum(np.logaddexp(0, z) - y * z), expit(z)
    if loss == "squared_error":
        return 0.5 * np.sum(r**2), z
    if loss == "huber":  # torch.nn.HuberLoss(reduction="sum", delta)
        d = p[0]
        return np.sum(np.where(np.abs(r) < d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d))), z
    if loss == "absolute_error":  # torch.nn.L1Loss(reduction="sum")
        return np.sum(np.abs(r)), z
    assert loss == "poisson"  # half the Poisson deviance, summed over outputs
    out = np.exp(z)
    return sum(mean_poisson_deviance([yk], [ok]) / 2 for yk, ok in zip(y, out)), out


def test_every_builtin_has_an_oracle():
    assert set(LOSSES) == {"cross_entropy", "binary_cross_entropy", "squared_error", "poisson", "huber",
                           "absolute_error"}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("with_params", [False, True])
def test_loss_and_output_match_the_definitions(loss, with_params):
    p = _p(loss, **(PARAMS.get(loss, {}) if with_params else {}))
    for z in (RNG.normal(size=4) * 3, np.array([1e4, -1e4, 0.0, 5.0])):
        y = _one_hot_or(loss, targets(loss, 1, 4, RNG)[0], 4)
        if loss == "poisson":
            z = np.clip(z, -20, 20)  # e^z must stay finite for a finite loss
        ell, out = _pair(loss, z, y, p)
        expected, expected_out = _expected(loss, z, y, p)
        assert ell == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(out, expected_out, rtol=1e-14)
        assert np.isfinite(ell)  # huge logits are no problem: the losses work from the logits


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("with_params", [False, True])
def test_output_delta_is_the_gradient_of_the_loss(loss, with_params):
    p = _p(loss, **(PARAMS.get(loss, {}) if with_params else {}))
    entry = get_loss(loss)
    for scale in (0.3, 3.0):  # small residuals (Huber's quadratic part) and large ones (its linear part)
        z = RNG.normal(size=3) * scale
        y = _one_hot_or(loss, targets(loss, 1, 3, RNG)[0], 3)
        _, out = _pair(loss, z, y, p)
        h = 1e-6
        for k in range(3):
            zp, zm = z.copy(), z.copy()
            zp[k] += h
            zm[k] -= h
            numeric = (_expected(loss, zp, y, p)[0] - _expected(loss, zm, y, p)[0]) / (2 * h)
            assert entry.delta(out[k], y[k], 1.0, p) == pytest.approx(numeric, rel=1e-6, abs=1e-9)
            assert entry.delta(out[k], y[k], 0.25, p) == pytest.approx(0.25 * numeric, rel=1e-6, abs=1e-9)


def test_canonical_delta_and_subgradients():
    assert losses.canonical_delta(0.75, 0.25, 2.0, _p("squared_error")) == 1.0  # (a - y) w_i/Σw
    l1, huber = get_loss("absolute_error"), get_loss("huber")
    assert l1.delta(1.0, 1.0, 1.0, _p("absolute_error")) == 0.0  # torch: sign(0) = 0
    assert np.isnan(l1.delta(np.nan, 1.0, 1.0, _p("absolute_error")))  # a diverging run shows it
    assert np.isnan(huber.delta(np.nan, 1.0, 1.0, _p("huber")))
    assert huber.delta(5.0, 0.0, 0.5, _p("huber", delta=2.0)) == 1.0  # clipped at δ, times c


def test_without_targets_only_the_output_is_written():
    z = np.array([0.5, -1.0, 2.0])
    out = z.copy()
    get_loss("cross_entropy").value(out, out, False, _p("cross_entropy"))
    np.testing.assert_allclose(out, softmax(z), rtol=1e-14)


def test_registration_checks_the_contract(restore_registries):
    def value(z, y, has_y, p):
        return 0.0

    def delta_tuple(a, y, c, p):
        return (a - y, c)

    with pytest.raises(TypeError, match=r"bad: delta \(delta_tuple\) must return one real number; got tuple"):
        register_loss("bad", value, delta_tuple, output="identity", targets="real")
    with pytest.raises(TypeError, match=r"bad: value \(<lambda>\) must take 4 arguments"):
        register_loss("bad", lambda z, y, p: 0.0, losses.canonical_delta, output="identity", targets="real")
    with pytest.raises(ValueError, match="targets must be one of"):
        register_loss("bad", value, losses.canonical_delta, output="identity", targets="labels")
    with pytest.raises(ValueError, match="must be positive"):
        losses.loss_parameters("huber", {"delta": -1})
    assert "bad" not in losses.loss_names()
