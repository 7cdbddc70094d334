"""Tunable constants, each defined once: chunk sizes of the CPU passes, the CUDA launch shapes, and how the CPU
kernels share the cores.

Every module reads these from here at call time (``config.EVAL_CHUNK``, not a copy taken at import), so a test
or a user can change one with ``monkeypatch.setattr(microdl.config, "TILE", 2)`` and the next call uses it;
a CUDA kernel whose shared arrays depend on a shape is built by a cached factory keyed on it.

NOTE [threading layer]
    Numba runs ``parallel=True`` kernels on a threading layer, GNU OpenMP (``omp``) on a pip install. Its
    launches are cheap (a few µs), but it is not fork-safe (a forked child that launches a parallel kernel is
    terminated, and joblib's multiprocessing pool then hangs the parent) and its threads busy-wait: on a loaded
    machine an empty parallel launch took 12 ms here instead of 2 µs, and a small fit ran 5 to 25 times slower
    than on one thread. The workqueue layer is fork-safe and sleeps, but a launch costs 80-130 µs here, which
    made an Adam step at N = 1e5 six times slower. So microdl keeps Numba's choice of layer and decides, per
    launch, whether to use the threads at all (:func:`use_threads`):

    * never in a process forked from this one (children run the serial kernels, so they never touch the
      parent's OpenMP runtime);
    * never while the machine is oversubscribed: when the 1-minute load average exceeds twice the cores
      (:func:`machine_is_busy`), a launch waits for its slowest thread, and a thread whose core is taken waits
      a whole time slice;
    * only where the work repays a launch (``MIN_BLOCK_WORK``, ``MIN_PARALLEL_ELEMENTS``): a tiny launch on a
      loaded machine was what cost 12 ms; large ones degrade gracefully (benchmarks/load.py).

    Otherwise the same work runs on the calling thread: the model's row blocks one after the other, an
    optimizer step or a clip through the kernel's serial twin (:func:`microdl._jit.serial_twin`). The blocks,
    the chunks and the order in which partial sums are added do not change, so neither do the results, to
    the last bit: only the waiting goes. Every parallel launch holds :data:`PARALLEL_LOCK`, so that two Python
    threads never enter the layer at once (the workqueue layer, where Numba falls back to it, aborts the
    process then).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

# -- evaluation and prediction ------------------------------------------------------------------------------
#: Rows per forward pass when evaluating a loss on a whole dataset or predicting: bounds the activation
#: buffers that evaluation needs (on the GPU, a larger training batch capacity is used instead when there is
#: one). The result does not depend on it: :func:`microdl.train.evaluate_loss` adds the penalty once.
EVAL_CHUNK = 4096

# -- CPU row blocks (NOTE [row blocks] in microdl.nn._cpu) ----------------------------------------------------
#: Fewest rows, and fewest multiply-adds, that a row block of a pass is given (a training pass counts three
#: times its forward products): below these, waking another thread costs more than it saves, so small batches
#: and small networks run on fewer threads (NOTE [row blocks] in microdl.nn._cpu).
MIN_BLOCK_ROWS = 16
MIN_BLOCK_WORK = 3 << 21
#: Fewest elements for which an optimizer step or a clip launches the threads; smaller buffers take the
#: serial twin (measured, Adam float32, N = 1e4: 4 µs serial against 8 µs on two threads).
MIN_PARALLEL_ELEMENTS = 1 << 16

#: Held by every parallel (multi-threaded) kernel launch in microdl (NOTE [threading layer]).
PARALLEL_LOCK = threading.RLock()
#: The machine counts as oversubscribed while its 1-minute load average exceeds this many times its cores.
BUSY_LOAD_FACTOR = 2.0

# -- CUDA launch shapes (tests shrink them so that partial tiles and blocks run on tiny arrays) -----------------
#: Threads per block of the 1-D grid-stride kernels and reductions (a power of two): the optimizer steps,
#: clipping, the elementwise model kernels.
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks of a 1-D grid-stride launch.
MAX_BLOCKS = 4096
#: Threads per side of a matrix-multiply block, and the depth of its K slices.
TILE = 16
#: Outputs per side computed by one matrix-multiply thread; a block computes a (TILE·REG)² tile of C.
REG = 4
#: Column-sum blocks: REDUCE_COLS adjacent columns (coalesced reads) × REDUCE_ROWS row strides (a power of two).
REDUCE_COLS = 32
REDUCE_ROWS = 8


def launch_1d(n: int) -> tuple[int, int]:
    """(blocks, threads per block) of a grid-stride launch over ``n`` items: enough blocks to cover them, at
    most MAX_BLOCKS. The optimizer steps, clipping and the model's elementwise kernels all use it."""
    return max(1, min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK))), THREADS_PER_BLOCK


_state = {"forked": False, "load_checked": -1.0, "busy": False}


def _forked() -> None:
    _state["forked"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def machine_is_busy() -> bool:
    """Whether the 1-minute load average exceeds :data:`BUSY_LOAD_FACTOR` times this process's usable cores
    (NOTE [threading layer]). Read at most once a second."""
    now = time.monotonic()
    if now - _state["load_checked"] >= 1.0:
        try:
            load = os.getloadavg()[0]
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            _state["busy"] = load > BUSY_LOAD_FACTOR * cores
        except OSError:  # no load average on this platform
            _state["busy"] = False
        _state["load_checked"] = now
    return _state["busy"]


def use_threads() -> bool:
    """Whether a parallel launch is wise now: not in a forked child, not on an oversubscribed machine (NOTE
    [threading layer]). Whether the work is large enough is the caller's question."""
    return not _state["forked"] and not machine_is_busy()


def run_parallel(kernel: Callable[..., Any], *args: Any) -> Any:
    """Launch a parallel ``kernel`` under :data:`PARALLEL_LOCK` (NOTE [threading layer])."""
    with PARALLEL_LOCK:
        return kernel(*args)
