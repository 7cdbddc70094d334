"""One training run with a full record of its curves, and many of them in parallel.

Every experiment of this package is a list of independent :class:`RunSpec` objects, each one MLP trained by
:func:`microdl.train.fit` with one optimizer at one learning rate (L-BFGS has none). :func:`run_one` trains it
and returns a plain dict (JSON-ready) with the curves; :func:`execute` runs a list of them with joblib, on local
processes, threads or a Dask cluster, behind a progress bar.

NOTE [what a curve measures]
``fit`` records the *running* mean of the mini-batch losses during an epoch, which mixes weights from the
start and the end of the epoch and is not comparable between full-batch GD (one step per epoch) and SGD. A run
here instead evaluates, after every epoch, the loss of the current weights on the *whole* training set and on
the evaluation set (the test set in ``compare``, a validation split carved from the training data in the
tuning and sensitivity sweeps). That evaluation is not training, so its time is taken off the clock:
``wall_time`` counts only the time spent inside the training steps, which is what "faster per second"
means. Compiling is not training either: before its first timed run, a process trains a throwaway copy of
the network for one epoch (on at most :data:`WARM_UP_ROWS` samples), so that Numba compiles the step's kernels
off the clock (on a fresh install the first optimizer would otherwise pay seconds of compilation). Epoch 0 is
the initialisation, at time 0.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microdl._files import strict_json
from microdl._validation import MAX_SEED, check_int
from microdl.datasets import DATASETS
from microdl.optim import available_optimizers, optimizer_entry

__all__ = ["Budget", "parse_budget", "RunSpec", "run_one", "execute", "check_optimizers", "check_datasets",
           "check_seeds", "check_execution", "default_lr", "takes_lr", "threads_per_run", "local_jobs", "blew_up",
           "SIX_OPTIMIZERS",
           "BACKENDS", "BLOW_UP_FACTOR"]

#: The six optimizers of the article, in display order: those registered with ``article=True``
#: (:func:`microdl.optim.register_optimizer`).
SIX_OPTIMIZERS = available_optimizers(article=True)

#: joblib backends ``execute`` accepts.
BACKENDS = ("loky", "threading", "dask")

#: An epoch cap for budgets that are not counted in epochs (the budget stops the run long before).
_NO_EPOCH_CAP = 10**7

#: Most rows the throwaway training before a process's first timed run uses (NOTE [what a curve measures]).
WARM_UP_ROWS = 4096

#: A loss this many times the initial one means the run has diverged (NOTE [a diverged run], :func:`blew_up`).
BLOW_UP_FACTOR = 1e3


# -- budgets -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """How long each run trains: ``kind`` is ``"epochs"``, ``"grad_evals"`` or ``"time"`` (seconds of training,
    evaluation excluded). A run stops at the end of the first epoch that reaches the budget, so grad_evals and
    time budgets may be overshot by up to one epoch."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in ("epochs", "grad_evals", "time"):
            raise ValueError(f"budget kind must be epochs, grad_evals or time; got {self.kind!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value) \
                or self.value <= 0:
            raise ValueError(f"budget must be positive; got {self.kind}:{self.value!r}")
        if self.kind != "time" and int(self.value) != self.value:
            raise ValueError(f"a {self.kind} budget must be a whole number; got {self.value!r}")
        if self.kind != "time":
            object.__setattr__(self, "value", int(self.value))

    def __str__(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def describe(self) -> str:
        unit = {"epochs": "epochs", "grad_evals": "gradient evaluations", "time": "s of training"}[self.kind]
        return f"{self.value:g} {unit}"


def parse_budget(text: str | Budget) -> Budget:
    """``"epochs:N"``, ``"grad_evals:N"`` or ``"time:SECONDS"`` as a :class:`Budget` (a bare number is epochs).

    >>> parse_budget("time:2.5")
    Budget(kind='time', value=2.5)
    """
    if isinstance(text, Budget):
        return text
    if not isinstance(text, str):
        raise TypeError(f"budget must be a string such as 'epochs:30'; got {text!r}")
    kind, sep, value = text.strip().partition(":")
    if not sep:
        kind, value = "epochs", kind
    kind = kind.strip().replace("-", "_")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"budget must look like epochs:N, grad_evals:N or time:SECONDS; got {text!r}") from None
    if kind != "time" and number.is_integer():
        number = int(number)
    return Budget(kind, number)


# -- argument checks shared by the experiments ---------------------------------------------------------------
def check_optimizers(optimizers: str | Iterable[str]) -> tuple[str, ...]:
    """A tuple of known optimizer names (a comma-separated string is split)."""
    names = _as_names(optimizers, "optimizers")
    for name in names:
        optimizer_entry(name)  # an unknown name: ValueError listing the registered ones
    return names


def check_datasets(datasets: str | Iterable[str]) -> tuple[str, ...]:
    """A tuple of known dataset names (a comma-separated string is split)."""
    names = _as_names(datasets, "datasets")
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return names


def _as_names(value: str | Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    names = []
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"{what} must be names; got {v!r}")
        v = v.strip()
        if v and v not in names:
            names.append(v)
    if not names:
        raise ValueError(f"{what} must name at least one")
    return tuple(names)


def check_seeds(seeds: int | Iterable[int]) -> tuple[int, ...]:
    """``n`` gives the seeds 0..n-1; a sequence of non-negative integers is used as given."""
    if not isinstance(seeds, Iterable):
        return tuple(range(check_int("seeds", seeds, 1)))
    out = []
    for s in seeds:
        s = check_int("seed", s, 0, MAX_SEED)
        if s not in out:
            out.append(s)
    if not out:
        raise ValueError("seeds must name at least one seed")
    return tuple(out)


def takes_lr(optimizer: str) -> bool:
    """Whether the optimizer has a learning rate: every one but ``"lbfgs"``, whose line search picks each step
    (so it is never tuned, swept or given a rate).

    >>> takes_lr("adam"), takes_lr("lbfgs")
    (True, False)
    """
    return optimizer_entry(optimizer).takes_lr


def default_lr(optimizer: str) -> float | None:
    """The learning rate the optimizer class defaults to (torch.optim's default); None for one without a
    learning rate (:func:`takes_lr`)."""
    return optimizer_entry(optimizer).lr_default


def _rate_of(spec: RunSpec) -> dict[str, float | None]:
    """The learning-rate keyword of ``spec``'s optimizer: none for one that has no learning rate."""
    if takes_lr(spec.optimizer):
        return {"lr": spec.lr}
    if spec.lr is not None:
        raise ValueError(f"{spec.optimizer} has no learning rate; its RunSpec must have lr=None, not {spec.lr!r}")
    return {}


# -- one run -----------------------------------------------------------------------------------------------
@dataclass
class RunSpec:
    """Everything one run needs, data included (so a worker never loads, and never sees, anything else).

    ``lr`` is None for an optimizer without a learning rate (L-BFGS, :func:`takes_lr`); such an optimizer, like
    GD, trains on the full batch whatever ``batch_size`` says, and an epoch of it is one iteration.
    ``X_eval, y_eval`` are the test set in ``compare`` and a validation split in tuning and sweeps;
    ``eval_name`` names them in the result (``"test"`` or ``"val"``). ``max_epochs`` caps a grad_evals or
    time budget (an epochs budget ignores it). ``labels`` are copied into the result
    unchanged (dataset, seed, phase, width, ...). ``track_steps`` also records the mean size of an update
    per epoch (``step_size``: mean ``|Δθ|`` per step over the learning rate) and, for Adagrad, the median of
    its per-parameter rate 1/(√S + ε) (``effective_lr``, per epoch) and the 90th/10th percentile ratio of
    that rate over the parameters at the end (``effective_spread``).
    """

    optimizer: str
    lr: float | None
    seed: int
    layer_sizes: tuple[int, ...]
    loss: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    budget: Budget
    batch_size: int = 32
    activation: str = "relu"
    eval_name: str = "test"
    labels: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    track_steps: bool = False
    max_epochs: int | None = None
    #: "numpy" trains on the textbook code (MLP(backend="numpy") and the optimizers' NumPy rules).
    model_backend: str = "numba"
    #: hyperparameters other than ``lr`` (as the optimizer class takes them: ``momentum``, ``betas``, ``eps``)
    hyper: dict[str, Any] = field(default_factory=dict)


class _Recorder:
    """fit callback: after each epoch, the full training and evaluation losses, off the clock (NOTE [what a
    curve measures]); stops the run when a time budget is spent."""

    def __init__(self, spec: RunSpec, Y_train: np.ndarray, Y_eval: np.ndarray, max_time: float | None) -> None:
        self.spec, self.Y_train, self.Y_eval, self.max_time = spec, Y_train, Y_eval, max_time
        self.train_loss: list[float] = []
        self.eval_loss: list[float] = []
        self.wall_time: list[float] = []
        self.step_size: list[float] = []
        self.effective_lr: list[float] = []
        self.effective_spread = math.nan
        self.off_clock = 0.0
        self.prev_params: np.ndarray | None = None
        self.prev_grad_evals = 0
        self.out_of_time = False

    def start(self, model: Any) -> None:
        from microdl.train import evaluate_loss

        self.train_loss.append(evaluate_loss(model, self.spec.X_train, self.Y_train))
        self.eval_loss.append(evaluate_loss(model, self.spec.X_eval, self.Y_eval))
        self.wall_time.append(0.0)
        if self.spec.track_steps:
            self.prev_params = model.params.copy()

    def on_epoch_end(self, epoch: int, history: Any, model: Any, optimizer: Any) -> bool:
        from microdl.train import evaluate_loss

        tic = time.perf_counter()
        training_time = history.wall_time[-1] - self.off_clock
        self.wall_time.append(training_time)
        self.train_loss.append(evaluate_loss(model, self.spec.X_train, self.Y_train))
        self.eval_loss.append(evaluate_loss(model, self.spec.X_eval, self.Y_eval))
        if self.spec.track_steps:
            # mean |Δθ| per step, in units of the learning rate: the step an optimizer really takes
            steps = history.grad_evals[-1] - self.prev_grad_evals
            self.prev_grad_evals = history.grad_evals[-1]
            moved = float(np.mean(np.abs(model.params - self.prev_params)))
            self.step_size.append(moved / (steps * optimizer.lr) if steps and optimizer.lr else math.nan)
            self.prev_params[...] = model.params
            if "state_sum" in optimizer.state:
                # Adagrad's per-parameter rate over γ, 1/(√S + ε), over the parameters that have had a gradient
                # (a weight from an always-zero input never does, and would count as 1/ε)
                S = optimizer.state["state_sum"]
                rate = 1.0 / (np.sqrt(S[S > 0]) + optimizer.eps)
                if rate.size:
                    self.effective_lr.append(float(np.median(rate)))
                    p10, p90 = np.percentile(rate, [10, 90])
                    self.effective_spread = float(p90 / p10)
        self.off_clock += time.perf_counter() - tic
        self.out_of_time = self.max_time is not None and training_time >= self.max_time
        return self.out_of_time


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train one model as ``spec`` says and return its record (see NOTE [what a curve measures]).

    The result holds the labels, the optimizer and its learning rate, the per-epoch lists ``epoch``,
    ``train_loss``, ``<eval>_loss``, ``wall_time`` and ``grad_evals`` (all starting at epoch 0), the final
    losses and metrics (accuracy or R²), ``diverged`` and ``stop_reason``.
    """
    import numba  # (here: the CLI's train imports this module, and must import no Numba for a small run)

    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import DivergenceWarning, evaluate_loss, fit, score

    if spec.threads is not None:
        numba.set_num_threads(max(1, min(spec.threads, numba.config.NUMBA_NUM_THREADS)))
    _compile_off_the_clock(spec)
    model = MLP(spec.layer_sizes, activation=spec.activation, loss=spec.loss, random_state=spec.seed,
                backend=spec.model_backend)
    on_numpy = {"backend": "numpy"} if spec.model_backend == "numpy" and spec.optimizer != "lbfgs" else {}
    optimizer = make_optimizer(spec.optimizer, model.params, **_rate_of(spec), **spec.hyper, **on_numpy)
    Y_train, Y_eval = model.encode_targets(spec.y_train), model.encode_targets(spec.y_eval)
    budget = spec.budget
    recorder = _Recorder(spec, Y_train, Y_eval, budget.value if budget.kind == "time" else None)
    recorder.start(model)
    if budget.kind == "epochs":
        epochs = budget.value
    elif budget.kind == "grad_evals":  # every epoch makes at least one, so that many epochs always suffice
        epochs = min(budget.value, spec.max_epochs or budget.value)
    else:
        epochs = spec.max_epochs or _NO_EPOCH_CAP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # recorded in the result instead
        history = fit(model, optimizer, spec.X_train, spec.y_train, epochs=epochs, batch_size=spec.batch_size,
                      random_state=spec.seed, callbacks=[recorder],
                      max_grad_evals=budget.value if budget.kind == "grad_evals" else None)
    stop_reason = "time budget" if recorder.out_of_time else history.stop_reason
    e = spec.eval_name
    with np.errstate(over="ignore", invalid="ignore"):  # R² of a diverged regression run is simply -inf or NaN
        metrics = (score(model, spec.X_train, Y_train), score(model, spec.X_eval, Y_eval))
        finals = (evaluate_loss(model, spec.X_train, Y_train), evaluate_loss(model, spec.X_eval, Y_eval))
    diverged = bool(history.diverged) or blew_up(recorder.train_loss, [*recorder.eval_loss, *finals])
    if diverged:
        stop_reason = "diverged"
    result: dict[str, Any] = {
        **spec.labels,
        "optimizer": spec.optimizer, "lr": spec.lr, "hyper": dict(spec.hyper), "seed": spec.seed,
        "batch_size": spec.batch_size,
        "layer_sizes": list(spec.layer_sizes), "n_params": int(model.n_params), "budget": str(budget),
        "epoch": list(range(len(recorder.train_loss))),
        "train_loss": recorder.train_loss, f"{e}_loss": recorder.eval_loss, "wall_time": recorder.wall_time,
        "grad_evals": [0, *history.grad_evals],
        "final_train_loss": finals[0], f"final_{e}_loss": finals[1],
        "final_train_metric": metrics[0], f"final_{e}_metric": metrics[1],
        "diverged": diverged, "stop_reason": stop_reason, "threads": numba.get_num_threads(),
    }
    if spec.track_steps:
        result["step_size"] = recorder.step_size
        if recorder.effective_lr:
            result["effective_lr"] = recorder.effective_lr
            result["effective_spread"] = recorder.effective_spread
    return strict_json(result)  # a record is strict JSON


#: What this process has compiled already: (optimizer, activation, loss, layers, dtype, batch size).
_COMPILED: set[tuple[Any, ...]] = set()


def _compile_off_the_clock(spec: RunSpec) -> None:
    """Train a throwaway copy of the network for one epoch, once per process and kind of run, so that the timed
    run finds its kernels compiled (NOTE [what a curve measures]). It trains on as many rows as the run (up to
    WARM_UP_ROWS) in batches of the same size, because the batch size decides which kernels run: a small batch
    runs on one thread, a large one in parallel row blocks."""
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import fit

    key = (spec.optimizer, spec.activation, spec.loss, len(spec.layer_sizes), spec.X_train.dtype.str,
           min(spec.batch_size, len(spec.X_train)))
    if key in _COMPILED:
        return
    model = MLP(spec.layer_sizes, activation=spec.activation, loss=spec.loss, random_state=0)
    optimizer = make_optimizer(spec.optimizer, model.params, **_rate_of(spec), **spec.hyper)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a divergence here is the real run's to report, not this throwaway's
        fit(model, optimizer, spec.X_train[:WARM_UP_ROWS], spec.y_train[:WARM_UP_ROWS], epochs=1,
            batch_size=spec.batch_size, random_state=0)
    _COMPILED.add(key)


def blew_up(train_loss: Sequence[float], other_losses: Sequence[float] = ()) -> bool:
    """Whether a run with these losses diverged, whatever ``fit`` reported: NOTE [a diverged run].

    NOTE [a diverged run]
    A run has diverged if any loss it recorded (its training curve, which starts at the initial loss, its
    evaluation curve, its final losses) is not finite, or exceeds :data:`BLOW_UP_FACTOR` times the initial
    training loss (or times 1, if that is smaller: the losses here start near 1, on standardised targets or as
    the cross-entropy of near-uniform predictions). The second rule catches a run that blows up but has not
    overflowed yet: full-batch GD at lr 1e6 reaches a loss of 1e303 in three steps. A diverged run is left out of
    every mean, target and "best" of the comparison, and of the tuning's choices.

    >>> blew_up([1.0, 0.5, 0.1]), blew_up([1.0, 0.5, float("nan")]), blew_up([1.4, 1.7e23])
    (False, True, True)
    """
    values = [*train_loss, *other_losses]
    if not all(v is not None and math.isfinite(v) for v in values):
        return True
    return max(values) > BLOW_UP_FACTOR * max(train_loss[0], 1.0)


# -- many runs ---------------------------------------------------------------------------------------------
def check_execution(jobs: int, backend: str, scheduler: str | None) -> None:
    """Raise ValueError unless ``jobs``, ``backend`` and ``scheduler`` make sense together."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    check_int("jobs", jobs, 1)
    if scheduler is not None and backend != "dask":
        raise ValueError("scheduler is only used with backend='dask'")


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_jobs(jobs: int, backend: str, n_runs: int | None = None) -> int:
    """The runs that go at once: on this machine (loky, threading) at most one per usable core and one per
    run, since more only add processes and waiting (``--jobs 64`` on 2 cores started 64 workers, took 5.9 GB
    and 19 s instead of 1.1 s: issue 21); on Dask, ``jobs`` as given. The results do not depend on it."""
    if backend == "dask":
        return jobs
    return max(1, min(jobs, _usable_cores(), n_runs if n_runs is not None else jobs))


def threads_per_run(jobs: int, backend: str) -> int | None:
    """Numba threads each run may use: all of them for one job at a time; a share of the cores when several
    local jobs run at once (so they do not oversubscribe the machine); untouched on Dask workers."""
    jobs = local_jobs(jobs, backend)
    if jobs == 1 or backend == "dask":
        return None
    return max(1, (os.cpu_count() or 1) // jobs)


def execute(specs: Sequence[RunSpec], *, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
            progress: bool | None = None, desc: str = "runs",
            runner: Callable[[RunSpec], dict[str, Any]] = run_one) -> list[dict[str, Any]]:
    """Run every spec (with ``runner``) and return the results in the order of ``specs``.

    Parameters
    ----------
    jobs : int
        Runs at a time (joblib ``n_jobs``); 1 runs them one after the other in this process. On Dask every
        worker thread of the cluster is used (``n_jobs=-1``) unless ``jobs`` is more than 1.
    backend : {"loky", "threading", "dask"}
        joblib backend. ``"dask"`` connects a ``dask.distributed.Client`` to ``scheduler`` (an address such
        as ``tcp://10.0.0.5:8786``; without one, a local cluster is started) and runs through joblib's Dask
        backend.
    progress : bool or None
        A tqdm bar over runs; None shows it only on a terminal.
    """
    check_execution(jobs, backend, scheduler)
    jobs = local_jobs(jobs, backend, len(specs))
    bar = _progress_bar(len(specs), desc, progress)
    results: list[dict[str, Any] | None] = [None] * len(specs)

    def collect(outputs: Iterable[tuple[int, dict[str, Any]]]) -> None:
        for index, result in outputs:
            results[index] = result
            bar.update(1)

    try:
        if jobs == 1 and backend != "dask":
            collect((i, runner(spec)) for i, spec in enumerate(specs))
        else:
            from joblib import delayed

            from microdl.plugins import loaded_plugins

            plugins = loaded_plugins()  # a worker imports them first, so that their optimizers resolve there
            tasks = (delayed(_indexed)(runner, i, spec, plugins) for i, spec in enumerate(specs))
            if backend == "dask":
                client = _dask_client(scheduler)
                try:
                    import joblib

                    with joblib.parallel_backend("dask"):
                        collect(_parallel(n_jobs=jobs if jobs > 1 else -1)(tasks))
                finally:
                    client.close()
            else:
                collect(_parallel(n_jobs=jobs, backend=backend)(tasks))
    finally:
        bar.close()
    return results  # type: ignore[return-value]


def _parallel(**kwargs: Any) -> Any:
    """joblib.Parallel yielding results as they finish (joblib >= 1.4), so the bar moves; older joblib
    returns them all at the end."""
    from joblib import Parallel

    try:
        return Parallel(return_as="generator_unordered", **kwargs)
    except (TypeError, ValueError):
        return Parallel(**kwargs)


def _progress_bar(total: int, desc: str, progress: bool | None) -> Any:
    """A tqdm bar over runs (None: only on a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=None if progress is None else not progress, leave=False)


def _indexed(runner: Callable[[RunSpec], dict[str, Any]], index: int, spec: RunSpec,
             plugins: Sequence[str] = ()) -> tuple[int, dict[str, Any]]:
    from microdl.plugins import load_plugins

    load_plugins(plugins)
    return index, runner(spec)


def _dask_client(scheduler: str | None) -> Any:
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError('backend="dask" needs dask.distributed: pip install "microdl[dask]"') from None
    if scheduler is None:
        return Client(processes=False)
    return Client(scheduler)
