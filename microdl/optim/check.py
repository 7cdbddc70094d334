"""``check_optimizer``: the tests every elementwise optimizer must pass, runnable on any optimizer class.

As scikit-learn's ``check_estimator`` does for estimators, :func:`check_optimizer` runs one table of checks
on a class, the built-ins (``tests/optim/test_check.py`` runs it on every registered one) and a learner's own
alike:

=========================  ===========================================================================================
``contract``               the rule's contract (:mod:`microdl.optim.contract`), as registering checks it
``backends agree``         the same steps on NumPy, the CPU (serial and on threads) and CUDA (a GPU, or the simulator)
``float32 stays float32``  parameters and state stay float32, and the CPU kernel converts nothing to float64
``state_dict round trip``  a run resumed from ``state_dict()`` in a new optimizer gives the same bits
``pickle``                 a pickled optimizer steps on exactly as the original does
``bad hyperparameters``    NaN, a string and None are refused for each hyperparameter, at construction and
                           on assignment, leaving the optimizer as it was
``quadratic``              converges on ½ Σ aᵢ (xᵢ − cᵢ)², condition number 10
``rosenbrock``             converges on (1 − x)² + 100 (y − x²)² from (−1.2, 1)
=========================  ===========================================================================================

Convergence is asked of the class's defaults with its own ``lr`` or one from 1 down to 1e-4, constant or
decaying by 5% every 100 steps (the first that converges passes), or of the hyperparameters given. The problems
are small, so the whole table takes a few seconds plus the compiles. What cannot run here (CUDA without
numba-cuda, or without a GPU or the simulator) is said in the report line of ``backends agree``.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdl import config
from microdl.optim.base import Optimizer

__all__ = ["check_optimizer", "CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """One line of :func:`check_optimizer`'s report."""

    check: str
    status: str  # "passed" or "failed"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status:7s} {self.check}" + (f": {self.detail}" if self.detail else "")


class _Failed(Exception):
    pass


