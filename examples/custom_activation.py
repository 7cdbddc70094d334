"""
Your own activation and loss
============================

Your own activation (and loss), in your own file: Mish and a pseudo-Huber loss, on every backend.

Run with ``python examples/custom_activation.py`` (a few seconds; ``MICRODL_QUICK=1`` for less). It needs only
an installed microdl, no source tree.

An activation is two plain scalar functions: f(z, p) and its derivative f'(z) given z, the output a = f(z) and
the parameter vector p. A loss is its per-sample value from the logits z (overwriting z with the output) and
its delta dL/dz for one output. Write them with arithmetic, ``math`` and ``if`` only: microdl compiles the same
functions into its CPU kernels (Numba) and its CUDA kernels, and the textbook NumPy pass calls them as they are.
Register them once, and every model, ``fit``, the estimators and the CLI's Python API can use the names.
"""

import math
import os

import numpy as np

from microdl.datasets import load_dataset
from microdl.nn import MLP, register_activation, register_loss
from microdl.optim import Adam
from microdl.train import fit

EPOCHS = 3 if os.environ.get("MICRODL_QUICK") else 20


# -- the activation: Mish, f(z) = z tanh(softplus(z)) (Misra 2019; torch.nn.functional.mish) ----------------
def softplus(z):
    """log(1 + e^z), stable for large |z| (a helper: compiled along with the formulas that call it)."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def mish(z, p):
    return z * math.tanh(softplus(z))


def mish_derivative(z, a, p):
    """f'(z) = tanh(sp) + z σ(z) (1 − tanh²(sp)), sp = softplus(z): needs z, not only the output a."""
    t = math.tanh(softplus(z))
    sigma = 1.0 / (1.0 + math.exp(-z))
    return t + z * sigma * (1.0 - t * t)


# -- the loss: pseudo-Huber, ℓ = Σ_k δ² (√(1 + (r_k/δ)²) − 1), r = z − y, with δ a parameter -----------------
def pseudo_huber(z, y, has_y, p):
    delta = p[0]
    ell = 0.0
    if has_y:  # (the output is the identity: z stays as it is)
        for k in range(z.shape[0]):
            r = (z[k] - y[k]) / delta
            ell += delta * delta * (math.sqrt(1.0 + r * r) - 1.0)
    return ell


def pseudo_huber_delta(a, y, c, p):
    """dℓ/dz_k = r / √(1 + (r/δ)²), times c = w_i/Σw (the sample's share of the batch)."""
    r = a - y
    return r / math.sqrt(1.0 + (r / p[0]) ** 2) * c


register_activation("mish", mish, mish_derivative)
register_loss("pseudo_huber", pseudo_huber, pseudo_huber_delta, output="identity", targets="real",
              params={"delta": 1.0}, positive=("delta",))


def check_against_central_differences():
    """The derivative, checked where it matters: against the function itself."""
    h = 1e-6
    for z in np.linspace(-5, 5, 21) + 0.01:
        numeric = (mish(z + h, None) - mish(z - h, None)) / (2 * h)
        assert abs(mish_derivative(z, mish(z, None), None) - numeric) < 1e-7 * max(1.0, abs(numeric)), z
    print("mish' matches central differences at 21 points")


def train(backend):
    data = load_dataset("diabetes", random_state=0)
    net = MLP((data.n_features, 32, 1), activation="mish", loss="pseudo_huber", loss_params={"delta": 0.5},
              random_state=0, backend=backend)
    history = fit(net, Adam(net.params, lr=0.01, backend="numpy" if backend == "numpy" else "cpu"),
                  data.X_train, data.y_train, epochs=EPOCHS, batch_size=32, random_state=0)
    return net, history, data


check_against_central_differences()
fast, history, data = train("numba")  # the compiled CPU kernels, rebuilt once with mish and pseudo_huber in them
slow, history_numpy, _ = train("numpy")  # the textbook pass (microdl.nn.reference), the same functions
print(f"loss after {EPOCHS} epochs: numba {history.train_loss[-1]:.6f}, numpy {history_numpy.train_loss[-1]:.6f}")
assert np.allclose(history.train_loss, history_numpy.train_loss, rtol=1e-9), "the backends disagree"
print("the compiled kernels and the textbook pass agree")
residual = fast.predict(data.X_test)[:, 0] - data.y_test
print(f"test R² with mish and pseudo_huber: {1 - np.mean(residual**2) / np.var(data.y_test):.3f}")
