"""ONNX export of fitted microdl estimators, alone or inside a scikit-learn Pipeline.

:func:`to_onnx` is skl2onnx's ``to_onnx`` after microdl's estimators have been registered with skl2onnx. A
network that scikit-learn's own MLP could be (activations ``relu``, ``tanh``, ``logistic``, ``identity``; a
logistic, softmax or single identity output) goes through skl2onnx's MLP converters unchanged: the weights are
scikit-learn's layout. Everything else goes through microdl's converter, :func:`convert_microdl_mlp`: its hidden
activations come from :data:`ONNX_ACTIVATIONS` (one small node builder per activation) and its output
activations from :data:`ONNX_OUTPUTS` (poisson's ``exp`` among them), and a multi-output regressor keeps its
``(n_samples, n_outputs)`` shape.

Requires the optional extra: ``pip install 'microdl[onnx]'`` (skl2onnx and onnxruntime).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from microdl.sklearn import _ACTIVATION_ALIASES, MLPClassifier, MLPRegressor

try:  # the one guarded import of the extra
    import skl2onnx
    from skl2onnx.common._apply_operation import apply_cast, apply_concat, apply_identity, apply_reshape, apply_sub
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, guess_proto_type
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
        convert_sklearn_mlp_regressor,
    )
    from skl2onnx.proto import onnx_proto
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("microdl.onnx needs the 'onnx' extra: pip install 'microdl[onnx]'") from error

__all__ = ["to_onnx", "convert_microdl_mlp", "ONNX_ACTIVATIONS", "ONNX_OUTPUTS", "uses_skl2onnx_converter"]

#: A node builder: ``(scope, container, input_name) -> output_name`` appends the nodes of one activation.
NodeBuilder = Callable[[Any, Any, str], str]
#: A hidden-layer builder also gets the model's activation parameters (``MLP.activation_params``, complete).
ActivationBuilder = Callable[[Any, Any, str, dict], str]


def _single(op_type: str, **attributes: Any) -> NodeBuilder:
    """A builder for an activation that is one ONNX operator."""
    def build(scope: Any, container: Any, name: str, params: dict | None = None) -> str:
        out = scope.get_unique_variable_name(op_type.lower())
        container.add_node(op_type, [name], out, name=scope.get_unique_operator_name(op_type), **attributes)
        return out
    return build


def _constant(scope: Any, container: Any, dtype: int, value: float) -> str:
    name = scope.get_unique_variable_name("constant")
    container.add_initializer(name, dtype, [], [value])
    return name


def _binary(scope: Any, container: Any, op_type: str, left: str, right: str) -> str:
    out = scope.get_unique_variable_name(op_type.lower())
    container.add_node(op_type, [left, right], out, name=scope.get_unique_operator_name(op_type))
    return out


def _where_positive(scope: Any, container: Any, name: str, negative: str) -> str:
    """``name`` where it is > 0, else ``negative`` (onnxruntime has double kernels for Greater and Where)."""
    zero = _constant(scope, container, container.microdl_dtype, 0.0)
    mask = _binary(scope, container, "Greater", name, zero)
    out = scope.get_unique_variable_name("where")
    container.add_node("Where", [mask, name, negative], out, name=scope.get_unique_operator_name("Where"))
    return out


def _leaky_relu(scope: Any, container: Any, name: str, params: dict) -> str:
    # z for z > 0, slope z otherwise, with the model's own slope (onnxruntime has no double LeakyRelu kernel)
    slope = _constant(scope, container, container.microdl_dtype, params["negative_slope"])
    return _where_positive(scope, container, name, _binary(scope, container, "Mul", name, slope))


def _elu(scope: Any, container: Any, name: str, params: dict) -> str:
    # z for z > 0, alpha (e^z - 1) otherwise (onnxruntime has no double Elu kernel)
    dtype = container.microdl_dtype
    exp = _single("Exp")(scope, container, name)
    expm1 = _binary(scope, container, "Sub", exp, _constant(scope, container, dtype, 1.0))
    negative = _binary(scope, container, "Mul", expm1, _constant(scope, container, dtype, params["alpha"]))
    return _where_positive(scope, container, name, negative)


def _silu(scope: Any, container: Any, name: str, params: dict) -> str:
    return _binary(scope, container, "Mul", name, _single("Sigmoid")(scope, container, name))


def _gelu(scope: Any, container: Any, name: str, params: dict) -> str:
    # z (1 + erf(z / sqrt 2)) / 2, exact as torch's default. onnxruntime's Erf has a float kernel only, so a
    # float64 graph computes erf in float32: its outputs then agree to about 1e-7, not to the last bits.
    dtype = container.microdl_dtype
    scaled = _binary(scope, container, "Mul", name, _constant(scope, container, dtype, 0.7071067811865476))
    if dtype == onnx_proto.TensorProto.DOUBLE:
        single = scope.get_unique_variable_name("cast")
        apply_cast(scope, scaled, single, container, to=onnx_proto.TensorProto.FLOAT)
        erf_single = _single("Erf")(scope, container, single)
        erf = scope.get_unique_variable_name("cast")
        apply_cast(scope, erf_single, erf, container, to=dtype)
    else:
        erf = _single("Erf")(scope, container, scaled)
    one_plus = _binary(scope, container, "Add", erf, _constant(scope, container, dtype, 1.0))
    half_z = _binary(scope, container, "Mul", name, _constant(scope, container, dtype, 0.5))
    return _binary(scope, container, "Mul", half_z, one_plus)


#: Hidden-layer activations by microdl's model name (``MLP(activation=...)``), each a builder of
#: ``(scope, container, input_name, params)``. A new activation (:func:`microdl.nn.register_activation`) needs
#: one entry here; ``tests/test_onnx.py`` fails for a built-in activation that has none.
ONNX_ACTIVATIONS: dict[str, ActivationBuilder] = {
    "identity": _single("Identity"),
    "relu": _single("Relu"),
    "tanh": _single("Tanh"),
    "sigmoid": _single("Sigmoid"),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "gelu": _gelu,
    "silu": _silu,
}

#: Output activations by the estimators' ``out_activation_``.
ONNX_OUTPUTS: dict[str, NodeBuilder] = {
    "identity": _single("Identity"),
    "logistic": _single("Sigmoid"),
    "softmax": _single("Softmax", axis=1),
    "exp": _single("Exp"),
}

#: What skl2onnx's MLP converters can express: scikit-learn's hidden activations and output activations.
_SKL2ONNX_HIDDEN = {"identity", "relu", "tanh", "logistic"}
_SKL2ONNX_OUTPUT = {"identity", "logistic", "softmax"}


def uses_skl2onnx_converter(estimator: MLPClassifier | MLPRegressor) -> bool:
    """Whether skl2onnx's own MLP converter exports ``estimator`` (else microdl's converter does)."""
    single_output = isinstance(estimator, MLPClassifier) or estimator.n_outputs_ == 1
    return (estimator.activation in _SKL2ONNX_HIDDEN and estimator.out_activation_ in _SKL2ONNX_OUTPUT
            and single_output)


def _proto_dtype(operator: Any) -> int:
    dtype = guess_proto_type(operator.inputs[0].type)
    return dtype if dtype == onnx_proto.TensorProto.DOUBLE else onnx_proto.TensorProto.FLOAT


def _forward(scope: Any, container: Any, estimator: Any, input_name: str, dtype: int) -> str:
    """The network's output (after its output activation), from the graph input ``input_name``."""
    numpy_dtype = np.float64 if dtype == onnx_proto.TensorProto.DOUBLE else np.float32
    model = estimator._model
    hidden = ONNX_ACTIVATIONS[model.activation]
    container.microdl_dtype = dtype  # the builders' constants take the graph's precision
    name = scope.get_unique_variable_name("cast_input")
    apply_cast(scope, input_name, name, container, to=dtype)
    coefs, intercepts = estimator.coefs_, estimator.intercepts_
    for index, (weight, bias) in enumerate(zip(coefs, intercepts)):
        weight_name = scope.get_unique_variable_name("coefficient")
        bias_name = scope.get_unique_variable_name("intercepts")
        container.add_initializer(weight_name, dtype, weight.shape, weight.astype(numpy_dtype).ravel())
        container.add_initializer(bias_name, dtype, [1, bias.shape[0]], bias.astype(numpy_dtype))
        name = _binary(scope, container, "Add", _binary(scope, container, "MatMul", name, weight_name), bias_name)
        last = index == len(coefs) - 1
        name = (ONNX_OUTPUTS[estimator.out_activation_](scope, container, name) if last
                else hidden(scope, container, name, model.activation_params))
    return name


