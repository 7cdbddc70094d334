"""The one registry of optimizers: every list of optimizer names in microdl is derived from it.

An optimizer class becomes usable by name (``fit``'s CLI, ``microdl.compare``, ``MLPClassifier(solver=...)``,
the tuning search, the plots) by one call, the same for the built-ins (at the end of
:mod:`microdl.optim.optimizers`) as for a learner's own file::

    from microdl.optim import register_optimizer

    @register_optimizer("lion", default_lr=1e-4, search_space={"lr": (1e-5, 1e-2, "log")})
    class Lion(Optimizer):
        ...

Registering an elementwise optimizer (an :class:`~microdl.optim.Optimizer` subclass) first checks its rule's
contract (``microdl.optim.contract.check_rule``): a broken rule is refused with an error that names it,
before any kernel is compiled. Each entry carries what the rest of the package needs to know about the
optimizer, so that no other module keeps a list of names:

* ``order``: where it sorts in tables, legends and help texts (the built-ins in increasing complexity);
* ``color``: its colour in every figure (a matplotlib colour);
* ``default_lr``: the rate the scikit-learn estimators use when ``learning_rate_init`` is None;
* ``article``: whether it is one of the six optimizers the article compares (``microdl compare``'s default);
* ``search_space``: for the tuning search, hyperparameter -> ``(low, high, "log" | "one_minus")`` (the value,
  or ``1 - value`` for a decay rate such as β, log-uniform in ``[low, high]``);
* ``estimator_params``: which of the estimators' own optimizer parameters (``momentum``,
  ``nesterovs_momentum``, ``beta_1``, ``beta_2``, ``epsilon``) it takes; the others keep its defaults;
* derived from the class: ``takes_lr``, ``takes_momentum`` (the CLI's ``--momentum``) and ``full_batch``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OptimizerEntry", "register_optimizer", "unregister_optimizer", "optimizer_entry",
           "available_optimizers", "registered", "OPTIMIZERS"]

#: Scales a search space may use.
SCALES = ("log", "one_minus")
#: The scikit-learn estimators' optimizer parameters, with the hyperparameters each one sets
#: (:class:`microdl.sklearn.MLPClassifier` maps them).
ESTIMATOR_PARAMS = {"momentum": ("momentum",), "nesterovs_momentum": ("momentum", "nesterov"),
                    "beta_1": ("betas",), "beta_2": ("betas",), "epsilon": ("eps",)}


@dataclass(frozen=True)
class OptimizerEntry:
    """What microdl knows about one registered optimizer (see :func:`register_optimizer`)."""

    name: str
    cls: type
    order: float
    color: str | None = None
    default_lr: float | None = None
    article: bool = False
    search_space: Mapping[str, tuple[float, float, str]] = field(default_factory=dict)
    estimator_params: tuple[str, ...] = ()

    @property
    def takes_lr(self) -> bool:
        """Whether the constructor takes a learning rate ``lr`` (L-BFGS does not)."""
        return "lr" in self.parameters

    @property
    def takes_momentum(self) -> bool:
        """Whether the constructor takes ``momentum`` (the CLI's ``--momentum``)."""
        return "momentum" in self.parameters

    @property
    def full_batch(self) -> bool:
        """Whether the training loop must give it full-batch gradients (GD, L-BFGS)."""
        return bool(getattr(self.cls, "full_batch", False))

    @property
    def parameters(self) -> list[str]:
        """The constructor's hyperparameters, in order (``params`` and ``backend`` left out)."""
        return [p for p in inspect.signature(self.cls).parameters if p not in ("params", "backend")]

    @property
    def lr_default(self) -> float | None:
        """The constructor's default learning rate (None without one)."""
        return float(inspect.signature(self.cls).parameters["lr"].default) if self.takes_lr else None


_ENTRIES: dict[str, OptimizerEntry] = {}


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ValueError(f"an optimizer's name must be a lower-case Python identifier (it is a CLI choice and a "
                         f"solver name); got {name!r}")
    return name


def _check_search_space(name: str, cls: type, space: Any) -> dict[str, tuple[float, float, str]]:
    if space is None:
        return {}
    if not isinstance(space, Mapping):
        raise TypeError(f"search_space of {name!r} must be a dict of hyperparameter -> (low, high, scale); "
                        f"got {type(space).__name__}")
    takes = [p for p in inspect.signature(cls).parameters if p not in ("params", "backend")]
    checked = {}
    for key, bounds in space.items():
        if key not in takes:
            raise ValueError(f"search_space of {name!r} names {key!r}, which {cls.__name__} does not take "
                             f"(it takes {', '.join(takes)})")
        if not (isinstance(bounds, (tuple, list)) and len(bounds) == 3 and bounds[2] in SCALES):
            raise ValueError(f"search_space[{key!r}] of {name!r} must be (low, high, 'log' or 'one_minus'); "
                             f"got {bounds!r}")
        low, high, scale = float(bounds[0]), float(bounds[1]), bounds[2]
        if not (math.isfinite(low) and math.isfinite(high) and low < high and low > 0):
            raise ValueError(f"search_space[{key!r}] of {name!r} must have finite 0 < low < high (both "
                             f"scales are logarithmic); got {bounds!r}")
        checked[key] = (low, high, scale)
    return checked


def register_optimizer(name: str, cls: type | None = None, *, order: float | None = None, color: str | None = None,
                       default_lr: float | None = None, article: bool = False,
                       search_space: Mapping[str, tuple[float, float, str]] | None = None,
                       estimator_params: tuple[str, ...] = (), replace: bool = False) -> Any:
    """Register the optimizer class ``cls`` under ``name``; usable as a class decorator (``cls`` left out).

    Parameters
    ----------
    name : str
        A lower-case identifier: the CLI's ``--optimizer`` choice, the estimators' ``solver``, the key of
        :data:`OPTIMIZERS`.
    cls : type
        An :class:`~microdl.optim.Optimizer` subclass (its rule is checked first:
        ``microdl.optim.contract.check_rule``), or a class that ``fit`` drives itself, as
        :class:`~microdl.optim.LBFGS`.
    order : float, optional
        Where it sorts among the optimizers; by default after every one registered so far.
    color : str, optional
        Its matplotlib colour in every figure; by default one picked from its name.
    default_lr : float, optional
        The estimators' learning rate when ``learning_rate_init`` is None; by default the constructor's ``lr``.
    article : bool, default False
        One of the article's six optimizers (``microdl compare``'s default list).
    search_space : dict, optional
        For the tuning search: hyperparameter -> ``(low, high, "log" | "one_minus")``; by default the tuner's own
        space for an optimizer it knows, else ``lr`` around its default.
    estimator_params : tuple of str, default ()
        Which of the scikit-learn estimators' ``momentum``, ``nesterovs_momentum``, ``beta_1``, ``beta_2`` and
        ``epsilon`` it takes (they set the hyperparameters of the same meaning); by default none, so that the
        estimators' Adam-flavoured defaults (``beta_2=0.999``) never replace the optimizer's own.
    replace : bool, default False
        Allow replacing an optimizer registered under the same name (for example after editing its file in
        a notebook); otherwise that is an error.

    Returns
    -------
    type
        ``cls``, unchanged, so that the function works as a decorator.
    """
    name = _check_name(name)
    if cls is None:
        return lambda klass: register_optimizer(name, klass, order=order, color=color, default_lr=default_lr,
                                                article=article, search_space=search_space,
                                                estimator_params=estimator_params, replace=replace)
    if not isinstance(cls, type):
        raise TypeError(f"register_optimizer({name!r}, cls) needs a class; got {cls!r}")
    if name in _ENTRIES and not replace:
        raise ValueError(f"an optimizer named {name!r} is registered already ({_ENTRIES[name].cls.__qualname__}); "
                         "pass replace=True to replace it")
    from microdl.optim.base import Optimizer

    if issubclass(cls, Optimizer):
        from microdl.optim.contract import check_optimizer_class

        check_optimizer_class(cls)
    elif not (callable(getattr(cls, "run", None)) and getattr(cls, "drives_epochs", False)):
        raise TypeError(f"{cls.__qualname__} is neither an Optimizer subclass (an elementwise rule) nor a "
                        "full-batch solver that fit drives (drives_epochs = True and a run method, as LBFGS)")
    estimator_params = tuple(estimator_params)
    for param in estimator_params:
        if param not in ESTIMATOR_PARAMS:
            raise ValueError(f"estimator_params of {name!r}: unknown {param!r}; choose from "
                             f"{', '.join(ESTIMATOR_PARAMS)}")
        missing = [h for h in ESTIMATOR_PARAMS[param] if h not in inspect.signature(cls).parameters]
        if missing:
            raise ValueError(f"estimator_params of {name!r}: {param!r} sets {', '.join(missing)}, which "
                             f"{cls.__qualname__} does not take")
    if default_lr is not None:
        from microdl._validation import check_real

        default_lr = check_real(f"default_lr of {name!r}", default_lr, 0.0, low_open=True)
    if order is None:
        order = max((e.order for e in _ENTRIES.values() if e.name != name), default=0.0) + 1.0
    entry = OptimizerEntry(name=name, cls=cls, order=float(order), color=color, default_lr=default_lr,
                           article=bool(article), search_space=_check_search_space(name, cls, search_space),
                           estimator_params=estimator_params)
    _ENTRIES[name] = entry
    return cls


def unregister_optimizer(name: str) -> None:
    """Remove ``name`` from the registry (tests, notebooks); a built-in may be removed too."""
    if name not in _ENTRIES:
        raise ValueError(f"no optimizer named {name!r} is registered")
    del _ENTRIES[name]


def registered() -> list[OptimizerEntry]:
    """Every entry, in display order."""
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.name))


