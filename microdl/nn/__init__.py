"""The model: an MLP with hand-written forward and backward passes over one flat parameter buffer."""

from microdl.nn.activations import ACTIVATIONS
from microdl.nn.losses import LOSSES
from microdl.nn.mlp import INITS, MLP

__all__ = ["MLP", "ACTIVATIONS", "LOSSES", "INITS"]
