"""The optimizer base class: binding to a flat buffer, backends, validated hyperparameters, state, checkpoints.

An optimizer owns no arithmetic. It declares its hyperparameters (:class:`Hyperparameter`: each carries the
check that the constructor and every later assignment apply), allocates its state buffers (same length and
dtype as the parameters), and on each :meth:`Optimizer.step` computes the step's scalars with one host
function of :mod:`microdl.optim.rules` and hands the parameters, the gradients, the state and those scalars to
one backend call, which applies the rule in place with the kernel that backend compiled from it, once per
rule (``kernels_for`` in :mod:`~microdl.optim._numpy`, :mod:`~microdl.optim._cpu`,
:mod:`~microdl.optim._cuda`). The step count ``t`` and everything derived from it (bias
corrections, decayed rates) stay on the host.

Every buffer a kernel indexes is checked here first (:func:`check_flat_buffer`, and the shape and dtype of the
gradients against the parameters), so that no kernel reads past an array's end whatever is passed in.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import numpy as np

from microdl._cuda_support import as_device_array, is_cuda_array, require_cuda
from microdl._validation import check_bool, check_choice, check_int, check_real

__all__ = ["Optimizer", "BACKENDS", "Hyperparameter", "check_flat_buffer", "real", "boolean", "choice", "pair"]

BACKENDS = ("numpy", "cpu", "cuda")

#: Every this many steps, :meth:`Optimizer.step` sets the state's entries below the dtype's smallest normal number
#: to zero (NOTE [subnormal state] in :mod:`microdl.optim.rules`).
FLUSH_EVERY = 64


def load_backend(name: str) -> ModuleType:
    """Import the backend module for ``name`` (``"numpy"``, ``"cpu"`` or ``"cuda"``)."""
    if name == "numpy":
        from microdl.optim import _numpy as module
    elif name == "cpu":
        from microdl.optim import _cpu as module
    elif name == "cuda":
        require_cuda()
        from microdl.optim import _cuda as module
    else:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {name!r}")
    return module


def check_flat_buffer(x: Any, name: str, *, backend: str | None, writeable: bool = False,
                      contiguous: bool = True) -> Any:
    """``x`` if it is a flat float32 or float64 buffer, else raise ``TypeError``/``ValueError`` naming ``name``.

    ``backend="cuda"`` asks for a CUDA array (anything with ``__cuda_array_interface__``, returned as a Numba
    device array without a copy), another backend name for a NumPy array, and ``None`` takes either. The
    kernels index such a buffer from 0 to ``x.size - 1`` and nothing else.
    """
    on_device = is_cuda_array(x)
    if backend == "cuda" and not on_device:
        raise TypeError(
            f"{name} must be a CUDA array on backend='cuda' (a Numba device array, or any object with "
            f"__cuda_array_interface__); got {type(x).__name__}. Use numba.cuda.to_device(array)."
        )
    if not on_device and not isinstance(x, np.ndarray):
        where = "a NumPy array or a CUDA array" if backend is None else f"a NumPy array on backend={backend!r}"
        raise TypeError(f"{name} must be {where}; got {type(x).__name__}")
    if on_device:
        if backend not in (None, "cuda"):
            raise TypeError(f"{name} is a CUDA array, but backend={backend!r} works on NumPy arrays")
        x = as_device_array(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a flat 1-D buffer; got shape {tuple(x.shape)}")
    if np.dtype(x.dtype) not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64; got {x.dtype}")
    if contiguous and not (x.is_c_contiguous() if on_device else x.flags.c_contiguous):
        raise ValueError(f"{name} must be C-contiguous; got a strided view (use np.ascontiguousarray)")
    if writeable and not on_device and not x.flags.writeable:
        raise ValueError(f"{name} must be writeable, since it is updated in place")
    return x


# -- hyperparameters ------------------------------------------------------------------------------------------
Check = Callable[[str, Any], Any]


def real(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A finite real number in an interval (:func:`microdl._validation.check_real`)."""

    def check(name: str, value: Any) -> float:
        return check_real(name, value, low, high, low_open=low_open, high_open=high_open)

    return check


