"""Holding BLAS at one thread while microdl's passes run: :class:`single_threaded_blas` for the kernels' BLAS,
:class:`single_threaded_numpy_blas` for NumPy's, which the NumPy backend's passes call.

It lives apart from the CPU kernels (:mod:`microdl.nn._cpu`, which re-exports it) because it needs no Numba: the
NumPy backend holds a limit too (NOTE [the NumPy backend for small fits] in :mod:`microdl.nn.mlp`), and
importing this module must not import Numba.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

__all__ = ["single_threaded_blas", "single_threaded_numpy_blas", "kernel_blas_info"]


def _address(function: Any) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value or 0


def _blas_resolved_from(module_file: str) -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries that the compiled module at ``module_file`` calls (NOTE
    [which BLAS]): those whose identifying symbol (``openblas_get_num_threads``, ``MKL_Get_Max_Threads``, ...)
    the dynamic linker resolves, from that module, to the same address as in the library itself. Every loaded
    BLAS where that cannot be told (no ``RTLD_NOLOAD``: Windows), so that no product escapes."""
    from threadpoolctl import ThreadpoolController

    controllers = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    try:
        linker = ctypes.CDLL(module_file, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except (AttributeError, OSError):
        return controllers
    used = []
    for lib in controllers:
        for symbol in getattr(type(lib), "check_symbols", ()):
            own = getattr(lib.dynlib, symbol, None)
            if own is not None:
                seen = getattr(linker, symbol, None)  # dlsym on a handle: the module and its dependencies
                if seen is not None and _address(seen) == _address(own):
                    used.append(lib)
                break
    return used or controllers


def _kernel_blas() -> list[Any]:
    """The BLAS that the kernels' ``np.dot`` calls: SciPy's (``scipy.linalg.cython_blas``)."""
    import scipy.linalg.cython_blas

    return _blas_resolved_from(scipy.linalg.cython_blas.__file__)


def _numpy_blas() -> list[Any]:
    """The BLAS that NumPy's ``@`` calls, which the NumPy backend's passes use."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # NumPy 2 moved it; 1.x has only np.core
    return _blas_resolved_from(core._multiarray_umath.__file__)


class _ThreadCount(NamedTuple):
    """Read and set one BLAS library's thread count."""

    get: Callable[[], int | None]
    set: Callable[[int], None]


def _thread_count(lib: Any) -> _ThreadCount:
    """OpenBLAS's own get and set functions where its threads are pthreads (one process-wide count: NOTE [BLAS
    limit from any thread]), called without releasing the GIL (``PYFUNCTYPE``): a release is a point where
    another Python thread takes the GIL, and one kernel call would then wait for it. Otherwise threadpoolctl's
    get and set, after taking its control."""
    if lib.internal_api == "openblas" and getattr(lib, "threading_layer", None) != "openmp":
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            get = getattr(lib.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(lib.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                return _ThreadCount(ctypes.PYFUNCTYPE(ctypes.c_int)(_address(get)),
                                    ctypes.PYFUNCTYPE(None, ctypes.c_int)(_address(set_)))

    def set_with_control(n: int) -> None:
        clear = getattr(type(lib), "clear_controlling_thread", None)  # OpenBLAS on threadpoolctl >= 3.8
        if clear is not None:
            clear(force=True)
        lib.set_num_threads(n)
        if clear is not None:
            clear(force=True)  # leave no thread in control: the user's next threadpool_limits works

    return _ThreadCount(lib.get_num_threads, set_with_control)


class single_threaded_blas:  # noqa: N801  (used like a function: ``with single_threaded_blas():``)
    """Hold the BLAS that the kernels call at one thread while they run (NOTE [row blocks]); wraps each kernel
    call (one batch's pass), and leaves every other BLAS alone (NOTE [which BLAS]).

    Re-entrant and shared between threads, and it works from any thread: the first ``with`` in the process
    sets the limit, the last one out (whichever thread that is) restores the count found on the way in, so
    outside microdl's kernel calls BLAS is as the user set it. Entering and leaving costs about 1.4 µs (three
    calls into OpenBLAS and a lock taken twice; a library already at one thread is not set at all).

    NOTE [which BLAS]
    ``np.dot`` in a jitted function calls the BLAS of ``scipy.linalg.cython_blas``; NumPy's ``@`` calls NumPy's
    own. In the wheels these are two libraries (``scipy.libs/libscipy_openblas``, ``numpy.libs/
    libscipy_openblas64_``), so the kernels' limit leaves NumPy's alone: a user's other threads keep their
    ``X @ W`` on every core while microdl trains (issue 20). Where NumPy and SciPy share one library (conda,
    Debian), that one library is limited, during kernel calls only.

    NOTE [BLAS limit from any thread]
    OpenBLAS built on pthreads (the wheels of NumPy and SciPy) has one thread pool and one limit for the whole
    process, and no per-thread one: ``openblas_set_num_threads_local`` (0.3.27+, in both wheels here: 0.3.30
    and 0.3.31) sets that same process-wide count in a pthreads build (a worker thread's call set the main
    thread's count too, measured here), it is thread-local only in OpenMP builds. So the limit is
    process-wide and is held only while a kernel call is in flight, never for a whole fit, with one exception:
    an L-BFGS run in SciPy, whose own BLAS calls between the kernel calls are the fit's work too (its threads
    spun against Numba's: 9-11 ms an iteration on digits instead of 1.1-1.2, ``microdl.train``'s
    ``run_iterations``); another thread's SciPy BLAS runs on one thread only while it overlaps a kernel call or
    such a run (and NumPy's too, where the two share one library: conda, Debian). threadpoolctl (>= 3.8) lets only one
    "controlling" Python thread change OpenBLAS's count and silently ignores the others: a fit in a worker
    thread then ran its products on every BLAS thread, with other bits than in the main thread, beside
    Numba's threads, and a ``fork()`` during such a product froze the worker (issue 21, cases 1-2). Here the
    limit is reference-counted across threads and set through OpenBLAS's own functions by whichever thread
    enters first (through threadpoolctl, after taking its control, for any other BLAS).
    """

    __slots__ = ()
    _held: ClassVar[_Held]  # read per call, never written: set once below

    # enter and exit wrap every kernel call: the state lives on one instance (a class attribute written per call
    # would invalidate the type's attribute cache), and nothing is allocated unless a count changes
    def __enter__(self) -> None:
        held = self._held
        with held.lock:
            if held.depth == 0:
                for get, set_ in held.counts if held.counts is not None else held.find():
                    n = get()
                    if n is not None and n != 1:
                        set_(1)
                        held.saved.append((set_, n))
            held.depth += 1

    def __exit__(self, *exc: object) -> None:
        held = self._held
        with held.lock:
            held.depth -= 1
            if held.depth == 0 and held.saved:
                for set_, n in held.saved:
                    set_(n)
                held.saved.clear()


class _Held:
    """The state of :class:`single_threaded_blas`, one for the process: the kernels' BLAS libraries (found on the
    first use), how many kernel calls hold the limit now, and the counts to restore when the last one ends."""

    __slots__ = ("find_libraries", "limit", "lock", "depth", "counts", "saved")

    def __init__(self, find_libraries: Callable[[], list[Any]], limit: type[single_threaded_blas]) -> None:
        self.find_libraries, self.limit = find_libraries, limit
        self.lock = threading.Lock()
        self.depth = 0
        self.counts: list[_ThreadCount] | None = None
        self.saved: list[tuple[Callable[[int], None], int]] = []  # (set, the count found on the way in)

    def find(self) -> list[_ThreadCount]:
        if self.counts is None:
            self.counts = [_thread_count(lib) for lib in self.find_libraries()]
        return self.counts

    def after_fork_in_child(self) -> None:
        """A thread that held the limit when another forked is not in the child: restore for it."""
        self.lock = threading.Lock()
        if self.depth:
            self.depth = 1
            self.limit().__exit__()


class single_threaded_numpy_blas(single_threaded_blas):  # noqa: N801
    """Hold NumPy's BLAS at one thread during one pass of the NumPy backend, as :class:`single_threaded_blas`
    does the kernels' during a kernel call: without it, on a loaded machine, its small products ran 4-30 times
    slower on OpenBLAS's busy-waiting threads (NOTE [the NumPy backend for small fits] in microdl.nn.mlp). Only
    during the pass, as for the kernels, so a user's other threads keep their threads between passes."""

    __slots__ = ()


single_threaded_blas._held = _Held(_kernel_blas, single_threaded_blas)
single_threaded_numpy_blas._held = _Held(_numpy_blas, single_threaded_numpy_blas)

if hasattr(os, "register_at_fork"):
    for _limit in (single_threaded_blas, single_threaded_numpy_blas):
        os.register_at_fork(after_in_child=_limit._held.after_fork_in_child)


def kernel_blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's ``threadpool_info()`` entries of the BLAS libraries the kernels call (NOTE [which
    BLAS]): those :class:`single_threaded_blas` limits."""
    return [lib.info() for lib in _kernel_blas()]
