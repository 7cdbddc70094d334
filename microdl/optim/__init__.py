"""Optimizers over flat parameter buffers, with NumPy, Numba-CPU and Numba-CUDA backends.

Each optimizer binds to one flat parameter array and updates it in place::

    opt = microdl.optim.Adam(params, backend="cpu", lr=1e-3)
    opt.step(grads)

The update rules are written once, in :mod:`microdl.optim.rules`; see :mod:`microdl.optim.optimizers` for the
classes, :mod:`microdl.optim.registry` for the registry every list of names is derived from (and where your
own optimizer joins them), :func:`check_optimizer` for the tests any optimizer must pass,
:mod:`microdl.optim.schedules` for learning-rate schedules and :mod:`microdl.optim.clip` for gradient clipping.
"""

from microdl.optim.base import BACKENDS, Hyperparameter, Optimizer
from microdl.optim.clip import clip_grad_norm, clip_grad_value
from microdl.optim.lbfgs import LBFGS
from microdl.optim.optimizers import GD, SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, make_optimizer
from microdl.optim.registry import (
    OPTIMIZERS,
    OptimizerEntry,
    available_optimizers,
    optimizer_entry,
    register_optimizer,
    unregister_optimizer,
)
from microdl.optim.schedules import (
    SCHEDULES,
    Constant,
    CosineWithWarmup,
    ExponentialLR,
    InverseScaling,
    LRSchedule,
    ReduceLROnPlateau,
    StepLR,
    make_schedule,
)


def __getattr__(name: str) -> object:
    # check_optimizer runs tests (and imports what they need) only when it is asked for
    if name == "check_optimizer":
        from microdl.optim.check import check_optimizer

        return check_optimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BACKENDS", "OPTIMIZERS", "SCHEDULES", "Optimizer", "Hyperparameter", "register_optimizer",
    "unregister_optimizer", "available_optimizers", "optimizer_entry", "OptimizerEntry", "check_optimizer",
    "GD", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "LBFGS", "make_optimizer", "clip_grad_norm",
    "clip_grad_value", "LRSchedule", "Constant", "StepLR", "ExponentialLR", "CosineWithWarmup",
    "InverseScaling", "ReduceLROnPlateau", "make_schedule",
]
