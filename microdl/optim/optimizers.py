"""The optimizers, in order of increasing complexity.

GD and SGD (momentum as a velocity buffer), Adagrad (a running sum of g²), RMSprop (make that sum an
exponential moving average), AdaDelta (an EMA of the updates too, so the learning rate only scales the step),
Adam (an EMA of g as well, with bias correction) and AdamW (Adam with decoupled weight decay).

Each class validates its hyperparameters, allocates its state and computes the per-step scalars; the update
itself is one rule in :mod:`microdl.optim.rules`, applied by the chosen backend. Names, defaults and formulas
follow ``torch.optim``'s documented algorithms. In the update blocks, θ is ``params``, g the gradient, γ
``lr``, λ ``weight_decay`` and t the step count ``t`` (starting at 1).
"""

from __future__ import annotations

import math
from typing import Any

from microdl._validation import check_bool, check_real
from microdl.optim.base import Optimizer

__all__ = ["GD", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening and Nesterov momentum.

    Follows ``torch.optim.SGD``; the rule is :func:`microdl.optim.rules.sgd`::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0         (coupled L2 penalty)
        b ← g                                   if μ ≠ 0 and t = 1
        b ← μ b + (1 − τ) g                     if μ ≠ 0 and t > 1
        g ← g + μ b   (nesterov)  or  g ← b     if μ ≠ 0
        θ ← θ − γ g

    with μ ``momentum``, τ ``dampening`` and b the state ``"b"`` (allocated only when μ ≠ 0).

    Convention: like torch and optax the buffer b excludes the learning rate; Keras and scikit-learn keep a
    velocity v ← μ v − γ g that includes it, which differs from this as soon as γ changes over time.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place (see :class:`~microdl.optim.base.Optimizer`).
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1e-3
        Learning rate γ ≥ 0.
    momentum : float, default 0
        Momentum factor μ ≥ 0.
    dampening : float, default 0
        Dampening τ in [0, 1] applied to new gradients in the buffer.
    weight_decay : float, default 0
        Coupled L2 penalty λ ≥ 0.
    nesterov : bool, default False
        Nesterov momentum; needs μ > 0 and τ = 0.
    maximize : bool, default False
        Ascend instead of descend.

    Examples
    --------
    >>> import numpy as np
    >>> from microdl.optim import SGD
    >>> theta = np.array([1.0, -2.0])
    >>> opt = SGD(theta, backend="numpy", lr=0.1)
    >>> opt.step(np.array([1.0, 1.0]))
    >>> theta
    array([ 0.9, -2.1])
    """

    rule = "sgd"

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self._validate()
        self._new_state([("b", 0.0, self.momentum != 0)])

    def _validate(self) -> None:
        self.lr = self.lr
        self.momentum = check_real("momentum", self.momentum, 0.0)
        self.dampening = check_real("dampening", self.dampening, 0.0, 1.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.nesterov = check_bool("nesterov", self.nesterov)
        self.maximize = check_bool("maximize", self.maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov, "maximize": self.maximize}

    def _hyper(self) -> tuple:
        f = self.dtype.type
        return (f(self.lr), f(self.momentum), f(1.0 - self.dampening), f(self.weight_decay),
                self.nesterov, self.maximize, self.t == 1)


class GD(SGD):
    """Full-batch gradient descent: SGD's rule, given the gradient over the whole training set.

    The update is exactly :class:`SGD`'s (``torch.optim.SGD``), hyperparameters and defaults included; the only
    difference is the batch. The training loop sees ``full_batch = True`` and computes each gradient on every
    training sample, so one epoch is one step. ``momentum=0`` gives the textbook θ ← θ − γ ∇L(θ).
    """

    full_batch = True


class Adagrad(Optimizer):
    r"""Adagrad: per-parameter steps scaled by the root of the running sum of squared gradients.

    Follows ``torch.optim.Adagrad``; the rule is :func:`microdl.optim.rules.adagrad`::

        γ̃ ← γ / (1 + (t − 1) η)                (on the host, per step)
        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        S ← S + g²                              (S starts at initial_accumulator_value)
        θ ← θ − γ̃ g / (√S + ε)

    with η ``lr_decay`` and S the state ``"state_sum"``.

    Convention: ε is added outside the square root, as in torch; Keras and optax add it inside (√(S + ε)) and
    start S at 0.1 with lr 1e-3.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place.
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1e-2
        Learning rate γ ≥ 0.
    lr_decay : float, default 0
        Decay η ≥ 0 of the learning rate per step.
    weight_decay : float, default 0
        Coupled L2 penalty λ ≥ 0.
    initial_accumulator_value : float, default 0
        Initial value ≥ 0 of S.
    eps : float, default 1e-10
        ε ≥ 0, added to the denominator.
    maximize : bool, default False
        Ascend instead of descend.
    """

    rule = "adagrad"

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend)
        self.lr, self.lr_decay, self.weight_decay = lr, lr_decay, weight_decay
        self.initial_accumulator_value, self.eps, self.maximize = initial_accumulator_value, eps, maximize
        self._validate()
        self._new_state([("state_sum", self.initial_accumulator_value, True)])

    def _validate(self) -> None:
        self.lr = self.lr
        self.lr_decay = check_real("lr_decay", self.lr_decay, 0.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.initial_accumulator_value = check_real("initial_accumulator_value", self.initial_accumulator_value, 0.0)
        self.eps = check_real("eps", self.eps, 0.0)
        self.maximize = check_bool("maximize", self.maximize)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps,
                "maximize": self.maximize}

    def _hyper(self) -> tuple:
        f = self.dtype.type
        clr = self.lr / (1.0 + (self.t - 1) * self.lr_decay)
        return (f(clr), f(self.weight_decay), f(self.eps), self.maximize)


class RMSprop(Optimizer):
    r"""RMSprop: Adagrad's sum of g² becomes an exponential moving average, so old gradients fade.

    Follows ``torch.optim.RMSprop``; the rule is :func:`microdl.optim.rules.rmsprop`::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        v ← α v + (1 − α) g²
        ṽ ← v − ḡ², with ḡ ← α ḡ + (1 − α) g     if centered,  else  ṽ ← v
        b ← μ b + g / (√ṽ + ε);   θ ← θ − γ b   if μ > 0
        θ ← θ − γ g / (√ṽ + ε)                  if μ = 0

    with α ``alpha``, μ ``momentum``, and the state ``"v"``, ``"g_avg"`` (ḡ, only when centered) and ``"b"``
    (only when μ > 0). There is no bias correction, so the first step is about −γ g/(√(1−α)|g|), ten times γ at
    α = 0.99.

    Convention: ε is added outside the square root, as in torch; Keras and optax put it inside (√(v + ε)),
    default α (their ``rho``/``decay``) to 0.9 and lr to 1e-3, and keep lr inside the momentum buffer.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place.
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1e-2
        Learning rate γ ≥ 0.
    alpha : float, default 0.99
        Smoothing constant α in [0, 1).
    eps : float, default 1e-8
        ε ≥ 0, added to the denominator.
    weight_decay : float, default 0
        Coupled L2 penalty λ ≥ 0.
    momentum : float, default 0
        Momentum factor μ ≥ 0.
    centered : bool, default False
        Normalise by an estimate of the variance of g instead of its second moment.
    maximize : bool, default False
        Ascend instead of descend.
    """

    rule = "rmsprop"

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend)
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay
        self.momentum, self.centered, self.maximize = momentum, centered, maximize
        self._validate()
        self._new_state([("v", 0.0, True), ("g_avg", 0.0, self.centered), ("b", 0.0, self.momentum > 0)])

    def _validate(self) -> None:
        self.lr = self.lr
        self.alpha = check_real("alpha", self.alpha, 0.0, 1.0, high_open=True)
        self.eps = check_real("eps", self.eps, 0.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.momentum = check_real("momentum", self.momentum, 0.0)
        self.centered = check_bool("centered", self.centered)
        self.maximize = check_bool("maximize", self.maximize)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered, "maximize": self.maximize}

    def _hyper(self) -> tuple:
        f = self.dtype.type
        return (f(self.lr), f(self.alpha), f(1.0 - self.alpha), f(self.eps), f(self.weight_decay),
                f(self.momentum), self.centered, self.maximize)


class Adadelta(Optimizer):
    r"""AdaDelta: RMSprop's EMA of g², plus an EMA of the squared updates that replaces the learning rate.

    Follows ``torch.optim.Adadelta``; the rule is :func:`microdl.optim.rules.adadelta`::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        v ← ρ v + (1 − ρ) g²
        Δ ← √(u + ε) / √(v + ε) · g
        u ← ρ u + (1 − ρ) Δ²
        θ ← θ − γ Δ

    with ρ ``rho`` and the state ``"v"`` and ``"u"``. γ only scales the applied step, never u; γ = 1 is Zeiler's
    paper. The first step is about −γ √(ε/(1−ρ)) sign(g), 3.2e-3 at the defaults.

    Convention: the recurrence is the same in Keras and optax, but Keras defaults to lr 1e-3, ρ 0.95, ε 1e-7
    (a thousand times smaller steps), and optax's ``learning_rate=None`` applies no sign flip.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place.
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1.0
        Scale γ ≥ 0 of the applied step.
    rho : float, default 0.9
        Decay ρ in [0, 1] of both moving averages.
    eps : float, default 1e-6
        ε ≥ 0 inside both square roots.
    weight_decay : float, default 0
        Coupled L2 penalty λ ≥ 0.
    maximize : bool, default False
        Ascend instead of descend.
    """

    rule = "adadelta"

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False) -> None:
        super().__init__(params, backend=backend)
        self.lr, self.rho, self.eps, self.weight_decay, self.maximize = lr, rho, eps, weight_decay, maximize
        self._validate()
        self._new_state([("v", 0.0, True), ("u", 0.0, True)])

    def _validate(self) -> None:
        self.lr = self.lr
        self.rho = check_real("rho", self.rho, 0.0, 1.0)
        self.eps = check_real("eps", self.eps, 0.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.maximize = check_bool("maximize", self.maximize)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps, "weight_decay": self.weight_decay,
                "maximize": self.maximize}

    def _hyper(self) -> tuple:
        f = self.dtype.type
        return (f(self.lr), f(self.rho), f(1.0 - self.rho), f(self.eps), f(self.weight_decay), self.maximize)


class Adam(Optimizer):
    r"""Adam: EMAs of g and g², both bias-corrected; optional AMSGrad.

    Follows ``torch.optim.Adam``; the rule is :func:`microdl.optim.rules.adam`::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0         (coupled; see AdamW for decoupled)
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        v_max ← max(v_max, v);  v ← v_max       if amsgrad       (in the denominator only)
        θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    which is θ ← θ − γ m̂ / (√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), written as torch computes it. β₁, β₂
    are ``betas``; the state is ``"m"``, ``"v"`` and ``"v_max"`` (only with amsgrad). The first step is about
    −γ sign(g).

    Convention: ε is added to the bias-corrected √v̂, as in torch and optax; Keras and scikit-learn add ε̂ to
    the uncorrected √v (ε_torch = ε̂/√(1 − β₂ᵗ)), and Keras defaults ε̂ to 1e-7.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place.
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1e-3
        Learning rate γ ≥ 0.
    betas : tuple of float, default (0.9, 0.999)
        Decays β₁, β₂ in [0, 1) of the two moving averages.
    eps : float, default 1e-8
        ε ≥ 0, added to the denominator.
    weight_decay : float, default 0
        L2 penalty λ ≥ 0, coupled (added to g).
    amsgrad : bool, default False
        Use the running maximum of v in the denominator.
    maximize : bool, default False
        Ascend instead of descend.
    """

    rule = "adam"
    decoupled = False

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, backend=backend)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.amsgrad, self.maximize = amsgrad, maximize
        self._validate()
        self._new_state([("m", 0.0, True), ("v", 0.0, True), ("v_max", 0.0, self.amsgrad)])

    def _validate(self) -> None:
        self.lr = self.lr
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2); got {self.betas!r}")
        self.betas = (check_real("betas[0]", self.betas[0], 0.0, 1.0, high_open=True),
                      check_real("betas[1]", self.betas[1], 0.0, 1.0, high_open=True))
        self.eps = check_real("eps", self.eps, 0.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.amsgrad = check_bool("amsgrad", self.amsgrad)
        self.maximize = check_bool("maximize", self.maximize)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad, "maximize": self.maximize}

    def _hyper(self) -> tuple:
        f = self.dtype.type
        beta1, beta2 = self.betas
        step_size = self.lr / (1.0 - beta1**self.t)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**self.t)
        return (f(beta1), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(self.eps), f(self.weight_decay),
                f(1.0 - self.lr * self.weight_decay), f(step_size), f(bias_correction2_sqrt),
                self.decoupled, self.amsgrad, self.maximize)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter).

    Follows ``torch.optim.AdamW``: the same rule as :class:`Adam`, except that the decay acts on θ directly
    instead of entering g, before the moments are updated::

        θ ← θ (1 − γ λ)                         (instead of g ← g + λ θ)

    and ``weight_decay`` defaults to 1e-2. Keras applies the same decoupled decay (with its own defaults);
    optax's ``adamw`` scales the decay by the learning rate the same way.

    Parameters
    ----------
    params : array
        Flat parameter buffer, updated in place.
    backend : {"cpu", "numpy", "cuda"}
        Where the update runs.
    lr : float, default 1e-3
        Learning rate γ ≥ 0.
    betas : tuple of float, default (0.9, 0.999)
        Decays β₁, β₂ in [0, 1) of the two moving averages.
    eps : float, default 1e-8
        ε ≥ 0, added to the denominator.
    weight_decay : float, default 1e-2
        Decoupled decay λ ≥ 0.
    amsgrad : bool, default False
        Use the running maximum of v in the denominator.
    maximize : bool, default False
        Ascend instead of descend.
    """

    decoupled = True

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, backend=backend, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


#: The optimizers by the names used in the CLI, the experiments and the scikit-learn estimators.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GD, "sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adadelta": Adadelta, "adam": Adam,
    "adamw": AdamW,
}


def make_optimizer(name: str, params: Any, *, backend: str = "cpu", **hyperparameters: Any) -> Optimizer:
    """Build an optimizer by name (``"gd"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adadelta"``,
    ``"adam"`` or ``"adamw"``), with the given hyperparameters (unknown names raise ``TypeError``)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, backend=backend, **hyperparameters)
