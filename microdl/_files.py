"""Writing files so that nothing is lost: a crash or Ctrl-C leaves either the old file (or folder) or the new one,
never a truncated file or a mix of old and new.

* :func:`atomic_file` — write to a temporary file in the target's folder, flush it to disk, then ``os.replace``
  it over the target (checkpoints, results files);
* :func:`atomic_folder` — build a whole output folder under a temporary name beside the target, then swap it
  in (``compare``, ``sensitivity`` and ``report`` output);
* :func:`check_writable_file`, :func:`check_writable_folder` — is an output path usable, before any work is
  done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_file", "atomic_folder", "check_writable_file", "check_writable_folder"]


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the few statements that must not be split; re-raise it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[object]:
    """Open a temporary file beside ``path`` for writing; on a clean exit, flush it to disk and rename it over
    ``path``. On any error (or Ctrl-C) the temporary file is removed and ``path`` is left as it was.

    >>> with atomic_file("out.txt", "w") as f:      # doctest: +SKIP
    ...     f.write("done")
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path`` to write into; on a clean exit, swap it in for ``path``.

    The previous folder, if any, is moved aside and removed only after the new one is in place (the two
    renames run with Ctrl-C held back), so an interrupted run leaves the previous results intact and never a
    mix of old and new files. On an error the temporary folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        with _sigint_deferred():
            if path.exists():
                if not path.is_dir():
                    raise NotADirectoryError(f"{path} exists and is not a folder")
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
            os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Raise ``ValueError`` naming the problem unless a file can be written at ``path`` (its folder exists and
    is writable, and ``path`` is not a folder). Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: the folder {str(parent)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {str(path)!r} exists and is not writable")
    return path


def check_writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise ``ValueError`` naming the problem unless ``path`` can be created or replaced as a folder: it is
    not a file, and the nearest existing folder above it is writable. Nothing is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is not a writable folder")
    return path
