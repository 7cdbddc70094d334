"""The training loop: mini-batches (or the full batch), shuffling, validation, schedules, clipping, callbacks,
budgets, early stopping and divergence handling — written once, for every device and every optimizer.

One epoch is::

    optimizer.lr ← schedule(epoch)
    snapshot ← θ and the optimizer's state                 (NOTE [finite or told])
    for each batch k of this epoch's order:
        loss_k ← batches.loss_and_grad(k)                   # forward and backward: fills model.grads
        clip model.grads (optional)
        optimizer.step(model.grads)                         # one kernel over the flat buffer
    every loss finite and within the dtype's range, θ and the state finite?  else: recover and stop
    record the epoch (mean loss, validation, lr, time, counters); callbacks; budgets

What a device supplies is only its batches: :class:`HostBatches` gathers rows of host arrays into buffers
preallocated for the largest batch (nothing is allocated per batch) and knows each loss at once;
:class:`microdl.cuda.batches.DeviceBatches` keeps the data on the GPU and hands the losses back once per epoch,
so the host never waits for the GPU inside an epoch. Full-batch gradient descent is the same loop with one
batch of every sample: an optimizer whose ``full_batch`` is true (:class:`microdl.optim.GD`) always gets that.
An optimizer that ``drives_epochs`` (:class:`microdl.optim.LBFGS`) runs its own iterations through SciPy; each
iteration is one epoch of the record, with the same bookkeeping, callbacks, budgets and divergence checks.

Where a batch is small, the steps of an epoch (its inner loop, as written above) run in compiled runs of many
batches, one call of compiled code each instead of Python per batch, with the same kernels and the same bits
(NOTE [compiled runs of steps] in :mod:`microdl._runs`): at batch 1 a step took 20-26 µs of Python around 6 µs of
kernels. The rest of the epoch, and the replay of NOTE [finite or told], are the same either way.

NOTE [finite or told]
    No run ends with non-finite weights. A batch loss that is NaN, infinite or beyond the range of the model's
    dtype, or parameters or optimizer state that are no longer finite at the end of an epoch, stop the run,
    and the model goes back to the last *good* state it passed through: weights and optimizer state finite,
    and its loss on its batch finite too (so a state whose weights are finite but whose loss overflowed is not
    kept: the step before it is). To get there, the parameters, the optimizer's state and step count go back to
    the snapshot taken at the start of the epoch (or of the epoch before, when the first batch of an epoch is
    the bad one), and the steps are replayed, exactly (the same batches in the same order), up to that state.
    ``History.diverged`` is set, ``stop_reason`` says what happened and a :class:`DivergenceWarning` says it
    too (an :class:`EarlyStopping` among the callbacks then puts back its best weights, and ``stop_reason``
    says so). The replay costs at most one epoch, once; a healthy epoch pays one snapshot copy and one scan,
    and two snapshots are kept. (On a GPU, clipping by norm sums the norm with atomic adds, whose order can
    vary, so there the replay is exact only to rounding.)

NOTE [random streams]
    ``random_state`` seeds shuffling and the validation split. An int seed or a ``Generator`` draws a fresh
    permutation per epoch (``rng.permutation(n)``), skipped when one batch holds every sample. A legacy
    ``np.random.RandomState`` is drawn from as scikit-learn's MLP draws from it: every epoch permutes the
    previous epoch's order (``order = order[rs.permutation(n)]``, which is ``sklearn.utils.shuffle``), full
    batch or not, so that :mod:`microdl.sklearn` consumes the random stream exactly as scikit-learn does.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.sparse import issparse

from microdl._cuda_support import is_cuda_array
from microdl._validation import (
    check_bool,
    check_choice,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
)
from microdl.nn import MLP, all_finite
from microdl.nn._blas import single_threaded_blas
from microdl.optim import Optimizer, clip_grad_norm, clip_grad_value
from microdl.optim.schedules import LRSchedule, make_schedule

__all__ = ["History", "Callback", "EarlyStopping", "DivergenceWarning", "Batches", "HostBatches", "fit",
           "evaluate_loss", "score", "split_validation"]


class DivergenceWarning(RuntimeWarning):
    """Training stopped because the loss or the weights stopped being finite (NOTE [finite or told])."""


@dataclass
class History:
    """Per-epoch record of a run. Lists are aligned: entry k describes epoch k + 1.

    ``train_loss`` is the mean over the epoch's batches of the batch losses (each weighted by its size),
    penalty included; ``train_penalty`` is the L2 term's share of it. ``wall_time``, ``grad_evals`` and
    ``samples_seen`` are cumulative; ``val_*`` hold NaN when there is no validation data. ``val_metric`` is
    accuracy for classification and R² for regression. For an optimizer that drives its own iterations
    (L-BFGS) an epoch is one iteration and its loss the full-batch loss at the iterate.
    """

    train_loss: list[float] = field(default_factory=list)
    train_penalty: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    grad_evals: list[int] = field(default_factory=list)
    samples_seen: list[int] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    diverged: bool = False
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become None)."""
        d = asdict(self)
        return {k: [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]
                if isinstance(v, list) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for k in ("train_loss", "train_penalty", "val_loss", "val_metric", "lr", "wall_time"):
            d[k] = [math.nan if x is None else float(x) for x in d.get(k, [])]
        return cls(**d)


class Callback(Protocol):
    """Called by :func:`fit` after every epoch; returning True stops training. A callback may also have
    ``on_fit_start(model, optimizer)``, which :func:`fit` calls before the first epoch (EarlyStopping forgets
    an earlier fit there)."""

    def on_epoch_end(self, epoch: int, history: History, model: MLP, optimizer: Optimizer) -> bool: ...


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs, and restore the
    weights of the best epoch (Keras' ``EarlyStopping`` with ``restore_best_weights=True``).

    Parameters
    ----------
    patience : int, default 10
        Epochs without improvement before stopping (at least 1).
    min_delta : float, default 0
        Smallest decrease that counts as an improvement.
    monitor : {"val_loss", "train_loss"}, default "val_loss"
        The loss to watch; ``"val_loss"`` needs validation data, which :func:`fit` checks before training.
    restore_best_weights : bool, default True
        Put the best epoch's parameters back into the model when training ends.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best_weights: bool = True) -> None:
        self.patience = check_int("patience", patience, 1)
        self.min_delta = check_real("min_delta", min_delta, 0.0)
        self.monitor = check_choice("monitor", monitor, ("val_loss", "train_loss"))
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self.on_fit_start()

    def on_fit_start(self, model: MLP | None = None, optimizer: Optimizer | None = None) -> None:
        """Forget any earlier fit (called by :func:`fit` before the first epoch), as Keras' callback does in
        ``on_train_begin``: one object serves several fits, and never puts one model's weights into another."""
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_params: np.ndarray | None = None
        self._wait = 0

    def on_epoch_end(self, epoch: int, history: History, model: MLP, optimizer: Optimizer) -> bool:
        value = getattr(history, self.monitor)[-1]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_params = model.host_params()
            return False
        self._wait += 1
        return self._wait >= self.patience

    def restore(self, model: MLP) -> None:
        """Copy the best weights back into ``model`` (called by :func:`fit` at the end)."""
        if self.restore_best_weights and self.best_params is not None:
            model.set_params(self.best_params)


# -- evaluation ------------------------------------------------------------------------------------------------
def metric_of_outputs(loss: str, out: np.ndarray, Y: np.ndarray) -> float:
    """Accuracy (classification; subset accuracy for multi-label) or R² averaged over outputs (regression) of
    the network outputs ``out`` against encoded targets ``Y``."""
    if loss == "cross_entropy":
        return float(np.mean(out.argmax(axis=1) == Y.argmax(axis=1)))
    if loss == "binary_cross_entropy":
        return float(np.mean(np.all((out > 0.5) == (Y > 0.5), axis=1)))
    with np.errstate(over="ignore", invalid="ignore"):  # the outputs of a diverged model give -inf or NaN
        ss_res = ((Y - out) ** 2).sum(axis=0)
        ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
    return float(np.mean(r2))


def score(model: MLP, X: Any, Y: Any) -> float:
    """Accuracy (classification; subset accuracy for multi-label) or R² averaged over outputs (regression)."""
    X, Y = model._as_data(X, Y)
    return metric_of_outputs(model.loss, model._evaluate(X, None, with_outputs=True)[1], Y)


def evaluate_loss(model: MLP, X: Any, y: Any) -> float:
    """The model's loss on a whole dataset: the mean per-sample loss plus the L2 penalty, counted once.

    Evaluated in chunks of :data:`microdl.config.EVAL_CHUNK` rows, so memory stays bounded on large data; the
    result equals the loss of one batch holding every row, as :meth:`MLP.loss_and_grad` computes it (to float
    rounding). ``y`` is anything :meth:`MLP.loss_and_grad` accepts, or already encoded targets. The gradient
    buffer is not touched.

    >>> import numpy as np
    >>> from microdl.nn import MLP
    >>> net = MLP((2, 3, 2), alpha=1.0, random_state=0)
    >>> X, y = np.ones((5000, 2)), np.zeros(5000, dtype=int)
    >>> bool(np.isclose(evaluate_loss(net, X, y), net.loss_and_grad(X, y)))
    True
    """
    X, Y = model._as_data(X, y)
    return model._evaluate(X, Y)[0]


def split_validation(X: Any, Y: np.ndarray, fraction: float, rng: np.random.Generator | np.random.RandomState,
                     stratify: bool) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """Split off ``fraction`` of the rows for validation (stratified on the one-hot argmax if asked)."""
    n = X.shape[0]
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training samples out of {n}")
    if stratify:
        from sklearn.model_selection import train_test_split

        n_classes = int(np.count_nonzero(Y.any(axis=0)))  # the classes present; each needs a row on each side
        if min(n_val, n - n_val) < n_classes:
            raise ValueError(f"validation_fraction={fraction} splits the {n} samples into {n - n_val} for training "
                             f"and {n_val} for validation; a stratified split needs at least one per class "
                             f"({n_classes}) on each side")
        seed = rng if isinstance(rng, np.random.RandomState) else int(rng.integers(2**31))
        idx_train, idx_val = train_test_split(np.arange(n), test_size=n_val, stratify=Y.argmax(axis=1),
                                              random_state=seed)
    else:
        perm = rng.permutation(n)
        idx_val, idx_train = perm[:n_val], perm[n_val:]
    return X[idx_train], Y[idx_train], X[idx_val], Y[idx_val]


# -- what a device supplies: its batches -----------------------------------------------------------------------
class Batches(Protocol):
    """What the loop needs of a device: its batches of one fit's training data (:class:`HostBatches` on the CPU,
    :class:`microdl.cuda.batches.DeviceBatches` on the GPU)."""

    n: int  # rows of training data
    total_weight: float  # Σw (n without weights)
    bounds: list[tuple[int, int]]  # each batch's rows lo..hi-1 in this epoch's order
    sizes: np.ndarray  # each batch's row count
    order: np.ndarray | None  # this epoch's row order (None: as they are)

    def set_order(self, order: np.ndarray | None) -> None:
        """Take this epoch's row order."""

    def loss_and_grad(self, k: int) -> bool:
        """Forward and backward of batch k: gradient into the model's grads; whether its loss is known yet."""

    def epoch_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's batch losses and penalties (the device waits here, once per epoch)."""

    def validator(self, X: Any, Y: np.ndarray) -> Any:
        """A function giving the loss and the outputs on ``(X, Y)``."""

    def all_finite(self, arrays: Sequence[Any]) -> bool:
        """Whether every element of these buffers (of this device) is finite."""

    def copy(self, dst: Any, src: Any) -> None:
        """dst ← src, on this device."""

    def empty_like(self, a: Any) -> Any:
        """An uninitialised buffer like ``a``, on this device."""


def _gather(a: np.ndarray, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out ← a[idx]`` (rows of ``a``), written straight into ``out``. The array's own ``take``: ``np.take``'s
    Python dispatch cost 1 µs a call, and a batch-1 step of digits takes about 20 µs with two or three of them."""
    return a.take(idx, 0, out, "clip")


class HostBatches:
    """The batches of host (NumPy or SciPy sparse) training data, for a model on the CPU.

    A shuffled batch is gathered into buffers preallocated for the largest batch (``np.take(..., out=...)``),
    so an epoch allocates nothing; the full batch and unshuffled batches need no gathering. Each loss is known
    as soon as its batch has run.
    """

    def __init__(self, model: MLP, X: Any, Y: np.ndarray, w: np.ndarray | None, batch_size: int) -> None:
        self.model, self.X, self.Y, self.w = model, X, Y, w
        self.n = n = X.shape[0]
        self.total_weight = float(n if w is None else np.sum(w, dtype=np.float64))
        self.bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
        self.sizes = np.array([hi - lo for lo, hi in self.bounds], dtype=np.float64)
        self.losses = np.zeros(len(self.bounds))
        self.penalties = np.zeros(len(self.bounds))
        self.batch_size = batch_size
        self._X = self._Y = self._w = None  # the gather buffers, made on the first shuffled batch
        self._sparse = issparse(X)
        self.order: np.ndarray | None = None

    def set_order(self, order: np.ndarray | None) -> None:
        """This epoch's row order (None: the rows as they are)."""
        self.order = order

    def loss_and_grad(self, k: int) -> bool:
        """Loss of batch k into ``losses[k]`` (and its penalty into ``penalties[k]``), gradient into
        ``model.grads``. Returns True: on the host the loss is known at once."""
        lo, hi = self.bounds[k]
        X, Y, w = self.X, self.Y, self.w
        if self.order is None or hi - lo == self.n:  # in order, or the full batch (its mean ignores order)
            Xb, Yb, wb = X[lo:hi], Y[lo:hi], None if w is None else w[lo:hi]
        else:
            idx, m = self.order[lo:hi], hi - lo
            if self._Y is None:
                self._reserve_gather()
            # mode="clip": the indices are a permutation, always valid, and take then writes straight into
            # ``out`` (its default mode="raise" stages the result in a temporary the size of the batch). Sparse
            # X is sliced, which allocates: dense input is the fast path.
            # X, Y and w are aligned and C-ordered here (NOTE [aligned input] in microdl._validation): from a
            # misaligned array take would copy the whole of it on every call.
            # Into the whole buffer for a whole batch: no view is made per batch but the last.
            full = m == self.batch_size
            Xb = X[idx] if self._sparse else _gather(X, idx, self._X if full else self._X[:m])
            Yb = _gather(Y, idx, self._Y if full else self._Y[:m])
            wb = None if w is None else _gather(w, idx, self._w if full else self._w[:m])
        data, penalty = self.model._batch_loss_and_grad(Xb, Yb, wb)
        self.losses[k], self.penalties[k] = data + penalty, penalty
        return True

    def _reserve_gather(self) -> None:
        """The buffers shuffled batches are gathered into (dense X only: sparse X is sliced)."""
        b, dtype = self.batch_size, self.model.dtype
        self._X = None if self._sparse else np.empty((b, self.X.shape[1]), dtype=dtype)
        self._Y = np.empty((b, self.Y.shape[1]), dtype=dtype)
        self._w = None if self.w is None else np.empty(b, dtype=dtype)

    def epoch_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """The losses and penalties of this epoch's batches."""
        return self.losses, self.penalties

    def validator(self, X: Any, Y: np.ndarray) -> Any:
        """A function giving the loss (penalty once) and the outputs on ``(X, Y)``, in one forward pass."""
        return lambda: self.model._evaluate(X, Y, with_outputs=True)

    @staticmethod
    def all_finite(arrays: Sequence[Any]) -> bool:
        return all(all_finite(a) for a in arrays)

    @staticmethod
    def copy(dst: np.ndarray, src: np.ndarray) -> None:
        np.copyto(dst, src)

    @staticmethod
    def empty_like(a: np.ndarray) -> np.ndarray:
        return np.empty_like(a)


class _Snapshot:
    """Copies of θ and the optimizer's state buffers (on the device that holds them), with its step count and
    what a replay from here needs: the learning rate and the batches' row order in force when it was taken."""

    def __init__(self, batches: Batches, optimizer: Any) -> None:
        self.batches, self.optimizer = batches, optimizer
        self.live = [optimizer.params, *optimizer.state.values()]
        self.saved = [batches.empty_like(a) for a in self.live]
        self.t, self.lr, self.order = optimizer.t, getattr(optimizer, "lr", None), batches.order

    def take(self) -> None:
        for dst, src in zip(self.saved, self.live):
            self.batches.copy(dst, src)
        self.t, self.lr, self.order = self.optimizer.t, getattr(self.optimizer, "lr", None), self.batches.order

    def restore(self) -> None:
        for dst, src in zip(self.live, self.saved):
            self.batches.copy(dst, src)
        self.optimizer.t = self.t
        if self.lr is not None:  # L-BFGS has none
            self.optimizer.lr = self.lr
        if self.batches.order is not self.order:  # an earlier epoch's (each epoch's order is a new array)
            self.batches.set_order(self.order)

    def live_finite(self) -> bool:
        return self.batches.all_finite(self.live)


# -- the loop --------------------------------------------------------------------------------------------------
class _Run:
    """One call of :func:`fit`: the epoch skeleton and its bookkeeping, over a device's batches."""

    def __init__(self, model: MLP, optimizer: Any, batches: Batches, X_val: Any, Y_val: np.ndarray | None, *,
                 epochs: int, shuffle: bool, rng: Any, schedule: LRSchedule | None, clip_norm: float | None,
                 clip_value: float | None, callbacks: list[Any], progress: bool, max_time: float | None,
                 max_grad_evals: int | None) -> None:
        self.model, self.optimizer, self.batches = model, optimizer, batches
        self.Y_val = Y_val
        self.validate = None if Y_val is None else batches.validator(X_val, Y_val)
        self.epochs, self.shuffle, self.rng, self.schedule = epochs, shuffle, rng, schedule
        self.clip_norm, self.clip_value, self.callbacks = clip_norm, clip_value, callbacks
        self.max_time, self.max_grad_evals = max_time, max_grad_evals
        self.history = History()
        self.grad_evals = self.samples_seen = 0
        self.snapshot = _Snapshot(batches, optimizer)
        self.previous: _Snapshot | None = None  # the snapshot of the epoch before (NOTE [finite or told])
        self.loss_limit = float(np.finfo(model.dtype).max)
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, CI)
            self.bar = tqdm(total=epochs, desc="training", unit="epoch", leave=False, disable=None)
        self.start = time.perf_counter()

    # -- one step, and the epoch ----------------------------------------------------------------------------
    def _step(self, k: int) -> bool:
        """Loss and gradient of batch k, clipping, the optimizer's step. Returns whether the loss is known."""
        known = self.batches.loss_and_grad(k)
        grads = self.model.grads
        if self.clip_norm is not None:
            clip_grad_norm(grads, self.clip_norm)
        if self.clip_value is not None:
            clip_grad_value(grads, self.clip_value)
        self.optimizer.step(grads)
        return known

    def _ok(self, loss: float) -> bool:
        return math.isfinite(loss) and abs(loss) <= self.loss_limit

    def _schedule(self, epoch: int, base_lr: float, monitor: float | None) -> bool:
        """Set the scheduled rate of ``epoch``; a schedule that gives NaN, infinity or a negative rate (a user's
        LRSchedule) stops training before that epoch, with the history so far kept and the reason said, instead
        of an exception that lost the History (issue 21)."""
        lr = self.schedule.lr_at(epoch - 1, base_lr, monitor)
        try:
            self.optimizer.lr = lr
        except (TypeError, ValueError) as exc:
            self.history.stop_reason = (f"schedule: {type(self.schedule).__name__} gave an unusable learning rate "
                                        f"for epoch {epoch} ({exc}); training stopped after epoch {epoch - 1}")
            warnings.warn(self.history.stop_reason, RuntimeWarning, stacklevel=4)
            return False
        return True

    def run_epochs(self) -> None:
        """The epoch loop of the elementwise optimizers."""
        b, n = self.batches, self.batches.n
        order = np.arange(n)
        base_lr = self.optimizer.lr
        monitor = None
        step, ok = self._step, self._ok
        n_batches = len(b.bounds)
        batch_numbers = range(n_batches)
        seen_after = [0, *itertools.accumulate(hi - lo for lo, hi in b.bounds)]  # rows seen after k batches
        runs = None
        if self.model.backend == "numba" and self.model.device == "cpu":  # (the kernels, Numba, are loaded)
            from microdl._runs import compiled_runs

            runs = compiled_runs(b, self.optimizer, clipping=self.clip_norm is not None or self.clip_value is not None)
        for epoch in range(1, self.epochs + 1):
            if self.schedule is not None and not self._schedule(epoch, base_lr, monitor):
                return
            if self.shuffle and isinstance(self.rng, np.random.RandomState):
                order = order[self.rng.permutation(n)]  # NOTE [random streams]
                b.set_order(order)
            elif self.shuffle and len(b.bounds) > 1:
                b.set_order(self.rng.permutation(n))
            if epoch > 1:  # keep the last epoch's snapshot too (NOTE [finite or told])
                if self.previous is None:
                    self.previous = _Snapshot(b, self.optimizer)
                self.previous, self.snapshot = self.snapshot, self.previous
            self.snapshot.take()  # after this epoch's rate and order are set: a replay needs them
            bad = None  # the first batch whose loss is not ok, if known during the epoch
            if runs is not None and runs.ready():  # the same steps, compiled (NOTE [compiled runs of steps])
                bad = runs.run(0, n_batches)
            else:
                for k in batch_numbers:  # per batch only the step and the loss check (a batch-1 step is ~20 µs)
                    if step(k) and not ok(b.losses[k]):
                        bad = k
                        break
            steps = n_batches if bad is None else bad + 1
            self.grad_evals += steps
            self.samples_seen += seen_after[steps]
            losses, penalties = b.epoch_losses()
            if bad is None:  # (a device's losses arrive now; one vectorised test: NaN fails it too)
                not_ok = ~(np.abs(losses[:steps]) <= self.loss_limit)
                bad = int(np.argmax(not_ok)) if not_ok.any() else None
            if bad is not None or not self.snapshot.live_finite():
                self._diverged(epoch, None if bad is None else float(losses[bad]), bad)
                return
            train_loss = float(np.dot(losses, b.sizes)) / n  # the batch losses weighted by their sizes
            if self._end_epoch(epoch, train_loss, float(np.dot(penalties, b.sizes)) / n):
                return
            monitor = self.history.val_loss[-1] if self.validate is not None else train_loss

    def run_iterations(self) -> None:
        """The epoch loop of an optimizer that drives its own iterations (L-BFGS): one per epoch."""
        b = self.batches
        self.snapshot.take()
        state = {"epoch": 0, "stopped": False}

        def loss_and_grad() -> tuple[float, Any]:
            b.loss_and_grad(0)
            self.grad_evals += 1
            self.samples_seen += b.n
            return float(b.losses[0]), self.model.grads

        def on_iteration(loss: float) -> bool:
            state["epoch"] += 1
            epoch = state["epoch"]
            if not self._ok(loss) or not self.snapshot.live_finite():
                self.snapshot.restore()  # the previous iterate (LBFGS.run leaves it when stopped from here)
                self._mark_diverged(epoch, loss, "the iterate of the iteration before was restored")
                state["stopped"] = True
                return True
            self.snapshot.take()
            stop = self._end_epoch(epoch, loss, self.model.penalty(b.total_weight))
            state["stopped"] = stop
            return stop

        # SciPy's L-BFGS-B calls SciPy's BLAS between the kernel calls, the very library the kernels call: left
        # at its threads there, they spin after each of its calls while Numba's threads spin after each kernel,
        # and an iteration on digits took 9-11 ms instead of 1.2-1.6 (NOTE [which BLAS] in microdl/nn/_blas.py).
        # So the loop holds that library at one thread for the whole run, as it is microdl's work throughout.
        with single_threaded_blas():
            result = self.optimizer.run(loss_and_grad, self.epochs, on_iteration)
        if not state["stopped"]:
            if not self._ok(float(result.fun)) and state["epoch"] == 0:  # not finite at the initial weights
                self.snapshot.restore()
                self._mark_diverged(1, float(result.fun), "the initial weights were kept")
            elif not self.snapshot.live_finite():  # the line search left a non-finite final point
                self.snapshot.restore()
                self._mark_diverged(state["epoch"] + 1, math.nan, "the last finite iterate was restored")
            elif result.status == 0:
                self.history.stop_reason = "converged"
            elif result.nit < self.epochs and result.status == 1:
                self.history.stop_reason = "max_fun"
            elif result.status != 1:
                self.history.stop_reason = f"stopped: {result.message}"

    # -- divergence (NOTE [finite or told]) -----------------------------------------------------------------------
    def _diverged(self, epoch: int, loss: float | None, bad: int | None) -> None:
        """Go back to the last good state (NOTE [finite or told]) and mark the run diverged. ``bad`` is the first
        batch of this epoch whose loss is not ok, or None when only the state at the epoch's end is not finite."""
        b = self.batches
        if bad is None:  # every loss was fine: replay the whole epoch while the state stays finite
            snapshot, steps, where = self.snapshot, len(b.bounds), "this epoch"
        elif bad > 0:  # the state that gave the bad loss came from step bad - 1: stop before it
            snapshot, steps, where = self.snapshot, bad - 1, "this epoch"
        elif self.previous is not None:  # the first batch's loss: go back into the epoch before
            snapshot, steps, where = self.previous, len(b.bounds) - 1, "the epoch before"  # its rate and order too
        else:  # the initial weights already give a bad loss: nothing earlier to go back to
            snapshot, steps, where = self.snapshot, 0, "this epoch"
        snapshot.restore()
        done = 0
        if steps:
            before = _Snapshot(b, self.optimizer)
            for k in range(steps):
                before.take()
                self._step(k)
                if not snapshot.live_finite():
                    before.restore()
                    break
                done += 1
        what = (f"the training loss became {loss:g}" if loss is not None
                else "the weights or the optimizer's state became non-finite")
        self._mark_diverged(epoch, what, f"the last good weights and optimizer state (after {done} of the steps "
                                         f"of {where}) were restored")

    #: An L2 penalty or targets this large overflow by themselves, whatever the learning rate.
    _HUGE = 1e100

    def _suspect(self) -> str | None:
        """The advice when the cause is not the step size: an enormous ``alpha`` or targets (the advice named
        the learning rate for ``alpha=1e308`` and targets of 1e30 alike)."""
        alpha = self.model.alpha
        if alpha > self._HUGE:
            return f"a smaller alpha (it is {alpha:g}: the penalty overflows whatever the learning rate)"
        Y = getattr(self.batches, "Y", None)
        if self.model.loss == "squared_error" and isinstance(Y, np.ndarray) and Y.size:
            peak = float(np.max(np.abs(Y)))
            if not math.isfinite(peak) or peak > 1e6:
                return (f"standardised targets (they reach {peak:g}; the squared error of such targets "
                        "overflows or swamps any learning rate)")
        return None

    def _mark_diverged(self, epoch: int, what: Any, restored: str) -> None:
        if not isinstance(what, str):
            what = f"the training loss became {what:g}"
        lr = getattr(self.optimizer, "lr", None)
        name = type(self.optimizer).__name__ + ("" if lr is None else f"(lr={lr:g})")
        hint = self._suspect() or ("standardised inputs or a larger alpha" if lr is None
                                   else "a smaller learning rate, gradient clipping or standardised inputs")
        self.history.diverged = True
        self.history.stop_reason = f"diverged: {what} in epoch {epoch} with {name}; {restored}. Try {hint}."

    # -- the end of an epoch --------------------------------------------------------------------------------------
    def _end_epoch(self, epoch: int, train_loss: float, train_penalty: float) -> bool:
        """Record an epoch, run the callbacks and budgets; True stops training."""
        h = self.history
        h.train_loss.append(train_loss)
        h.train_penalty.append(train_penalty)
        if self.validate is not None:
            val_loss, out = self.validate()
            h.val_loss.append(val_loss)
            h.val_metric.append(metric_of_outputs(self.model.loss, out, self.Y_val))
        else:
            h.val_loss.append(math.nan)
            h.val_metric.append(math.nan)
        lr = getattr(self.optimizer, "lr", None)
        h.lr.append(math.nan if lr is None else float(lr))
        h.wall_time.append(time.perf_counter() - self.start)
        h.grad_evals.append(self.grad_evals)
        h.samples_seen.append(self.samples_seen)
        if self.bar is not None:
            shown = {"loss": f"{train_loss:.4f}"}
            if self.validate is not None:
                shown["val_loss"] = f"{h.val_loss[-1]:.4f}"
            self.bar.set_postfix(shown)
            self.bar.update(1)
        stopped_by = [cb for cb in self.callbacks if cb.on_epoch_end(epoch, h, self.model, self.optimizer)]
        if stopped_by:
            cb = stopped_by[0]
            h.stop_reason = "early_stopping" if isinstance(cb, EarlyStopping) else f"callback {type(cb).__name__}"
        elif self.max_time is not None and h.wall_time[-1] >= self.max_time:
            h.stop_reason = "max_time"
        elif self.max_grad_evals is not None and self.grad_evals >= self.max_grad_evals:
            h.stop_reason = "max_grad_evals"
        else:
            return False
        return True

    def finish(self) -> History:
        """Close the progress bar and let EarlyStopping restore the best weights."""
        if self.bar is not None:
            self.bar.close()
        for cb in self.callbacks:
            if isinstance(cb, EarlyStopping):
                cb.restore(self.model)
                self.history.best_epoch = cb.best_epoch
                if self.history.diverged and cb.restore_best_weights and cb.best_params is not None:
                    self.history.stop_reason += f" EarlyStopping then put back the weights of epoch {cb.best_epoch}."
        if self.history.diverged:
            warnings.warn(self.history.stop_reason, DivergenceWarning, stacklevel=3)  # fit's caller
        return self.history


def fit(model: MLP, optimizer: Any, X: Any, y: Any, *, epochs: int = 10, batch_size: int | None = 32,
        shuffle: bool = True, random_state: Any = None, sample_weight: Any = None,
        validation_data: tuple[Any, Any] | None = None, validation_fraction: float | None = None,
        schedule: str | LRSchedule | None = None, clip_norm: float | None = None,
        clip_value: float | None = None, callbacks: Sequence[Any] = (), progress: bool = False,
        max_time: float | None = None, max_grad_evals: int | None = None) -> History:
    """Train ``model`` with ``optimizer`` (bound to ``model.params``) and return the :class:`History`.

    Every argument is checked before the first epoch. A run that stops being finite ends in the last finite
    state it passed through, with ``history.diverged`` set and a :class:`DivergenceWarning` (NOTE [finite or
    told]). One model can be fitted by one thread at a time: a second concurrent ``fit`` raises RuntimeError.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer or LBFGS
        Must be bound to ``model.params``. An optimizer with ``full_batch = True`` (GD, LBFGS) gets one batch of
        every training sample per epoch whatever ``batch_size`` says; LBFGS takes one iteration per epoch.
    X, y : arrays
        Training data (X dense or SciPy sparse); ``y`` as :meth:`MLP.loss_and_grad` accepts it. For a model
        with ``device="cuda"``, X (and the validation X) may be a device array (``__cuda_array_interface__``:
        Numba, CuPy, torch CUDA tensors), read in place without a copy; ``y`` and ``sample_weight`` may be too,
        but they are copied to the host once, to be checked and encoded. Device X is not scanned for NaN or
        infinity (that would cost a pass and a sync); bad values show up as a divergence.
    epochs : int
        Maximum number of passes over the training data (L-BFGS: iterations).
    batch_size : int or None
        Mini-batch size; None (or >= the number of samples) is full-batch gradient descent.
    shuffle : bool
        Draw a fresh order every epoch (NOTE [random streams]).
    random_state : int, Generator, RandomState or None
        Seeds shuffling and the validation split.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights of the samples' losses, with a positive sum that the dtype can hold.
    validation_data : (X_val, y_val), optional
    validation_fraction : float in (0, 1), optional
        Hold out this fraction of the training data (stratified for single-label classification).
    schedule : str or LRSchedule, optional
        Learning-rate schedule applied before each epoch (see :func:`microdl.optim.make_schedule`).
    clip_norm, clip_value : float, optional
        Clip the gradient by global L2 norm, or each element by value, before each step.
    callbacks : sequence
        Objects with ``on_epoch_end(epoch, history, model, optimizer) -> bool``; True stops training.
        An :class:`EarlyStopping` among them also restores the best weights at the end.
    progress : bool
        Show a progress bar over epochs (on a terminal).
    max_time, max_grad_evals : optional
        Budgets: stop once the wall time (seconds) or the number of gradient evaluations reaches them.

    Examples
    --------
    >>> import numpy as np
    >>> from microdl.nn import MLP
    >>> from microdl.optim import SGD
    >>> X = np.random.default_rng(0).normal(size=(200, 4)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> net = MLP((4, 16, 2), random_state=0)
    >>> history = fit(net, SGD(net.params, lr=0.1), X, y, epochs=20, random_state=0)
    >>> history.train_loss[-1] < history.train_loss[0]
    True
    """
    # -- every check before any work ----------------------------------------------------------------------------
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a microdl.nn.MLP; got {type(model).__name__}")
    from microdl.optim.lbfgs import LBFGS

    if not isinstance(optimizer, (Optimizer, LBFGS)):
        raise TypeError(f"optimizer must be a microdl.optim.Optimizer or LBFGS; got {type(optimizer).__name__}")
    if optimizer.params is not model.params:
        raise ValueError("optimizer must be bound to model.params (create it as Optimizer(model.params, ...))")
    drives = getattr(optimizer, "drives_epochs", False)
    if drives and model.device != "cpu":
        raise ValueError(f"{type(optimizer).__name__} runs on the CPU only; this model is on {model.device!r}")
    epochs = check_int("epochs", epochs, 1)
    shuffle = check_bool("shuffle", shuffle)
    progress = check_bool("progress", progress)
    rng = check_random_state(random_state)
    X, Y = model._as_data(X, y)
    w = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    if validation_data is not None and validation_fraction is not None:
        raise ValueError("pass validation_data or validation_fraction, not both")
    X_val = Y_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        X_val, Y_val = model._as_data(*validation_data, names=("X_val", "y_val"))
    if validation_fraction is not None:
        validation_fraction = check_real("validation_fraction", validation_fraction, 0.0, 1.0, low_open=True,
                                         high_open=True)
        if w is not None:
            raise ValueError("validation_fraction cannot be combined with sample_weight; pass validation_data")
        if is_cuda_array(X):
            raise ValueError("validation_fraction needs host data (the split is drawn on the host); with device "
                             "arrays, pass validation_data instead")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    if drives and schedule is not None:
        raise ValueError(f"{type(optimizer).__name__} has no learning rate, so it takes no schedule")
    schedule = None if drives else make_schedule(schedule, epochs=epochs)
    clip_norm = None if clip_norm is None else check_real("clip_norm", clip_norm, 0.0, low_open=True)
    clip_value = None if clip_value is None else check_real("clip_value", clip_value, 0.0, low_open=True)
    if drives and (clip_norm is not None or clip_value is not None):
        raise ValueError(f"{type(optimizer).__name__} takes no gradient clipping (its line search needs the true "
                         "gradient)")
    callbacks = list(callbacks)
    for k, cb in enumerate(callbacks):
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"callbacks[{k}] ({type(cb).__name__}) has no on_epoch_end(epoch, history, model, "
                            "optimizer) method")
        if isinstance(cb, EarlyStopping) and cb.monitor == "val_loss" and X_val is None and validation_fraction is None:
            raise ValueError("EarlyStopping monitors 'val_loss', but there is no validation data: pass "
                             "validation_data or validation_fraction, or monitor='train_loss'")
    max_time = None if max_time is None else check_real("max_time", max_time, 0.0, low_open=True)
    max_grad_evals = None if max_grad_evals is None else check_int("max_grad_evals", max_grad_evals, 1)

    if not model._fit_lock.acquire(blocking=False):
        raise RuntimeError("this model is being fitted in another thread; fit one model from one thread at a "
                           "time (or fit copies: copy.deepcopy(model))")
    try:
        if not (all_finite(model.params) if model.device == "cpu" else np.all(np.isfinite(model.host_params()))):
            # fit's promise (NOTE [finite or told]) is to end with the last good weights: there are none
            raise ValueError("the model's parameters hold NaN or infinity before training; build a new model "
                             "or set_params() with finite values")
        for cb in callbacks:
            start = getattr(cb, "on_fit_start", None)
            if callable(start):
                start(model, optimizer)
        if validation_fraction is not None:
            X, Y, X_val, Y_val = split_validation(X, Y, validation_fraction, rng,
                                                  stratify=model.loss == "cross_entropy")
        n = X.shape[0]
        if batch_size is None or optimizer.full_batch:
            batch_size = n
        batch_size = min(batch_size, n)
        if model.device == "cuda":
            from microdl.cuda.batches import DeviceBatches

            batches = DeviceBatches(model, X, Y, w, batch_size)
        else:
            batches = HostBatches(model, X, Y, w, batch_size)
        run = _Run(model, optimizer, batches, X_val, Y_val, epochs=epochs, shuffle=shuffle, rng=rng,
                   schedule=schedule, clip_norm=clip_norm, clip_value=clip_value, callbacks=callbacks,
                   progress=progress, max_time=max_time, max_grad_evals=max_grad_evals)
        # No BLAS limit around the whole fit: each kernel call limits the BLAS it calls, and only while it runs
        # (NOTE [which BLAS] in microdl/nn/_blas.py), so the user's other threads keep theirs; L-BFGS's run in
        # SciPy is held whole (run_iterations).
        if drives:
            run.run_iterations()
        else:
            run.run_epochs()
        return run.finish()
    finally:
        model._fit_lock.release()
