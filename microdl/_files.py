"""Writing files so that nothing is lost: a crash or Ctrl-C leaves either the old file (or folder) or the new one,
never a truncated file or a mix of old and new.

* :func:`atomic_file` — write to a temporary file in the target's folder, flush it to disk, then ``os.replace``
  it over the target (checkpoints, results files);
* :func:`atomic_folder` — build a whole output folder under a temporary name beside the target, then swap it
  in (``compare``, ``sensitivity`` and ``report`` output);
* :func:`check_writable_file`, :func:`check_writable_folder` — is an output path usable, before any work is
  done; :func:`check_replaceable_folder` — and may the folder there be replaced as a whole;
* :func:`strict_json` — results as strict JSON (no NaN or infinity), for every JSON file and ``--json``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_file", "atomic_folder", "check_writable_file", "check_writable_folder",
           "check_replaceable_folder", "strict_json"]


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


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process's umask. Linux reports it; elsewhere os.umask can only read it by setting it, and the value
    set meanwhile (0o022) applies for that instant to files that other threads create."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _default_mode(directory: bool) -> int:
    """The permissions a plain ``open()`` or ``mkdir()`` would give (0o666 or 0o777 less the umask): the
    temporary names are created private (0o600, 0o700), and the result must not stay so."""
    mask = _umask()
    return (0o777 if directory else 0o666) & ~mask


def _temporary(make: Any, path: Path, suffix: str) -> str:
    """``make(prefix=..., suffix=..., dir=...)`` beside ``path``; an error names ``path``, not the temporary."""
    try:
        return make(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[object]:
    """Open a temporary file beside ``path`` for writing; on a clean exit, flush it to disk and rename it over
    ``path``. On any error (or Ctrl-C) the temporary file is removed and ``path`` is left as it was.

    >>> with atomic_file("out.txt", "w") as f:      # doctest: +SKIP
    ...     f.write("done")
    """
    path = Path(path)
    fd, tmp = _temporary(tempfile.mkstemp, path, ".tmp")
    try:
        # the permissions the file would have had (an existing file keeps its own)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _default_mode(directory=False))
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
    tmp = Path(_temporary(tempfile.mkdtemp, path, ".tmp"))
    try:
        os.chmod(tmp, _default_mode(directory=True))
        yield tmp
        old = None
        with _sigint_deferred():
            if path.exists():
                if not path.is_dir():
                    raise NotADirectoryError(f"{path} exists and is not a folder")
                old = Path(_temporary(tempfile.mkdtemp, path, ".old"))
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
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {str(path)!r} exists and is not writable")
    _try_writing_in(parent, what, path)
    return path


def _try_writing_in(folder: Path, what: str, path: Path) -> None:
    """Create and remove a file in ``folder``: the one sure test that a file can be written there (permission
    bits say nothing to root, and nothing of /proc or a read-only mount)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".microdl-write-test.", dir=folder)
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r}: cannot write in {str(folder)!r} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise ``ValueError`` naming the problem unless ``path`` can be created or replaced as a folder: it is
    not a file, and the nearest existing folder above it is writable. Nothing is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
    _try_writing_in(parent, what, path)
    return path


def check_replaceable_folder(path: str | os.PathLike, what: str, owns: Callable[[Path], bool],
                             writer: str) -> Path:
    """``path`` if an output folder may be written there and later replaced as a whole by :func:`atomic_folder`,
    else ``ValueError``: it must be writable (:func:`check_writable_folder`), not the current folder or one above
    it, and new or holding only entries that ``owns`` accepts (what ``writer`` wrote there before). Replacing a
    folder swaps out everything in it, so anything else there is refused rather than lost."""
    path = check_writable_folder(path, what)
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise ValueError(f"{what} {str(path)!r} is the current folder or one above it; name a new folder")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not owns(p))
        if others:
            raise ValueError(f"{what} {str(path)!r} holds other files ({', '.join(others[:3])}"
                             f"{', ...' if len(others) > 3 else ''}), which {writer} does not write; it would be "
                             "replaced as a whole, so name a new folder or an earlier result folder")
    return path


def strict_json(x: Any) -> Any:
    """``x`` ready for ``json.dumps(..., allow_nan=False)``: NaN and infinity become None, NumPy scalars and
    arrays Python numbers and lists, tuples lists, keys strings."""
    if isinstance(x, dict):
        return {str(k): strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return strict_json(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x
