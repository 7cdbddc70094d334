"""The optimizers, in order of increasing complexity.

GD and SGD (momentum as a velocity buffer), Adagrad (a running sum of g²), RMSprop (make that sum an
exponential moving average), AdaDelta (an EMA of the updates too, so the learning rate only scales the step),
Adam (an EMA of g as well, with bias correction) and AdamW (Adam with decoupled weight decay).

Each class declares its hyperparameters with their checks (applied by the constructor and by every later
assignment), the state buffers they ask for, and the scalars of a step as one call of its rule's host
function. The math itself, those scalars and the rule side by side, is in :mod:`microdl.optim.rules`; each
class docstring shows the rule's update block from there. Names, defaults and formulas follow
``torch.optim``'s documented algorithms. In the update blocks, θ is ``params``, g the gradient, γ ``lr``,
λ ``weight_decay`` and t the step count ``t`` (starting at 1).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

from microdl.optim import rules
from microdl.optim.base import DOCS, Hyperparameter, Optimizer, boolean, choice, compose_doc, pair, real
from microdl.optim.lbfgs import LBFGS
from microdl.optim.registry import OPTIMIZERS, optimizer_entry, register_optimizer

__all__ = ["GD", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer"]


def _with_defaults(init: Callable, **defaults: Any) -> Callable:
    """A copy of the constructor ``init`` with some keyword-only defaults changed, for a variant class that
    differs from its parent only in a default (``inspect.signature`` shows the new defaults)."""
    unknown = set(defaults) - set(init.__kwdefaults__ or {})
    if unknown:
        raise TypeError(f"{init.__qualname__} has no keyword-only parameters {sorted(unknown)}")
    copy = types.FunctionType(init.__code__, init.__globals__, init.__name__, init.__defaults__, init.__closure__)
    copy.__kwdefaults__ = {**init.__kwdefaults__, **defaults}
    copy.__annotations__, copy.__doc__, copy.__module__ = init.__annotations__, init.__doc__, init.__module__
    return copy


@compose_doc()
class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening and Nesterov momentum.

    Follows ``torch.optim.SGD``; the rule is :func:`microdl.optim.rules.sgd`::

    {update}

    with μ ``momentum``, τ ``dampening`` and b the state ``"b"`` (allocated only when μ ≠ 0).

    Convention: like torch and optax the buffer b excludes the learning rate; Keras and scikit-learn keep a
    velocity v ← μ v − γ g that includes it, which differs from this as soon as γ changes over time.

    Parameters
    ----------
    {params}
    {lr}
    momentum : float, default 0
        Momentum factor μ ≥ 0.
    dampening : float, default 0
        Dampening τ in [0, 1] applied to new gradients in the buffer.
    {weight_decay}
    nesterov : bool, default False
        Nesterov momentum; needs μ > 0 and τ = 0.
    {maximize}

    Notes
    -----
    {assignment}

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

    update = rules.sgd
    scalars = rules.sgd_scalars
    scalars_take_arrays = True  # NOTE [scalars of many steps] in microdl.optim.rules
    state_names = ("b",)
    momentum = Hyperparameter(real(0.0))
    dampening = Hyperparameter(real(0.0, 1.0))
    weight_decay = Hyperparameter(real(0.0))
    nesterov = Hyperparameter(boolean())
    maximize = Hyperparameter(boolean())

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize))

    def _check_together(self, values: Mapping[str, Any]) -> None:
        if values["nesterov"] and (values["momentum"] <= 0 or values["dampening"] != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")

    def _state_layout(self, values: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
        return [("b", 0.0, values["momentum"] != 0)]


class GD(SGD):
    """Full-batch gradient descent: SGD's rule, given the gradient over the whole training set.

    The update is exactly :class:`SGD`'s (``torch.optim.SGD``), hyperparameters and defaults included; the only
    difference is the batch. The training loop sees ``full_batch = True`` and computes each gradient on every
    training sample, so one epoch is one step. ``momentum=0`` gives the textbook θ ← θ − γ ∇L(θ).
    """

    full_batch = True


@compose_doc()
class Adagrad(Optimizer):
    r"""Adagrad: per-parameter steps scaled by the root of the running sum of squared gradients.

    Follows ``torch.optim.Adagrad``; the rule is :func:`microdl.optim.rules.adagrad`::

    {update}

    with η ``lr_decay`` and S the state ``"state_sum"``.

    Convention: ε is added outside the square root, as in torch; Keras and optax add it inside (√(S + ε)) and
    start S at 0.1 with lr 1e-3.

    Parameters
    ----------
    {params}
    {lr}
    lr_decay : float, default 0
        Decay η ≥ 0 of the learning rate per step.
    {weight_decay}
    initial_accumulator_value : float, default 0
        Initial value ≥ 0 of S (used when the state is allocated, at construction).
    eps : float, default 1e-10
        ε ≥ 0, added to the denominator.
    {maximize}

    Notes
    -----
    {assignment}
    """

    update = rules.adagrad
    scalars = rules.adagrad_scalars
    scalars_take_arrays = True  # NOTE [scalars of many steps] in microdl.optim.rules
    state_names = ("state_sum",)
    lr_decay = Hyperparameter(real(0.0))
    weight_decay = Hyperparameter(real(0.0))
    initial_accumulator_value = Hyperparameter(real(0.0))
    eps = Hyperparameter(real(0.0, low_open=True))  # eps = 0 divides 0 by 0 where a gradient is 0
    maximize = Hyperparameter(boolean())

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))

    def _state_layout(self, values: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
        return [("state_sum", values["initial_accumulator_value"], True)]


@compose_doc()
class RMSprop(Optimizer):
    r"""RMSprop: Adagrad's sum of g² becomes an exponential moving average, so old gradients fade.

    Follows ``torch.optim.RMSprop``; the rule is :func:`microdl.optim.rules.rmsprop`::

    {update}

    with α ``alpha``, μ ``momentum``, and the state ``"v"``, ``"g_avg"`` (ḡ, only when centered) and ``"b"``
    (only when μ > 0). There is no bias correction, so the first step is about −γ g/(√(1−α)|g|), ten times γ at
    α = 0.99.

    Convention: ε is added outside the square root, as in torch; Keras and optax put it inside (√(v + ε)),
    default α (their ``rho``/``decay``) to 0.9 and lr to 1e-3, and keep lr inside the momentum buffer.

    Parameters
    ----------
    {params}
    {lr}
    alpha : float, default 0.99
        Smoothing constant α in [0, 1).
    eps : float, default 1e-8
        ε ≥ 0, added to the denominator.
    {weight_decay}
    momentum : float, default 0
        Momentum factor μ ≥ 0.
    centered : bool, default False
        Normalise by an estimate of the variance of g instead of its second moment.
    {maximize}

    Notes
    -----
    {assignment}
    """

    update = rules.rmsprop
    scalars = rules.rmsprop_scalars
    scalars_take_arrays = True  # NOTE [scalars of many steps] in microdl.optim.rules
    state_names = ("v", "g_avg", "b")
    alpha = Hyperparameter(real(0.0, 1.0, high_open=True))
    eps = Hyperparameter(real(0.0, low_open=True))  # eps = 0 divides 0 by 0 where a gradient is 0
    weight_decay = Hyperparameter(real(0.0))
    momentum = Hyperparameter(real(0.0))
    centered = Hyperparameter(boolean())
    maximize = Hyperparameter(boolean())

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            maximize=maximize))

    def _state_layout(self, values: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
        return [("v", 0.0, True), ("g_avg", 0.0, values["centered"]), ("b", 0.0, values["momentum"] > 0)]


@compose_doc()
class Adadelta(Optimizer):
    r"""AdaDelta: RMSprop's EMA of g², plus an EMA of the squared updates that replaces the learning rate.

    Follows ``torch.optim.Adadelta``; the rule is :func:`microdl.optim.rules.adadelta`::

    {update}

    with ρ ``rho`` and the state ``"v"`` and ``"u"``. γ only scales the applied step, never u; γ = 1 is Zeiler's
    paper. The first step is about −γ √(ε/(1−ρ)) sign(g), 3.2e-3 at the defaults.

    Convention: the recurrence is the same in Keras and optax, but Keras defaults to lr 1e-3, ρ 0.95, ε 1e-7
    (a thousand times smaller steps), and optax's ``learning_rate=None`` applies no sign flip.

    Parameters
    ----------
    {params}
    lr : float, default 1.0
        Scale γ ≥ 0 of the applied step.
    rho : float, default 0.9
        Decay ρ in [0, 1] of both moving averages.
    eps : float, default 1e-6
        ε ≥ 0 inside both square roots.
    {weight_decay}
    {maximize}

    Notes
    -----
    {assignment}
    """

    update = rules.adadelta
    scalars = rules.adadelta_scalars
    scalars_take_arrays = True  # NOTE [scalars of many steps] in microdl.optim.rules
    state_names = ("v", "u")
    rho = Hyperparameter(real(0.0, 1.0))
    eps = Hyperparameter(real(0.0, low_open=True))  # eps = 0 divides 0 by 0 where a gradient is 0
    weight_decay = Hyperparameter(real(0.0))
    maximize = Hyperparameter(boolean())

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False) -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))



#: Adam's and AdamW's parameters; ``{weight_decay}`` is the one block in which they differ.
_ADAM_PARAMETERS = """\
{params}
lr : float, default 1e-3
    Learning rate γ ≥ 0.
