"""L-BFGS: a full-batch quasi-Newton method, SciPy's L-BFGS-B run on the flat parameter buffer.

Unlike the elementwise optimizers, L-BFGS is not one rule applied per parameter: each iteration builds a
search direction from the last ``history_size`` pairs of parameter and gradient differences (the two-loop
recursion of Nocedal & Wright, Algorithm 7.4) and takes a step along it found by a line search that satisfies
the strong Wolfe conditions, which may evaluate the loss several times. So microdl does not write its own:
:meth:`LBFGS.run` hands the flat buffer and the model's hand-written ``loss_and_grad`` to
``scipy.optimize.minimize(method="L-BFGS-B")``, as scikit-learn's ``solver="lbfgs"`` does, with scikit-learn's
meaning of the limits: ``max_iter`` iterations, ``max_fun`` loss evaluations, and ``tol`` on the largest
gradient component (SciPy's ``gtol``). The flat layout means that nothing is packed or unpacked per
evaluation: SciPy's iterate is copied into :attr:`params` (one contiguous copy) and the gradient buffer is
handed back as it is (scikit-learn re-packs its lists of arrays with ``np.hstack`` on every call).

:func:`microdl.train.fit` drives it: one L-BFGS iteration is one epoch of the history, so callbacks, budgets,
early stopping and divergence handling work as with the other optimizers. It runs on the CPU only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from microdl._validation import check_int, check_real
from microdl.optim.base import check_flat_buffer

__all__ = ["LBFGS"]


def _checked(name: str, check: Callable[[Any], Any]) -> property:
    """A hyperparameter attribute checked on every assignment as the constructor checks it."""

    def set_value(self: Any, value: Any) -> None:
        setattr(self, "_" + name, check(value))

    return property(lambda self: getattr(self, "_" + name), set_value, doc=f"``{name}``, checked when assigned.")


class LBFGS:
    """Full-batch L-BFGS-B (SciPy) on a flat parameter buffer, driven by :func:`microdl.train.fit`.

    Parameters
    ----------
    params : ndarray
        The flat, float32 or float64 parameter buffer (``model.params``), updated in place.
    backend : {"cpu"}
        L-BFGS runs on the host; ``"cuda"`` raises ``ValueError`` (SciPy's solver works on host arrays).
    max_fun : int, default 15000
        Largest number of loss evaluations (scikit-learn's ``max_fun``); line searches use several per
        iteration.
    tol : float, default 1e-4
        Stop once the largest absolute gradient component is at most ``tol`` (SciPy's ``gtol``, as
        scikit-learn passes it).
    history_size : int, default 10
        Correction pairs kept for the inverse-Hessian estimate (SciPy's ``maxcor``).

    Attributes
    ----------
    result : scipy.optimize.OptimizeResult or None
        The last :meth:`run`'s outcome: ``nit`` (iterations), ``nfev`` (loss evaluations), ``status`` (0:
        converged, 1: an iteration or evaluation limit, 2: stopped otherwise, 99: stopped by fit) and
        ``message``.
    t : int
        Iterations taken over all runs.

    Examples
    --------
    >>> import numpy as np
    >>> from microdl.nn import MLP
    >>> from microdl.optim import LBFGS
    >>> from microdl.train import fit
    >>> X = np.random.default_rng(0).normal(size=(50, 3)); y = (X[:, 0] > 0).astype(int)
    >>> net = MLP((3, 8, 2), random_state=0)
    >>> history = fit(net, LBFGS(net.params), X, y, epochs=30)
    >>> history.train_loss[-1] < history.train_loss[0]
    True
    """

    #: fit gives it every training sample on every evaluation.
    full_batch: ClassVar[bool] = True
    #: fit hands it the epoch loop: one L-BFGS iteration is one epoch.
    drives_epochs: ClassVar[bool] = True
    #: Has no learning rate: schedules and rate-based stopping do not apply.
    lr = None
    max_fun = _checked("max_fun", lambda v: check_int("max_fun", v, 1))
    tol = _checked("tol", lambda v: check_real("tol", v, 0.0))
    history_size = _checked("history_size", lambda v: check_int("history_size", v, 1))

    def __init__(self, params: Any, *, backend: str = "cpu", max_fun: int = 15000, tol: float = 1e-4,
                 history_size: int = 10) -> None:
        if backend != "cpu":
            raise ValueError(f"LBFGS runs on the CPU only (SciPy's L-BFGS-B works on host arrays); got "
                             f"backend={backend!r}. Use an elementwise optimizer on the GPU.")
        self.params = params = check_flat_buffer(params, "params", backend="cpu", writeable=True)
        self.backend = backend
        self.dtype = params.dtype
        self.max_fun, self.tol, self.history_size = max_fun, tol, history_size
        self.state: dict[str, Any] = {}
        self.result: Any = None  # scipy.optimize.OptimizeResult
        self.t = 0

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's hyperparameters, by name."""
        return {"max_fun": self.max_fun, "tol": self.tol, "history_size": self.history_size}

    def run(self, loss_and_grad: Callable[[], tuple[float, np.ndarray]], max_iter: int,
            on_iteration: Callable[[float], bool]) -> Any:
        """Minimise from the current :attr:`params` for at most ``max_iter`` iterations.

        Parameters
        ----------
        loss_and_grad : callable
            ``loss_and_grad() -> (loss, grads)``: the full-batch loss at the current :attr:`params` and its
            gradient (the model's flat gradient buffer, read before the next call).
        max_iter : int
            Iteration limit of this run.
        on_iteration : callable
            Called after every iteration with its loss, :attr:`params` holding the iterate; returning True
            stops the run (the caller's epoch bookkeeping: callbacks, budgets, divergence), and :attr:`params`
            then stay as it leaves them.

        Returns
        -------
        OptimizeResult
            Also kept in :attr:`result`; :attr:`params` holds the final iterate (or, when ``on_iteration`` stopped
            the run, what it left there).
        """
        max_iter = check_int("max_iter", max_iter, 1)
        params, stopped = self.params, []

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            params[...] = x  # the one copy per evaluation (a cast too, for a float32 model)
            loss, grads = loss_and_grad()
            # SciPy keeps the gradient it is given, and the model overwrites its buffer on the next
            # evaluation, so it gets a float64 copy.
            return loss, np.array(grads, dtype=np.float64)

        # SciPy >= 1.11 (pyproject's floor): a callback whose parameter is named intermediate_result gets the
        # iterate with its loss, and may stop the minimiser by raising StopIteration.
        def callback(intermediate_result: Any) -> None:
            self.t += 1
            params[...] = intermediate_result.x  # the line search may have evaluated elsewhere last
            if on_iteration(float(intermediate_result.fun)):
                stopped.append(True)  # params are now whatever on_iteration left (a restored iterate, say)
                raise StopIteration

        from scipy.optimize import minimize  # imported on first use: it costs an import of microdl 0.1 s

        result = minimize(objective, params.astype(np.float64), method="L-BFGS-B", jac=True, callback=callback,
                          options={"maxiter": max_iter, "maxfun": self.max_fun, "gtol": self.tol,
                                   "maxcor": self.history_size})
        if not stopped:
            params[...] = result.x
        self.result = result
        return result

    def state_dict(self) -> dict[str, Any]:
        """The hyperparameters and iteration count; the curvature pairs live only inside one :meth:`run`, as in
        scikit-learn (a new ``fit`` starts a fresh estimate)."""
        return {"optimizer": type(self).__name__, "hyperparameters": self.hyperparameters, "t": self.t,
                "state": {}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state_dict.get("optimizer") != type(self).__name__:
            raise ValueError(f"state_dict is for {state_dict.get('optimizer')!r}, not {type(self).__name__!r}")
        hyper = dict(state_dict["hyperparameters"])
        self.max_fun, self.tol, self.history_size = hyper["max_fun"], hyper["tol"], hyper["history_size"]
        self.t = check_int("t", state_dict["t"], 0)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"LBFGS(backend={self.backend!r}, {args})"
