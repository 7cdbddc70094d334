"""Checkpoints lose nothing: parameters, optimizer state and step count, history."""

import numpy as np
import pytest

from microdl.datasets import load_dataset
from microdl.io import load, save
from microdl.nn import MLP
from microdl.optim import OPTIMIZERS, make_optimizer
from microdl.train import fit


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_from_checkpoint_is_bit_identical(tmp_path, name):
    data = load_dataset("iris", random_state=0)
    options = {"adam": {"amsgrad": True}, "rmsprop": {"centered": True, "momentum": 0.5},
               "sgd": {"momentum": 0.9, "nesterov": True}}.get(name, {})

    def run(net, opt, seed):
        return fit(net, opt, data.X_train, data.y_train, epochs=2, batch_size=16, random_state=seed)

    straight = MLP((4, 6, 3), alpha=0.01, random_state=1)
    opt = make_optimizer(name, straight.params, lr=0.01, **options)
    run(straight, opt, 0)
    run(straight, opt, 1)

    first = MLP((4, 6, 3), alpha=0.01, random_state=1)
    opt1 = make_optimizer(name, first.params, lr=0.01, **options)
    history = run(first, opt1, 0)
    path = tmp_path / "ckpt.npz"
    save(path, first, opt1, history)
    ckpt = load(path)
    assert ckpt.model.config() == first.config()
    np.testing.assert_array_equal(ckpt.model.params, first.params)
    assert ckpt.optimizer.t == opt1.t and ckpt.optimizer.hyperparameters == opt1.hyperparameters
    for key, value in opt1.state.items():
        np.testing.assert_array_equal(ckpt.optimizer.state[key], value)
    assert ckpt.history == history
    run(ckpt.model, ckpt.optimizer, 1)
    np.testing.assert_array_equal(ckpt.model.params, straight.params)


def test_model_only_checkpoint_and_errors(tmp_path):
    net = MLP((3, 2), loss="squared_error", dtype="float32", random_state=0)
    save(tmp_path / "m.npz", net)
    ckpt = load(tmp_path / "m.npz")
    assert ckpt.optimizer is None and ckpt.history is None and ckpt.model.params.dtype == np.float32
    np.testing.assert_array_equal(ckpt.model.params, net.params)
    other = MLP((3, 2), random_state=0)
    with pytest.raises(ValueError, match="bound to model.params"):
        save(tmp_path / "x.npz", net, make_optimizer("adam", other.params))
    np.savez(tmp_path / "bad.npz", meta=np.array('{"format": 99}'))
    with pytest.raises(ValueError, match="not a microdl checkpoint"):
        load(tmp_path / "bad.npz")
