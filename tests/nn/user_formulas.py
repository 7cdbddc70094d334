"""A user's own activation and loss, in their own file (not in microdl): Mish and a log-cosh loss.

Registered by the tests that import it (tests/nn/test_user_formulas.py, tests/cuda_sim/test_cuda_model.py).
"""

import math


def softplus(z):  # a helper of the user's module, called by the formulas (compiled with them)
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def mish(z, p):
    """z tanh(softplus(z)) (torch.nn.functional.mish)."""
    return z * math.tanh(softplus(z))


def mish_derivative(z, a, p):
    t = math.tanh(softplus(z))
    s = 1.0 / (1.0 + math.exp(-z))
    return t + z * s * (1.0 - t * t)


def log_cosh(z, y, has_y, p):
    """z stays (identity output); ℓ = Σ_k log cosh((z_k − y_k)/s) · s², s = p[0] (a scale)."""
    ell = 0.0
    if has_y:
        s = p[0]
        for k in range(z.shape[0]):
            r = abs(z[k] - y[k]) / s
            ell += (r + math.log1p(math.exp(-2.0 * r)) - math.log(2.0)) * s * s
    return ell


def log_cosh_delta(a, y, c, p):
    return math.tanh((a - y) / p[0]) * p[0] * c


def register():
    from microdl.nn import register_activation, register_loss

    register_activation("mish", mish, mish_derivative)
    register_loss("log_cosh", log_cosh, log_cosh_delta, output="identity", targets="real", params={"scale": 1.0},
                  positive=("scale",))
