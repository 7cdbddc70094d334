"""The optimizer base class: binding to a flat buffer, backends, state, validation and checkpoints.

An optimizer owns no arithmetic. It validates its hyperparameters once, allocates its state buffers (same
length and dtype as the parameters), and on each :meth:`Optimizer.step` hands the parameters, the gradients,
the state and a tuple of scalars to one backend call, which applies the rule of :mod:`microdl.optim.rules`
in place. The step count ``t`` and everything derived from it (bias corrections, decayed rates) stay on the
host.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from microdl._cuda_support import as_device_array, is_cuda_array, require_cuda
from microdl._validation import check_real

__all__ = ["Optimizer", "BACKENDS"]

BACKENDS = ("numpy", "cpu", "cuda")


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


class Optimizer:
    """Base class: an update rule bound to one flat parameter buffer, updated in place by :meth:`step`.

    Parameters
    ----------
    params : ndarray or CUDA array
        1-D, contiguous, float32 or float64. On ``backend="cuda"`` any object with
        ``__cuda_array_interface__`` (a Numba device array, a CuPy array, a torch CUDA tensor); it is used
        without a copy and stays on the device.
    backend : {"cpu", "numpy", "cuda"}
        ``"cpu"``: a Numba ``njit(parallel=True)`` kernel; ``"numpy"``: the readable NumPy reference;
        ``"cuda"``: a Numba CUDA kernel.

    Attributes
    ----------
    params : array
        The bound parameter buffer (the same memory that was passed in).
    state : dict of str to array
        The state buffers by their math names (for example ``m`` and ``v`` for Adam).
    t : int
        Number of steps taken.
    """

    #: Name of the rule in :mod:`microdl.optim.rules`.
    rule: ClassVar[str]
    #: True for optimizers that the training loop must give full-batch gradients (GD).
    full_batch: ClassVar[bool] = False

    def __init__(self, params: Any, *, backend: str = "cpu") -> None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string; got {backend!r}")
        self.backend = backend
        self._backend = load_backend(backend)
        self.params = self._as_buffer(params, "params")
        self.dtype = np.dtype(self.params.dtype)
        self.t = 0
        self.state: dict[str, Any] = {}
        self._slots: tuple = ()
        self._g_device = None  # staging buffer for host gradients on the CUDA backend

    # -- buffers -------------------------------------------------------------------------------------------
    def _as_buffer(self, x: Any, name: str) -> Any:
        if self.backend == "cuda":
            if not is_cuda_array(x):
                raise TypeError(
                    f"{name} must be a CUDA array on backend='cuda' (a Numba device array, or any object with "
                    f"__cuda_array_interface__); got {type(x).__name__}. Use numba.cuda.to_device(array)."
                )
            x = as_device_array(x)
        elif not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array on backend={self.backend!r}; got {type(x).__name__}")
        if x.ndim != 1:
            raise ValueError(f"{name} must be a flat 1-D buffer; got shape {x.shape}")
        if np.dtype(x.dtype) not in (np.float32, np.float64):
            raise TypeError(f"{name} must be float32 or float64; got {x.dtype}")
        if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous; got a strided view (use np.ascontiguousarray)")
        if name == "params" and isinstance(x, np.ndarray) and not x.flags.writeable:
            raise ValueError("params must be writeable, since it is updated in place")
        return x

    def _new_state(self, names_and_fills: list[tuple[str, float, bool]]) -> None:
        """Allocate the state: ``(name, initial value, active)`` per slot, in the rule's argument order."""
        slots = []
        for name, fill, active in names_and_fills:
            buf = None
            if active:
                host = np.full(self.params.shape[0], fill, dtype=self.dtype)
                buf = require_cuda().to_device(host) if self.backend == "cuda" else host
                self.state[name] = buf
            slots.append(buf)
        self._slots = tuple(slots)

    # -- the step ------------------------------------------------------------------------------------------
    def _hyper(self) -> tuple:
        """The scalars of this step for the rule, in the parameters' dtype (NOTE [typed scalars])."""
        raise NotImplementedError

    def step(self, grads: Any) -> None:
        """Apply one update to :attr:`params` in place, using ``grads`` (same shape and dtype)."""
        g = grads
        if self.backend == "cuda" and isinstance(grads, np.ndarray):
            # Slow path for host gradients: stage them in one reused device buffer.
            if self._g_device is None:
                self._g_device = require_cuda().device_array_like(self.params)
            self._check_grads(grads)
            self._g_device.copy_to_device(grads)
            g = self._g_device
        else:
            g = self._as_buffer(grads, "grads")
            self._check_grads(g)
        self.t += 1
        try:
            self._backend.apply(self.rule, self.params, g, self._slots, self._hyper())
        except Exception:
            self.t -= 1  # a step that did not happen must not advance the bias corrections and decays
            raise

    def _check_grads(self, g: Any) -> None:
        if tuple(g.shape) != tuple(self.params.shape):
            raise ValueError(f"grads must have the shape of params {tuple(self.params.shape)}; got {tuple(g.shape)}")
        if np.dtype(g.dtype) != self.dtype:
            raise TypeError(f"grads must have the dtype of params ({self.dtype}); got {g.dtype}")

    # -- hyperparameters -----------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate; schedules change it between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_real("lr", value, 0.0)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's hyperparameters, by name."""
        raise NotImplementedError

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _to_host(self, x: Any) -> np.ndarray:
        return x.copy_to_host() if self.backend == "cuda" else np.array(x, copy=True)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: the optimizer's name, hyperparameters, step count and state (copies)."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "t": self.t,
            "state": {name: self._to_host(buf) for name, buf in self.state.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer of the same class and size, exactly."""
        if state_dict.get("optimizer") != type(self).__name__:
            raise ValueError(f"state_dict is for {state_dict.get('optimizer')!r}, not {type(self).__name__!r}")
        saved = state_dict["state"]
        if set(saved) != set(self.state):
            raise ValueError(
                f"state_dict holds state {sorted(saved)}, but this {type(self).__name__} with its options "
                f"has {sorted(self.state)}"
            )
        for name, host in saved.items():
            host = np.asarray(host)
            if host.shape != tuple(self.params.shape):
                raise ValueError(f"state {name!r} has shape {host.shape}; params have {tuple(self.params.shape)}")
        t = state_dict["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state_dict['t'] must be a non-negative integer; got {t!r}")
        hyperparameters, current = state_dict["hyperparameters"], self.hyperparameters
        if set(hyperparameters) != set(current):
            raise ValueError(f"state_dict holds hyperparameters {sorted(hyperparameters)}; "
                             f"{type(self).__name__} takes {sorted(current)}")
        try:
            for name, value in hyperparameters.items():
                setattr(self, name, value)
            self._validate()
        except (TypeError, ValueError):
            for name, value in current.items():  # a failed load leaves the optimizer as it was
                setattr(self, name, value)
            raise
        for name, host in saved.items():
            buf = self.state[name]
            host = np.asarray(host, dtype=self.dtype)
            if self.backend == "cuda":
                buf.copy_to_device(host)
            else:
                buf[...] = host
        self.t = int(t)

    def _validate(self) -> None:
        """Check every hyperparameter; subclasses raise ``ValueError``/``TypeError`` naming the culprit."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}(backend={self.backend!r}, {args})"