betas : tuple of float, default (0.9, 0.999)
    Decays β₁, β₂ in [0, 1) of the two moving averages.
eps : float, default 1e-8
    ε ≥ 0, added to the denominator: to √v̂ or to √v, as ``eps_on`` says.
{weight_decay}
amsgrad : bool, default False
    Use the running maximum of v in the denominator.
{maximize}
eps_on : {{"v_hat", "v"}}, default "v_hat"
    Where ε goes (NOTE [eps placement] in :mod:`microdl.optim.rules`): ``"v_hat"`` adds it to the
    bias-corrected √v̂, as torch and optax do; ``"v"`` adds it to the raw √v, as scikit-learn and Keras do,
    by putting ε/√(1 − β₂ᵗ) in its place in the same rule."""

_DECOUPLED_WEIGHT_DECAY = """\
weight_decay : float, default 1e-2
    Decoupled decay λ ≥ 0, applied to θ before the moments: θ ← θ (1 − γ λ)."""


@compose_doc(adam_parameters=_ADAM_PARAMETERS.format(**DOCS))
class Adam(Optimizer):
    r"""Adam: EMAs of g and g², both bias-corrected; optional AMSGrad.

    Follows ``torch.optim.Adam``; the rule is :func:`microdl.optim.rules.adam`, with coupled weight decay::

    {update}

    β₁, β₂ are ``betas``; the state is ``"m"``, ``"v"`` and ``"v_max"`` (only with amsgrad). The first step is
    about −γ sign(g).

    Convention: by default ε is added to the bias-corrected √v̂, as in torch and optax; Keras and
    scikit-learn add ε̂ to the uncorrected √v (ε_torch = ε̂/√(1 − β₂ᵗ)), and Keras defaults ε̂ to 1e-7.
    ``eps_on="v"`` follows them.

    Parameters
    ----------
    {adam_parameters}

    Notes
    -----
    {assignment}
    """

    update = rules.adam
    scalars = rules.adam_scalars
    scalars_take_arrays = True  # NOTE [scalars of many steps] in microdl.optim.rules
    state_names = ("m", "v", "v_max")
    fastmath = frozenset({"arcp"})  # NOTE [arcp for Adam] in microdl.optim._cpu
    #: AdamW's decay acts on θ; Adam's enters g.
    decoupled = False
    betas = Hyperparameter(pair(real(0.0, 1.0, high_open=True), ("beta1", "beta2")))
    eps = Hyperparameter(real(0.0, low_open=True))  # eps = 0 divides 0 by 0 where a gradient is 0
    weight_decay = Hyperparameter(real(0.0))
    amsgrad = Hyperparameter(boolean())
    maximize = Hyperparameter(boolean())
    eps_on = Hyperparameter(choice(*rules.EPS_ON), missing="v_hat")  # checkpoints from before it existed

    def __init__(self, params: Any, *, backend: str = "cpu", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, maximize: bool = False, eps_on: str = "v_hat") -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
            eps_on=eps_on))

    def _state_layout(self, values: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
        return [("m", 0.0, True), ("v", 0.0, True), ("v_max", 0.0, values["amsgrad"])]

    def _scalars(self) -> rules.AdamScalars:
        return rules.adam_scalars(self._dtype, self.t, *self._hyperparameter_values.values(), self.decoupled)



@compose_doc(adam_parameters=_ADAM_PARAMETERS.format(**{**DOCS, "weight_decay": _DECOUPLED_WEIGHT_DECAY}))
class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter).

    Follows ``torch.optim.AdamW``: the rule of :class:`Adam` (:func:`microdl.optim.rules.adam` with
    ``decoupled`` set), except that the decay acts on θ directly instead of entering g, before the moments are
    updated::

        θ ← θ (1 − γ λ)                         (instead of g ← g + λ θ)

    and ``weight_decay`` defaults to 1e-2; everything else, defaults included, is Adam's. Keras applies the same
    decoupled decay (with its own defaults); optax's ``adamw`` scales the decay by the learning rate the same
    way.

    Parameters
    ----------
    {adam_parameters}

    Notes
    -----
    {assignment}
    """

    decoupled = True
    __init__ = _with_defaults(Adam.__init__, weight_decay=1e-2)