def _classifier_outputs(scope: Any, container: Any, operator: Any, estimator: Any, scores: str, dtype: int) -> None:
    """Labels and probabilities from the output layer, as skl2onnx's MLP classifier converter writes them."""
    labels, probabilities = operator.outputs[0].full_name, operator.outputs[1].full_name
    classes = estimator.classes_
    if estimator._label_binarizer.y_type_ == "multilabel-indicator":
        apply_identity(scope, scores, probabilities, container)
        binary = scope.get_unique_variable_name("binariser_output")
        container.add_node("Binarizer", scores, binary, threshold=0.5, op_domain="ai.onnx.ml")
        apply_cast(scope, binary, labels, container, to=onnx_proto.TensorProto.INT64)
        return
    if len(classes) == 2:
        negative = scope.get_unique_variable_name("negative_class_proba")
        apply_sub(scope, [_constant(scope, container, dtype, 1.0), scores], negative, container, broadcast=1)
        apply_concat(scope, [negative, scores], probabilities, container, axis=1)
    else:
        apply_identity(scope, scores, probabilities, container)
    numeric = np.issubdtype(classes.dtype, np.number) or classes.dtype == np.bool_
    class_type = onnx_proto.TensorProto.INT32 if numeric else onnx_proto.TensorProto.STRING
    values = classes.astype(np.int32) if numeric else np.array([str(c).encode("utf-8") for c in classes])
    classes_name = scope.get_unique_variable_name("classes")
    container.add_initializer(classes_name, class_type, values.shape, values)
    argmax = scope.get_unique_variable_name("argmax_output")
    container.add_node("ArgMax", probabilities, argmax, axis=1, name=scope.get_unique_operator_name("ArgMax"))
    picked = scope.get_unique_variable_name("array_feature_extractor_result")
    container.add_node("ArrayFeatureExtractor", [classes_name, argmax], picked, op_domain="ai.onnx.ml",
                       name=scope.get_unique_operator_name("ArrayFeatureExtractor"))
    if numeric:
        flat = scope.get_unique_variable_name("reshaped_result")
        apply_reshape(scope, picked, flat, container, desired_shape=(-1,))
        apply_cast(scope, flat, labels, container, to=onnx_proto.TensorProto.INT64)
    else:
        apply_reshape(scope, picked, labels, container, desired_shape=(-1,))