def boolean() -> Check:
    """True or False (:func:`microdl._validation.check_bool`)."""
    return check_bool


def choice(*choices: str) -> Check:
    """One of ``choices`` (:func:`microdl._validation.check_choice`)."""

    def check(name: str, value: Any) -> str:
        return check_choice(name, value, choices)

    return check


def pair(check: Check, names: tuple[str, str]) -> Check:
    """A tuple or list of two values, each passing ``check``; returned as a tuple."""

    def check_pair(name: str, value: Any) -> tuple:
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{name} must be a pair ({', '.join(names)}); got {value!r}")
        return check(f"{name}[0]", value[0]), check(f"{name}[1]", value[1])

    return check_pair


_REQUIRED = object()


class Hyperparameter:
    """A hyperparameter declared on an optimizer class, checked as the constructor checks it on every assignment.

    ``check(name, value)`` returns the value in its canonical type (``float``, ``bool``, ...) or raises
    ``TypeError``/``ValueError`` naming it. Reading the attribute gives the checked value; assigning to it
    checks the new value, then the rules that tie hyperparameters together (:meth:`Optimizer._check_together`)
    and that the optimizer keeps the state buffers it was built with, and changes nothing if any fails.

    ``missing`` is the value assumed when a checkpoint written before this hyperparameter existed lacks it: the
    value that reproduces the old behaviour. Without it, a checkpoint must name the hyperparameter.
    """

    def __init__(self, check: Check, *, missing: Any = _REQUIRED) -> None:
        self.check, self.missing = check, missing
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._hyperparameter_values[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj._set_hyperparameters({self.name: value})


# -- shared docstring blocks ----------------------------------------------------------------------------------
#: Docstring blocks that several optimizers share, written once and composed into the class docstrings by
#: :func:`compose_doc` (``{params}`` in a docstring), as torch.optim composes its ``{_maximize_doc}``.
DOCS = {
    "params": """\
params : array
    Flat parameter buffer, updated in place: 1-D, C-contiguous, float32 or float64. On ``backend="cuda"`` any
    object with ``__cuda_array_interface__`` (a Numba device array, a CuPy array, a torch CUDA tensor); it is
    used without a copy and stays on the device.
backend : {"cpu", "numpy", "cuda"}
    ``"cpu"``: a Numba ``njit(parallel=True)`` kernel; ``"numpy"``: the readable NumPy reference;
    ``"cuda"``: a Numba CUDA kernel.""",
    "weight_decay": """\
weight_decay : float, default 0
    Coupled L2 penalty λ ≥ 0, added to the gradient: g ← g + λ θ.""",
    "maximize": """\
maximize : bool, default False
    Ascend instead of descend.""",
    "assignment": """\
Every hyperparameter is also an attribute of the same name. Assigning to it (``opt.lr = 0.01``, as the
schedules do between epochs) checks the value exactly as the constructor does and raises, changing nothing,
if it is invalid; options that decide which state buffers exist (``momentum`` turned on or off, ``amsgrad``,
``centered``) are fixed at construction.""",
}

T = TypeVar("T", bound=type)


def rule_math(rule: Callable) -> str:
    """The update block of a rule's docstring, for a class docstring: the paragraph after its first line, as a
    literal block (indented by four), then any paragraphs after it."""
    paragraphs = inspect.cleandoc(rule.__doc__ or "").split("\n\n")[1:]
    if not paragraphs:
        return ""
    block, *prose = (textwrap.dedent(p) for p in paragraphs)
    return "\n\n".join([textwrap.indent(block, "    "), *prose])


def _number(x: float) -> str:
    """A default as the docstrings write it: ``1e-3``, ``0.5``, ``1.0``."""
    return f"{x:.0e}".replace("e-0", "e-") if 0 < x < 0.1 else repr(x)


def compose_doc(**blocks: str) -> Callable[[T], T]:
    """Class decorator: fill the ``{name}`` fields of the class docstring with :data:`DOCS`, ``blocks``,
    ``{lr}`` (the learning rate's entry, with the constructor's default) and ``{update}`` (the update block of
    the class's rule, ``update``). Literal braces in the docstring are doubled."""

    def decorate(cls: T) -> T:
        rule = next((vars(k)["update"] for k in cls.__mro__ if "update" in vars(k)), None)  # unbound
        update = rule_math(rule) if rule is not None else ""
        lr = inspect.signature(cls).parameters.get("lr")
        if lr is not None:  # the default is read from the signature, so that the two cannot disagree
            blocks.setdefault("lr", f"lr : float, default {_number(lr.default)}\n    Learning rate γ ≥ 0.")
        cls.__doc__ = inspect.cleandoc(cls.__doc__ or "").format(**DOCS, **blocks, update=update)
        return cls

    return decorate


# -- the base class -------------------------------------------------------------------------------------------
@compose_doc()
class Optimizer:
    """Base class: an update rule bound to one flat parameter buffer, updated in place by :meth:`step`.

    A subclass declares its rule and the rule's host function (``update = rules.adam``, ``scalars =
    rules.adam_scalars``), the names of its state buffers in the rule's order (``state_names``), and its
    hyperparameters as :class:`Hyperparameter` class attributes; a subclass whose options decide which buffers
    exist says so in :meth:`_state_layout`. Registered (:func:`microdl.optim.register_optimizer`), it is checked
    against the contract of :mod:`microdl.optim.contract` and usable by name everywhere.

    Parameters
    ----------
    {params}
    hyperparameters : dict
        The subclass's hyperparameters by name, all of them, checked before anything is allocated.

    Attributes
    ----------
    params : array
        The bound parameter buffer (the same memory that was passed in); read-only.
    state : dict of str to array
        The state buffers by their math names (for example ``m`` and ``v`` for Adam).
    t : int
        Number of steps taken.
    lr : float
        The learning rate; schedules change it between steps.

    Notes
    -----
    {assignment}

    An optimizer can be pickled and deep-copied; the copy is bound to its own copy of the parameters and
    steps exactly as the original would (CUDA buffers travel through the host).
    """

    #: The elementwise rule ``update(theta, g, *state, s) -> (theta, *state)`` (a plain function, compiled by
    #: each backend) and its host function ``scalars(dtype, t, *hyperparameters) -> Scalars``.
    update: ClassVar[Callable[..., tuple]]
    scalars: ClassVar[Callable[..., tuple]]
    #: The state buffers, in the order the rule takes them.
    state_names: ClassVar[tuple[str, ...]] = ()
    #: LLVM fast-math flags for the rule's CPU kernel (NOTE [arcp for Adam] in :mod:`microdl.optim._cpu`).
    fastmath: ClassVar[frozenset[str]] = frozenset()
    #: The rule's name (``update.__name__``), set for each subclass that declares ``update``.
    rule: ClassVar[str]
    #: True for optimizers that the training loop must give full-batch gradients (GD).
    full_batch: ClassVar[bool] = False
    #: Whether the host function :attr:`scalars` also takes an array of step counts ``t`` and returns, for each
    #: scalar that depends on it, an array of the very bits it returns for each ``t`` alone (NOTE [scalars of many
    #: steps] in :mod:`microdl.optim.rules`); registration checks it. False: called once per step.
    scalars_take_arrays: ClassVar[bool] = False
    #: The declared hyperparameters, in declaration order (base class first); filled by __init_subclass__.
    _hyperparameter_specs: ClassVar[dict[str, Hyperparameter]] = {}

    lr = Hyperparameter(real(0.0))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, Hyperparameter] = {}
        for klass in reversed(cls.__mro__):
            specs.update({name: attr for name, attr in vars(klass).items() if isinstance(attr, Hyperparameter)})
        cls._hyperparameter_specs = specs
        if "update" in vars(cls):
            cls.rule = getattr(vars(cls)["update"], "__name__", "?")
        own = vars(cls)
        if ("scalars" in own or "_scalars" in own) and "scalars_take_arrays" not in own:
            # a new host function makes no claim of its parent's (NOTE [scalars of many steps] in rules.py)
            cls.scalars_take_arrays = False

    def __init__(self, params: Any, *, backend: str = "cpu", hyperparameters: Mapping[str, Any]) -> None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string; got {backend!r}")
        self._backend = load_backend(backend)
        self._backend_name = backend
        self._params = check_flat_buffer(params, "params", backend=backend, writeable=True)
        self._dtype = np.dtype(self._params.dtype)
        self.t = 0
        self.state: dict[str, Any] = {}
        self._hyperparameter_values: dict[str, Any] = {}
        self._slot_names: tuple[str, ...] | None = None  # set once the state is allocated
        self._slots: tuple = ()
        self._g_device = None  # staging buffer for host gradients on the CUDA backend
        missing = set(self._hyperparameter_specs) - set(hyperparameters)
        if missing:
            raise TypeError(f"{type(self).__name__} needs the hyperparameters {sorted(missing)}")
        self._set_hyperparameters(hyperparameters)
        self._new_state()
        self._kernels = self._backend.kernels_for(type(self))  # compiled once per rule, on first use

    # -- read-only bindings ----------------------------------------------------------------------------------
    @property
    def params(self) -> Any:
        """The bound parameter buffer (the kernels' length and dtype come from it, so it cannot be rebound)."""
        return self._params

    @property
    def backend(self) -> str:
        """``"numpy"``, ``"cpu"`` or ``"cuda"``."""
        return self._backend_name

    @property
    def dtype(self) -> np.dtype:
        """The dtype of :attr:`params`, its gradients and the state."""
        return self._dtype

    # -- hyperparameters ---------------------------------------------------------------------------------------
    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's hyperparameters, by name (a copy)."""
        return dict(self._hyperparameter_values)

    def _set_hyperparameters(self, changes: Mapping[str, Any]) -> None:
        """Check ``changes`` as the constructor does and apply them all, or raise and change nothing."""
        self._hyperparameter_values = self._checked(changes)

    def _checked(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters after ``changes``, each checked, then together; raises on the first problem."""
        specs = self._hyperparameter_specs
        values = dict(self._hyperparameter_values)
        largest = float(np.finfo(self._dtype).max)
        for name, value in changes.items():
            values[name] = specs[name].check(name, value)
            # the kernels compute in the parameters' dtype: a rate of 1e39 is infinity in float32 (issue 21)
            if isinstance(values[name], float) and abs(values[name]) > largest:
                raise ValueError(f"{name}={values[name]:g} is beyond the range of {self._dtype.name}, the "
                                 "parameters' dtype")
        if len(values) == len(specs):  # all set: the constructor sets them at once, assignments one by one
            # in declaration order, the order of the rule's host function's parameters (NOTE [positional scalars])
            values = {name: values[name] for name in specs}
            self._check_together(values)
            if self._slot_names is not None:
                wanted = {name for name, _, active in self._state_layout(values) if active}
                if wanted != set(self.state):
                    changed = ", ".join(f"{name}={value!r}" for name, value in changes.items())
                    raise ValueError(
                        f"{changed} would change the state buffers of this {type(self).__name__} "
                        f"({sorted(self.state)} -> {sorted(wanted)}), which are fixed at construction; "
                        "build a new optimizer instead"
                    )
        return values

    def _check_together(self, values: Mapping[str, Any]) -> None:
        """Rules that tie hyperparameters together (each already checked alone); raise ``ValueError``."""

    def _state_layout(self, values: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
        """The state buffers, in the rule's argument order: ``(name, initial value, allocated)`` for ``values``;
        by default every one of :attr:`state_names`, allocated and filled with zeros."""
        return [(name, 0.0, True) for name in self.state_names]

    def _scalars(self) -> tuple:
        """The NamedTuple of scalars for step :attr:`t`: one call of the host function :attr:`scalars`, with the
        hyperparameters in declaration order (NOTE [positional scalars] in :mod:`microdl.optim.rules`)."""
        return type(self).scalars(self._dtype, self.t, *self._hyperparameter_values.values())

    def _scalar_rows(self, count: int) -> np.ndarray:
        """The scalars of the next ``count`` steps (``t + 1`` to ``t + count``), a row each: what a compiled run
        of steps reads (NOTE [scalars of many steps] in :mod:`microdl.optim.rules`)."""
        return self._scalars_at(np.arange(self.t + 1, self.t + count + 1))

    def _scalars_at(self, steps: np.ndarray) -> np.ndarray:
        """The scalars of the step counts ``steps``, a row each, in float64 (each one rounded to the dtype first,
        as the kernels take it; a flag as 0 or 1): one call of :meth:`_scalars` with ``t`` the array where the
        class takes one (:attr:`scalars_take_arrays`), else one call per step. :attr:`t` is left as it was."""
        t0 = self.t
        rows = np.empty((steps.size, 0))
        try:
            if self.scalars_take_arrays:
                self.t = steps  # what _scalars passes on to the host function
                columns = self._scalars()
                rows = np.empty((steps.size, len(columns)))
                for j, column in enumerate(columns):
                    rows[:, j] = column
            else:
                for k, t in enumerate(steps.tolist()):
                    self.t = t
                    scalars = self._scalars()
                    if k == 0:
                        rows = np.empty((steps.size, len(scalars)))
                    rows[k] = scalars
        finally:
            self.t = t0
        return rows

    # -- buffers -----------------------------------------------------------------------------------------------
    def _new_state(self) -> None:
        layout = self._state_layout(self._hyperparameter_values)
        self.state = {}
        for name, fill, active in layout:
            if active:
                host = np.full(self._params.shape[0], fill, dtype=self._dtype)
                self.state[name] = require_cuda().to_device(host) if self._backend_name == "cuda" else host
        self._slot_names = tuple(name for name, _, _ in layout)
        self._bind_slots()

    def _bind_slots(self) -> None:
        """The state buffers in the rule's argument order, ``None`` for those not allocated."""
        self._slots = tuple(self.state.get(name) for name in self._slot_names)

    def _checked_grads(self, grads: Any) -> Any:
        """``grads`` as a buffer the kernel may index like :attr:`params`: same length and dtype, contiguous."""
        if self._backend_name == "cuda" and isinstance(grads, np.ndarray):
            # Slow path for host gradients: check them, then stage them in one reused device buffer.
            g = check_flat_buffer(grads, "grads", backend="numpy")
            self._check_like_params(g)
            if self._g_device is None:
                self._g_device = require_cuda().device_array_like(self._params)
            self._g_device.copy_to_device(g)
            return self._g_device
        g = check_flat_buffer(grads, "grads", backend=self._backend_name)
        self._check_like_params(g)
        return g

    def _check_like_params(self, g: Any) -> None:
        if tuple(g.shape) != tuple(self._params.shape):
            raise ValueError(f"grads must have the shape of params {tuple(self._params.shape)}; got {tuple(g.shape)}")
        if np.dtype(g.dtype) != self._dtype:
            raise TypeError(f"grads must have the dtype of params ({self._dtype}); got {g.dtype}")

    # -- the step ----------------------------------------------------------------------------------------------
    def step(self, grads: Any) -> None:
        """Apply one update to :attr:`params` in place, using ``grads`` (same shape and dtype); after every
        ``FLUSH_EVERY``-th (64th), set the state's entries below the dtype's smallest normal number to zero (NOTE
        [subnormal state] in :mod:`microdl.optim.rules`)."""
        params = self._params
        if not (type(grads) is np.ndarray and type(params) is np.ndarray and grads.shape == params.shape
                and grads.dtype == params.dtype and grads.flags.c_contiguous):
            # Not the common case, which the test above passes in one go on every step: the full checks, which
            # name the problem (or stage host gradients for the CUDA backend).
            grads = self._checked_grads(grads)
        try:
            self.t += 1
            self._backend.apply(self._kernels, params, grads, self._slots, self._scalars())
        except BaseException:  # Ctrl-C too (issue 21)
            self.t -= 1  # a step that did not happen must not advance the bias corrections and decays
            raise
        if self.t % FLUSH_EVERY == 0:  # NOTE [subnormal state] in microdl.optim.rules
            for buf in self._slots:
                if buf is not None:
                    self._backend.flush_subnormal(buf)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def _to_host(self, x: Any) -> np.ndarray:
        return x.copy_to_host() if self._backend_name == "cuda" else np.array(x, copy=True)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: the optimizer's name, hyperparameters, step count and state (copies)."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "t": self.t,
            "state": {name: self._to_host(buf) for name, buf in self.state.items()},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer of the same class and size, exactly.

        Everything is checked before anything changes: a failed load leaves the optimizer as it was.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or not {"optimizer", "hyperparameters", "t", "state"} <= set(
                state_dict):
            raise ValueError("state_dict must be a dict with the keys 'optimizer', 'hyperparameters', 't' and "
                             "'state', as state_dict() returns")
        if state_dict["optimizer"] != name:
            raise ValueError(f"state_dict is for {state_dict['optimizer']!r}, not {name!r}")
        saved = state_dict["state"]
        if not isinstance(saved, Mapping):
            raise ValueError(f"state_dict['state'] must be a dict of arrays; got {type(saved).__name__}")
        if set(saved) != set(self.state):
            raise ValueError(f"state_dict holds state {sorted(saved)}, but this {name} with its options "
                             f"has {sorted(self.state)}")
        arrays = {}
        for key, host in saved.items():
            host = np.asarray(host)
            if host.dtype.kind not in "biuf":
                raise TypeError(f"state {key!r} must hold real numbers; got dtype {host.dtype}")
            if host.shape != tuple(self._params.shape):
                raise ValueError(f"state {key!r} has shape {host.shape}; params have {tuple(self._params.shape)}")
            arrays[key] = np.ascontiguousarray(host, dtype=self._dtype)
        try:
            t = check_int("t", state_dict["t"], 0)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"state_dict['t'] must be a non-negative integer; got {state_dict['t']!r}") from exc
        hyperparameters = state_dict["hyperparameters"]
        if not isinstance(hyperparameters, Mapping):
            raise ValueError(f"state_dict['hyperparameters'] must be a dict; got {hyperparameters!r}")
        specs = self._hyperparameter_specs
        older = {key: spec.missing for key, spec in specs.items()
                 if key not in hyperparameters and spec.missing is not _REQUIRED}
        hyperparameters = {**hyperparameters, **older}  # a checkpoint from before these existed
        if set(hyperparameters) != set(specs):
            raise ValueError(f"state_dict holds hyperparameters {sorted(hyperparameters)}; {name} takes "
                             f"{sorted(specs)}")
        values = self._checked(hyperparameters)
        # all checked: now change things
        self._hyperparameter_values = values
        for key, host in arrays.items():
            buf = self.state[key]
            if self._backend_name == "cuda":
                buf.copy_to_device(host)
            else:
                buf[...] = host
        self.t = t

    # -- pickle and copy.deepcopy --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_backend"], state["_kernels"]  # a module and its compiled kernels: found again by name
        state["_g_device"] = state["_slots"] = None
        if self._backend_name == "cuda":  # device buffers travel through the host
            state["_params"] = self._params.copy_to_host()
            state["state"] = {key: buf.copy_to_host() for key, buf in self.state.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._backend = load_backend(self._backend_name)
        self._kernels = self._backend.kernels_for(type(self))
        if self._backend_name == "cuda":
            cuda = require_cuda()
            self._params = cuda.to_device(self._params)
            self.state = {key: cuda.to_device(buf) for key, buf in self.state.items()}
        self._bind_slots()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}(backend={self.backend!r}, {args})"
