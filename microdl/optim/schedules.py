"""Learning-rate schedules, applied per epoch by the training loop.

A schedule maps the epoch number (0-based) to a learning rate, starting from the optimizer's initial rate
``base_lr``. The training loop calls :meth:`LRSchedule.lr_at` before each epoch and assigns the result to
``optimizer.lr``, on every backend (the rate is a host-side scalar). :class:`ReduceLROnPlateau` also reads the
last epoch's monitored loss. Semantics follow ``torch.optim.lr_scheduler`` where torch has the schedule, and
scikit-learn's ``learning_rate='invscaling'`` for :class:`InverseScaling` (counted in epochs, not samples).
"""

from __future__ import annotations

import math
from typing import Any

from microdl._validation import check_int, check_real

__all__ = ["LRSchedule", "Constant", "StepLR", "ExponentialLR", "CosineWithWarmup", "InverseScaling",
           "ReduceLROnPlateau", "SCHEDULES", "make_schedule"]


class LRSchedule:
    """Base class: ``lr_at(epoch, base_lr, metric)`` gives the learning rate of an epoch."""

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        """The learning rate for ``epoch`` (0-based); ``metric`` is the previous epoch's monitored loss."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The schedule's settings and any running state, for checkpoints."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        vars(self).update(state)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Constant(LRSchedule):
    """The initial learning rate throughout."""

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr


class StepLR(LRSchedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_real("gamma", gamma, 0.0, 1.0, low_open=True)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRSchedule):
    """Multiply the rate by ``gamma`` every epoch (``torch.optim.lr_scheduler.ExponentialLR``)."""

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_real("gamma", gamma, 0.0, 1.0, low_open=True)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr * self.gamma**epoch


class CosineWithWarmup(LRSchedule):
    """Linear warm-up from ``base_lr / (warmup_epochs + 1)`` over ``warmup_epochs``, then a cosine decay to
    ``min_lr`` at ``total_epochs`` (torch's ``LinearLR`` then ``CosineAnnealingLR``; optax's
    ``warmup_cosine_decay_schedule``)."""

    def __init__(self, total_epochs: int, warmup_epochs: int = 0, min_lr: float = 0.0) -> None:
        total_epochs = check_int("total_epochs", total_epochs, 1)
        warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
        if warmup_epochs >= total_epochs:
            raise ValueError(f"warmup_epochs ({warmup_epochs}) must be smaller than total_epochs ({total_epochs})")
        self.total_epochs, self.warmup_epochs = total_epochs, warmup_epochs
        self.min_lr = check_real("min_lr", min_lr, 0.0)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        if epoch < self.warmup_epochs:
            return base_lr * (epoch + 1) / (self.warmup_epochs + 1)
        span = self.total_epochs - self.warmup_epochs
        progress = min(epoch - self.warmup_epochs, span) / span
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class InverseScaling(LRSchedule):
    """``base_lr / (epoch + 1) ** power_t``: scikit-learn's ``'invscaling'``, counted in epochs."""

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t = check_real("power_t", power_t, 0.0)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr / (epoch + 1) ** self.power_t


class ReduceLROnPlateau(LRSchedule):
    """Multiply the rate by ``factor`` once the monitored loss has not improved by a relative ``threshold``
    for more than ``patience`` epochs, then wait ``cooldown`` epochs (``torch.optim.lr_scheduler.
    ReduceLROnPlateau``, mode ``'min'``, ``threshold_mode='rel'``). As in torch, the rate never goes below
    ``min_lr``, and a reduction that would change it by ``eps`` or less is skipped."""

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        self.factor = check_real("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.patience, self.cooldown = check_int("patience", patience, 0), check_int("cooldown", cooldown, 0)
        self.threshold = check_real("threshold", threshold, 0.0)
        self.min_lr = check_real("min_lr", min_lr, 0.0)
        self.eps = check_real("eps", eps, 0.0)
        self._best = math.inf
        self._bad_epochs = 0
        self._cooldown_left = 0
        self._scale = 1.0

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        if metric is not None and math.isfinite(metric):
            if metric < self._best * (1.0 - self.threshold):
                self._best, self._bad_epochs = metric, 0
            else:
                self._bad_epochs += 1
            if self._cooldown_left > 0:
                self._cooldown_left -= 1
                self._bad_epochs = 0
            if self._bad_epochs > self.patience:
                old_lr = base_lr * self._scale
                if old_lr - max(old_lr * self.factor, self.min_lr) > self.eps:
                    self._scale *= self.factor
                self._cooldown_left, self._bad_epochs = self.cooldown, 0
        return max(base_lr * self._scale, self.min_lr)


SCHEDULES: dict[str, type[LRSchedule]] = {
    "constant": Constant, "step": StepLR, "exponential": ExponentialLR, "cosine": CosineWithWarmup,
    "invscaling": InverseScaling, "plateau": ReduceLROnPlateau,
}


def make_schedule(name: str | LRSchedule | None, *, epochs: int = 1) -> LRSchedule:
    """A schedule by name with sensible defaults for a run of ``epochs`` epochs.

    ``"cosine"`` decays over ``epochs`` with a warm-up of 5% of them; ``"step"`` divides the rate by 10 at a
    third and two thirds of the run; the others use their class defaults. An :class:`LRSchedule` instance is
    returned unchanged and ``None`` gives :class:`Constant`.
    """
    if name is None:
        return Constant()
    if isinstance(name, LRSchedule):
        return name
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if name == "cosine":
        return CosineWithWarmup(total_epochs=max(epochs, 1), warmup_epochs=epochs // 20 if epochs > 1 else 0)
    if name == "step":
        return StepLR(step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    return SCHEDULES[name]()
