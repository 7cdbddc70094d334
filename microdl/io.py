"""Checkpoints: a model, its optimizer (state and step count included) and its history in one ``.npz`` file;
optionally the preprocessing that makes raw samples the model's inputs and its outputs labels or values again
(:class:`microdl.datasets.Preprocessing`: feature and target scaling, column names, class labels), and what a
run needs to continue (``training``: the data it came from, its settings, the state of its random stream).

Loading gives back the same parameters bit for bit and an optimizer that continues the same trajectory as if
training had never stopped. Arrays are stored as arrays; configuration and hyperparameters as JSON.

* :func:`save` writes to a temporary file beside the target, flushes it to disk and renames it over the target
  (:func:`microdl._files.atomic_file`): a crash, a kill or Ctrl-C in the middle leaves the previous checkpoint
  whole.
* :func:`load` never unpickles (``allow_pickle=False``), and a file that is not a valid checkpoint (random
  bytes, a truncated archive, malformed metadata, an unknown optimizer) raises one ``ValueError`` that names
  the path and what is wrong.

NOTE [nothing allocated on a file's word]
A checkpoint's metadata and its arrays' ``.npy`` headers state sizes; a hostile or damaged file can claim
anything (layer sizes of 1e6: 7 TiB; a header of 2e11 elements: 1.5 TiB), and NumPy and the model's
constructor would allocate it before anything else looked. So :func:`load` reads every array's header first
(``numpy.lib.format.read_array_header_*``, a few hundred bytes) and refuses an array that claims more bytes than
its archive member holds (a member's declared size is in turn capped by its compressed size and the best
ratio deflate reaches), and a model whose layer sizes do not give the parameter count of the ``params``
header, all before building a model or reading an array: what is allocated is bounded by the file's size.

NOTE [checkpoint formats]
Format 2 added the optional ``preprocessing`` (arrays ``x_scale``, ``x_mean``, ``x_std``, ``classes``) and
``training`` entries; format 1 files (microdl before them) still load, with neither. A newer format than this
code knows is refused by name, never half-read.

A checkpoint written on a GPU (``device="cuda"``) loads on a machine without one: on the CPU, with a warning,
or silently with ``backend="cpu"``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl._files import atomic_file
from microdl.datasets import TASKS, Preprocessing
from microdl.nn import MLP
from microdl.nn.layout import n_params
from microdl.optim import OPTIMIZERS, Optimizer
from microdl.train import History

__all__ = ["save", "load", "Checkpoint"]

#: The format :func:`save` writes, and those :func:`load` reads (NOTE [checkpoint formats]).
_FORMAT = 2
_READABLE_FORMATS = (1, 2)


@dataclass
class Checkpoint:
    """What :func:`load` returns; ``optimizer``, ``history``, ``preprocessing`` and ``training`` are None if
    they were not saved."""

    model: MLP
    optimizer: Optimizer | None
    history: History | None
    preprocessing: Preprocessing | None = None
    training: dict[str, Any] | None = None


def save(path: str | os.PathLike, model: MLP, optimizer: Optimizer | None = None,
         history: History | None = None, *, preprocessing: Preprocessing | None = None,
         training: dict[str, Any] | None = None) -> None:
    """Write ``model`` (and optionally ``optimizer``, ``history``, ``preprocessing`` and a JSON-ready
    ``training`` record) to ``path`` (a ``.npz`` file), atomically: the file at ``path`` is either the previous
    one or the complete new one, never a part. Missing folders above ``path`` are created."""
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
    if preprocessing is not None:
        if not isinstance(preprocessing, Preprocessing):
            raise TypeError(f"preprocessing must be a microdl.datasets.Preprocessing; got "
                            f"{type(preprocessing).__name__}")
        if preprocessing.n_features != model.layer_sizes[0]:
            raise ValueError(f"preprocessing has {preprocessing.n_features} features, the model "
                             f"{model.layer_sizes[0]} inputs")
        p = preprocessing
        meta["preprocessing"] = {"task": p.task, "y_mean": p.y_mean, "y_scale": p.y_scale, "target": p.target,
                                 "feature_names": None if p.feature_names is None else list(p.feature_names)}
        arrays.update({"x_scale": p.x_scale, "x_mean": p.x_mean, "x_std": p.x_std})
        if p.classes is not None:
            arrays["classes"] = np.asarray(p.classes)
    if training is not None:
        meta["training"] = training
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


#: The most that deflate expands data (its limit is about 1032:1): a compressed member's declared size above
#: this many times its stored size is a lie (NOTE [nothing allocated on a file's word]).
_MAX_DEFLATE_RATIO = 1032
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _array_headers(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in the archive, from the headers alone; ``_Invalid`` for an array that
    claims more than its member holds (NOTE [nothing allocated on a file's word])."""
    headers = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            ratio = 1 if info.compress_type == zipfile.ZIP_STORED else _MAX_DEFLATE_RATIO
            if info.file_size > max(info.compress_size, 1) * ratio:
                raise _Invalid(f"its array {name!r} claims {info.file_size:,} bytes in {info.compress_size:,} stored")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version not in _HEADER_READERS:
                    raise _Invalid(f"its array {name!r} has an .npy header of unknown version {version}")
                shape, _, dtype = _HEADER_READERS[version](fh)
                data_bytes = info.file_size - fh.tell()
            claimed = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            if dtype.hasobject or claimed > data_bytes:
                raise _Invalid(f"its array {name!r} claims shape {shape} of {dtype} ({claimed:,} bytes), but the "
                               f"file holds {max(data_bytes, 0):,} bytes for it")
            headers[name] = (shape, dtype)
    return headers


