"""Writing files so that nothing is lost: a crash or Ctrl-C leaves either the old file (or folder) or the new one,
never a truncated file or a mix of old and new.

* :func:`atomic_file` — write to a temporary file in the target's folder, flush it to disk, then ``os.replace``
  it over the target (checkpoints, results files);
* :func:`atomic_folder` — build a whole output folder under a temporary name beside the target, record what
  it holds in a manifest (NOTE [output folders]), then swap it in (``compare``, ``sensitivity`` and ``report``
  output);
* :func:`check_writable_file`, :func:`check_writable_folder` — is an output path usable, before any work is
  done (names within the file system's limits, the temporary names included);
  :func:`check_replaceable_folder` — and may the folder there be replaced as a whole;
* :func:`deferred_signals` — hold back SIGINT, SIGTERM and SIGHUP for the few statements that must not be
  split; :func:`stop_signals_as_exceptions` — turn SIGTERM and SIGHUP into :class:`Stopped`, a
  ``KeyboardInterrupt``, so that every clean-up that serves Ctrl-C serves them too;
* :func:`strict_json` — results as strict JSON (no NaN or infinity), for every JSON file and ``--json``.

NOTE [output folders]
An output folder is replaced as a whole, so whatever else is in it would be lost with it. A folder is
replaced only if every entry in it is one that the same command wrote there: :func:`atomic_folder` writes
``.microdl-manifest.json`` into each folder it builds, naming the command and every file (size and SHA-256)
and subfolder, and :func:`check_replaceable_folder` refuses, before any work, a folder with an entry the
manifest does not list, one that changed since (a report edited by hand), one of another type (a folder where
a file was written), or no manifest at all. Guessing ownership from names or suffixes lost a user's
``thesis.md`` and a ``curves.png/`` folder full of files (issue 21, cases 7-8).

A new command that writes a folder (``explore``) does the same two calls::

    out = check_replaceable_folder(path, "--out", "microdl explore")      # before any work
    ...
    with atomic_folder(out, "microdl explore") as tmp:                     # write into tmp
        ...
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from microdl import config

__all__ = ["atomic_file", "atomic_folder", "check_writable_file", "check_writable_folder",
           "check_replaceable_folder", "strict_json", "MANIFEST", "Stopped", "deferred_signals",
           "stop_signals_as_exceptions", "STOP_SIGNALS"]

#: The file in which :func:`atomic_folder` records what it wrote (NOTE [output folders]).
MANIFEST = ".microdl-manifest.json"

#: The signals that stop a command as Ctrl-C does, and the exit status of each (128 + its number, as a shell
#: reports a process killed by it): SIGINT 130, SIGTERM (``kill``, ``docker stop``, Kubernetes) 143, SIGHUP
#: (a closed terminal) 129.
STOP_SIGNALS = {name: getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP received: a ``KeyboardInterrupt`` so that every clean-up written for Ctrl-C (joblib
    stopping its workers, temporary files removed, the previous output left intact) runs for them too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    exc = KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)
    if not config.pending_stop:  # the first signal's exception is the one that stops the command
        config.pending_stop.append(exc)
    raise exc


def _installed(signum: int) -> bool:
    """Whether ``signum`` still has the handler Python starts with (no one else has changed it)."""
    return signal.getsignal(signum) is (signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


@contextlib.contextmanager
def stop_signals_as_exceptions() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread, SIGINT ``KeyboardInterrupt``
    as always, and every kernel call and commit of files raises the exception again where Python swallowed it
    (NOTE [a stop Python swallowed], :data:`microdl.config.pending_stop`); the previous handlers come back on
    the way out. Does nothing off the main thread, where Python cannot set handlers, and leaves a signal alone
    whose handler someone already changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS.values()
                if _installed(signum)}
    hook = sys.unraisablehook

    def quiet_about_the_stop(unraisable: Any) -> None:
        # The stop's exception, swallowed in a callback: it is raised again at the next kernel call, so
        # Python's "Exception ignored ..." traceback would only be noise above the command's one line.
        if not (config.pending_stop and unraisable.exc_value is config.pending_stop[0]):
            hook(unraisable)

    sys.unraisablehook = quiet_about_the_stop
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        config.pending_stop.clear()


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back SIGINT, SIGTERM and SIGHUP for the few statements that must not be split; raise the first one
    received afterwards (``KeyboardInterrupt`` or :class:`Stopped`)."""
    if config.pending_stop:  # a stop that Python swallowed: do not commit (NOTE [a stop Python swallowed])
        raise config.pending_stop[0]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in STOP_SIGNALS.values():
        handler = signal.getsignal(signum)
        if _installed(signum) and signum == signal.SIGINT or handler is _raise_stopped:  # those that raise
            previous[signum] = signal.signal(signum, lambda n, frame: received.append(n))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            _raise_stopped(received[0], None)


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


