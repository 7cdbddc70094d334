"""The model: an MLP with hand-written forward and backward passes over one flat parameter buffer.

Activations and losses are open registries: :func:`register_activation` and :func:`register_loss` add your own
(from your own file), and every backend (the textbook NumPy pass, the CPU and the CUDA kernels) runs them.
"""

from microdl.nn.activations import Activation, activation_names, get_activation, register_activation
from microdl.nn.losses import Loss, get_loss, loss_names, register_loss
from microdl.nn.mlp import BACKENDS, INITS, MLP

__all__ = ["MLP", "INITS", "BACKENDS", "Activation", "Loss", "register_activation", "register_loss",
           "get_activation", "get_loss", "activation_names", "loss_names"]