# The built-ins, registered as a learner's own optimizer is (microdl.optim.register_optimizer): the article's
# six in order of increasing complexity, then AdamW and full-batch L-BFGS (microdl.optim.LBFGS), which has no
# learning rate (its line search picks every step) and runs on the CPU only. ``color`` is each one's slot in
# matplotlib's tab10 palette (grey, tab:gray, is the target line's); ``default_lr`` is the scikit-learn
# estimators' rate: scikit-learn's 0.001 for sgd and adam (and adamw and rmsprop, as in Keras), torch's
# defaults for adagrad and adadelta (whose rate only scales the step; 1.0 is the paper's), and 0.01 for
# full-batch gd, which takes one step per epoch.
_MOMENTUM, _ADAM = ("momentum", "nesterovs_momentum"), ("beta_1", "beta_2", "epsilon")
register_optimizer("gd", GD, order=1, color="tab:blue", default_lr=0.01, article=True, estimator_params=_MOMENTUM)
register_optimizer("sgd", SGD, order=2, color="tab:orange", default_lr=0.001, article=True,
                   estimator_params=_MOMENTUM)
register_optimizer("adagrad", Adagrad, order=3, color="tab:green", default_lr=0.01, article=True,
                   estimator_params=("epsilon",))
register_optimizer("rmsprop", RMSprop, order=4, color="tab:red", default_lr=0.001, article=True,
                   estimator_params=("epsilon",))
