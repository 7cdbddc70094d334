"""Holding BLAS at one thread while microdl's passes run: :class:`single_threaded_blas`.

It lives apart from the CPU kernels (:mod:`microdl.nn._cpu`, which re-exports it) because it needs no Numba: the
NumPy backend holds it too (NOTE [the NumPy backend for small fits] in :mod:`microdl.nn.mlp`), and importing this
module must not import Numba.
"""

from __future__ import annotations

import threading

__all__ = ["single_threaded_blas"]


class single_threaded_blas:  # noqa: N801  (used like a function: ``with single_threaded_blas():``)
    """Hold every loaded BLAS at one thread while the block kernels run (NOTE [row blocks]).

    Re-entrant and shared between threads, and it works from any thread: the first ``with`` in the process
    sets the limit, the last one out (whichever thread that is) restores the settings found on the way in, so
    the training loop can hold it once around many kernel calls cheaply, and outside microdl's calls BLAS is
    left as the user set it.

    NOTE [BLAS limit from any thread]
    OpenBLAS built on pthreads (the wheels of NumPy and SciPy) has one thread pool and one limit for the whole
    process. threadpoolctl (>= 3.8) therefore lets only one "controlling" Python thread change it, the first
    that did and is still alive, usually the main thread, and silently ignores the others: a fit in a worker
    thread then ran its products on every BLAS thread, with other bits than in the main thread, beside Numba's
    threads, and a ``fork()`` during such a product froze the worker (issue 21, cases 1-2). Here the limit is
    reference-counted across threads and set by whichever thread enters first, after handing it
    threadpoolctl's control (``clear_controlling_thread(force=True)``, the documented way to move it); control
    is cleared again on the way out, so the user's next ``threadpool_limits`` works from any of their threads.
    """

    _lock = threading.Lock()
    _depth = 0
    _controller = None
    _saved: list[tuple[object, int | None]] = []

    @staticmethod
    def _take_control(lib: object) -> None:
        clear = getattr(type(lib), "clear_controlling_thread", None)  # OpenBLAS on threadpoolctl >= 3.8
        if clear is not None:
            clear(force=True)

    def __enter__(self) -> None:
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                if cls._controller is None:
                    from threadpoolctl import ThreadpoolController

                    cls._controller = ThreadpoolController()
                libs = [lib for lib in cls._controller.lib_controllers if lib.user_api == "blas"]
                cls._saved = [(lib, lib.get_num_threads()) for lib in libs]
                for lib in libs:
                    cls._take_control(lib)
                    lib.set_num_threads(1)
            cls._depth += 1

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                for lib, n in cls._saved:
                    if n is not None:
                        cls._take_control(lib)
                        lib.set_num_threads(n)
                        cls._take_control(lib)  # leave no thread in control: the user's next limit works
                cls._saved = []
