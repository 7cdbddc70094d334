"""The article's 31 claims, each tied to the experiment whose section decides it.

The article (``optimization-techniques.md``) lists, for GD, SGD, Adam, Adagrad, RMSprop and AdaDelta, three
advantages and two disadvantages each, and closes with one conclusion. :data:`CLAIMS` holds every one, in
the article's order, with the key of the experiment that measures it (:mod:`microdl.experiments.report`
lists the experiments) and the rule that decides it (:data:`microdl.experiments.report.verdicts.RULES`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claim", "CLAIMS"]


@dataclass(frozen=True)
class Claim:
    """One sentence of the article: ``id``, the optimizer it is about ("all" for the conclusion),
    ``kind`` ("advantage", "disadvantage" or "conclusion"), the text, the experiment that tests it, and
    ``conjunction``: whether the sentence joins its parts with "and" (one false part then makes the claim not
    supported; :func:`microdl.experiments.report.verdicts.combine`)."""

    id: str
    optimizer: str
    kind: str
    text: str
    experiment: str
    conjunction: bool = False


CLAIMS: tuple[Claim, ...] = (
    Claim("gd-simple", "gd", "advantage", "Simple and widely used", "code", conjunction=True),
    Claim("gd-any-size", "gd", "advantage", "Can be used for both small and large datasets", "scale"),
    Claim("gd-combine", "gd", "advantage", "Can be combined with other optimization techniques", "combine"),
    Claim("gd-local-minima", "gd", "disadvantage", "Can be prone to getting stuck in local minima", "landscape"),
    Claim("gd-slow", "gd", "disadvantage", "Can be slow to converge on high-dimensional and non-convex loss "
          "functions", "wide"),
    Claim("sgd-faster", "sgd", "advantage", "Faster convergence than standard Gradient Descent", "gd_sgd"),
    Claim("sgd-large-online", "sgd", "advantage", "Can handle large datasets and online learning", "scale",
          conjunction=True),
    Claim("sgd-local-minima", "sgd", "advantage", "Reduces the risk of getting stuck in local minima", "landscape"),
    Claim("sgd-sensitive", "sgd", "disadvantage", "Can be sensitive to the learning rate and batch size",
          "sensitivity", conjunction=True),
    Claim("sgd-noisy", "sgd", "disadvantage", "Can suffer from noisy updates", "noise"),
    Claim("adam-memory", "adam", "advantage", "Efficient and requires less memory than other optimization "
          "algorithms", "code", conjunction=True),
    Claim("adam-noisy-sparse", "adam", "advantage", "Can handle noisy and sparse gradients", "noisy_sparse",
          conjunction=True),
    Claim("adam-wide", "adam", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("adam-sensitive", "adam", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("adam-suboptimal", "adam", "disadvantage", "Can converge to suboptimal solutions on non-convex problems",
          "wide"),
    Claim("adagrad-per-param", "adagrad", "advantage", "Automatically adjusts the learning rate for each "
          "parameter", "width"),
    Claim("adagrad-noisy-sparse", "adagrad", "advantage", "Can handle sparse data and noisy gradients",
          "noisy_sparse", conjunction=True),
    Claim("adagrad-small", "adagrad", "advantage", "Converges quickly on problems with a small number of "
          "parameters", "width"),
    Claim("adagrad-large", "adagrad", "disadvantage", "Can suffer from slow convergence on problems with a large "
          "number of parameters", "width"),
    Claim("adagrad-unstable", "adagrad", "disadvantage", "Can accumulate too much learning rate, leading to "
          "numerical instability", "sensitivity"),
    Claim("rmsprop-easy", "rmsprop", "advantage", "Efficient and easy to implement", "code", conjunction=True),
    Claim("rmsprop-wide", "rmsprop", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("rmsprop-nonstationary", "rmsprop", "advantage", "Handles non-stationary environments well", "drift"),
    Claim("rmsprop-sensitive", "rmsprop", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("rmsprop-noisy-sparse", "rmsprop", "disadvantage", "Can suffer from noisy and sparse gradients",
          "noisy_sparse", conjunction=True),
    Claim("adadelta-fewer", "adadelta", "advantage", "Requires fewer hyperparameters than other optimization "
          "algorithms", "code", conjunction=True),
    Claim("adadelta-noisy-sparse", "adadelta", "advantage", "Can handle sparse data and noisy gradients",
          "noisy_sparse", conjunction=True),
    Claim("adadelta-wide", "adadelta", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("adadelta-sensitive", "adadelta", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("adadelta-large", "adadelta", "disadvantage", "Can suffer from slow convergence on problems with a "
          "large number of parameters", "width"),
    Claim("overall", "all", "conclusion", "The choice of optimization technique depends on the specific problem "
          "and dataset, and it is often necessary to experiment with different algorithms and hyperparameters",
          "wide", conjunction=True),
)
