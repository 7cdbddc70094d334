"""The training loop of :func:`microdl.train.fit` for ``device="cuda"``: data, forward, backward, clipping and
the optimizer step all on the GPU, with the host waiting for it once per epoch.

Once per fit, the training data (and any validation data) is uploaded; device arrays
(``__cuda_array_interface__``) are used in place. One epoch is::

    order = rng.permutation(n)            # on the host, the same rng calls as the CPU loop: the same batches
    upload order; copy params → snapshot  # (device-to-device)
    for batch k:
        gather rows order[lo:lo+m] of X, Y, w into the batch buffers          (one kernel)
        DeviceNet.step: forward, loss into batch_losses[k], backward           (no sync)
        clip model.grads (optional); optimizer.step(model.grads)               (no sync)
    copy batch_losses to the host          # the one synchronisation of the epoch
    train loss = Σ_k loss_k m_k / n, summed in batch order as the CPU loop does
    validation: outputs and chunk losses on the device, then one copy of each to the host

Without shuffling the batches are row slices of the uploaded data (no gather), and a full batch is the data
itself, as on the CPU. The bookkeeping after each epoch (history, validation, callbacks, budgets, early
stopping) is the CPU loop's.

NOTE [divergence per epoch]: the CPU loop checks every batch's loss and stops at the first that is not
finite, keeping the weights of the step before (or the epoch's first weights if those are no longer finite).
Here the host sees the losses only at the end of the epoch, after the remaining steps have run on bad
numbers, so on a non-finite loss it restores a device copy of the parameters taken at the start of the epoch
(the optimizer's state is not restored, as on the CPU). ``History.stop_reason`` names the first bad batch.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from microdl import config
from microdl._cuda_support import require_cuda
from microdl.optim import Optimizer, clip_grad_norm, clip_grad_value
from microdl.optim.schedules import LRSchedule
from microdl.train import DivergenceWarning, History, end_epoch, finish, score

__all__ = ["fit_device"]

cuda = require_cuda()



class _Outputs:
    """Stands in for the model in :func:`microdl.train.score`, which needs only ``loss`` and ``forward``: the
    validation outputs were already computed with the validation loss, and are not recomputed."""

    def __init__(self, loss: str, out: np.ndarray) -> None:
        self.loss = loss
        self._out = out

    def forward(self, X: Any) -> np.ndarray:
        return self._out


def fit_device(model: Any, optimizer: Optimizer, X: Any, Y: Any, w: Any, X_val: Any, Y_val: Any, *, epochs: int,
               batch_size: int, shuffle: bool, rng: np.random.Generator, schedule: LRSchedule,
               clip_norm: float | None, clip_value: float | None, callbacks: list[Any], progress: bool,
               max_time: float | None, max_grad_evals: int | None) -> History:
    """Train a ``device="cuda"`` model; called by :func:`microdl.train.fit` with validated arguments.

    ``X``, ``Y`` (2-D, encoded), ``w`` (1-D or None) and the validation arrays may be host or device arrays;
    ``batch_size`` is already at most ``n``. Returns a :class:`~microdl.train.History` with the CPU loop's
    meaning (``wall_time`` includes the upload of the data).
    """
    net = model._device_net
    start = time.perf_counter()
    X_dev, Y_dev, w_dev = net.to_device(X), net.to_device(Y), net.to_device(w)  # all validated by fit()
    n = X_dev.shape[0]
    n_batches = -(-n // batch_size)
    batch_sizes = [min(batch_size, n - lo) for lo in range(0, n, batch_size)]
    batch_losses = cuda.device_array(n_batches, np.float64)
    use_order = shuffle and batch_size < n
    order_dev = cuda.device_array(n, np.int64) if use_order else None
    snapshot = cuda.device_array_like(model.params)
    net.reserve(batch_size)

    has_val = X_val is not None
    if has_val:
        X_val_dev, Y_val_dev = net.to_device(X_val), net.to_device(Y_val)
        Y_val_host = Y_val if isinstance(Y_val, np.ndarray) else Y_val_dev.copy_to_host()
        val_out = cuda.device_array((X_val_dev.shape[0], net.n_outputs), net.dtype)

    base_lr = optimizer.lr
    history = History()
    grad_evals = samples_seen = 0
    monitor = math.nan

    epoch_iter = range(1, epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = epoch_iter = tqdm(epoch_iter, desc="training", unit="epoch", leave=False, disable=None)
    for epoch in epoch_iter:
        optimizer.lr = schedule.lr_at(epoch - 1, base_lr, None if math.isnan(monitor) else monitor)
        if use_order:
            order_dev.copy_to_device(rng.permutation(n))
        snapshot.copy_to_device(model.params)
        for k, lo in enumerate(range(0, n, batch_size)):
            m = batch_sizes[k]
            if m == n:
                Xb, Yb, wb = X_dev, Y_dev, w_dev  # the full batch needs no gathering
            elif use_order:
                Xb, Yb, wb = net.gather(X_dev, Y_dev, w_dev, order_dev, lo, m)
            else:
                Xb, Yb, wb = X_dev[lo : lo + m], Y_dev[lo : lo + m], None if w_dev is None else w_dev[lo : lo + m]
            net.step(Xb, Yb, wb, batch_losses, k)
            grad_evals += 1
            samples_seen += m
            if clip_norm is not None:
                clip_grad_norm(model.grads, clip_norm)
            if clip_value is not None:
                clip_grad_value(model.grads, clip_value)
            optimizer.step(model.grads)

        losses = batch_losses.copy_to_host()  # the epoch's synchronisation
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:  # NOTE [divergence per epoch]
            model.params.copy_to_device(snapshot)
            history.diverged = True
            history.stop_reason = (f"diverged: the training loss became {losses[bad[0]]} in epoch {epoch} (batch "
                                   f"{bad[0] + 1} of {n_batches}) with {type(optimizer).__name__}"
                                   f"(lr={optimizer.lr:g}); the weights from the start of that epoch were restored. "
                                   "Try a smaller learning rate or gradient clipping.")
            warnings.warn(history.stop_reason, DivergenceWarning, stacklevel=3)
            break
        running = 0.0
        for loss, m in zip(losses, batch_sizes):
            running += float(loss) * m
        history.train_loss.append(running / n)

        if has_val:
            history.val_loss.append(net.loss_on(X_val_dev, Y_val_dev, config.EVAL_CHUNK, out=val_out))
            history.val_metric.append(score(_Outputs(model.loss, val_out.copy_to_host()), None, Y_val_host))
        else:
            history.val_loss.append(math.nan)
            history.val_metric.append(math.nan)
        monitor = history.val_loss[-1] if has_val else history.train_loss[-1]
        if end_epoch(history, epoch, model=model, optimizer=optimizer, start=start, grad_evals=grad_evals,
                     samples_seen=samples_seen, has_val=has_val, bar=bar, callbacks=callbacks, max_time=max_time,
                     max_grad_evals=max_grad_evals):
            break
    return finish(history, model, bar, callbacks)
