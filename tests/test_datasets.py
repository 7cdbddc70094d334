"""Datasets by name: standardised, reproducibly split, with clear errors."""

import numpy as np
import pytest

from microdl.datasets import DATASETS, list_datasets, load_dataset


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_loads_standardised(name):
    d = load_dataset(name, random_state=0)
    assert d.X_train.shape[1] == d.X_test.shape[1] == d.n_features
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-10)
    std = d.X_train.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-10) | (std == 0))
    assert len(d.X_test) == pytest.approx(0.25 * (len(d.X_train) + len(d.X_test)), abs=1)
    if d.task == "classification":
        assert d.y_train.dtype == np.int64 and set(np.unique(d.y_train)) == set(range(d.n_classes))
        assert d.loss == "cross_entropy" and d.n_outputs == d.n_classes
    else:
        assert d.loss == "squared_error" and d.n_outputs == 1
        assert abs(d.y_train.mean()) < 1e-6 and d.y_train.std() == pytest.approx(1, rel=1e-6)


def test_split_is_reproducible_and_stratified():
    a, b = load_dataset("wine", random_state=3), load_dataset("wine", random_state=3)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    c = load_dataset("wine", random_state=4)
    assert not np.array_equal(a.X_train, c.X_train)
    full = np.bincount(np.concatenate([a.y_train, a.y_test])) / (len(a.y_train) + len(a.y_test))
    np.testing.assert_allclose(np.bincount(a.y_test) / len(a.y_test), full, atol=0.05)


def test_dtype_and_generated_size():
    d = load_dataset("moons", n_samples=200, dtype="float32")
    assert d.X_train.dtype == np.float32 and len(d.X_train) + len(d.X_test) == 200


def test_list_datasets():
    rows = {r["name"]: r for r in list_datasets()}
    assert set(rows) == set(DATASETS)
    assert rows["digits"]["n_samples"] == 1797 and rows["digits"]["n_features"] == 64
    assert rows["digits"]["n_classes"] == 10 and rows["diabetes"]["task"] == "regression"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, "unknown dataset 'mnist'"),
        ({"name": "iris", "test_size": 0}, "test_size"),
        ({"name": "iris", "test_size": 1.5}, "test_size"),
        ({"name": "moons", "n_samples": 3}, "n_samples must be >= 10"),
        ({"name": "iris", "random_state": -1}, "random_state"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(**kwargs)