def _check_model_size(config: dict[str, Any], headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Refuse layer sizes that do not give the parameter count of the ``params`` header, before a model of
    that size is built (NOTE [nothing allocated on a file's word])."""
    sizes = config.get("layer_sizes")
    if not isinstance(sizes, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                                              for s in sizes) or len(sizes) < 2:
        raise _Invalid(f"its model's layer_sizes {sizes!r} are not a list of at least two positive integers")
    shape, dtype = headers["params"]
    expected = n_params(sizes)
    if shape != (expected,) or dtype.kind != "f":
        raise _Invalid(f"its model's layer_sizes {sizes} have {expected:,} parameters, but its params array is "
                       f"{shape} of {dtype}")


def _on_this_machine(config: dict[str, Any], backend: str | None, path: str | os.PathLike) -> tuple[dict, bool]:
    """The model's config with ``device="cpu"`` where a CUDA model cannot live here (or ``backend`` says
    otherwise), and whether it moved."""
    if config.get("device") != "cuda" or backend == "cuda":
        return config, False
    if backend is None:
        from microdl._cuda_support import CudaUnavailableError, require_cuda

        try:
            require_cuda()
            return config, False
        except CudaUnavailableError as exc:
            warnings.warn(f"{os.fspath(path)} holds a CUDA model, but CUDA is unavailable here ({exc}); it was "
                          "loaded on the CPU (pass backend='cpu' to say so and silence this)", RuntimeWarning,
                          stacklevel=3)
    return {**config, "device": "cpu"}, True


def _section(meta: dict[str, Any], key: str) -> dict[str, Any]:
    value = meta[key]
    if not isinstance(value, dict):
        raise _Invalid(f"its {key!r} entry is {type(value).__name__}, not a JSON object")
    return value


def load(path: str | os.PathLike, backend: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`; ``backend`` overrides the optimizer's saved backend.

    A checkpoint of a ``device="cuda"`` model loads on the CPU where CUDA is unavailable (with a
    ``RuntimeWarning``), or wherever ``backend`` is not ``"cuda"`` (the parameters live where the optimizer runs).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a valid checkpoint, naming the path and what is wrong; sizes are checked before
        anything is allocated (NOTE [nothing allocated on a file's word]).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {os.fspath(path)}")
    with _reading(path):
        if not zipfile.is_zipfile(path):
            raise _Invalid("it is not an .npz (zip) archive, or a truncated one")
        headers = _array_headers(path)
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise _Invalid("it has no 'meta' entry")
            try:
                meta = json.loads(str(data["meta"]))
            except json.JSONDecodeError as exc:
                raise _Invalid(f"its meta is not valid JSON ({exc})") from None
            if not isinstance(meta, dict):
                raise _Invalid(f"its meta is {type(meta).__name__}, not a JSON object")
            if meta.get("format") not in _READABLE_FORMATS:
                raise _Invalid(f"it is not a microdl checkpoint of a format this microdl reads (format "
                               f"{meta.get('format')!r}; it reads {', '.join(map(str, _READABLE_FORMATS))}: a newer "
                               "microdl may have written it)")
            if "model" not in meta:
                raise _Invalid("its meta has no 'model' entry")
            if "params" not in data.files:
                raise _Invalid("it has no 'params' array")
            config = _section(meta, "model")
            _check_model_size(config, headers)
            config, moved = _on_this_machine(config, backend, path)
            model = MLP(**config)
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
                saved_backend = "cpu" if moved and info["backend"] == "cuda" else info["backend"]
                optimizer = cls(model.params, backend=backend or saved_backend, **hyper)
                missing = [name for name in info["state"] if f"state_{name}" not in data.files]
                if missing:
                    raise _Invalid(f"the optimizer state {missing[0]!r} is missing")
                optimizer.load_state_dict({"optimizer": info["name"], "hyperparameters": hyper, "t": info["t"],
                                           "state": {name: data[f"state_{name}"] for name in info["state"]}})
            history = History.from_dict(_section(meta, "history")) if "history" in meta else None
            preprocessing = _preprocessing(meta, data, model) if "preprocessing" in meta else None
            training = _section(meta, "training") if "training" in meta else None
    return Checkpoint(model, optimizer, history, preprocessing, training)


def _preprocessing(meta: dict[str, Any], data: Any, model: MLP) -> Preprocessing:
    """The :class:`Preprocessing` of a checkpoint, checked against its model."""
    info = _section(meta, "preprocessing")
    n_in, n_out = model.layer_sizes[0], model.layer_sizes[-1]
    arrays = {}
    for name in ("x_scale", "x_mean", "x_std"):
        if name not in data.files:
            raise _Invalid(f"its preprocessing has no {name!r} array")
        arrays[name] = np.asarray(data[name], dtype=np.float64)
        if arrays[name].shape != (n_in,) or not np.all(np.isfinite(arrays[name])):
            raise _Invalid(f"its {name!r} is not {n_in} finite numbers, one per input of the model")
    if info.get("task") not in TASKS:
        raise _Invalid(f"its preprocessing's task {info.get('task')!r} is not one of {', '.join(TASKS)}")
    classes = None
    if info["task"] == "classification":
        if "classes" not in data.files:
            raise _Invalid("its preprocessing has no 'classes' array for a classification model")
        classes = data["classes"]
        if classes.shape != (n_out,):
            raise _Invalid(f"its classes have shape {classes.shape}, but the model has {n_out} outputs")
    names = info.get("feature_names")
    if names is not None and (not isinstance(names, list) or len(names) != n_in
                              or not all(isinstance(c, str) for c in names)):
        raise _Invalid(f"its feature_names are not {n_in} column names")
    target = info.get("target")
    if target is not None and not isinstance(target, str):
        raise _Invalid(f"its target {target!r} is not a column name")
    y_mean, y_scale = float(info.get("y_mean", 0.0)), float(info.get("y_scale", 1.0))
    if not (math.isfinite(y_mean) and math.isfinite(y_scale) and y_scale > 0):
        raise _Invalid(f"its target scaling (mean {y_mean}, scale {y_scale}) is not finite and positive")
    return Preprocessing(info["task"], arrays["x_scale"], arrays["x_mean"], arrays["x_std"], classes, y_mean,
                         y_scale, None if names is None else tuple(names), target)