#: Characters of the target's name kept in a temporary name: enough to tell whose it is, short enough that a
#: target whose own name is at the file system's limit still gets a legal temporary name (issue 21, case 10).
_TEMPORARY_STEM = 24
#: Bytes that a temporary name may take: "." + stem + "." + mkstemp's 8 random characters + ".tmp"/".old".
_TEMPORARY_BYTES = 1 + 4 * _TEMPORARY_STEM + 1 + 8 + 4


def _temporary(make: Any, path: Path, suffix: str) -> str:
    """``make(prefix=..., suffix=..., dir=...)`` beside ``path``, under a short name (at most
    ``_TEMPORARY_BYTES``); an error names ``path``, not the temporary."""
    try:
        return make(prefix=f".{path.name[:_TEMPORARY_STEM]}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[object]:
    """Open a temporary file beside ``path`` for writing (creating the folders above it that are missing); on
    a clean exit, flush it to disk and rename it over ``path``. On any error (or Ctrl-C) the temporary file is
    removed and ``path`` is left as it was. A symbolic link at ``path`` stays: its target is the file replaced.

    >>> with atomic_file("out.txt", "w") as f:      # doctest: +SKIP
    ...     f.write("done")
    """
    path = Path(path)
    if path.is_symlink():  # write to the file the link points to, and keep the link (as open() would)
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)  # as atomic_folder does: output paths are created alike
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entries(folder: Path) -> dict[str, dict[str, Any]]:
    """Every entry under ``folder`` but the manifest, by its relative POSIX path: a file's size and SHA-256, a
    folder, or anything else (a link, a socket) as "other", which no manifest lists."""
    found: dict[str, dict[str, Any]] = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if rel == MANIFEST:
                continue
            if p.is_symlink():
                found[rel] = {"type": "other"}
            elif p.is_dir():
                found[rel] = {"type": "folder"}
            elif p.is_file():
                found[rel] = {"type": "file", "size": p.stat().st_size}
            else:
                found[rel] = {"type": "other"}
    return found


def _write_manifest(folder: Path, writer: str) -> None:
    entries = _entries(folder)
    for rel, entry in entries.items():
        if entry["type"] == "file":
            entry["sha256"] = _sha256(folder / rel)
    (folder / MANIFEST).write_text(json.dumps({"writer": writer, "entries": entries}, indent=1, sort_keys=True))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, writer: str) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path`` to write into; on a clean exit, record its entries in a
    manifest naming ``writer`` (the command, such as ``"microdl compare"``; NOTE [output folders]) and swap
    it in for ``path``.

    The previous folder, if any, is moved aside and removed only after the new one is in place (the two
    renames run with Ctrl-C, SIGTERM and SIGHUP held back), so an interrupted run leaves the previous results
    intact and never a mix of old and new files. On an error the temporary folder is removed. Call
    :func:`check_replaceable_folder` first, before any work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(_temporary(tempfile.mkdtemp, path, ".tmp"))
    try:
        os.chmod(tmp, _default_mode(directory=True))
        yield tmp
        _write_manifest(tmp, writer)
        old = None
        with deferred_signals():
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


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no limit reported
        return default


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to ask about (ENAMETOOLONG)
        return False


