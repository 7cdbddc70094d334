"""``MLP.state_dict()`` and ``MLP.load_state_dict()``: torch's names and semantics (an ordered mapping of named
copies; a strict load by default that checks every key, shape and dtype before writing anything)."""

import pickle

import numpy as np
import pytest

from microdl.nn import MLP


def _net(seed=0, dtype="float64", sizes=(3, 5, 4, 2)):
    return MLP(sizes, random_state=seed, dtype=dtype)


def test_state_dict_names_the_layers_in_order_with_copies():
    net = _net()
    state = net.state_dict()
    assert list(state) == ["weights.0", "biases.0", "weights.1", "biases.1", "weights.2", "biases.2"]
    for layer in range(3):
        np.testing.assert_array_equal(state[f"weights.{layer}"], net.weights[layer])
        np.testing.assert_array_equal(state[f"biases.{layer}"], net.biases[layer])
        assert state[f"weights.{layer}"].dtype == net.dtype
    # the flat buffer, in order, is the concatenation of the entries (the layout of microdl.nn.layout)
    np.testing.assert_array_equal(np.concatenate([a.ravel() for a in state.values()]), net.params)
    before = net.params.copy()
    state["weights.0"][...] = 99.0  # copies: the model is not touched
    np.testing.assert_array_equal(net.params, before)


def test_round_trip_gives_the_same_network():
    source, target = _net(0), _net(1)
    X = np.random.default_rng(0).normal(size=(7, 3))
    assert not np.allclose(source.forward(X), target.forward(X))
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(target.params, source.params)
    np.testing.assert_array_equal(target.forward(X), source.forward(X))
    # through a pickle (the mapping's arrays are plain NumPy arrays) and into float32, cast as torch's copy_ does
    small = _net(2, dtype="float32")
    small.load_state_dict(pickle.loads(pickle.dumps(source.state_dict())))
    np.testing.assert_array_equal(small.params, source.params.astype(np.float32))


def test_a_wrong_shape_is_refused_and_nothing_is_written():
    net = _net()
    state = net.state_dict()
    state["biases.0"] = state["biases.0"] + 1.0  # would be written first, if anything were
    state["weights.1"] = state["weights.1"].T
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"state_dict\['weights.1'\] has shape \(4, 5\); this model's is \(5, 4\)"):
        net.load_state_dict(state)
    with pytest.raises(ValueError, match="has shape"):  # strict=False checks shapes too, as torch does
        net.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(net.params, before)


def test_missing_and_unexpected_keys_are_refused_when_strict():
    net = _net()
    state = net.state_dict()
    del state["biases.2"]
    state["weights.3"] = np.zeros((2, 2))
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"missing keys \['biases.2'\], unexpected keys \['weights.3'\]"):
        net.load_state_dict(state)
    np.testing.assert_array_equal(net.params, before)


def test_strict_false_loads_what_matches_and_says_what_did_not():
    net, other = _net(0), _net(1)
    state = {"weights.1": other.weights[1].copy(), "extra": np.ones(3)}
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["weights.0", "biases.0", "biases.1", "weights.2", "biases.2"]
    assert result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(net.weights[1], other.weights[1])
    np.testing.assert_array_equal(net.weights[0], _net(0).weights[0])  # the others untouched


@pytest.mark.parametrize("value, error, match", [
    (np.zeros((3, 5), dtype=np.int64), TypeError, "must hold floating-point numbers; got dtype int64"),
    (np.zeros((3, 5), dtype=bool), TypeError, "floating-point"),
    (np.zeros((3, 5), dtype=complex), TypeError, "floating-point"),
    (np.full((3, 5), np.nan), ValueError, "holds NaN or infinity"),
    ([[0.0] * 5] * 3 + [[1.0] * 5], ValueError, r"has shape \(4, 5\)"),
])
def test_bad_values_are_refused(value, error, match):
    net = _net()
    state = net.state_dict()
    state["weights.0"] = value
    with pytest.raises(error, match=match):
        net.load_state_dict(state)


def test_bad_arguments():
    net = _net()
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        net.load_state_dict([("weights.0", np.zeros((3, 5)))])
    with pytest.raises(TypeError, match="strict must be True or False"):
        net.load_state_dict(net.state_dict(), strict="yes")
    # a plain dict of nested lists works (array-like values)
    net.load_state_dict({key: value.tolist() for key, value in _net(1).state_dict().items()})
    np.testing.assert_array_equal(net.params, _net(1).params)
