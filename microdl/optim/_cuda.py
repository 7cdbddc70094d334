"""CUDA backend: each per-element update of :mod:`microdl.optim._elementwise` in one grid-stride kernel.

One launch per step, over the flat buffers, which stay on the device; the launch shape is
:func:`microdl.config.launch_1d`, read at every call. Kernels are compiled lazily, once per dtype. Like the
CPU kernels, they pass the step's scalars as a plain tuple (NOTE [plain tuple at the kernel boundary] in
:mod:`microdl.optim.rules`). This module imports ``numba.cuda``;
:mod:`microdl.optim.base` imports it only when ``backend="cuda"`` is asked for, after
:func:`microdl._cuda_support.require_cuda` has checked that CUDA (or the simulator) is there.
"""

from __future__ import annotations

from microdl import config
from microdl._cuda_support import require_cuda
from microdl.optim import _elementwise as ew

cuda = require_cuda()

_device = cuda.jit(device=True)
_sgd_at = _device(ew.sgd_at)
_adagrad_at = _device(ew.adagrad_at)
_rmsprop_at = _device(ew.rmsprop_at)
_adadelta_at = _device(ew.adadelta_at)
_adam_at = _device(ew.adam_at)


@cuda.jit
def sgd(theta, g, b, h):
    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
        _sgd_at(i, theta, g, b, h)


@cuda.jit
def adagrad(theta, g, state_sum, h):
    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
        _adagrad_at(i, theta, g, state_sum, h)


@cuda.jit
def rmsprop(theta, g, v, g_avg, b, h):
    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
        _rmsprop_at(i, theta, g, v, g_avg, b, h)


@cuda.jit
def adadelta(theta, g, v, u, h):
    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
        _adadelta_at(i, theta, g, v, u, h)


@cuda.jit
def adam(theta, g, m, v, v_max, h):
    for i in range(cuda.grid(1), theta.size, cuda.gridsize(1)):
        _adam_at(i, theta, g, m, v, v_max, h)


KERNELS = {"sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam}


def apply(rule: str, theta, g, slots: tuple, s: tuple) -> None:
    """Apply ``rule`` in place over the flat device buffers with one kernel launch; ``s`` is the step's scalars."""
    blocks, threads = config.launch_1d(theta.size)
    KERNELS[rule][blocks, threads](theta, g, *slots, tuple(s))
