"""ONNX export (:mod:`microdl.onnx`): onnxruntime's outputs against ``predict``/``predict_proba``.

The oracle is the fitted estimator itself: the exported graph, run by onnxruntime (an outside implementation of
every operator), must give its probabilities and predictions to float32 or float64 rounding, for every
activation, every loss, both precisions, binary, multiclass, string labels, single and multi-output regression
and a Pipeline. Skipped without the ``onnx`` extra.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skl2onnx")
rt = pytest.importorskip("onnxruntime")

from microdl import onnx as mdonnx  # noqa: E402
from microdl.nn import ACTIVATIONS, activation_names  # noqa: E402
from microdl.sklearn import _ACTIVATION_ALIASES, MLPClassifier, MLPRegressor  # noqa: E402

#: float32 graphs round each layer: a few units in the last place of the outputs (measured: at most 1.2e-7 on
#: probabilities, 2e-6 relative on regression); float64 agrees to the last bits.
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}
ESTIMATOR_ACTIVATIONS = sorted({*_ACTIVATION_ALIASES, *activation_names()})


def _tolerance(activation, dtype):
    # onnxruntime's Erf is float32 only: a float64 GELU graph computes erf in float32 (microdl.onnx._gelu)
    return 2e-6 if activation == "gelu" else TOLERANCE[dtype]
DTYPES = [np.float32, np.float64]


def _run(model, X):
    session = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _classification(n_classes, dtype):
    X, y = make_classification(120, 6, n_informative=4, n_classes=n_classes, random_state=0)
    return X.astype(dtype), y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("activation", ESTIMATOR_ACTIVATIONS)
def test_classifier_matches_predict_proba(activation, n_classes, dtype):
    X, y = _classification(n_classes, dtype)
    clf = _fit(MLPClassifier((7, 5), activation=activation, max_iter=30, random_state=0), X, y)
    labels, proba = _run(mdonnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)
    assert proba.dtype == dtype and proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=_tolerance(activation, dtype))
    np.testing.assert_array_equal(labels, clf.predict(X))


def test_string_labels_and_zipmap():
    X, y = _classification(3, np.float32)
    names = np.array(["ant", "bee", "cat"])[y]
    clf = _fit(MLPClassifier((5,), activation="leaky_relu", max_iter=30, random_state=0), X, names)
    labels, proba = _run(mdonnx.to_onnx(clf, X[:1]), X)  # zipmap on: a list of {label: probability}
    np.testing.assert_array_equal(labels, clf.predict(X))
    expected = clf.predict_proba(X)
    for row, want in zip(proba, expected):
        np.testing.assert_allclose([row[c] for c in clf.classes_], want, atol=TOLERANCE[np.float32])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("loss", ["squared_error", "poisson", "huber", "absolute_error"])
@pytest.mark.parametrize("activation", ESTIMATOR_ACTIVATIONS)
def test_regressor_matches_predict(activation, loss, n_outputs, dtype):
    X, y = make_regression(100, 5, n_targets=n_outputs, noise=0.1, random_state=1)
    y = np.exp(y / np.abs(y).max()) if loss == "poisson" else y / np.abs(y).max()
    X = X.astype(dtype)
    reg = _fit(MLPRegressor(loss, (6,), activation=activation, max_iter=30, random_state=0), X, y)
    (out,) = _run(mdonnx.to_onnx(reg, X[:1]), X)
    assert out.dtype == dtype and out.shape == (len(X), n_outputs)  # (n, 1) for one output, as skl2onnx
    want = reg.predict(X).reshape(len(X), n_outputs)
    tol = _tolerance(activation, dtype)
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("activation", "params"), [("leaky_relu", {"negative_slope": 0.3}),
                                                    ("leaky_relu", {"negative_slope": 1.5}),
                                                    ("elu", {"alpha": 0.5})])
def test_the_models_own_activation_parameters_are_exported(activation, params, dtype):
    """A parameter is the model's (``activation_params``), not a module default: a graph built with the default
    slope or alpha would differ from predict by far more than the tolerance."""
    X, y = _classification(3, dtype)
    clf = _fit(MLPClassifier((7, 5), activation=activation, activation_params=params, max_iter=30,
                             random_state=0), X, y)
    _, proba = _run(mdonnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_pipeline_with_scaler(dtype):
    X, y = _classification(3, dtype)
    X = X * 50 + 7  # so the scaler matters
    pipe = _fit(make_pipeline(StandardScaler(), MLPClassifier((8,), activation="sigmoid", max_iter=40,
                                                              random_state=0)), X, y)
    labels, proba = _run(mdonnx.to_onnx(pipe, X[:1], options={"zipmap": False}), X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=TOLERANCE[dtype] * 5)
    np.testing.assert_array_equal(labels, pipe.predict(X))


def test_converter_choice():
    """skl2onnx's converter exactly where scikit-learn's MLP could be the same network, microdl's elsewhere."""
    X, y = _classification(2, np.float64)
    Xr, yr = make_regression(40, 3, n_targets=2, random_state=0)
    fit = lambda est, X, y: _fit(est.set_params(max_iter=2), X, y)
    assert mdonnx.uses_skl2onnx_converter(fit(MLPClassifier(activation="logistic"), X, y))
    assert not mdonnx.uses_skl2onnx_converter(fit(MLPClassifier(activation="sigmoid"), X, y))
    assert not mdonnx.uses_skl2onnx_converter(fit(MLPClassifier(activation="leaky_relu"), X, y))
    assert mdonnx.uses_skl2onnx_converter(fit(MLPRegressor(), Xr, yr[:, 0]))
    assert not mdonnx.uses_skl2onnx_converter(fit(MLPRegressor(), Xr, yr))
    assert not mdonnx.uses_skl2onnx_converter(fit(MLPRegressor(loss="poisson"), Xr, np.abs(yr[:, 0])))


