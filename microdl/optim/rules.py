"""The update rules, written once: each optimizer's whole math on one screen.

Every optimizer in :mod:`microdl.optim` is one elementwise rule, and each has three parts here, side by side:

* a ``NamedTuple`` of the *scalars* of one step, its fields named by the math symbols (``beta1``, ``eps``)
  or by what they hold (``step_size`` is γ/(1 − β₁ᵗ));
* the small host function that computes them from the hyperparameters and the step count ``t``, in float64,
  rounded once to the parameters' dtype (NOTE [typed scalars]);
* the rule itself: a function of one parameter ``theta``, its gradient ``g``, its state and the scalars
  ``s``, returning the new parameter and the new state. Its docstring shows the update block, line for line
  as the code computes it; the optimizer classes of :mod:`microdl.optim.optimizers` show the same block
  (they compose it from here) and map each symbol to its argument.

An optimizer's step is ``s = <rule>_scalars(dtype, t, *hyperparameters)`` on the host and then the rule over
every element. The same rule is applied three ways:

* the NumPy backend calls it once with whole arrays (NumPy broadcasts the arithmetic);
* the CPU backend compiles it with ``numba.njit(inline="always")`` and calls it per element inside one
  ``prange`` loop (:mod:`microdl.optim._cpu`);
* the CUDA backend compiles it with ``cuda.jit(device=True)`` and calls it per element inside one grid-stride
  kernel (:mod:`microdl.optim._cuda`).

Nothing here is special to the built-ins: an optimizer in a learner's own file has the same three parts, and
:func:`microdl.optim.register_optimizer` checks them (:mod:`microdl.optim.contract`) and makes every backend
compile its rule the same way.

So the rules may use only what all three understand: ``+ - * /``, comparisons, ``if`` on a *scalar* flag,
attribute access on ``s``, ``abs`` and the NumPy ufuncs ``np.sqrt`` and ``np.maximum``. The rules follow
``torch.optim``'s documented algorithms, line for line.

NOTE [typed scalars]
    Numba types a Python literal such as ``1`` or ``0.5`` as 64-bit, and ``1 - beta1`` with a float32
    ``beta1`` becomes float64, which halves the SIMD width of a float32 kernel. The rules therefore contain no
    numeric literals in their arithmetic (only the 0 of a test such as ``s.momentum != 0``): every constant,
    including complements such as ``1 - beta1``, is computed by the host function in float64 and rounded once
    to the parameters' dtype (``f = dtype.type``). Flags stay Python ``bool``. The tests check the rules for
    literals (``tests/optim/test_rules.py``) and the compiled float32 kernels for any conversion to float64
    (``tests/optim/test_cpu.py``).

NOTE [optional state]
    Optional state (the momentum buffer of SGD without momentum, AMSGrad's ``v_max`` when ``amsgrad`` is off,
    RMSprop's ``g_avg`` when not centred and ``b`` without momentum) is not allocated: its buffer is ``None``.
    The rule never reads or changes it while its flag is off and returns it as it came, so the NumPy backend
    passes ``None`` straight through and the compiled backends pass a stand-in value
    (:mod:`microdl.optim._elementwise`).

NOTE [subnormal state]
    A state that decays geometrically while its gradient is exactly zero (a dead ReLU unit, an input column
    that is zero in every row of the batch, a sparse input), Adam's m ← β₁ m and v ← β₂ v, SGD's and
    RMSprop's momentum buffers, the EMAs of RMSprop and AdaDelta, sinks below the dtype's smallest normal
    number, ``tiny`` (1.2e-38 in float32): Adam's m from 1e-4 after about 800 steps. There it does not reach
    0: 0.9 × 4·2⁻¹⁴⁹ rounds back to 4·2⁻¹⁴⁹, so it would stay subnormal for good, and arithmetic on subnormal
    numbers takes a slow path on x86 CPUs (microcode assists): issue 20 measured Adam's step 8-15 times
    slower on such entries; on this project's AMD EPYC the float32 CPU kernel took 1.24-1.25 times as long at
    N = 1e5 with half the entries subnormal (``python -m benchmarks.subnormal --n 100000``).

    So ``Optimizer.step`` (``microdl/optim/base.py``) flushes the state to zero every
    ``FLUSH_EVERY`` (64) steps, after the update of step t = 64, 128, ...: every entry of every state buffer
    with abs(x) < tiny becomes 0 (each backend's ``flush_subnormal``, one pass over each buffer). A state that
    falls below ``tiny`` is subnormal for at most 64 steps, then 0 for as long as its gradient stays 0. The
    rules themselves stay the plain algorithm, and every backend flushes the same entries at the same steps,
    so the backends still agree to the bit. NaN stays NaN and infinity stays infinite. What it changes is
    below any rounding that matters: an update of γ m/(√v̂ + ε) with m < tiny moves θ by less than 1e-30 γ;
    Adagrad's sum and AMSGrad's maximum, which never decay, reach it only from gradients below 1e-19, where
    √S < 1.1e-19 is far below ε. A learner's own optimizer gets the same flush without writing it. Setting the
    CPU's flush-to-zero mode instead would reach every thread and every later computation of the process, not
    only the optimizer's.

    Two earlier forms flushed inside the rules, at every step: a statement of its own after each update, then
    a factor in the update itself, ``m ← β₁ m·[|m| ≥ tiny] + ...``. Either cost a compare and a select per
    state and element in the compiled loop: the second 1.27-1.30 times the plain float32 Adam step on one
    thread at N = 1e5 and 1e6 (measured against ``9530d49``, which had no flush, interleaved, shared machine),
    and about 20 % of the NumPy reference's step. The pass every 64 steps costs under 1 % of a step (numbers
    in ``docs/performance.md``).

NOTE [positional scalars]
    A step's Python overhead is a few microseconds, a fair part of a whole step at N = 1e5, so the host
    functions are called with their arguments in order (``Optimizer._scalars`` passes the hyperparameters in
    the order the class declares them, the order of the host function's parameters) and fill the NamedTuple's
    fields in their order, right below their definition: keywords cost about 0.4 us per step. The tests check
    both orders by name (``tests/optim/test_rules.py``): every field against a hand-worked value, and every
    host function's parameters against its optimizer's hyperparameters.

NOTE [scalars of many steps]
    Small batches train in compiled runs of steps (NOTE [compiled runs of steps] in :mod:`microdl._runs`), which
    read the scalars of each step from one array filled beforehand (``Optimizer._scalar_rows``). A host function
    whose class says that it takes an array of step counts (``scalars_take_arrays``, true for every built-in) is
    called once per run with ``t`` an array, and returns each scalar that depends on ``t`` as an array, element
    for element the bits it returns for that ``t`` alone: ``+ - * /`` and ``np.sqrt`` round correctly either way,
    and :func:`power` raises to the power ``t`` with Python's own ``**``. The tests check every built-in for equal
    bits over thousands of steps (``tests/optim/test_rules.py``), and registration checks a learner's class that
    says so at a few. Any other host function is called once per step, as :meth:`Optimizer.step` calls it: 1.5 to
    4 µs a step (measured, Adam and SGD), as much as the whole compiled step of a batch of one row.

NOTE [plain tuple at the kernel boundary]
    The compiled kernels receive the scalars as a plain tuple, ``tuple(s)``, and each element's update rebuilds
    the NamedTuple from it (``s = AdamScalars(*h)`` in :mod:`microdl.optim._elementwise`). Numba's dispatcher
    types a plain tuple argument in C, but a tuple subclass such as a NamedTuple falls back to Python, which
    cost 1.1 us per call (measured, Adam, float32, 2 threads: 3.1 -> 4.2 us per call at N = 10, 20.0 -> 21.1
    us at N = 1e5). Rebuilt per element, inside the inlined update, it costs nothing: the vector loop compiles
    to the same instructions as with the tuple unpacked into names, and runs as fast on the same buffers.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import numpy as np

__all__ = ["SGDScalars", "sgd_scalars", "sgd", "AdagradScalars", "adagrad_scalars", "adagrad", "RMSpropScalars",
           "rmsprop_scalars", "rmsprop", "AdadeltaScalars", "adadelta_scalars", "adadelta", "AdamScalars",
           "adam_scalars", "adam", "EPS_ON", "smallest_normal", "power"]


@cache
def smallest_normal(dtype: np.dtype) -> np.floating:
    """``dtype``'s smallest normal number, below which ``Optimizer.step`` flushes the state to zero every 64 steps
    (NOTE [subnormal state]); cached, since ``np.finfo`` costs about a microsecond."""
    return dtype.type(np.finfo(dtype).tiny)


def power(base: float, t: Any) -> Any:
    """``base ** t`` for a step count ``t``, or for each of an array of them (NOTE [scalars of many steps]): by
    Python's own power, element by element, since NumPy's vectorised power may round differently (it does on a
    CPU with AVX-512, where NumPy uses SVML's ``pow``), and a run of steps must see the very bits one step sees."""
    if isinstance(t, np.ndarray):
        return np.fromiter((base**k for k in t.tolist()), dtype=np.float64, count=t.size)
    return base**t


# -- SGD (and GD) -------------------------------------------------------------------------------------------
class SGDScalars(NamedTuple):
    """The scalars of one SGD step."""

    lr: float  # γ
    momentum: float  # μ
    one_minus_dampening: float  # 1 − τ
    weight_decay: float  # λ
    nesterov: bool
    maximize: bool
    first_step: bool  # t = 1: the momentum buffer starts as g


def sgd_scalars(dtype: np.dtype, t: int, lr: float, momentum: float, dampening: float, weight_decay: float,
                nesterov: bool, maximize: bool) -> SGDScalars:
    """SGD's scalars for step ``t`` (from 1), in ``dtype``."""
    f = dtype.type
    return SGDScalars(f(lr), f(momentum), f(1.0 - dampening), f(weight_decay), nesterov, maximize, t == 1)


def sgd(theta, g, b, s: SGDScalars):
    """SGD with momentum, dampening and Nesterov; GD is the same rule on a full-batch gradient::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0         (coupled L2 penalty)
        b ← g                                   if μ ≠ 0 and t = 1
        b ← μ b + (1 − τ) g                     if μ ≠ 0 and t > 1
        g ← g + μ b   (nesterov)  or  g ← b     if μ ≠ 0
        θ ← θ − γ g
    """
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        g = g + s.weight_decay * theta
    if s.momentum != 0:
        if s.first_step:
            b = g
        else:
            b = s.momentum * b + s.one_minus_dampening * g
        if s.nesterov:
            g = g + s.momentum * b
        else:
            g = b
    theta = theta - s.lr * g
    return theta, b


# -- Adagrad ------------------------------------------------------------------------------------------------
class AdagradScalars(NamedTuple):
    """The scalars of one Adagrad step."""

    decayed_lr: float  # γ̃ = γ / (1 + (t − 1) η)
    weight_decay: float  # λ
    eps: float  # ε
    maximize: bool


def adagrad_scalars(dtype: np.dtype, t: int, lr: float, lr_decay: float, weight_decay: float,
                    initial_accumulator_value: float, eps: float, maximize: bool) -> AdagradScalars:
    """Adagrad's scalars for step ``t`` (from 1), in ``dtype``; ``initial_accumulator_value`` only fills S."""
    f = dtype.type
    decayed_lr = lr / (1.0 + (t - 1) * lr_decay)
    return AdagradScalars(f(decayed_lr), f(weight_decay), f(eps), maximize)


def adagrad(theta, g, state_sum, s: AdagradScalars):
    """Adagrad: divide by the root of the running *sum* of squared gradients::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        S ← S + g²                              (S starts at initial_accumulator_value)
        θ ← θ − γ̃ g / (√S + ε)                  γ̃ = γ / (1 + (t − 1) η), on the host

    S is the state ``state_sum`` (torch's name).
    """
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        g = g + s.weight_decay * theta
    state_sum = state_sum + g * g
    theta = theta - s.decayed_lr * g / (np.sqrt(state_sum) + s.eps)
    return theta, state_sum


# -- RMSprop ------------------------------------------------------------------------------------------------
class RMSpropScalars(NamedTuple):
    """The scalars of one RMSprop step."""

    lr: float  # γ
    alpha: float  # α
    one_minus_alpha: float  # 1 − α
    eps: float  # ε
    weight_decay: float  # λ
    momentum: float  # μ
    centered: bool
    maximize: bool


def rmsprop_scalars(dtype: np.dtype, t: int, lr: float, alpha: float, eps: float, weight_decay: float,
                    momentum: float, centered: bool, maximize: bool) -> RMSpropScalars:
    """RMSprop's scalars, in ``dtype`` (the same at every step ``t``)."""
    f = dtype.type
    return RMSpropScalars(f(lr), f(alpha), f(1.0 - alpha), f(eps), f(weight_decay), f(momentum), centered, maximize)


def rmsprop(theta, g, v, g_avg, b, s: RMSpropScalars):
    """RMSprop: Adagrad's sum becomes an exponential moving average; optional centring and momentum::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        v ← α v + (1 − α) g²
        ḡ ← α ḡ + (1 − α) g;  ṽ ← v − ḡ²        if centered,  else  ṽ ← v
        b ← μ b + g / (√ṽ + ε);  θ ← θ − γ b    if μ > 0
        θ ← θ − γ g / (√ṽ + ε)                  if μ = 0
    """
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        g = g + s.weight_decay * theta
    v = s.alpha * v + s.one_minus_alpha * g * g
    if s.centered:
        g_avg = s.alpha * g_avg + s.one_minus_alpha * g
        denom = np.sqrt(v - g_avg * g_avg) + s.eps
    else:
        denom = np.sqrt(v) + s.eps
    if s.momentum > 0:
        b = s.momentum * b + g / denom
        theta = theta - s.lr * b
    else:
        theta = theta - s.lr * g / denom
    return theta, v, g_avg, b


# -- AdaDelta -----------------------------------------------------------------------------------------------
class AdadeltaScalars(NamedTuple):
    """The scalars of one AdaDelta step."""

    lr: float  # γ
    rho: float  # ρ
    one_minus_rho: float  # 1 − ρ
    eps: float  # ε
    weight_decay: float  # λ
    maximize: bool


def adadelta_scalars(dtype: np.dtype, t: int, lr: float, rho: float, eps: float, weight_decay: float,
                     maximize: bool) -> AdadeltaScalars:
    """AdaDelta's scalars, in ``dtype`` (the same at every step ``t``)."""
    f = dtype.type
    return AdadeltaScalars(f(lr), f(rho), f(1.0 - rho), f(eps), f(weight_decay), maximize)


def adadelta(theta, g, v, u, s: AdadeltaScalars):
    """AdaDelta: an EMA of squared *updates* ``u`` replaces the learning rate; ``lr`` only scales the step::

        g ← −g                                  if maximize
        g ← g + λ θ                             if λ ≠ 0
        v ← ρ v + (1 − ρ) g²
        Δ ← √(u + ε) / √(v + ε) · g
        u ← ρ u + (1 − ρ) Δ²
        θ ← θ − γ Δ
    """
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        g = g + s.weight_decay * theta
    v = s.rho * v + s.one_minus_rho * g * g
    delta = np.sqrt(u + s.eps) / np.sqrt(v + s.eps) * g
    u = s.rho * u + s.one_minus_rho * delta * delta
    theta = theta - s.lr * delta
    return theta, v, u


# -- Adam (and AdamW) ---------------------------------------------------------------------------------------
#: Where Adam adds ε (NOTE [eps placement]): to the bias-corrected √v̂ (torch, optax) or to the raw √v
#: (scikit-learn, Keras).
EPS_ON = ("v_hat", "v")


class AdamScalars(NamedTuple):
    """The scalars of one Adam or AdamW step."""

    beta1: float  # β₁
    one_minus_beta1: float  # 1 − β₁
    beta2: float  # β₂
    one_minus_beta2: float  # 1 − β₂
    eps: float  # ε, or ε / √(1 − β₂ᵗ) when ε goes on √v (NOTE [eps placement])
    weight_decay: float  # λ
    decay_factor: float  # 1 − γ λ (AdamW's decoupled decay)
    step_size: float  # γ / (1 − β₁ᵗ)
    bias_correction2_sqrt: float  # √(1 − β₂ᵗ)
    decoupled: bool  # AdamW
    amsgrad: bool
    maximize: bool


def adam_scalars(dtype: np.dtype, t: int, lr: float, betas: tuple[float, float], eps: float,
                 weight_decay: float, amsgrad: bool, maximize: bool, eps_on: str, decoupled: bool) -> AdamScalars:
    """Adam's scalars for step ``t`` (from 1), in ``dtype``.

    NOTE [eps placement]
        torch and optax add ε to the bias-corrected √v̂ = √v / √(1 − β₂ᵗ); scikit-learn and Keras add it to
        the raw √v, with the bias corrections folded into the rate. Multiplying their denominator through by
        1/√(1 − β₂ᵗ) gives torch's form with ε / √(1 − β₂ᵗ) in place of ε::

            γ √(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)  =  γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε / √(1 − β₂ᵗ))

        so ``eps_on="v"`` is one more per-step scalar, not a second formula.
    """
    f = dtype.type
    beta1, beta2 = betas
    step_size = lr / (1.0 - power(beta1, t))
    bias_correction2_sqrt = np.sqrt(1.0 - power(beta2, t))
    if eps_on == "v":
        eps = eps / bias_correction2_sqrt
    return AdamScalars(f(beta1), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(eps), f(weight_decay),
                       f(1.0 - lr * weight_decay), f(step_size), f(bias_correction2_sqrt), decoupled, amsgrad, maximize)


def adam(theta, g, m, v, v_max, s: AdamScalars):
    """Adam and AdamW: EMAs of g and g², bias-corrected; optional AMSGrad and decoupled weight decay::

        g ← −g                                  if maximize
        θ ← θ (1 − γ λ)                         if λ ≠ 0, decoupled (AdamW)
        g ← g + λ θ                             if λ ≠ 0, coupled (Adam)
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        v_max ← max(v_max, v);  v ← v_max       if amsgrad       (in the denominator only)
        θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    which is θ ← θ − γ m̂ / (√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), written as torch computes it.
    """
    if s.maximize:
        g = -g
    if s.weight_decay != 0:
        if s.decoupled:
            theta = theta * s.decay_factor
        else:
            g = g + s.weight_decay * theta
    m = s.beta1 * m + s.one_minus_beta1 * g
    v = s.beta2 * v + s.one_minus_beta2 * g * g
    if s.amsgrad:
        v_max = np.maximum(v_max, v)
        denom = np.sqrt(v_max) / s.bias_correction2_sqrt + s.eps
    else:
        denom = np.sqrt(v) / s.bias_correction2_sqrt + s.eps
    theta = theta - s.step_size * m / denom
    return theta, m, v, v_max