def _problem(n: int, steps: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Parameters and one gradient per step whose scale changes from step to step (so moving averages shrink)."""
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(n)
    grads = rng.standard_normal((steps, n)) * np.exp(rng.uniform(np.log(0.1), np.log(3.0), size=(steps, 1)))
    return theta0.astype(dtype), grads.astype(dtype)


def _run(cls: type, hyper: Mapping[str, Any], backend: str, theta0: np.ndarray, grads: np.ndarray) -> Any:
    """The optimizer after one step per gradient, its parameters and state on the host."""
    if backend == "cuda":
        from microdl._cuda_support import require_cuda

        cuda = require_cuda()
        opt = cls(cuda.to_device(theta0.copy()), backend="cuda", **hyper)
        for g in grads:
            opt.step(cuda.to_device(g))
        return opt.params.copy_to_host(), {k: v.copy_to_host() for k, v in opt.state.items()}
    opt = cls(theta0.copy(), backend=backend, **hyper)
    for g in grads:
        opt.step(g.copy())
    return opt.params, dict(opt.state)


def _close(a: tuple, b: tuple, rtol: float, atol: float, what: str) -> None:
    theta_a, state_a = a
    theta_b, state_b = b
    for name, x, y in [("params", theta_a, theta_b), *((f"state {k!r}", state_a[k], state_b[k]) for k in state_a)]:
        if not np.allclose(x, y, rtol=rtol, atol=atol):
            worst = float(np.max(np.abs(np.asarray(x, float) - np.asarray(y, float))))
            raise _Failed(f"{what}: {name} differ by up to {worst:.3g}")


def _cuda_status() -> str | None:
    """None if CUDA kernels can run here (a GPU, or the simulator switched on), else why not."""
    import importlib.util

    from microdl._cuda_support import CudaUnavailableError, require_cuda, simulator_enabled

    try:
        require_cuda()
    except CudaUnavailableError as exc:
        why = " ".join(str(exc).split())
        if importlib.util.find_spec("numba_cuda") is not None and not simulator_enabled():
            why += "; set NUMBA_ENABLE_CUDASIM=1 before Python starts to run CUDA on the simulator"
        return why
    return None


# -- the checks --------------------------------------------------------------------------------------------------
def _check_contract(cls: type, cases: list[dict], **_: Any) -> str:
    from microdl.optim.contract import check_optimizer_class

    try:
        check_optimizer_class(cls)
    except TypeError as exc:
        raise _Failed(str(exc)) from None
    return ""


def _check_backends(cls: type, cases: list[dict], **_: Any) -> str:
    # float64, so that the backends differ only by the order of a few roundings (Adam's CPU kernel takes one
    # reciprocal: NOTE [arcp for Adam]); 1001 elements, so that vector loops have a tail
    theta0, grads = _problem(1001, 20, np.float64)
    ran = "numpy, cpu (serial and threads) and cuda agree"
    for hyper in cases:
        reference = _run(cls, hyper, "numpy", theta0, grads)
        for threads in (False, True):
            saved = config.MIN_PARALLEL_ELEMENTS, config.use_threads
            config.MIN_PARALLEL_ELEMENTS, config.use_threads = (0, lambda: True) if threads else saved
            try:
                got = _run(cls, hyper, "cpu", theta0, grads)
            finally:
                config.MIN_PARALLEL_ELEMENTS, config.use_threads = saved
            _close(got, reference, 1e-9, 1e-12, f"cpu ({'threads' if threads else 'serial'}) vs numpy, {hyper}")
        why = _cuda_status()
        if why is None:
            _close(_run(cls, hyper, "cuda", theta0, grads), reference, 1e-9, 1e-12, f"cuda vs numpy, {hyper}")
        else:
            ran = f"numpy and cpu (serial and threads) agree; cuda skipped: {why}"
    return ran


def _check_float32(cls: type, cases: list[dict], **_: Any) -> str:
    from numba import njit

    from microdl.optim import _cpu

    theta0, grads = _problem(64, 3, np.float32)
    for hyper in cases:
        for backend in ("numpy", "cpu"):
            theta, state = _run(cls, hyper, backend, theta0, grads)
            wide = [name for name, x in [("params", theta), *state.items()] if x.dtype != np.float32]
            if wide:
                raise _Failed(f"{backend}, {hyper}: {', '.join(wide)} became {state.get(wide[0], theta).dtype}")
        # the cached kernel cannot be inspected: compile the same loop again, without the cache
        kernel = _cpu.kernels_for(cls).parallel
        fresh = njit(**{k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")})(
            kernel.py_func)
        opt = cls(theta0.copy(), backend="cpu", **hyper)
        opt.t = 1
        fresh(opt.params, grads[0], tuple(opt._scalars()), *opt._slots)
        (ir,) = fresh.inspect_llvm().values()
        if "fpext" in ir:
            raise _Failed(f"{hyper}: the float32 CPU kernel widens a value to float64 (fpext in its LLVM IR): a "
                          "float64 scalar, or a numeric literal, reaches the rule (NOTE [typed scalars])")
    return ""


def _check_state_dict(cls: type, cases: list[dict], **_: Any) -> str:
    theta0, grads = _problem(33, 10, np.float64)
    for hyper in cases:
        straight = cls(theta0.copy(), backend="cpu", **hyper)
        for g in grads:
            straight.step(g.copy())
        first = cls(theta0.copy(), backend="cpu", **hyper)
        for g in grads[:5]:
            first.step(g.copy())
        saved = copy.deepcopy(first.state_dict())
        resumed = cls(first.params.copy(), backend="cpu", **hyper)
        resumed.load_state_dict(saved)
        if resumed.t != 5:
            raise _Failed(f"{hyper}: t is {resumed.t} after loading a state_dict taken at t = 5")
        for g in grads[5:]:
            resumed.step(g.copy())
        if not (np.array_equal(resumed.params, straight.params) and all(
                np.array_equal(resumed.state[k], straight.state[k]) for k in straight.state)):
            raise _Failed(f"{hyper}: a run resumed from state_dict() differs from the run straight through")
    return ""


def _check_pickle(cls: type, cases: list[dict], **_: Any) -> str:
    theta0, grads = _problem(33, 6, np.float64)
    for hyper in cases:
        opt = cls(theta0.copy(), backend="cpu", **hyper)
        for g in grads[:3]:
            opt.step(g.copy())
        try:
            clone = pickle.loads(pickle.dumps(opt))
        except Exception as exc:
            raise _Failed(f"{hyper}: {type(exc).__name__}: {exc} (define the class, its rule and host function at "
                          "the top level of an importable module)") from None
        for g in grads[3:]:
            opt.step(g.copy())
            clone.step(g.copy())
        if clone.params is opt.params or not np.array_equal(clone.params, opt.params):
            raise _Failed(f"{hyper}: an unpickled copy steps differently from the original")
    return ""


_BAD_VALUES = (math.nan, "text", None)


def _check_bad_hyperparameters(cls: type, cases: list[dict], **_: Any) -> str:
    for name in cls._hyperparameter_specs:
        for bad in _BAD_VALUES:
            try:
                cls(np.zeros(3), backend="numpy", **{name: bad})
            except (TypeError, ValueError) as exc:
                if name not in str(exc):
                    raise _Failed(f"{name}={bad!r} is refused, but the message does not name {name!r}: {exc}") from None
            else:
                raise _Failed(f"{name}={bad!r} is accepted at construction; declare the Hyperparameter with a check "
                              "(real(...), boolean(), choice(...))")
            opt = cls(np.zeros(3), backend="numpy")
            before = opt.hyperparameters
            try:
                setattr(opt, name, bad)
            except (TypeError, ValueError):
                pass
            else:
                raise _Failed(f"opt.{name} = {bad!r} is accepted")
            if opt.hyperparameters != before:
                raise _Failed(f"a refused opt.{name} = {bad!r} still changed the hyperparameters")
    return ""


def _converge(cls: type, hyper: Mapping[str, Any], decay: bool, start: np.ndarray, grad: Callable,
              target: np.ndarray, steps: int, tol: float) -> tuple[bool, float]:
    x = start.copy()
    opt = cls(x, backend="cpu", **hyper)
    base_lr, g = getattr(opt, "lr", None), np.empty_like(x)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            if k % 100 == 0 and k:
                if decay and base_lr is not None:
                    opt.lr = base_lr * 0.95 ** (k // 100)  # constant-size steps settle too
                if not np.all(np.isfinite(x)):
                    return False, math.inf
                if float(np.max(np.abs(x - target))) < tol / 10:
                    break
            grad(x, g)
            opt.step(g)
    err = float(np.max(np.abs(x - target))) if np.all(np.isfinite(x)) else math.inf
    return err < tol, err


def _convergence(problem: str, start: np.ndarray, grad: Callable, target: np.ndarray, steps: int, tol: float
                 ) -> Callable[..., str]:
    def check(cls: type, cases: list[dict], convergence: Mapping[str, Mapping[str, Any]] | None, **_: Any) -> str:
        if convergence is not None and problem in convergence:
            trials = [dict(convergence[problem])]
        else:
            lr = _default_lr(cls)
            rates = [lr, *(r for r in (1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4) if r != lr)]
            trials = [{} if r is None else {"lr": r} for r in rates]
        errors = []
        for hyper in trials:
            for decay in (False, True):
                ok, err = _converge(cls, hyper, decay, start, grad, target, steps, tol)
                how = f"{hyper or 'defaults'}{', decaying' if decay else ''}"
                if ok:
                    return f"{how}: within {err:.1g} of the minimum"
                errors.append(f"{how}: {err:.3g}")
        raise _Failed(f"not within {tol:g} of the minimum after {steps} steps (distance: {'; '.join(errors)}); pass "
                      f"convergence={{{problem!r}: {{...}}}} with hyperparameters that should converge")

    return check


def _default_lr(cls: type) -> float | None:
    import inspect

    p = inspect.signature(cls).parameters.get("lr")
    return None if p is None else float(p.default)


_QUAD_A = np.linspace(1.0, 10.0, 8)
_QUAD_C = np.linspace(-1.0, 2.0, 8)


def _quadratic_grad(x: np.ndarray, out: np.ndarray) -> None:
    np.multiply(_QUAD_A, x - _QUAD_C, out=out)


def _rosenbrock_grad(x: np.ndarray, out: np.ndarray) -> None:
    out[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2)
    out[1] = 200 * (x[1] - x[0] ** 2)


_CHECKS: dict[str, Callable[..., str]] = {
    "contract": _check_contract,
    "backends agree": _check_backends,
    "float32 stays float32": _check_float32,
    "state_dict round trip": _check_state_dict,
    "pickle": _check_pickle,
    "bad hyperparameters": _check_bad_hyperparameters,
    "quadratic": _convergence("quadratic", np.zeros(8), _quadratic_grad, _QUAD_C, 3000, 1e-3),
    "rosenbrock": _convergence("rosenbrock", np.array([-1.2, 1.0]), _rosenbrock_grad, np.ones(2), 20000, 2e-2),
}
#: The names of the checks, in the order they run.
CHECKS = tuple(_CHECKS)


def check_optimizer(cls: type, *, hyperparameters: Iterable[Mapping[str, Any]] = ({},),
                    convergence: Mapping[str, Mapping[str, Any]] | None = None, checks: Iterable[str] | None = None,
                    raise_on_failure: bool = True) -> list[CheckResult]:
    """Run the optimizer test table on ``cls`` and return its report; raise ``AssertionError`` if a check fails.

    Parameters
    ----------
    cls : type
        An :class:`~microdl.optim.Optimizer` subclass (registered or not).
    hyperparameters : iterable of dict, default ({},)
        The settings the backend, float32, state_dict and pickle checks run with (the defaults when empty);
        pass one that switches every option on, so that every branch of the rule is compiled.
    convergence : dict, optional
        ``{"quadratic": {...}, "rosenbrock": {...}}``: the hyperparameters each problem must converge with; by
        default the class's defaults at its own ``lr`` or one from 1 down to 1e-4, the first that converges
        passing.
    checks : iterable of str, optional
        Run only these (names from :data:`CHECKS`).
    raise_on_failure : bool, default True
        Raise ``AssertionError`` listing every failed check; otherwise only report them.

    Returns
    -------
    list of CheckResult
        One line per check, passed or failed, with what was found (and what could not run here).

    Examples
    --------
    >>> from microdl.optim import SGD, check_optimizer
    >>> report = check_optimizer(SGD, hyperparameters=[{"momentum": 0.9}],
    ...                          checks=["contract", "state_dict round trip"])
    >>> [str(line) for line in report]
    ['passed  contract', 'passed  state_dict round trip']
    """
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"check_optimizer needs an Optimizer subclass (an elementwise rule); got {cls!r}")
    cases = [dict(h) for h in hyperparameters] or [{}]
    names = CHECKS if checks is None else tuple(checks)
    unknown = [n for n in names if n not in _CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    report = []
    for name in names:
        try:
            report.append(CheckResult(name, "passed", _CHECKS[name](cls, cases, convergence=convergence)))
        except _Failed as exc:
            report.append(CheckResult(name, "failed", str(exc)))
        except Exception as exc:  # a crash in the optimizer's own code is a failure of that check
            report.append(CheckResult(name, "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
    failed = [r for r in report if r.status == "failed"]
    if failed and raise_on_failure:
        raise AssertionError(f"{cls.__qualname__} fails {len(failed)} of {len(report)} checks:\n" +
                             "\n".join(str(r) for r in failed))
    return report
