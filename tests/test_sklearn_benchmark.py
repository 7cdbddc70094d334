"""Smoke test: benchmarks/sklearn_mlp.py measures and reports (on digits, one epoch, in this process); how fast
anything is means nothing on a shared CI machine."""

import importlib.util

import pytest

from benchmarks import sklearn_mlp


@pytest.mark.parametrize("contender", ["microdl", "scikit-learn", "torch"])
def test_worker_times_one_epoch(contender):
    if contender == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    result = sklearn_mlp.worker(contender, "digits", 1, 1)
    assert result["s_per_epoch"] > 0 and 0 <= result["accuracy"] <= 1


def test_plan_covers_both_problems():
    assert set(sklearn_mlp.EPOCHS) == set(sklearn_mlp.EPOCHS_QUICK) == {"digits", "classification_50k"}
    assert sklearn_mlp.PROBLEMS["classification_50k"] == (256, 256)