def available_optimizers(*, takes_lr: bool | None = None, article: bool | None = None) -> tuple[str, ...]:
    """The registered names in display order; ``takes_lr``/``article`` keep only those that match."""
    return tuple(e.name for e in registered() if (takes_lr is None or e.takes_lr == takes_lr)
                 and (article is None or e.article == article))


def optimizer_entry(name: str) -> OptimizerEntry:
    """The entry for ``name``; an unknown name raises ``ValueError`` listing the registered ones."""
    try:
        return _ENTRIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(available_optimizers())} "
                         "(or register your own: microdl.optim.register_optimizer)") from None


class _Optimizers(Mapping):
    """The registered classes by name, in display order: a live, read-only view of the registry."""

    def __getitem__(self, name: str) -> type:
        return _ENTRIES[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(available_optimizers())

    def __len__(self) -> int:
        return len(_ENTRIES)

    def __contains__(self, name: object) -> bool:
        return name in _ENTRIES

    def __repr__(self) -> str:
        return "OPTIMIZERS(" + ", ".join(f"{n}={c.__name__}" for n, c in self.items()) + ")"


#: The optimizer classes by name, in display order: a live view of the registry (an optimizer registered later
#: appears in it).
OPTIMIZERS: Mapping[str, type] = _Optimizers()