def check_path_length(path: str | os.PathLike, what: str) -> Path:
    """Raise ``ValueError`` naming ``what`` unless every component of ``path`` fits the file system's limit on
    a name (``NAME_MAX``, 255 bytes on most) and the whole fits ``PATH_MAX``, with room for the temporary
    names written beside it (:func:`atomic_file`, :func:`atomic_folder`), so that a path problem is found
    before the work, not when saving it (issue 21, cases 10-11)."""
    path = Path(path)
    full = path.absolute()
    existing = full
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    name_max = _limit(existing if existing.is_dir() else existing.parent, "PC_NAME_MAX", 255)
    for part in full.parts[1:]:
        size = len(os.fsencode(part))
        if size > name_max:
            raise ValueError(f"{what} {str(path)[:60]!r}...: the name {part[:40]!r}... is {size} bytes, longer than "
                             f"the {name_max} bytes this file system allows")
    path_max = _limit(existing if existing.is_dir() else existing.parent, "PC_PATH_MAX", 4096)
    longest = len(os.fsencode(str(full.parent))) + 1 + max(len(os.fsencode(full.name)), _TEMPORARY_BYTES) + 1
    if longest > path_max:
        raise ValueError(f"{what} {str(path)[:60]!r}...: the path is {longest} bytes with its temporary names, "
                         f"longer than the {path_max} bytes this system allows")
    return path


def check_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Raise ``ValueError`` naming the problem unless a file can be written at ``path``: ``path`` is not a
    folder, the nearest existing folder above it is writable (missing folders are created when the file is
    written, by :func:`atomic_file`, as :func:`atomic_folder` creates them for an output folder), and its name
    and the temporary one fit the file system's limits. Nothing is created."""
    path = check_path_length(path, what)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder, not a file")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
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
    not a file, the nearest existing folder above it is writable, and its name and the temporary ones fit the
    file system's limits. Nothing is created."""
    path = check_path_length(path, what)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
    _try_writing_in(parent, what, path)
    return path


def check_replaceable_folder(path: str | os.PathLike, what: str, writer: str) -> Path:
    """``path`` if an output folder may be written there and later replaced as a whole by :func:`atomic_folder`,
    else ``ValueError``: it must be writable (:func:`check_writable_folder`), not the current folder or one above
    it, and new, empty, or holding only what ``writer`` wrote there before, as its manifest records (NOTE
    [output folders]). Replacing a folder swaps out everything in it, so anything else there is refused
    rather than lost. Call it before any work."""
    path = check_writable_folder(path, what)
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise ValueError(f"{what} {str(path)!r} is the current folder or one above it; name a new folder")
    if not path.is_dir():
        return path
    found = _entries(path)
    if not found and not (path / MANIFEST).exists():
        return path  # an empty folder
    advice = "name a new folder, or move them out first"
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        writer_there, listed = manifest["writer"], manifest["entries"]
        if not isinstance(listed, dict):
            raise TypeError
    except FileNotFoundError:
        names = sorted(found)
        raise ValueError(f"{what} {str(path)!r} holds files that {writer} did not write ({_some(names)}; no "
                         f"{MANIFEST} records them); it would be replaced as a whole, so {advice}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{what} {str(path)!r}: its {MANIFEST} is unreadable or damaged, so what else is in the "
                         f"folder is unknown; {advice}") from None
    if writer_there != writer:
        raise ValueError(f"{what} {str(path)!r} was written by {writer_there}, not {writer}; it would be replaced "
                         f"as a whole, so name a new folder")
    foreign = []
    for rel, entry in sorted(found.items()):
        mine = listed.get(rel)
        if not isinstance(mine, dict) or mine.get("type") != entry["type"] or entry["type"] == "other":
            foreign.append(rel)
        elif entry["type"] == "file" and (mine.get("size") != entry["size"]
                                          or mine.get("sha256") != _sha256(path / rel)):
            foreign.append(f"{rel} (changed since)")
    if foreign:
        raise ValueError(f"{what} {str(path)!r} holds files that {writer} did not write or that changed since "
                         f"({_some(foreign)}); it would be replaced as a whole, so {advice}")
    return path


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


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
