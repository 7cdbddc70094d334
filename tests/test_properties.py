"""Property tests of the public API (Hypothesis): random shapes, dtypes, NaN and infinity placements, sample
weights, hyperparameters and batch sizes, for the model, fit, the optimizers and the estimators.

Each property has the same two outcomes: either a clear ``ValueError``/``TypeError`` before any work, or a
finite model whose loss agrees with the textbook NumPy pass (:mod:`microdl.nn.reference`). The examples are few
and small, so the file runs in seconds.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdl.nn import ACTIVATIONS, LOSSES, MLP, reference
from microdl.optim import OPTIMIZERS, Optimizer, make_optimizer
from microdl.train import DivergenceWarning, fit

#: The elementwise optimizers (L-BFGS has no learning rate and drives its own iterations).
ELEMENTWISE = sorted(name for name, cls in OPTIMIZERS.items() if issubclass(cls, Optimizer))
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Values a careless caller passes: ordinary, extreme, non-finite, of the wrong kind.
SPECIALS = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 1e300, math.nan, math.inf, -math.inf]
ODD_VALUES = st.one_of(st.sampled_from(SPECIALS), st.floats(-10, 10), st.integers(-3, 3), st.booleans(),
                       st.sampled_from(["1e-3", None, (0.9,), [1, 2]]))


def _targets(loss, rng, m, k):
    if loss == "cross_entropy":
        return rng.integers(0, k, m)
    if loss == "binary_cross_entropy":
        return (rng.random((m, k)) > 0.5).astype(float)
    if loss == "poisson":
        return rng.poisson(1.0, (m, k)).astype(float)
    return rng.normal(size=(m, k))


@st.composite
def problems(draw):
    """A network, data for it, and maybe a NaN or an infinity planted in X, y or the sample weights."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    loss = draw(st.sampled_from(LOSSES))
    if loss == "cross_entropy":
        sizes[-1] = max(sizes[-1], 2)
    net = MLP(sizes, activation=draw(st.sampled_from(ACTIVATIONS)), loss=loss,
              alpha=draw(st.sampled_from([0.0, 0.1, 3.0])), dtype=draw(st.sampled_from(["float32", "float64"])),
              random_state=draw(st.integers(0, 2**16)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    m = draw(st.integers(1, 9))
    X = rng.normal(size=(m, sizes[0])) * draw(st.sampled_from([1.0, 1e3]))
    y = _targets(loss, rng, m, sizes[-1])
    w = None if draw(st.booleans()) else rng.random(m) + draw(st.sampled_from([0.0, 0.5]))
    where = draw(st.sampled_from([None, "X", "y", "w"]))
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if where == "X":
        X[rng.integers(m), rng.integers(sizes[0])] = bad
    elif where == "y":
        y = np.asarray(y, dtype=float)
        y.flat[rng.integers(y.size)] = bad
    elif where == "w":
        w = rng.random(m) if w is None else w
        w[rng.integers(m)] = bad
    return net, X, y, w, where


@SETTINGS
@given(problems())
def test_loss_and_grad_raises_clearly_or_agrees_with_the_reference(problem):
    net, X, y, w, planted = problem
    try:
        loss = net.loss_and_grad(X, y, w)
    except (ValueError, TypeError) as exc:
        assert str(exc)  # a message that says what is wrong
        return
    assert planted is None, f"a {planted} with a NaN or infinity was accepted"
    assert math.isfinite(loss) and np.all(np.isfinite(net.grads))
    expected, dL_dW, dL_db = reference.loss_and_grad(net, X, net.encode_targets(y), w)
    tol = 1e-4 if net.dtype == np.float32 else 1e-9
    assert loss == pytest.approx(expected, rel=tol, abs=tol)
    np.testing.assert_allclose(net.dL_db[-1], dL_db[-1], rtol=tol * 10, atol=tol * 10)


@SETTINGS
@given(problems(), st.sampled_from(sorted(OPTIMIZERS)), st.sampled_from([1e-3, 0.1, 10.0, 1e6]),
       st.one_of(st.none(), st.integers(1, 12)), st.integers(1, 3), st.booleans())
def test_fit_raises_clearly_or_ends_finite(problem, name, lr, batch_size, epochs, shuffle):
    net, X, y, w, planted = problem
    opt = make_optimizer(name, net.params, **({} if name == "lbfgs" else {"lr": lr}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # a diverged run is told in its history
            history = fit(net, opt, X, y, sample_weight=w, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                          random_state=0)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert planted is None, f"a {planted} with a NaN or infinity was accepted"
    assert np.all(np.isfinite(net.params)), history.stop_reason
    assert all(np.all(np.isfinite(s)) for s in opt.state.values())
    assert history.diverged or np.all(np.isfinite(history.train_loss))
    if not history.diverged:
        assert np.all(np.isfinite(net.forward(X if planted != "X" else np.zeros_like(X))))


@SETTINGS
@given(st.sampled_from(ELEMENTWISE), st.dictionaries(
    st.sampled_from(["lr", "momentum", "weight_decay", "eps", "alpha", "rho", "lr_decay", "dampening"]),
    ODD_VALUES, max_size=3))
def test_optimizer_hyperparameters_are_refused_or_give_finite_steps(name, hyper):
    params = np.array([0.5, -1.0, 2.0])
    try:
        opt = make_optimizer(name, params, backend="cpu", **hyper)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    for _ in range(3):
        opt.step(np.array([0.1, -0.2, 0.3]))
    assert np.all(np.isfinite(params)) or any(v in (1e300, 1e30) for v in hyper.values())


@SETTINGS
@given(st.sampled_from(["sgd", "adam", "lbfgs"]), st.dictionaries(
    st.sampled_from(["alpha", "learning_rate_init", "momentum", "tol", "batch_size", "max_iter", "beta_1",
                     "epsilon", "n_iter_no_change", "validation_fraction"]), ODD_VALUES, max_size=2),
    st.integers(0, 2**16))
def test_estimators_raise_clearly_or_predict_known_labels(solver, params, seed):
    from microdl.sklearn import MLPClassifier

    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(40, 3)), rng.choice(["a", "b", "c"], 40)
    est = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5, random_state=seed, **params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert all(np.all(np.isfinite(W)) for W in est.coefs_)
    assert set(est.predict(X)) <= {"a", "b", "c"}
