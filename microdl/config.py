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
    * never while another process wants a core that the threads need (:func:`machine_is_busy`): a launch
      waits for its slowest thread, and a thread whose core is taken waits a whole time slice. The test is
      the *runnable* tasks of the machine now, not the 1-minute load average, which lags by a minute and
      counted a load of 2 on 2 cores as idle: with one or two busy processes on the 2 cores a full-batch
      fit on digits took 13-31 times as long on the threads as on one (issue 20);
    * only where the work repays a launch (``MIN_BLOCK_WORK``, ``MIN_PARALLEL_ELEMENTS``): a tiny launch on a
      loaded machine was what cost 12 ms; large ones degrade gracefully (benchmarks/load.py).

    Otherwise the same work runs on the calling thread: the model's row blocks one after the other, an
    optimizer step or a clip through the kernel's serial twin (:func:`microdl._jit.serial_twin`). The blocks,
    the chunks and the order in which partial sums are added do not change, so neither do the results, to
    the last bit: only the waiting goes. Every parallel launch holds :data:`PARALLEL_LOCK`, so that two Python
    threads never enter the layer at once (the workqueue layer, where Numba falls back to it, aborts the
    process then).

NOTE [fork while a kernel runs]
    ``os.fork()`` copies only the calling thread. Forking while another thread is inside a kernel copies the
    state of that kernel's runtimes mid-flight: a BLAS or threading layer's locks held, its worker threads
    missing in the child, and fork handlers (OpenBLAS's stops its thread pool) pulling threads from under a
    running product; a fork while a worker thread trained hung 3 times of 3 (issue 21, case 2). So every
    kernel call runs inside :func:`kernel_call`, and a handler registered with ``os.register_at_fork`` makes
    ``fork()`` wait until no kernel call is in flight and holds new ones back until it returns: the fork lands
    between two kernel calls, where every runtime is idle. The child starts with no call in flight and runs
    the serial kernels. Kernel calls are short (one batch), so a fork waits for at most one of them. A
    parallel launch (:func:`run_parallel`) is held apart from a fork by :data:`PARALLEL_LOCK`, which it holds
    anyway and which the fork takes after the gate: that costs a launch nothing more, where passing the gate
    too cost 1.0-1.7 µs a launch, 12-19 % of a small optimizer step on the threads (docs/performance.md).
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

# -- compiled runs of steps (NOTE [compiled runs of steps] in microdl._runs) ------------------------------------
#: Whether :func:`microdl.train.fit` runs the steps of small batches in compiled runs (the tests turn it off to
#: compare the two, which give the same bits).
COMPILED_RUNS = True
#: The most work one call of a compiled run takes on, in batch rows × parameters plus parameters per step (about
#: 10 ms of steps): Ctrl-C, a fork and the other threads wait for the end of a call, never of an epoch.
RUN_WORK = 1 << 24

#: Held by every parallel (multi-threaded) kernel launch in microdl (NOTE [threading layer]).
PARALLEL_LOCK = threading.RLock()
#: Where the runnable tasks cannot be read (no ``/proc``), the machine counts as oversubscribed while its
#: 1-minute load average exceeds this many times its cores.
BUSY_LOAD_FACTOR = 2.0
#: Samples of the runnable tasks per check, and the seconds between checks (NOTE [threading layer]).
LOAD_SAMPLES = 3
LOAD_CHECK_INTERVAL = 1.0

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


_state: dict[str, Any] = {"forked": False, "load_checked": -1.0, "busy": False}


class _ForkGate:
    """Kernel calls in flight, and whether a fork is waiting for them to end (NOTE [fork while a kernel
    runs]): many kernel calls may run at once; a fork waits for none to run and lets none start."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.running = 0
        self.forking = False

    # enter and leave run around every parallel kernel call: they take the lock itself (not ``with self.cond``,
    # a Python-level call more) and touch the condition only when a fork waits. ``with``, not acquire() and a
    # try: Ctrl-C raised between the two would leave the lock held, and the next kernel call would wait forever.
    def enter(self) -> None:
        with self.lock:
            while self.forking:
                self.cond.wait()
            self.running += 1

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0 and self.forking:
                self.cond.notify_all()

    def before_fork(self) -> None:
        self.cond.acquire()
        while self.forking:  # another thread is forking: take turns
            self.cond.wait()
        self.forking = True
        while self.running:
            self.cond.wait()
        # the condition's lock stays held across fork(): no kernel call starts, and the child gets it released

    def after_fork_in_parent(self) -> None:
        self.forking = False
        self.cond.notify_all()
        self.cond.release()


_gate = _ForkGate()
_in_kernel_call = threading.local()

#: NOTE [a stop Python swallowed]: the exception of a stop signal (Ctrl-C, SIGTERM, SIGHUP) that the command
#: line received and has not yet seen reach its handler. Python raises a signal's exception in whatever Python
#: code runs next, and when that is a ctypes callback or a ``__del__`` it prints "Exception ignored" and carries
#: on: Ctrl-C during a first compile landed in llvmlite's object-cache callback 2 times in 10 here, and
#: ``microdl compare`` went on training for minutes. So the handler (microdl._files) also puts the exception
#: here, every kernel call raises it again until it gets through, and the command line clears it on the way out.
pending_stop: list[BaseException] = []


class _KernelCall:
    """What :func:`kernel_call` returns: a plain context manager, since it wraps every optimizer step and batch
    pass, and a generator-based one (``contextlib.contextmanager``) cost 3 µs a call, a third of an SGD step at
    N = 1e5 (``python -m benchmarks.optimizers``). Re-entrant: a nested call must not wait for a fork that
    waits for the outer one. It keeps no state of its own (the depth is per thread), so one instance serves."""

    __slots__ = ()

    def __enter__(self) -> None:
        if pending_stop:  # NOTE [a stop Python swallowed]
            raise pending_stop[0]
        depth = getattr(_in_kernel_call, "depth", 0)
        if depth == 0:
            _gate.enter()  # read at call time: a forked child has a fresh gate
        _in_kernel_call.depth = depth + 1

    def __exit__(self, *exc: object) -> None:
        depth = _in_kernel_call.depth - 1
        _in_kernel_call.depth = depth
        if depth == 0:
            _gate.leave()


_KERNEL_CALL = _KernelCall()


def kernel_call() -> _KernelCall:
    """Run a kernel call (one batch's pass, one optimizer step) where a fork cannot split it (NOTE [fork while
    a kernel runs]): ``with kernel_call(): ...``."""
    return _KERNEL_CALL


def _before_fork() -> None:
    _gate.before_fork()  # first the gate, then the lock: a kernel call may launch in parallel, never the reverse
    lock = _state["fork_lock"] = PARALLEL_LOCK  # the one taken is the one released (a test may swap it)
    lock.acquire()


def _after_fork_in_parent() -> None:
    _state.pop("fork_lock").release()
    _gate.after_fork_in_parent()


def _forked() -> None:
    global _gate
    _state["forked"] = True
    _state.pop("fork_lock").release()  # taken by this thread, the child's only one
    _gate = _ForkGate()  # the child has no other thread: no call in flight, and a lock nobody holds


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_forked)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _machine_cores() -> int:
    """The machine's cores, all of them: those ``/proc/loadavg`` counts runnable tasks on (a process pinned to
    some of them, or a container given a set of them, still sees the whole machine's tasks there)."""
    return os.cpu_count() or 1