def convert_microdl_mlp(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for :class:`microdl.sklearn.MLPClassifier` and :class:`~microdl.sklearn.MLPRegressor`.

    Hands the estimator to skl2onnx's MLP converter where that fits (:func:`uses_skl2onnx_converter`), else
    builds the graph from :data:`ONNX_ACTIVATIONS` and :data:`ONNX_OUTPUTS`.
    """
    estimator = operator.raw_operator
    classifier = isinstance(estimator, MLPClassifier)
    if uses_skl2onnx_converter(estimator):
        (convert_sklearn_mlp_classifier if classifier else convert_sklearn_mlp_regressor)(scope, operator, container)
        return
    dtype = _proto_dtype(operator)
    scores = _forward(scope, container, estimator, operator.inputs[0].full_name, dtype)
    if classifier:
        _classifier_outputs(scope, container, operator, estimator, scores, dtype)
    else:
        apply_reshape(scope, scores, operator.outputs[0].full_name, container,
                      desired_shape=(-1, estimator.n_outputs_))


def _regressor_shape(operator: Any) -> None:
    """``[N, n_outputs]`` in the input's precision (skl2onnx's MLP regressor assumes one output)."""
    input_type = operator.inputs[0].type
    kind = DoubleTensorType if isinstance(input_type, DoubleTensorType) else FloatTensorType
    operator.outputs[0].type = kind([operator.inputs[0].get_first_dimension(), operator.raw_operator.n_outputs_])


def _check_supported(estimator: Any) -> None:
    """A clear ValueError, before any conversion, for a microdl estimator the converter cannot express."""
    steps = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    for step in steps:
        if isinstance(step, (MLPClassifier, MLPRegressor)):
            hidden = _ACTIVATION_ALIASES.get(step.activation, step.activation)
            if hidden not in ONNX_ACTIVATIONS:
                raise ValueError(f"cannot export activation {step.activation!r} to ONNX; add a node builder to "
                                 "microdl.onnx.ONNX_ACTIVATIONS")
            if step.out_activation_ not in ONNX_OUTPUTS:
                raise ValueError(f"cannot export output activation {step.out_activation_!r} to ONNX; add a node "
                                 "builder to microdl.onnx.ONNX_OUTPUTS")


#: skl2onnx's options for its MLP classifier (its shape calculator reads ``nocl``); microdl's converter, like
#: skl2onnx's, writes the class labels as given.
_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}
_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    skl2onnx.update_registered_converter(MLPClassifier, "MicrodlMLPClassifier",
                                         calculate_linear_classifier_output_shapes, convert_microdl_mlp,
                                         options=_CLASSIFIER_OPTIONS)
    skl2onnx.update_registered_converter(MLPRegressor, "MicrodlMLPRegressor", _regressor_shape, convert_microdl_mlp)
    _registered = True


def to_onnx(estimator: Any, X: Any = None, **kwargs: Any) -> Any:
    """Export a fitted estimator, or a Pipeline holding microdl's estimators, to an ONNX model.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Any model skl2onnx converts, with :class:`microdl.sklearn.MLPClassifier` and
        :class:`~microdl.sklearn.MLPRegressor` anywhere in it.
    X : array-like, optional
        A sample of inputs: its dtype sets the graph's precision (float32 or float64) and its width the input
        shape, as in ``skl2onnx.to_onnx``.
    **kwargs
        Passed to ``skl2onnx.to_onnx`` (``options``, ``target_opset``, ``initial_types``, ...). For a classifier,
        ``options={"zipmap": False}`` gives the probabilities as a plain tensor.

    Returns
    -------
    onnx.ModelProto
        Run it with ``onnxruntime.InferenceSession(model.SerializeToString())``; the classifier's outputs are
        the labels then the probabilities, the regressor's the predictions, of shape ``(n, n_outputs)``.
    """
    if X is None and kwargs.get("initial_types") is None:
        raise ValueError("to_onnx needs X, a sample of inputs whose dtype (float32 or float64) and width set the "
                         "graph's input, or initial_types")
    check_is_fitted(estimator)
    _check_supported(estimator)
    _register()
    return skl2onnx.to_onnx(estimator, X, **kwargs)
