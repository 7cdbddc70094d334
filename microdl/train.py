"""The training loop: mini-batches (or the full batch), shuffling, validation, schedules, clipping,
callbacks, early stopping and divergence handling.

One epoch is::

    for each batch (a slice of a fresh permutation, gathered into preallocated buffers):
        loss = model._loss_and_grad(X_batch, Y_batch)      # fills model.grads
        if loss is not finite: stop, keep the last finite weights
        clip model.grads (optional)
        optimizer.step(model.grads)                         # one kernel over the flat buffer

NOTE [random streams]
    ``random_state`` seeds shuffling and the validation split. An int seed or a ``Generator`` draws a fresh
    permutation per epoch (``rng.permutation(n)``), skipped when one batch holds every sample. A legacy
    ``np.random.RandomState`` is drawn from as scikit-learn's MLP draws from it: every epoch permutes the
    previous epoch's order (``order = order[rs.permutation(n)]``, which is ``sklearn.utils.shuffle``), full
    batch or not, so that :mod:`microdl.sklearn` consumes the random stream exactly as scikit-learn does.

Full-batch gradient descent is the same loop with one batch of every sample; an optimizer whose
``full_batch`` is true (:class:`microdl.optim.GD`) always gets that. Nothing in the loop allocates per batch.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.sparse import issparse

from microdl import config
from microdl._cuda_support import is_cuda_array
from microdl._validation import check_int, check_random_state, check_real, check_sample_weight, check_X
from microdl.nn import MLP
from microdl.nn._cpu import single_threaded_blas
from microdl.optim import Optimizer, clip_grad_norm, clip_grad_value
from microdl.optim.schedules import LRSchedule, make_schedule

__all__ = ["History", "Callback", "EarlyStopping", "DivergenceWarning", "fit", "score", "split_validation",
           "evaluate_loss"]


class DivergenceWarning(RuntimeWarning):
    """Training stopped because the loss became NaN or infinite."""


@dataclass
class History:
    """Per-epoch record of a run. Lists are aligned: entry k describes epoch k + 1.

    ``wall_time``, ``grad_evals`` and ``samples_seen`` are cumulative; ``val_*`` hold NaN when there is no
    validation data. ``metric`` is accuracy for classification and R² for regression.
    """

    train_loss: list[float] = field(default_factory=list)
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
        """A JSON-ready dict (NaN becomes None)."""
        d = asdict(self)
        return {k: [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]
                if isinstance(v, list) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for k in ("train_loss", "val_loss", "val_metric", "lr", "wall_time"):
            d[k] = [math.nan if x is None else float(x) for x in d.get(k, [])]
        return cls(**d)


class Callback(Protocol):
    """Called by :func:`fit` after every epoch; returning True stops training."""

    def on_epoch_end(self, epoch: int, history: History, model: MLP, optimizer: Optimizer) -> bool: ...


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs, and restore the
    weights of the best epoch (Keras' ``EarlyStopping`` with ``restore_best_weights=True``).

    Parameters
    ----------
    patience : int, default 10
        Epochs without improvement before stopping.
    min_delta : float, default 0
        Smallest decrease that counts as an improvement.
    monitor : {"val_loss", "train_loss"}, default "val_loss"
        The loss to watch; ``"val_loss"`` needs validation data.
    restore_best_weights : bool, default True
        Put the best epoch's parameters back into the model when training ends.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best_weights: bool = True) -> None:
        self.patience = check_int("patience", patience, 1)
        self.min_delta = check_real("min_delta", min_delta, 0.0)
        if monitor not in ("val_loss", "train_loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'train_loss'; got {monitor!r}")
        self.monitor = monitor
        self.restore_best_weights = restore_best_weights
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_params: np.ndarray | None = None
        self._wait = 0

    def on_epoch_end(self, epoch: int, history: History, model: MLP, optimizer: Optimizer) -> bool:
        value = getattr(history, self.monitor)[-1]
        if math.isnan(value):
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, but there is no validation data")
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


def split_validation(X: np.ndarray, Y: np.ndarray, fraction: float, rng: np.random.Generator,
                     stratify: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off ``fraction`` of the rows for validation (stratified on the one-hot argmax if asked)."""
    n = X.shape[0]
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training samples out of {n}")
    if stratify:
        from sklearn.model_selection import train_test_split

        seed = rng if isinstance(rng, np.random.RandomState) else int(rng.integers(2**31))
        idx_train, idx_val = train_test_split(np.arange(n), test_size=n_val, stratify=Y.argmax(axis=1),
                                              random_state=seed)
    else:
        perm = rng.permutation(n)
        idx_val, idx_train = perm[:n_val], perm[n_val:]
    return X[idx_train], Y[idx_train], X[idx_val], Y[idx_val]


