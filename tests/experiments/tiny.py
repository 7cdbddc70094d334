"""Shared by the experiment tests: tiny settings (a few epochs on iris and diabetes) and the numbers of a
result without its clock."""

import math

TINY = {"seeds": 2, "epochs": 3, "hidden": (8,), "progress": False}


def numbers(runs):
    """Everything a run measured except the clock."""
    keys = ("train_loss", "test_loss", "grad_evals", "final_train_loss", "final_test_loss", "final_test_metric",
            "diverged", "lr", "seed", "optimizer", "dataset")
    return [{k: r[k] for k in keys} for r in runs]


def same_rows(a, b):
    """Summary rows equal, NaN equal to NaN."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in x:
            if isinstance(x[k], float) and math.isnan(x[k]):
                assert math.isnan(y[k]), k
            else:
                assert x[k] == y[k], k
    return True
