"""Learning-rate schedules, applied per epoch by the training loop.

A schedule maps the epoch number (0-based) to a learning rate, starting from the optimizer's initial rate
``base_lr``. The training loop calls :meth:`LRSchedule.lr_at` before each epoch and assigns the result to
``optimizer.lr``, on every backend (the rate is a host-side scalar). :class:`ReduceLROnPlateau` also reads the
last epoch's monitored loss. Semantics follow ``torch.optim.lr_scheduler`` where torch has the schedule, and
scikit-learn's ``learning_rate='invscaling'`` for :class:`InverseScaling` (counted in epochs, not samples).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from typing import Any

from microdl._validation import check_int, check_real

__all__ = ["LRSchedule", "Constant", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR",
           "OneCycleLR", "LambdaLR", "CosineWithWarmup", "InverseScaling", "ReduceLROnPlateau", "SCHEDULES",
           "make_schedule"]


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


class MultiStepLR(LRSchedule):
    """Multiply the rate by ``gamma`` at each epoch of ``milestones`` (``torch.optim.lr_scheduler.MultiStepLR``):
    ``base_lr * gamma ** (number of milestones <= epoch)``; a repeated milestone counts twice, as in torch."""

    def __init__(self, milestones: Iterable[int], gamma: float = 0.1) -> None:
        milestones = list(milestones)
        self.milestones = sorted(check_int("milestones", m, 0) for m in milestones)
        self.gamma = check_real("gamma", gamma, 0.0, 1.0, low_open=True)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class LinearLR(LRSchedule):
    """Scale the rate by a factor going linearly from ``start_factor`` to ``end_factor`` over ``total_iters``
    epochs, then held (``torch.optim.lr_scheduler.LinearLR``, torch's defaults)."""

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5) -> None:
        self.start_factor = check_real("start_factor", start_factor, 0.0, 1.0, low_open=True)
        self.end_factor = check_real("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = check_int("total_iters", total_iters, 1)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class CosineAnnealingLR(LRSchedule):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2`` (``torch.optim.lr_scheduler.
    CosineAnnealingLR``): down to ``eta_min`` at ``T_max``, and, as in torch, back up after it (a period of
    ``2 T_max``). :class:`CosineWithWarmup` holds ``min_lr`` instead and can warm up."""

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max = check_int("T_max", T_max, 1)
        self.eta_min = check_real("eta_min", eta_min, 0.0)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return self.eta_min + (base_lr - self.eta_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / self.T_max))


class OneCycleLR(LRSchedule):
    """The 1cycle policy (``torch.optim.lr_scheduler.OneCycleLR``), one step per epoch.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of ``total_steps``
    epochs, then anneals to ``max_lr / div_factor / final_div_factor`` at the last one (``three_phase``: back to
    the initial rate first, then down to the minimum), along a cosine or a line (``anneal_strategy``). As in
    torch, the optimizer's own rate is not used: ``max_lr`` sets the cycle (``None``: the optimizer's rate), and
    stepping past ``total_steps`` is an error. Only the rate cycles (torch's ``cycle_momentum=False``).
    """

    def __init__(self, max_lr: float | None = None, total_steps: int = 100, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        self.max_lr = None if max_lr is None else check_real("max_lr", max_lr, 0.0, low_open=True)
        self.total_steps = check_int("total_steps", total_steps, 1)
        self.pct_start = check_real("pct_start", pct_start, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear'; got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.div_factor = check_real("div_factor", div_factor, 0.0, low_open=True)
        self.final_div_factor = check_real("final_div_factor", final_div_factor, 0.0, low_open=True)
        self.three_phase = bool(three_phase)

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        if epoch >= self.total_steps:
            raise ValueError(f"OneCycleLR was asked for epoch {epoch} (0-based) but its cycle has total_steps="
                             f"{self.total_steps}; make total_steps at least the number of epochs")
        peak = base_lr if self.max_lr is None else self.max_lr
        initial = peak / self.div_factor
        low = initial / self.final_div_factor
        rise_end = self.pct_start * self.total_steps - 1
        if self.three_phase:
            phases = [(rise_end, initial, peak), (2 * self.pct_start * self.total_steps - 2, peak, initial),
                      (self.total_steps - 1, initial, low)]
        else:
            phases = [(rise_end, initial, peak), (self.total_steps - 1, peak, low)]
        start = 0.0
        for index, (end, lr_from, lr_to) in enumerate(phases):
            if epoch <= end or index == len(phases) - 1:
                pct = (epoch - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return lr_to + (lr_from - lr_to) / 2.0 * (math.cos(math.pi * pct) + 1.0)
                return (lr_to - lr_from) * pct + lr_from
            start = end
        raise AssertionError("unreachable: the last phase always returns")


class LambdaLR(LRSchedule):
    """``base_lr * lr_lambda(epoch)`` (``torch.optim.lr_scheduler.LambdaLR``). Not in :data:`SCHEDULES`: it has
    no default function to be named by."""

    def __init__(self, lr_lambda: Callable[[int], float]) -> None:
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the epoch; got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        factor = float(self.lr_lambda(epoch))
        if not math.isfinite(factor) or factor < 0:
            raise ValueError(f"lr_lambda({epoch}) gave {factor}; a learning-rate factor must be finite and >= 0")
        return base_lr * factor


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
    # torch's schedules under their own semantics (make_schedule also takes their class names)
    "multistep": MultiStepLR, "linear": LinearLR, "cosine_annealing": CosineAnnealingLR, "onecycle": OneCycleLR,
}


def make_schedule(name: str | LRSchedule | None, *, epochs: int = 1) -> LRSchedule:
    """A schedule by name with sensible defaults for a run of ``epochs`` epochs.

    ``"cosine"`` decays over ``epochs`` with a warm-up of 5% of them; ``"step"`` and ``"multistep"`` divide the
    rate by 10 at a third and two thirds of the run; ``"cosine_annealing"`` has ``T_max = epochs`` (as torch
    users write it) and ``"onecycle"`` spans the run (``total_steps = epochs``, peak at the optimizer's rate);
    the others use their class defaults. torch's class names (``"CosineAnnealingLR"``, ``"StepLR"``, ...)
    name the same schedules. An :class:`LRSchedule` instance is returned unchanged and ``None`` gives
    :class:`Constant`.
    """
    if name is None:
        return Constant()
    if isinstance(name, LRSchedule):
        return name
    by_class = {cls.__name__: key for key, cls in SCHEDULES.items()}
    name = by_class.get(name, name)
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if name == "cosine":
        return CosineWithWarmup(total_epochs=max(epochs, 1), warmup_epochs=epochs // 20 if epochs > 1 else 0)
    if name == "step":
        return StepLR(step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    if name == "multistep":
        return MultiStepLR(milestones=sorted({max(1, round(epochs / 3)), max(1, round(2 * epochs / 3))}), gamma=0.1)
    if name == "cosine_annealing":
        return CosineAnnealingLR(T_max=max(epochs, 1))
    if name == "onecycle":
        return OneCycleLR(total_steps=max(epochs, 1))
    return SCHEDULES[name]()
