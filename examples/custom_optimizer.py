"""
Your own optimizer: Lion
========================

Your own optimizer, in your own file: Lion, written as microdl's built-ins are, with no edit to microdl.

Run with ``python examples/custom_optimizer.py`` (about a minute, most of it compiling; ``MICRODL_QUICK=1``
makes the training tiny). From the shell, ``--plugin`` imports this file, which registers ``lion``::

    microdl train --plugin examples/custom_optimizer.py --optimizer lion --lr 3e-4
    microdl compare --plugin examples/custom_optimizer.py --optimizers lion,adam --seeds 2

An optimizer is the three parts every built-in has (:mod:`microdl.optim.rules`) and a class:

1. the scalars of one step, a NamedTuple whose fields are the math symbols;
2. their host function: computes them from the hyperparameters and the step count t, in float64, rounded once
   to the parameters' dtype (so that a float32 kernel stays float32: no numeric literal in the rule);
3. the elementwise rule: one parameter, its gradient, its state and the scalars in; the new parameter and state
   out, as a tuple. The same function runs on whole NumPy arrays (``backend="numpy"``), compiled per element in
   a Numba ``prange`` loop (``"cpu"``) and in a CUDA grid-stride kernel (``"cuda"``);
4. the class: the rule, its host function, the state's names, and the hyperparameters with their checks.

``register_optimizer`` checks the contract (arity, state names, literals, what the rule returns) and makes the
name usable everywhere: ``make_optimizer``, ``fit``, ``microdl.compare``, ``MLPClassifier(solver=...)``, the CLI.

Lion: Chen et al., "Symbolic Discovery of Optimization Algorithms" (2023), Algorithm 2; optax's ``lion``.
"""

import os
from typing import NamedTuple

import numpy as np

from microdl.optim import Hyperparameter, Optimizer, register_optimizer
from microdl.optim.base import pair, real


# 1. the scalars of one step ------------------------------------------------------------------------------------
class LionScalars(NamedTuple):
    """The scalars of one Lion step."""

    lr: float  # γ
    beta1: float  # β₁
    one_minus_beta1: float  # 1 − β₁
    beta2: float  # β₂
    one_minus_beta2: float  # 1 − β₂
    decay_factor: float  # 1 − γ λ


# 2. their host function (its parameters: dtype, t, then the hyperparameters in the class's order) -------------
def lion_scalars(dtype: np.dtype, t: int, lr: float, betas: tuple[float, float], weight_decay: float) -> LionScalars:
    """Lion's scalars, in ``dtype`` (the same at every step ``t``)."""
    f = dtype.type
    beta1, beta2 = betas
    return LionScalars(f(lr), f(beta1), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(1.0 - lr * weight_decay))


# 3. the rule -----------------------------------------------------------------------------------------------------
def lion(theta, g, m, s: LionScalars):
    """Lion: the sign of an interpolation of the momentum and the gradient; every step has size γ::

        c ← β₁ m + (1 − β₁) g
        θ ← θ (1 − γ λ) − γ sign(c)
        m ← β₂ m + (1 − β₂) g
    """
    c = s.beta1 * m + s.one_minus_beta1 * g
    theta = theta * s.decay_factor - s.lr * np.sign(c)
    m = s.beta2 * m + s.one_minus_beta2 * g
    return theta, m


# 4. the class, registered ----------------------------------------------------------------------------------------
@register_optimizer("lion", default_lr=1e-4, color="tab:olive", search_space={"lr": (1e-5, 1e-2, "log")})
class Lion(Optimizer):
    """Lion (EvoLved Sign Momentum), with decoupled weight decay λ; state ``"m"``.

    Its steps are γ sign(·), larger than Adam's for the same γ: use a rate 3-10 times smaller than Adam's.
    """

    update = lion
    scalars = lion_scalars
    state_names = ("m",)
    betas = Hyperparameter(pair(real(0.0, 1.0, high_open=True), ("beta1", "beta2")))
    weight_decay = Hyperparameter(real(0.0))

    def __init__(self, params, *, backend: str = "cpu", lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, backend=backend, hyperparameters=dict(lr=lr, betas=betas, weight_decay=weight_decay))


if __name__ == "__main__":
    from sklearn.datasets import load_digits

    from microdl.experiments import compare
    from microdl.nn import MLP
    from microdl.optim import check_optimizer
    from microdl.sklearn import MLPClassifier
    from microdl.train import fit

    quick = bool(os.environ.get("MICRODL_QUICK"))

    # The test table every built-in passes: backends agree, state_dict, pickle, float32, bad hyperparameters,
    # convergence on a quadratic and on Rosenbrock.
    for line in check_optimizer(Lion, hyperparameters=[{"weight_decay": 0.1}]):
        print(line)

    # Train an MLP with it, as with any optimizer.
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    net = MLP((64, 32, 10), random_state=0)
    history = fit(net, Lion(net.params, lr=1e-3), X, y, epochs=2 if quick else 20, batch_size=64)
    print(f"fit: loss {history.train_loss[0]:.3f} -> {history.train_loss[-1]:.3f}")

    # Compare it with Adam, by name, as the CLI's `microdl compare --optimizers lion,adam` does.
    result = compare("digits", optimizers=["lion", "adam"], seeds=2, epochs=2 if quick else 15, hidden=(32,),
                     lrs={"lion": 1e-3, "adam": 3e-3}, progress=False)
    print(result.format_tables())

    # As a scikit-learn solver.
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver="lion", learning_rate_init=1e-3,
                        max_iter=3 if quick else 30, random_state=0).fit(X, y)
    print(f"MLPClassifier(solver='lion'): training accuracy {clf.score(X, y):.3f}")