def _runnable_here() -> int:
    """This process's threads that are running or ready to run (state R in ``/proc/self/task/*/stat``)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        count += stat[stat.rindex(b")") + 2: stat.rindex(b")") + 3] == b"R"
    return count


def other_runnable() -> int | None:
    """Tasks of other processes running or ready to run on the machine now, or None where ``/proc`` cannot
    tell: the least of :data:`LOAD_SAMPLES` readings of ``/proc/loadavg``'s running count less this process's
    running threads (the least, so that a task that runs now and then does not count, and a process that
    spins always does)."""
    try:
        least = None
        for _ in range(LOAD_SAMPLES):
            with open("/proc/loadavg", "rb") as f:
                running = int(f.read().split()[3].split(b"/")[0])
            others = max(0, running - _runnable_here())
            least = others if least is None else min(least, others)
        return least
    except (OSError, ValueError, IndexError):
        return None


def machine_is_busy() -> bool:
    """Whether other processes want the cores that Numba's threads would need (NOTE [threading layer]): more
    tasks of other processes runnable now than the machine's cores less Numba's threads (on 2 cores and 2
    threads, any one). Without ``/proc``, whether the 1-minute load average exceeds
    :data:`BUSY_LOAD_FACTOR` times the usable cores. Read at most once every :data:`LOAD_CHECK_INTERVAL`
    seconds, so a fit looks again between its epochs."""
    now = time.monotonic()
    if now - _state["load_checked"] >= LOAD_CHECK_INTERVAL:
        others = other_runnable()
        if others is not None:
            import numba

            _state["busy"] = others > _machine_cores() - numba.get_num_threads()
        else:
            try:
                _state["busy"] = os.getloadavg()[0] > BUSY_LOAD_FACTOR * _usable_cores()
            except OSError:  # no load average on this platform
                _state["busy"] = False
        _state["load_checked"] = now
    return _state["busy"]


def use_threads() -> bool:
    """Whether a parallel launch is wise now: not in a forked child, not on an oversubscribed machine (NOTE
    [threading layer]). Whether the work is large enough is the caller's question."""
    return not _state["forked"] and not machine_is_busy()


def run_parallel(kernel: Callable[..., Any], *args: Any) -> Any:
    """Launch a parallel ``kernel`` under :data:`PARALLEL_LOCK` (NOTE [threading layer]), which a fork also
    takes, so that it cannot split the launch (NOTE [fork while a kernel runs])."""
    if pending_stop:  # NOTE [a stop Python swallowed]: optimizer steps pass here, not through kernel_call
        raise pending_stop[0]
    with PARALLEL_LOCK:
        return kernel(*args)
