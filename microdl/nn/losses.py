"""Output-layer and loss pairs.

Each pair couples an output activation with the loss it is the canonical link of, so that for all three the
gradient of the loss with respect to the output layer's pre-activation Z is the same simple expression:

    dL/dZ = w_i (output - target) / sum(w)        (w = sample weights, 1 by default)

==========================  =================  ==================================================
loss                        output             per-sample loss ℓ_i, computed from the logits Z
==========================  =================  ==================================================
``cross_entropy``           softmax            logsumexp(z_i) − Σ_k y_ik z_ik   (rows of Y sum to 1)
``binary_cross_entropy``    sigmoid            Σ_k softplus(z_ik) − y_ik z_ik
``squared_error``           identity           ½ Σ_k (z_ik − y_ik)²
==========================  =================  ==================================================

The batch loss is L = Σ_i w_i ℓ_i / Σ_i w_i. Losses are computed from the logits with the max-shift of
log-sum-exp and a stable softplus, never as ``log(softmax)`` or ``log(sigmoid)``, so they stay finite for
large logits. The fused CPU kernels of :mod:`microdl.nn._cpu` compute the same quantities row by row; the
NumPy function below is their readable reference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

__all__ = ["LOSSES", "LOSS_CODES", "OUTPUT_ACTIVATION", "loss_per_sample_and_output"]

LOSSES = ("cross_entropy", "binary_cross_entropy", "squared_error")
#: Integer codes of the losses, for the compiled kernels.
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR = range(3)
LOSS_CODES = dict(zip(LOSSES, range(3)))
OUTPUT_ACTIVATION = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "squared_error": "identity"}


def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|), per element and stable for large |z| (np.logaddexp(0, z))."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def loss_per_sample_and_output(loss: str, Z: np.ndarray, Y: np.ndarray | None, per_sample: np.ndarray,
                               row: np.ndarray, scratch: np.ndarray) -> None:
    """Write ℓ_i into ``per_sample`` (if ``Y`` is given), then overwrite the logits ``Z`` with the output.

    ``row`` is a scratch vector of length ``len(Z)`` and ``scratch`` a scratch array of Z's shape.
    """
    if loss == "cross_entropy":
        np.max(Z, axis=1, out=row)
        Z -= row[:, None]  # shift each row by its maximum: exp cannot overflow and Z.max() = 0
        if Y is not None:
            np.einsum("ij,ij->i", Y, Z, out=per_sample)  # Σ_k y_ik z_ik
        np.exp(Z, out=Z)
        np.sum(Z, axis=1, out=row)
        Z /= row[:, None]  # softmax
        if Y is not None:
            np.log(row, out=row)  # logsumexp of the shifted logits, >= 0
            np.subtract(row, per_sample, out=per_sample)
    elif loss == "binary_cross_entropy":
        if Y is not None:
            np.einsum("ij,ij->i", Y, Z, out=per_sample)  # Σ_k y_ik z_ik
            np.logaddexp(0, Z, out=scratch)  # softplus(z) = log(1 + e^z), stable for large |z|
            np.sum(scratch, axis=1, out=row)
            np.subtract(row, per_sample, out=per_sample)
        expit(Z, out=Z)
    elif loss == "squared_error":
        if Y is not None:
            np.subtract(Z, Y, out=scratch)
            scratch *= scratch
            np.sum(scratch, axis=1, out=per_sample)
            per_sample *= 0.5
    else:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
