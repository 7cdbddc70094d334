"""Checkpoints: a model, its optimizer (state and step count included) and its history in one ``.npz`` file.

Loading gives back the same parameters bit for bit and an optimizer that continues the same trajectory as if
training had never stopped. Arrays are stored as arrays; configuration and hyperparameters as JSON.

* :func:`save` writes to a temporary file beside the target, flushes it to disk and renames it over the target
  (:func:`microdl._files.atomic_file`): a crash, a kill or Ctrl-C in the middle leaves the previous checkpoint
  whole.
* :func:`load` never unpickles (``allow_pickle=False``), and a file that is not a valid checkpoint (random
  bytes, a truncated archive, malformed metadata, an unknown optimizer) raises one ``ValueError`` that names
  the path and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl._files import atomic_file
from microdl.nn import MLP
from microdl.optim import OPTIMIZERS, Optimizer
from microdl.train import History

__all__ = ["save", "load", "Checkpoint"]

_FORMAT = 1


@dataclass
class Checkpoint:
    """What :func:`load` returns; ``optimizer`` and ``history`` are None if they were not saved."""

    model: MLP
    optimizer: Optimizer | None
    history: History | None


def save(path: str | os.PathLike, model: MLP, optimizer: Optimizer | None = None,
         history: History | None = None) -> None:
    """Write ``model`` (and optionally ``optimizer`` and ``history``) to ``path`` (a ``.npz`` file), atomically:
    the file at ``path`` is either the previous one or the complete new one, never a part."""
    kinds = {"model": (model, MLP, "an MLP"), "optimizer": (optimizer, tuple(OPTIMIZERS.values()), "an optimizer"),
             "history": (history, History, "a History")}
    for name, (value, cls, what) in kinds.items():
        if (value is not None or name == "model") and not isinstance(value, cls):
            raise TypeError(f"{name} must be {what} of microdl; got {type(value).__name__}")
    meta: dict[str, Any] = {"format": _FORMAT, "model": model.config()}
    arrays = {"params": model.host_params()}
    if optimizer is not None:
        if optimizer.params is not model.params:
            raise ValueError("optimizer must be bound to model.params")
        state = optimizer.state_dict()
        meta["optimizer"] = {"name": state["optimizer"], "hyperparameters": state["hyperparameters"],
                             "t": state["t"], "backend": optimizer.backend, "state": sorted(state["state"])}
        arrays.update({f"state_{name}": value for name, value in state["state"].items()})
    if history is not None:
        meta["history"] = history.to_dict()
    with atomic_file(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


class _Invalid(Exception):
    """Raised inside :func:`load` with what is wrong; turned into one ValueError naming the path."""


@contextlib.contextmanager
def _reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn whatever a malformed file makes NumPy, zipfile, JSON or a constructor raise into one ValueError."""
    try:
        yield
    except _Invalid as exc:
        raise ValueError(f"{os.fspath(path)} is not a valid microdl checkpoint: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{os.fspath(path)} is not a valid microdl checkpoint: the archive is truncated or "
                         f"corrupt ({type(exc).__name__}: {exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{os.fspath(path)} is not a valid microdl checkpoint: {exc}") from None


def _section(meta: dict[str, Any], key: str) -> dict[str, Any]:
    value = meta[key]
    if not isinstance(value, dict):
        raise _Invalid(f"its {key!r} entry is {type(value).__name__}, not a JSON object")
    return value


def load(path: str | os.PathLike, backend: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`; ``backend`` overrides the optimizer's saved backend.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a valid checkpoint, naming the path and what is wrong.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {os.fspath(path)}")
    with _reading(path):
        if not zipfile.is_zipfile(path):
            raise _Invalid("it is not an .npz (zip) archive, or a truncated one")
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise _Invalid("it has no 'meta' entry")
            try:
                meta = json.loads(str(data["meta"]))
            except json.JSONDecodeError as exc:
                raise _Invalid(f"its meta is not valid JSON ({exc})") from None
            if not isinstance(meta, dict):
                raise _Invalid(f"its meta is {type(meta).__name__}, not a JSON object")
            if meta.get("format") != _FORMAT:
                raise _Invalid(f"it is not a microdl checkpoint of format {_FORMAT} (format {meta.get('format')!r})")
            if "model" not in meta:
                raise _Invalid("its meta has no 'model' entry")
            if "params" not in data.files:
                raise _Invalid("it has no 'params' array")
            model = MLP(**_section(meta, "model"))
            model.set_params(data["params"])
            optimizer = None
            if "optimizer" in meta:
                info = _section(meta, "optimizer")
                classes = {c.__name__: c for c in OPTIMIZERS.values()}
                if info.get("name") not in classes:
                    raise _Invalid(f"unknown optimizer {info.get('name')!r}; microdl has {', '.join(classes)}")
                cls = classes[info["name"]]
                hyper = dict(info["hyperparameters"])
                if "betas" in hyper:
                    hyper["betas"] = tuple(hyper["betas"])
                optimizer = cls(model.params, backend=backend or info["backend"], **hyper)
                missing = [name for name in info["state"] if f"state_{name}" not in data.files]
                if missing:
                    raise _Invalid(f"the optimizer state {missing[0]!r} is missing")
                optimizer.load_state_dict({"optimizer": info["name"], "hyperparameters": hyper, "t": info["t"],
                                           "state": {name: data[f"state_{name}"] for name in info["state"]}})
            history = History.from_dict(_section(meta, "history")) if "history" in meta else None
    return Checkpoint(model, optimizer, history)