def test_every_activation_has_a_node_builder():
    assert set(ACTIVATIONS) <= set(mdonnx.ONNX_ACTIVATIONS)
    assert set(_ACTIVATION_ALIASES.values()) <= set(mdonnx.ONNX_ACTIVATIONS)


def test_bad_input():
    with pytest.raises(Exception, match="not fitted"):
        mdonnx.to_onnx(MLPClassifier(), np.zeros((1, 3), np.float32))
    X, y = _classification(2, np.float32)
    clf = _fit(MLPClassifier((3,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match="to_onnx needs X"):
        mdonnx.to_onnx(clf)
    builders = dict(mdonnx.ONNX_ACTIVATIONS)
    try:
        del mdonnx.ONNX_ACTIVATIONS["relu"]
        with pytest.raises(ValueError, match="cannot export activation 'relu'"):
            mdonnx.to_onnx(clf, X[:1])
    finally:
        mdonnx.ONNX_ACTIVATIONS.update(builders)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])  # skl2onnx's converter, then microdl's
def test_multilabel(activation):
    X, Y = make_multilabel_classification(80, 6, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    clf = _fit(MLPClassifier((6,), activation=activation, max_iter=30, random_state=0), X, Y)
    labels, proba = _run(mdonnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=TOLERANCE[np.float32])
    np.testing.assert_array_equal(labels, clf.predict(X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout", [0.3, [0.5, 0.1]])
def test_dropout_is_left_out_of_the_graph(dropout, dtype):
    """Dropout acts in training passes only, so the exported graph is the deterministic network ``predict`` runs
    (a graph that kept a random mask, or the 1/(1-p) scale, would miss these probabilities)."""
    X, y = _classification(3, dtype)
    clf = _fit(MLPClassifier((7, 5), dropout=dropout, max_iter=30, random_state=0), X, y)
    labels, proba = _run(mdonnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_array_equal(labels, clf.predict(X))
    assert not any(node.op_type in ("Dropout", "RandomUniform", "RandomUniformLike") for node in
                   mdonnx.to_onnx(clf, X[:1], options={"zipmap": False}).graph.node)
