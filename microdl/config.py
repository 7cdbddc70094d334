"""Tunable constants, each defined once: chunk sizes of the CPU passes, the CUDA launch shapes, and how the CPU
kernels share the cores.

Every module reads these from here at call time (``config.EVAL_CHUNK``, not a copy taken at import), so a test
or a user can change one with ``monkeypatch.setattr(microdl.config, "TILE", 2)`` and the next call uses it;
a CUDA kernel whose shared arrays depend on a shape is built by a cached factory keyed on it.

NOTE [threading layer]
    Numba runs ``parallel=True`` kernels on a threading layer: ``omp`` (GNU OpenMP, what a pip install of Numba
    picks by default), ``workqueue`` (built in) or ``tbb`` (which pip's TBB packages do not provide to Numba).
    GNU OpenMP is not fork-safe (a ``fork()`` after a fit, as joblib's multiprocessing backend does, can hang
    the parent) and its threads busy-wait: on a loaded machine an empty parallel launch took 12 ms instead of
    a few µs here, and a small fit ran 5 to 70 times slower than on one thread. The workqueue layer is
    fork-safe and its threads sleep when idle (the same launch: 40 µs under that load), but it must never be
    entered by two threads at once (Numba aborts the process). So, unless the user has chosen a layer
    (``NUMBA_THREADING_LAYER``), microdl selects ``workqueue`` before any parallel kernel runs, and every
    parallel launch in microdl holds :data:`PARALLEL_LOCK`; serial kernels, which run most small batches
    (MIN_BLOCK_WORK), run concurrently without it.

    On a machine whose cores are taken by other processes, a batch split into row blocks waits for its
    slowest block, and a block whose core is taken waits a whole time slice: measured here, 2.4 times one
    thread's time. So when :func:`machine_is_busy`, the same row blocks run one after the other on the calling
    thread. The blocks, and the order in which their gradients are added, do not change, so neither do the
    results, to the last bit: only the waiting goes.
"""

from __future__ import annotations

import os
import threading
import time

import numba

# -- evaluation and prediction ------------------------------------------------------------------------------
#: Rows per forward pass when evaluating a loss on a whole dataset or predicting: bounds the activation
#: buffers that evaluation needs (on the GPU, a larger training batch capacity is used instead when there is
#: one). The result does not depend on it: :func:`microdl.train.evaluate_loss` adds the penalty once.
EVAL_CHUNK = 4096

# -- CPU row blocks (NOTE [row blocks] in microdl.nn._cpu) ----------------------------------------------------
#: Fewest rows, and fewest multiply-adds, that a row block of a pass is given (a training pass counts three
#: times its forward products): below these, waking another thread costs more than it saves, so small batches
#: and small networks run on fewer threads. A block of 3·2²¹ multiply-adds takes a few hundred µs, many times a
#: parallel launch, loaded machine or not (NOTE [threading layer]).
MIN_BLOCK_ROWS = 16
MIN_BLOCK_WORK = 3 << 21

#: Held by every parallel (multi-threaded) kernel launch in microdl (NOTE [threading layer]).
PARALLEL_LOCK = threading.RLock()
#: The machine counts as busy while its 1-minute load average exceeds its cores by this much.
BUSY_LOAD_MARGIN = 0.5

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


_busy = {"checked": -1.0, "busy": False}


def machine_is_busy() -> bool:
    """Whether other processes compete for this process's cores: the 1-minute load average exceeds the usable
    cores by more than :data:`BUSY_LOAD_MARGIN` (NOTE [threading layer]). Read at most once a second."""
    now = time.monotonic()
    if now - _busy["checked"] >= 1.0:
        try:
            load = os.getloadavg()[0]
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            _busy["busy"] = load > cores + BUSY_LOAD_MARGIN
        except OSError:  # no load average on this platform
            _busy["busy"] = False
        _busy["checked"] = now
    return _busy["busy"]


def _choose_threading_layer() -> None:
    """Select Numba's fork-safe, non-spinning workqueue layer unless the user chose one (NOTE [threading
    layer]); once Numba has started its threads, the layer can no longer change and is left as it is."""
    if "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default":
        return
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", False):
        numba.config.THREADING_LAYER = "workqueue"


_choose_threading_layer()
