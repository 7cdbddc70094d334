"""The model: an MLP with hand-written forward and backward passes over one flat parameter buffer.

Activations and losses are open registries: :func:`register_activation` and :func:`register_loss` add your own
(from your own file), and every backend (the textbook NumPy pass, the CPU and the CUDA kernels) runs them.

Where each backend lives: :mod:`microdl.nn.reference` (the textbook NumPy pass), :mod:`microdl.nn._cpu` (the CPU
kernels; :func:`all_finite` and :func:`single_threaded_blas` are its public helpers for the training loop),
:mod:`microdl.cuda.kernels` (the CUDA kernels); :mod:`microdl.nn.formulas` compiles the registered formulas for
the last two.
"""

from microdl.nn._cpu import all_finite, single_threaded_blas
from microdl.nn.activations import Activation, activation_names, get_activation, register_activation
from microdl.nn.losses import Loss, get_loss, loss_names, register_loss
from microdl.nn.mlp import BACKENDS, INITS, MLP

__all__ = ["MLP", "INITS", "BACKENDS", "Activation", "Loss", "register_activation", "register_loss",
           "get_activation", "get_loss", "activation_names", "loss_names", "all_finite", "single_threaded_blas"]


def __getattr__(name: str) -> tuple[str, ...]:
    """``ACTIVATIONS`` and ``LOSSES``: the names registered now (read from the registries, never a stale list)."""
    if name == "ACTIVATIONS":
        return activation_names()
    if name == "LOSSES":
        return loss_names()
    raise AttributeError(f"module 'microdl.nn' has no attribute {name!r}")
