"""The batches of :func:`microdl.train.fit` for ``device="cuda"``: the data on the GPU, and the host waiting for
it once per epoch.

Once per fit, the training data (and any validation data) is uploaded; device arrays
(``__cuda_array_interface__``) are used in place. In an epoch of :func:`microdl.train.fit`::

    order = rng.permutation(n)       # drawn on the host by the loop, the same draws as on the CPU: same batches
    set_order: upload the order      # one small copy
    loss_and_grad(k): gather rows order[lo:lo+m] of X, Y, w into the batch buffers       (one kernel)
                      DeviceNet.step: forward, loss into losses[k], backward            (no sync)
    epoch_losses: copy losses and penalties to the host   # the one synchronisation of the epoch

Without shuffling the batches are row slices of the uploaded data (no gather), and a full batch is the data
itself, as on the CPU. Everything else (the schedule, the snapshot, clipping and the optimizer step, the
divergence checks and the replay, validation, callbacks, budgets) is the loop's, the same as on the CPU: a
non-finite loss is seen at the end of its epoch instead of at once (NOTE [finite or told] in
:mod:`microdl.train`), which the replay makes no difference to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from microdl._cuda_support import require_cuda

__all__ = ["DeviceBatches"]

cuda = require_cuda()


class DeviceBatches:
    """The device-resident batches of ``(X, Y, w)`` for a ``device="cuda"`` model (the loop's protocol,
    :class:`microdl.train.Batches`). ``X``, ``Y`` (2-D, encoded) and ``w`` (1-D or None) are checked host or
    device arrays."""

    def __init__(self, model: Any, X: Any, Y: Any, w: Any, batch_size: int) -> None:
        self.model = model
        self.net = net = model._device_net
        self.X, self.Y, self.w = net.to_device(X), net.to_device(Y), net.to_device(w)
        self.n = n = self.X.shape[0]
        self.total_weight = float(n if w is None else np.sum(w, dtype=np.float64))
        self.bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
        self.sizes = np.array([hi - lo for lo, hi in self.bounds], dtype=np.float64)
        self._losses = cuda.device_array(len(self.bounds), np.float64)
        self._penalties = cuda.device_array(len(self.bounds), np.float64)
        self._order = cuda.device_array(n, np.int64)
        self.order: np.ndarray | None = None  # this epoch's order, on the host too
        net.reserve(batch_size)

    def set_order(self, order: np.ndarray | None) -> None:
        self.order = order
        if order is not None and len(self.bounds) > 1:  # one batch of every row needs no order
            self._order.copy_to_device(np.ascontiguousarray(order, dtype=np.int64))

    def loss_and_grad(self, k: int) -> bool:
        """Launch batch k's forward and backward; its loss stays on the device until :meth:`epoch_losses`.
        Returns False: the loss is not known yet."""
        lo, hi = self.bounds[k]
        m = hi - lo
        with self.net.lock:  # the batch buffers are shared with predictions from other threads
            if m == self.n:
                Xb, Yb, wb = self.X, self.Y, self.w  # the full batch needs no gathering
            elif self.order is not None:
                Xb, Yb, wb = self.net.gather(self.X, self.Y, self.w, self._order, lo, m)
            else:
                Xb, Yb, wb = self.X[lo:hi], self.Y[lo:hi], None if self.w is None else self.w[lo:hi]
            self.net.step(Xb, Yb, wb, self._losses, self._penalties, k)
        return False

    def epoch_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """The losses and penalties of this epoch's batches: the epoch's one synchronisation."""
        return self._losses.copy_to_host(), self._penalties.copy_to_host()

    def validator(self, X: Any, Y: np.ndarray) -> Any:
        """Upload the validation data once; the function returned gives its loss and (host) outputs."""
        X_dev, Y_dev = self.net.to_device(X), self.net.to_device(Y)
        out = cuda.device_array((X_dev.shape[0], self.net.n_outputs), self.net.dtype)

        def validate() -> tuple[float, np.ndarray]:
            loss = self.net.evaluate_device(X_dev, Y_dev, out)
            return loss, out.copy_to_host()

        return validate

    def all_finite(self, arrays: Sequence[Any]) -> bool:
        return all(self.net.all_finite(a) for a in arrays)

    @staticmethod
    def copy(dst: Any, src: Any) -> None:
        dst.copy_to_device(src)  # device to device

    @staticmethod
    def empty_like(a: Any) -> Any:
        return cuda.device_array_like(a)
