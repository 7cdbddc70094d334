"""What the primary sources found about each claim, so that every verdict can say where it agrees and departs.

:data:`REFERENCES` holds the full citations (authors, year, title, venue); :data:`LITERATURE` maps each claim id
to the sources that bear on it, what they found, and the verdict their finding leads one to expect for the
claim as this report tests it (None where the sources do not decide it, or disagree). :func:`comparison` writes
the sentence the report prints under a verdict: agrees, departs (and why, where a reason is known), or no
expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REFERENCES", "LITERATURE", "Finding", "comparison", "cite"]

#: Full citations, by key.
REFERENCES: dict[str, str] = {
    "Bottou & Bousquet 2008": "Bottou, L. & Bousquet, O. (2008). The Tradeoffs of Large Scale Learning. NeurIPS 20.",
    "Duchi et al. 2011": "Duchi, J., Hazan, E. & Singer, Y. (2011). Adaptive Subgradient Methods for Online Learning "
                         "and Stochastic Optimization. Journal of Machine Learning Research 12, 2121–2159.",
    "Tieleman & Hinton 2012": "Tieleman, T. & Hinton, G. (2012). Lecture 6.5 — RMSprop: Divide the gradient by a "
                              "running average of its recent magnitude. COURSERA: Neural Networks for Machine "
                              "Learning.",
    "Zeiler 2012": "Zeiler, M. D. (2012). ADADELTA: An Adaptive Learning Rate Method. arXiv:1212.5701.",
    "Kingma & Ba 2015": "Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR.",
    "Choromanska et al. 2015": "Choromanska, A., Henaff, M., Mathieu, M., Ben Arous, G. & LeCun, Y. (2015). The Loss "
                               "Surfaces of Multilayer Networks. AISTATS.",
    "Wilson et al. 2017": "Wilson, A. C., Roelofs, R., Stern, M., Srebro, N. & Recht, B. (2017). The Marginal Value "
                          "of Adaptive Gradient Methods in Machine Learning. NeurIPS 30.",
    "Choi et al. 2019": "Choi, D., Shallue, C. J., Nado, Z., Lee, J., Maddison, C. J. & Dahl, G. E. (2019). On "
                        "Empirical Comparisons of Optimizers for Deep Learning. arXiv:1910.05446.",
    "Sivaprasad et al. 2020": "Sivaprasad, P. T., Mai, F., Vogels, T., Jaggi, M. & Fleuret, F. (2020). Optimizer "
                              "Benchmarking Needs to Account for Hyperparameter Tuning. ICML.",
    "Schmidt et al. 2021": "Schmidt, R. M., Schneider, F. & Hennig, P. (2021). Descending through a Crowded Valley — "
                           "Benchmarking Deep Learning Optimizers. ICML.",
}


@dataclass(frozen=True)
class Finding:
    """The sources on a claim (keys of :data:`REFERENCES`), what they found, the verdict that leads one to
    expect here (None: no expectation), and why a measurement here may depart from it."""

    sources: tuple[str, ...]
    found: str
    expect: str | None = None
    why_departs: str = ""


_SMALL = ("these are small networks on small tabular problems with short budgets, where the sources measured "
          "large networks trained for long")

LITERATURE: dict[str, Finding] = {
    "gd-simple": Finding(("Bottou & Bousquet 2008",), "gradient descent is the baseline every other method "
                         "extends; its update needs only the gradient and a rate", "supported"),
    "gd-any-size": Finding(("Bottou & Bousquet 2008",), "a GD step costs a pass over all n samples, so on large, "
                           "redundant data stochastic methods reach a given error with far less computation",
                           "not supported"),
    "gd-combine": Finding(("Choi et al. 2019",), "momentum, schedules and clipping are standard additions; with "
                          "momentum, GD is a special case of a more general optimizer that, tuned, never does worse",
                          "supported"),
    "gd-local-minima": Finding(("Choromanska et al. 2015",), "in large networks most local minima lie close to the "
                               "global one, so being 'stuck' at a poor one is rare; small networks and contrived "
                               "functions do have poor local minima", None),
    "gd-slow": Finding(("Bottou & Bousquet 2008",), "per unit of computation GD is slower than SGD on large data; "
                       "per step it is not", "supported",
                       "the claim is judged per epoch here (equal work), where Bottou & Bousquet's argument holds "
                       "only once the data are redundant"),
    "sgd-faster": Finding(("Bottou & Bousquet 2008",), "stochastic gradient descent reaches a given test error "
                          "with far less computation than GD on large-scale problems", "supported"),
    "sgd-large-online": Finding(("Bottou & Bousquet 2008",), "SGD's cost to a target does not grow with the data "
                                "size, and it processes each sample once, so it suits large data and streams",
                                "supported"),
    "sgd-local-minima": Finding(("Choromanska et al. 2015",), "gradient noise can help leave sharp or shallow "
                                "minima, but in large networks most minima are good anyway", None),
    "sgd-sensitive": Finding(("Choi et al. 2019", "Sivaprasad et al. 2020"), "SGD's rate (and its interaction "
                             "with the batch size) must be tuned; it is among the harder optimizers to tune",
                             "supported"),
    "sgd-noisy": Finding(("Bottou & Bousquet 2008",), "a mini-batch gradient is a noisy estimate of the full one; "
                         "the noise is what makes each step cheap", "supported"),
    "adam-memory": Finding(("Kingma & Ba 2015",), "Adam has 'little memory requirements', compared with second-order "
                           "methods; it keeps two buffers per parameter, more than SGD or Adagrad",
                           "not supported", "Kingma & Ba compare with second-order methods, not with the five "
                           "first-order ones compared here"),
    "adam-noisy-sparse": Finding(("Kingma & Ba 2015",), "Adam is designed for noisy and sparse gradients; bias "
                                 "correction and the second-moment scaling help rare features", "supported",
                                 _SMALL),
    "adam-wide": Finding(("Kingma & Ba 2015", "Schmidt et al. 2021", "Choi et al. 2019"), "Adam works well on a "
                         "wide range of models; benchmarks find no optimizer that dominates, and with every "
                         "hyperparameter tuned Adam never loses to SGD", None),
    "adam-sensitive": Finding(("Kingma & Ba 2015", "Sivaprasad et al. 2020", "Schmidt et al. 2021"), "Adam's "
                              "hyperparameters 'typically require little tuning'; it is the easiest optimizer to "
                              "tune within a small budget", "not supported", _SMALL),
    "adam-suboptimal": Finding(("Wilson et al. 2017", "Choi et al. 2019"), "adaptive methods can reach a lower "
                               "training loss yet a higher test error than well-tuned SGD with momentum; with "
                               "every hyperparameter tuned the gap closes", None),
    "adagrad-per-param": Finding(("Duchi et al. 2011",), "each coordinate gets its own step, scaled by the root of "
                                 "its accumulated squared gradients", "supported"),
    "adagrad-noisy-sparse": Finding(("Duchi et al. 2011",), "per-coordinate rates give rare but informative "
                                    "features large steps; designed for sparse data", "supported", _SMALL),
    "adagrad-small": Finding(("Duchi et al. 2011",), "nothing specific to the number of parameters", None),
    "adagrad-large": Finding(("Duchi et al. 2011", "Zeiler 2012"), "the accumulated sum only grows, so rates only "
                             "shrink and learning can stall on long runs; nothing specific to the number of "
                             "parameters", None),
    "adagrad-unstable": Finding(("Duchi et al. 2011", "Zeiler 2012"), "Adagrad's rates can only shrink (the sum "
                                "of squared gradients only grows), the opposite of accumulating too much rate",
                                "not supported"),
    "rmsprop-easy": Finding(("Tieleman & Hinton 2012",), "a one-line change to Adagrad: divide by a running average "
                            "of g² instead of the sum", "supported"),
    "rmsprop-wide": Finding(("Schmidt et al. 2021",), "RMSprop is competitive on many but not all problems; no "
                            "optimizer dominates", None),
    "rmsprop-nonstationary": Finding(("Tieleman & Hinton 2012", "Kingma & Ba 2015"), "the running average forgets "
                                     "old gradients, so the scaling follows a changing objective", "supported"),
    "rmsprop-sensitive": Finding(("Choi et al. 2019", "Schmidt et al. 2021"), "its rate and ε matter; tuned, it is "
                                 "competitive", None),
    "rmsprop-noisy-sparse": Finding(("Tieleman & Hinton 2012",), "designed for mini-batch learning, where the "
                                    "gradients are noisy", "not supported", _SMALL),
    "adadelta-fewer": Finding(("Zeiler 2012",), "no manual learning rate: the ratio of two running averages sets "
                              "the step; ρ and ε remain", "supported",
                              "ρ and ε still count as hyperparameters here, as Adagrad's or SGD's rate does"),
    "adadelta-noisy-sparse": Finding(("Zeiler 2012",), "robust to noisy gradients and to the choice of "
                                     "hyperparameters", "supported", _SMALL),
    "adadelta-wide": Finding(("Zeiler 2012", "Schmidt et al. 2021"), "shown on MNIST and speech; later benchmarks "
                             "find it behind Adam on many problems", None),
    "adadelta-sensitive": Finding(("Zeiler 2012",), "robust to the choice of its hyperparameters", "not supported",
                                  "torch's form adds a learning rate (a step scale) which the sweep here varies, and "
                                  "which Zeiler's algorithm does not have"),
    "adadelta-large": Finding(("Zeiler 2012",), "nothing specific to the number of parameters", None),
    "overall": Finding(("Schmidt et al. 2021", "Choi et al. 2019", "Sivaprasad et al. 2020"), "no optimizer "
                       "dominates across problems; trying several optimizers at their defaults works about as well "
                       "as tuning one; rankings depend on the tuning protocol", "supported"),
}


def cite(keys: tuple[str, ...]) -> str:
    """Short citations joined: "Kingma & Ba 2015; Choi et al. 2019"."""
    return "; ".join(keys)


def comparison(claim: str, verdict: str) -> str:
    """The sentence the report prints under a claim's verdict: what the sources found, and whether this
    measurement agrees, departs (with the known reason) or has nothing to compare with."""
    f = LITERATURE[claim]
    text = f"Literature ({cite(f.sources)}): {f.found}."
    if f.expect is None:
        return text + " The sources lead to no firm expectation for this claim as tested here."
    if verdict == f.expect:
        return text + f" This measurement agrees ({verdict})."
    if verdict in ("inconclusive", "unstable", "mixed"):
        return text + f" The sources lead one to expect {f.expect}; this measurement cannot tell ({verdict})."
    why = f" A likely reason: {f.why_departs}." if f.why_departs else ""
    return text + f" The sources lead one to expect {f.expect}; this measurement departs ({verdict}).{why}"