def score(model: MLP, X: np.ndarray, Y: np.ndarray) -> float:
    """Accuracy (classification; subset accuracy for multi-label) or R² averaged over outputs (regression)."""
    out = model.forward(X)
    if model.loss == "cross_entropy":
        return float(np.mean(out.argmax(axis=1) == Y.argmax(axis=1)))
    if model.loss == "binary_cross_entropy":
        return float(np.mean(np.all((out > 0.5) == (Y > 0.5), axis=1)))
    ss_res = ((Y - out) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
    return float(np.mean(r2))


def evaluate_loss(model: MLP, X: Any, y: Any) -> float:
    """The model's loss on a whole dataset: the mean per-sample loss plus the L2 penalty, counted once.

    Evaluated in chunks of :data:`microdl.config.EVAL_CHUNK` rows, so memory stays bounded on large data; the
    result equals the loss of one batch holding every row, as :meth:`MLP.loss_and_grad` computes it (to float
    rounding). ``y`` is anything :meth:`MLP.loss_and_grad` accepts, or already encoded targets. The gradient
    buffer is not touched.
    """
    if model.device == "cuda":
        return model._device_net.loss_on(X, model.encode_targets(y), config.EVAL_CHUNK)
    X = check_X(X, model.layer_sizes[0], model.dtype)
    Y = model.encode_targets(y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {Y.shape[0]}")
    n, chunk = X.shape[0], config.EVAL_CHUNK
    sum_wl = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sum_wl += model._data_loss_sum(X[start:stop], Y[start:stop])
    return sum_wl / n + model.penalty(n)


def _check_training_X(model: MLP, X: Any) -> Any:
    """X checked as the model's forward pass checks it: a CUDA model's :meth:`DeviceNet.as_input` takes device
    arrays in place (shape only: a NaN scan would cost a pass and a sync); otherwise check_X."""
    if model.device == "cuda":
        return model._device_net.as_input(X)
    return check_X(X, model.layer_sizes[0], model.dtype)


def fit(model: MLP, optimizer: Optimizer, X: Any, y: Any, *, epochs: int = 10, batch_size: int | None = 32,
        shuffle: bool = True, random_state: Any = None, sample_weight: Any = None,
        validation_data: tuple[Any, Any] | None = None, validation_fraction: float | None = None,
        schedule: str | LRSchedule | None = None, clip_norm: float | None = None,
        clip_value: float | None = None, callbacks: list[Any] | tuple = (), progress: bool = False,
        max_time: float | None = None, max_grad_evals: int | None = None) -> History:
    """Train ``model`` with ``optimizer`` (bound to ``model.params``) and return the :class:`History`.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer
        Must be bound to ``model.params``. An optimizer with ``full_batch = True`` (GD) gets one batch of
        every training sample per epoch whatever ``batch_size`` says.
    X, y : arrays
        Training data (X dense or SciPy sparse); ``y`` as :meth:`MLP.loss_and_grad` accepts it. For a model
        with ``device="cuda"``, X (and the validation X) may be a device array (``__cuda_array_interface__``:
        Numba, CuPy, torch CUDA tensors), read in place without a copy; ``y`` and ``sample_weight`` may be too,
        but they are copied to the host once, to be checked and encoded. Device X is not scanned for NaN or
        infinity (that would cost a pass and a sync); bad values show up as a divergence warning.
    epochs : int
        Maximum number of passes over the training data.
    batch_size : int or None
        Mini-batch size; None (or >= the number of samples) is full-batch gradient descent.
    shuffle : bool
        Draw a fresh permutation every epoch.
    random_state : int, Generator or None
        Seeds shuffling and the validation split.
    sample_weight : array of shape (n_samples,), optional
    validation_data : (X_val, y_val), optional
    validation_fraction : float in (0, 1), optional
        Hold out this fraction of the training data (stratified for single-label classification).
    schedule : str or LRSchedule, optional
        Learning-rate schedule applied before each epoch (see :func:`microdl.optim.make_schedule`).
    clip_norm, clip_value : float, optional
        Clip the gradient by global L2 norm, or each element by value, before each step.
    callbacks : list
        Objects with ``on_epoch_end(epoch, history, model, optimizer) -> bool``; True stops training.
        An :class:`EarlyStopping` among them also restores the best weights at the end.
    progress : bool
        Show a tqdm progress bar over epochs.
    max_time, max_grad_evals : optional
        Budgets: stop once the wall time (seconds) or the number of gradient evaluations reaches them.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a microdl.nn.MLP; got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a microdl.optim.Optimizer; got {type(optimizer).__name__}")
    if optimizer.params is not model.params:
        raise ValueError("optimizer must be bound to model.params (create it as Optimizer(model.params, ...))")
    epochs = check_int("epochs", epochs, 1)
    rng = check_random_state(random_state)
    X = _check_training_X(model, X)
    Y = model.encode_targets(y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {Y.shape[0]}")
    w = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    if validation_data is not None and validation_fraction is not None:
        raise ValueError("pass validation_data or validation_fraction, not both")
    X_val = Y_val = None
    if validation_fraction is not None:
        check_real("validation_fraction", validation_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if w is not None:
            raise ValueError("validation_fraction cannot be combined with sample_weight; pass validation_data")
        if is_cuda_array(X):
            raise ValueError("validation_fraction needs host data (the split is drawn on the host); with device "
                             "arrays, pass validation_data instead")
        X, Y, X_val, Y_val = split_validation(X, Y, validation_fraction, rng,
                                              stratify=model.loss == "cross_entropy")
    elif validation_data is not None:
        X_val = _check_training_X(model, validation_data[0])
        Y_val = model.encode_targets(validation_data[1])
    n = X.shape[0]
    if batch_size is None or optimizer.full_batch:
        batch_size = n
    batch_size = min(check_int("batch_size", batch_size, 1), n)
    schedule = make_schedule(schedule, epochs=epochs)
    clip_norm = None if clip_norm is None else check_real("clip_norm", clip_norm, 0.0, low_open=True)
    clip_value = None if clip_value is None else check_real("clip_value", clip_value, 0.0, low_open=True)
    callbacks = list(callbacks)
    if model.device == "cuda":
        from microdl.cuda.train import fit_device

        return fit_device(model, optimizer, X, Y, w, X_val, Y_val, epochs=epochs, batch_size=batch_size,
                          shuffle=shuffle, rng=rng, schedule=schedule, clip_norm=clip_norm, clip_value=clip_value,
                          callbacks=callbacks, progress=progress, max_time=max_time, max_grad_evals=max_grad_evals)

    # Preallocated batch buffers: gathering a batch is np.take(..., out=...), never a new array.
    X_batch = np.empty((batch_size, X.shape[1]), dtype=model.dtype)
    Y_batch = np.empty((batch_size, Y.shape[1]), dtype=model.dtype)
    w_batch = None if w is None else np.empty(batch_size, dtype=model.dtype)
    order = np.arange(n)
    last_finite = np.empty_like(model.params)
    base_lr = optimizer.lr
    history = History()
    grad_evals = samples_seen = 0
    start = time.perf_counter()
    monitor = math.nan

    epoch_iter = range(1, epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI)
        bar = epoch_iter = tqdm(epoch_iter, desc="training", unit="epoch", leave=False, disable=None)
    # The kernels run BLAS on one thread (NOTE [row blocks] in microdl/nn/_cpu.py); setting that once here
    # instead of once per batch saves a few microseconds per batch.
    with single_threaded_blas():
        for epoch in epoch_iter:
            optimizer.lr = schedule.lr_at(epoch - 1, base_lr, None if math.isnan(monitor) else monitor)
            if shuffle and isinstance(rng, np.random.RandomState):
                order = order[rng.permutation(n)]  # NOTE [random streams]
            elif shuffle and batch_size < n:
                order = rng.permutation(n)
            last_finite[...] = model.params
            running = 0.0
            for lo in range(0, n, batch_size):
                idx = order[lo : lo + batch_size]
                m = idx.size
                if m == n:
                    Xb, Yb, wb = X, Y, w  # the full batch needs no gathering (the mean ignores order)
                else:
                    # (sparse X is sliced, which allocates: dense input is the fast path)
                    Xb = X[idx] if issparse(X) else np.take(X, idx, axis=0, out=X_batch[:m])
                    Yb = np.take(Y, idx, axis=0, out=Y_batch[:m])
                    wb = None if w is None else np.take(w, idx, out=w_batch[:m])
                loss = model._loss_and_grad(Xb, Yb, wb)
                grad_evals += 1
                samples_seen += m
                if not math.isfinite(loss):
                    if not np.all(np.isfinite(model.params)):
                        model.params[...] = last_finite
                    history.diverged = True
                    history.stop_reason = (f"diverged: the training loss became {loss} in epoch {epoch} with "
                                           f"{type(optimizer).__name__}(lr={optimizer.lr:g}); the last finite weights "
                                           "were kept. Try a smaller learning rate or gradient clipping.")
                    break
                running += loss * m
                if clip_norm is not None:
                    clip_grad_norm(model.grads, clip_norm)
                if clip_value is not None:
                    clip_grad_value(model.grads, clip_value)
                optimizer.step(model.grads)
            if history.diverged:
                warnings.warn(history.stop_reason, DivergenceWarning, stacklevel=2)
                break

            history.train_loss.append(running / n)
            if X_val is not None:
                history.val_loss.append(evaluate_loss(model, X_val, Y_val))
                history.val_metric.append(score(model, X_val, Y_val))
            else:
                history.val_loss.append(math.nan)
                history.val_metric.append(math.nan)
            monitor = history.val_loss[-1] if X_val is not None else history.train_loss[-1]
            if end_epoch(history, epoch, model=model, optimizer=optimizer, start=start, grad_evals=grad_evals,
                         samples_seen=samples_seen, has_val=X_val is not None, bar=bar, callbacks=callbacks,
                         max_time=max_time, max_grad_evals=max_grad_evals):
                break
    return finish(history, model, bar, callbacks)


def end_epoch(history: History, epoch: int, *, model: MLP, optimizer: Optimizer, start: float, grad_evals: int,
              samples_seen: int, has_val: bool, bar: Any, callbacks: list[Any], max_time: float | None,
              max_grad_evals: int | None) -> bool:
    """Record an epoch's lr, time and counters (losses already appended), run the callbacks and budgets, and
    return True to stop. Shared by this loop and the CUDA loop (:mod:`microdl.cuda.train`)."""
    history.lr.append(optimizer.lr)
    history.wall_time.append(time.perf_counter() - start)
    history.grad_evals.append(grad_evals)
    history.samples_seen.append(samples_seen)
    if bar is not None:
        shown = {"loss": f"{history.train_loss[-1]:.4f}"}
        if has_val:
            shown["val_loss"] = f"{history.val_loss[-1]:.4f}"
        bar.set_postfix(shown)
    stop = False
    for cb in callbacks:
        stop = bool(cb.on_epoch_end(epoch, history, model, optimizer)) or stop
    if stop:
        history.stop_reason = "early_stopping"
    elif max_time is not None and history.wall_time[-1] >= max_time:
        history.stop_reason = "max_time"
    elif max_grad_evals is not None and grad_evals >= max_grad_evals:
        history.stop_reason = "max_grad_evals"
    else:
        return False
    return True


def finish(history: History, model: MLP, bar: Any, callbacks: list[Any]) -> History:
    """Close the progress bar and let EarlyStopping restore the best weights."""
    if bar is not None:
        bar.close()
    for cb in callbacks:
        if isinstance(cb, EarlyStopping):
            cb.restore(model)
            history.best_epoch = cb.best_epoch
    return history