# (adadelta keeps torch's ε = 1e-6 under its roots: its step scales with √ε)
register_optimizer("adadelta", Adadelta, order=5, color="tab:purple", default_lr=1.0, article=True)
register_optimizer("adam", Adam, order=6, color="tab:brown", default_lr=0.001, article=True, estimator_params=_ADAM)
register_optimizer("adamw", AdamW, order=7, color="tab:pink", default_lr=0.001, estimator_params=_ADAM)
register_optimizer("lbfgs", LBFGS, order=10, color="tab:cyan")


def make_optimizer(name: str, params: Any, *, backend: str = "cpu", **hyperparameters: Any) -> Optimizer | LBFGS:
    """Build a registered optimizer (:data:`OPTIMIZERS`) by name, with the given hyperparameters.

    Parameters
    ----------
    name : str
        A registered name (:func:`~microdl.optim.available_optimizers`): ``"gd"``, ``"sgd"``, ``"adagrad"``,
        ``"rmsprop"``, ``"adadelta"``, ``"adam"``, ``"adamw"``, ``"lbfgs"``, or one registered since.
    params : ndarray
        The flat parameter buffer the optimizer updates in place.
    backend : str
        ``"numpy"``, ``"cpu"`` or ``"cuda"`` (``"lbfgs"``: ``"cpu"`` only).
    **hyperparameters
        The class's keyword arguments (``lr=...``, ``momentum=...``; for ``"lbfgs"``: ``max_fun``, ``tol``,
        ``history_size``). A name the class does not take raises ``TypeError`` naming it, before anything is
        built: a misspelt hyperparameter is never swallowed.

    Examples
    --------
    >>> import numpy as np
    >>> make_optimizer("adam", np.zeros(4), lr=0.01).lr
    0.01
    >>> make_optimizer("lbfgs", np.zeros(4), lr=0.01)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: lbfgs takes no hyperparameter 'lr' (L-BFGS has no learning rate...); it takes max_fun, tol, history_size
    """
    cls = optimizer_entry(name).cls
    known = [p for p in inspect.signature(cls).parameters if p not in ("params", "backend")]
    unknown = [k for k in hyperparameters if k not in known]
    if unknown:
        why = (" (L-BFGS has no learning rate: its line search picks each step)"
               if cls is LBFGS and "lr" in unknown else "")
        raise TypeError(f"{name} takes no hyperparameter{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}{why}; it takes {', '.join(known)}")
    return cls(params, backend=backend, **hyperparameters)
