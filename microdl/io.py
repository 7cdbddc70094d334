"""Checkpoints: a model, its optimizer (state and step count included) and its history in one ``.npz`` file.

Loading gives back the same parameters bit for bit and an optimizer that continues the same trajectory as if
training had never stopped. Arrays are stored as arrays; configuration and hyperparameters as JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    """Write ``model`` (and optionally ``optimizer`` and ``history``) to ``path`` (a ``.npz`` file)."""
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
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | os.PathLike, backend: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`; ``backend`` overrides the optimizer's saved backend."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a microdl checkpoint of format {_FORMAT}")
        model = MLP(**meta["model"])
        model.set_params(data["params"])
        optimizer = None
        if "optimizer" in meta:
            info = meta["optimizer"]
            cls = {c.__name__: c for c in OPTIMIZERS.values()}[info["name"]]
            hyper = dict(info["hyperparameters"])
            if "betas" in hyper:
                hyper["betas"] = tuple(hyper["betas"])
            optimizer = cls(model.params, backend=backend or info["backend"], **hyper)
            optimizer.load_state_dict({"optimizer": info["name"], "hyperparameters": hyper, "t": info["t"],
                                       "state": {name: data[f"state_{name}"] for name in info["state"]}})
        history = History.from_dict(meta["history"]) if "history" in meta else None
    return Checkpoint(model, optimizer, history)
