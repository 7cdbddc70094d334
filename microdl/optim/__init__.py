"""Optimizers over flat parameter buffers, with NumPy, Numba-CPU and Numba-CUDA backends.

Each optimizer binds to one flat parameter array and updates it in place::

    opt = microdl.optim.Adam(params, backend="cpu", lr=1e-3)
    opt.step(grads)

The update rules are written once, in :mod:`microdl.optim.rules`; see :mod:`microdl.optim.optimizers` for the
classes, :mod:`microdl.optim.schedules` for learning-rate schedules and :mod:`microdl.optim.clip` for
gradient clipping.
"""

from microdl.optim.base import BACKENDS, Optimizer
from microdl.optim.clip import clip_grad_norm, clip_grad_value
from microdl.optim.lbfgs import LBFGS
from microdl.optim.optimizers import GD, OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, make_optimizer
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

__all__ = [
    "BACKENDS", "OPTIMIZERS", "SCHEDULES", "Optimizer", "GD", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam",
    "AdamW", "LBFGS", "make_optimizer", "clip_grad_norm", "clip_grad_value", "LRSchedule", "Constant", "StepLR",
    "ExponentialLR", "CosineWithWarmup", "InverseScaling", "ReduceLROnPlateau", "make_schedule",
]
