"""CUDA backend: each per-element update of :mod:`microdl.optim._elementwise` in one grid-stride kernel.

One launch per step, over the flat buffers, which stay on the device. Kernels are compiled lazily, once per
dtype. This module imports ``numba.cuda``; :mod:`microdl.optim.optimizers` imports it only when
``backend="cuda"`` is asked for, after :func:`microdl._cuda_support.require_cuda` has checked that CUDA (or the
simulator) is there.
"""

from __future__ import annotations

from microdl._cuda_support import require_cuda
from microdl.optim import _elementwise as ew

cuda = require_cuda()

#: Launch shape. Tests shrink both so that partial blocks and several grid-stride passes run.
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096

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


def launch_shape(n: int) -> tuple[int, int]:
    """Blocks and threads per block for ``n`` elements: enough blocks to cover ``n``, at most MAX_BLOCKS."""
    blocks = max(1, min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK)))
    return blocks, THREADS_PER_BLOCK


def apply(rule: str, theta, g, slots: tuple, h: tuple) -> None:
    """Apply ``rule`` in place over the flat device buffers with one kernel launch."""
    blocks, threads = launch_shape(theta.size)
    KERNELS[rule][blocks, threads](theta, g, *slots, h)
