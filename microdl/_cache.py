"""Numba's disk cache, checked against every source a kernel was compiled from, and never a fault.

NOTE [kernel cache]
    Numba's ``cache=True`` files a compiled kernel under its defining file and trusts it while that one file is
    unchanged (numba/numba#1833). A microdl kernel inlines formulas from other files (the activations, the
    losses, the optimizer rules, the launch constants of :mod:`microdl.config`), so an edit to a formula would run
    the old compiled code. :func:`checked_jit` compiles like ``numba.njit(cache=True)`` with two differences:

    * **Checked against its sources.** The index's source stamp is a SHA-256 of every file the kernel's code
      reaches: its own file, the files of the functions, dispatchers and modules it names, recursively through
      their globals and closures (so a user's formula file too), and the source of any code that has no file
      (the generated dispatch of :mod:`microdl.nn.formulas`). Any change to any of them misses the cache, and
      the next compile overwrites it: no manual deletion, ever.
    * **An optimisation, never a fault.** If the cache cannot be used (no writable directory for it: a read-only
      install with a read-only home and no ``NUMBA_CACHE_DIR``; a full disk; a damaged ``.nbi``/``.nbc`` file;
      anything else reading or writing it raises), the kernel is compiled in memory and training goes on. The
      first such problem in a process is told once, as a :class:`CacheWarning` naming the cache directory and
      what failed; a damaged index is emptied so that the next save repairs it.

    Where the cache lives is Numba's choice, unchanged (``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the
    source, else the user's cache directory).
"""

from __future__ import annotations

import functools
import hashlib
import linecache
import os
import threading
import warnings
from collections.abc import Callable
from types import CodeType, FunctionType, ModuleType
from typing import Any

from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

__all__ = ["CacheWarning", "checked_jit", "source_files", "source_stamp"]


class CacheWarning(UserWarning):
    """Numba's disk cache could not be used; microdl compiled in memory instead (NOTE [kernel cache])."""


_warned = False
_warn_lock = threading.Lock()


def _warn_once(path: str | None, what: str, error: BaseException) -> None:
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    where = f"Numba's cache directory {path}" if path else "Numba's disk cache"
    warnings.warn(f"{where}: {what} failed ({type(error).__name__}: {error}); microdl compiles its kernels in "
                  f"memory instead (correct, only slower to start). Set NUMBA_CACHE_DIR to a writable folder to "
                  f"cache them.", CacheWarning, stacklevel=3)


# -- what a kernel was compiled from -------------------------------------------------------------------------
def _code_objects(code: CodeType) -> list[CodeType]:
    out, stack = [], [code]
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return out


def source_files(fn: Callable[..., Any]) -> tuple[list[str], list[bytes]]:
    """The files ``fn``'s code reaches (its own, and recursively those of every function, Numba dispatcher and
    module its globals and closure name), and the source (or bytecode) of reached code that has no file."""
    files: set[str] = set()
    blobs: list[bytes] = []
    seen: set[int] = set()
    stack: list[Any] = [fn]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        obj = getattr(obj, "py_func", obj)  # a Numba dispatcher: its Python function
        if isinstance(obj, ModuleType):
            path = getattr(obj, "__file__", None)
            if path and path.endswith(".py"):
                files.add(path)
            elif path is None:  # a module object built in memory (the compiled formulas): what it holds
                stack.extend(v for v in vars(obj).values() if callable(v))
            continue
        if not isinstance(obj, FunctionType):
            continue
        for code in _code_objects(obj.__code__):
            if os.path.isfile(code.co_filename):
                files.add(code.co_filename)
            else:  # generated code: its source if it left one (microdl.nn.formulas does), else its bytecode
                lines = linecache.getlines(code.co_filename)
                blobs.append("".join(lines).encode() if lines else
                             code.co_code + repr((code.co_consts, code.co_names)).encode())
            stack.extend(obj.__globals__[name] for name in code.co_names if name in obj.__globals__)
        for cell in obj.__closure__ or ():
            try:
                stack.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        stack.extend(d for d in obj.__defaults__ or () if callable(d))
    return sorted(files), sorted(blobs)


@functools.cache
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:  # (keyed on the stat, so an edit re-reads it)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def source_stamp(fn: Callable[..., Any]) -> str:
    """SHA-256 of everything :func:`source_files` finds: the contents of the files and the in-memory bytecode."""
    files, blobs = source_files(fn)
    h = hashlib.sha256()
    for path in files:
        st = os.stat(path)
        h.update(path.encode())
        h.update(_file_digest(path, st.st_mtime_ns, st.st_size))
    for blob in blobs:
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


# -- the cache -----------------------------------------------------------------------------------------------
class _CheckedLocator(_CacheLocator):
    """Numba's own choice of directory (``inner``); the stamp, :func:`source_stamp`, is set by
    :class:`CheckedCache` at the first load or save, when every global the kernel names is defined."""

    def __init__(self, inner: _CacheLocator, py_func: FunctionType) -> None:
        self._inner, self._py_func = inner, py_func

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> None:
        return None

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func: FunctionType, py_file: str) -> None:  # built only by _CheckedImpl
        return None


class _CheckedImpl(CompileResultCacheImpl):
    def __init__(self, py_func: FunctionType) -> None:
        super().__init__(py_func)
        self._locator = _CheckedLocator(self._locator, py_func)


class CheckedCache(FunctionCache):
    """A :class:`numba.core.caching.FunctionCache` that checks every source and never fails (NOTE [kernel
    cache])."""

    _impl_class = _CheckedImpl

    def __init__(self, py_func: FunctionType) -> None:
        self._problem: tuple[str, BaseException] | None = None
        try:
            super().__init__(py_func)
        except Exception as exc:  # no locator: no writable directory anywhere (RuntimeError), an unreadable file
            self._name, self._py_func = repr(py_func), py_func
            self._cache_path = None
            self._enabled = False
            self._problem = ("finding a writable directory", exc)

    def _stamp(self) -> None:
        if self._cache_file._source_stamp is None:
            self._cache_file._source_stamp = source_stamp(self._py_func)

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        if self._problem is not None:
            _warn_once(self._cache_path, *self._problem)
            return None
        try:
            self._stamp()
            return super().load_overload(sig, target_context)
        except Exception as exc:  # a damaged index or data file, an unreadable directory
            _warn_once(self._cache_path, "reading the cache", exc)
            try:
                self._cache_file.flush()  # an empty index: the next save writes a good entry
            except Exception:
                self.disable()
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        if self._problem is not None:
            return
        try:
            self._stamp()
            super().save_overload(sig, data)
        except Exception as exc:  # a full disk, a read-only directory
            _warn_once(self._cache_path, "writing the cache", exc)
            self.disable()


def checked_jit(**options: Any) -> Callable[[FunctionType], Any]:
    """``numba.njit(cache=True, **options)``, with the disk cache of NOTE [kernel cache].

    >>> @checked_jit(nogil=True)
    ... def twice(x):
    ...     return 2 * x
    >>> twice(21)
    42
    """
    from numba import njit
    from numba.core.dispatcher import Dispatcher

    def decorate(fn: FunctionType) -> Any:
        dispatcher = njit(**options)(fn)
        if isinstance(dispatcher, Dispatcher):  # (with NUMBA_DISABLE_JIT=1 njit returns fn itself)
            dispatcher._cache = CheckedCache(dispatcher.py_func)  # what enable_caching() does, with this cache
        return dispatcher

    return decorate
