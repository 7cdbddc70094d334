"""The verdict rules: which number decides each claim, its threshold, and the decision as a pure function.

A claim is decided by one or more *parts*. Each part is a measured effect (an :class:`Estimate` with its 95%
interval) and a :class:`Rule`: the claim's part holds when the effect lies above (or below) a threshold.
:func:`decide` turns an interval into a verdict:

* **supported** — the whole interval lies on the claim's side of the threshold;
* **not supported** — the whole interval lies on the other side;
* **inconclusive** — the interval straddles the threshold (the measurement cannot tell).

A claim with several parts is combined by :func:`combine`. A *conjunction* ("efficient **and** less memory",
:data:`CONJUNCTIONS`) is supported when every part is, not supported as soon as one part is not, and
inconclusive otherwise. A claim whose parts are several measurements of one property (local minima on 2-D
functions and on a network) is supported or not supported when its parts agree, **mixed** when one part is
supported and another is not, and inconclusive otherwise. Across the report's independent replications, a claim
whose verdict does not agree in most of them is **unstable** (:func:`stable_verdict`).

:data:`RULES` is the single table of every claim's parts and thresholds; the experiments compute the
estimates and :func:`judge` applies the table. The tests in ``tests/experiments/test_report_verdicts.py``
pin every threshold with hand-written cases, so moving one breaks a test.

>>> from microdl.experiments.report.stats import Estimate
>>> decide(Estimate(0.8, 0.7, 0.9, 5, "bootstrap"), Rule("share", "a share", 0.5, "above"))
'supported'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from microdl.experiments.report.claims import CLAIMS
from microdl.experiments.report.stats import Estimate

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "INCONCLUSIVE", "MIXED", "UNSTABLE", "VERDICTS", "CONJUNCTIONS", "Rule",
           "Part", "Verdict", "RULES", "decide", "combine", "judge", "verdict_counts", "stable_verdict"]

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED = "supported", "not supported", "inconclusive", "mixed"
#: A claim whose verdict did not agree in most of the report's replications.
UNSTABLE = "unstable"
#: The verdicts, in the order the report counts them.
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED, UNSTABLE)
#: Claims whose article sentence joins its parts with "and" (``Claim.conjunction``): one false part makes the
#: claim not supported.
CONJUNCTIONS = frozenset(c.id for c in CLAIMS if c.conjunction)

#: How each direction reads in a rule, and the words for the other side of its threshold.
_HOLDS = {"above": ("above", "at or below"), "at least": ("at or above", "below"),
          "below": ("below", "at or above"), "at most": ("at or below", "above")}


@dataclass(frozen=True)
class Rule:
    """One part of a claim: the claim's part holds when ``effect`` is ``holds`` ("above", "at least", "below"
    or "at most") ``threshold``. ``part`` names it in a table; ``fmt`` formats its numbers."""

    part: str
    effect: str
    threshold: float
    holds: str
    fmt: str = ".3g"

    def __post_init__(self) -> None:
        if self.holds not in _HOLDS:
            raise ValueError(f"holds must be one of {', '.join(_HOLDS)}; got {self.holds!r}")

    def text(self) -> str:
        """The rule in words, as the report prints it beside the verdict."""
        t = format(self.threshold, self.fmt)
        side, other = _HOLDS[self.holds]
        return (f"{self.effect}: supported if its 95% interval lies {side} {t}, not supported if it lies {other} "
                f"{t}, inconclusive if it straddles {t}")


def decide(estimate: Estimate, rule: Rule) -> str:
    """The verdict of one part: where the estimate's interval lies against the rule's threshold.

    An interval that is unknown (NaN, e.g. no seed reached a target) cannot decide: "inconclusive".
    """
    low, high, t = estimate.low, estimate.high, rule.threshold
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    if rule.holds == "above":
        holds, fails = low > t, high <= t
    elif rule.holds == "at least":
        holds, fails = low >= t, high < t
    elif rule.holds == "below":
        holds, fails = high < t, low >= t
    else:  # at most
        holds, fails = high <= t, low > t
    return SUPPORTED if holds else NOT_SUPPORTED if fails else INCONCLUSIVE


def combine(verdicts: Sequence[str], conjunction: bool = False) -> str:
    """A claim's verdict from its parts' (see the module's docstring).

    >>> combine(["supported", "not supported"], conjunction=True), combine(["supported", "not supported"])
    ('not supported', 'mixed')
    """
    if not verdicts:
        raise ValueError("a claim needs at least one part")
    if conjunction and NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    first = verdicts[0]
    if all(v == first for v in verdicts):
        return first
    if SUPPORTED in verdicts and NOT_SUPPORTED in verdicts:
        return MIXED
    return INCONCLUSIVE


def stable_verdict(replications: Sequence[str]) -> tuple[str, float]:
    """The verdict of a claim over independent replications of the whole design, and the share that agreed.

    The verdict is the one reached by more than half of the replications; otherwise the claim is "unstable".

    >>> stable_verdict(["supported", "supported", "inconclusive"])
    ('supported', 0.6666666666666666)
    >>> stable_verdict(["supported", "not supported", "inconclusive"])[0]
    'unstable'
    """
    if not replications:
        raise ValueError("a stable verdict needs at least one replication")
    counts = {v: list(replications).count(v) for v in replications}
    top = max(counts, key=lambda v: counts[v])
    share = counts[top] / len(replications)
    return (top if share > 0.5 else UNSTABLE), share


@dataclass
class Part:
    """A rule applied: the rule, the measured estimate and the part's verdict."""

    rule: Rule
    estimate: Estimate
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.rule.part, "effect": self.rule.effect, "threshold": self.rule.threshold,
                "holds": self.rule.holds, "rule": self.rule.text(), "estimate": self.estimate.to_dict(),
                "verdict": self.verdict}


@dataclass
class Verdict:
    """A claim's verdict, its parts and the evidence in words."""

    claim: str
    verdict: str
    parts: list[Part]
    evidence: str
    notes: list[str] = field(default_factory=list)

    #: the verdict of each replication of the design, and the share that agreed with the verdict
    replications: list[str] = field(default_factory=list)
    stability: float = 1.0

    def rule_text(self) -> str:
        if len(self.parts) < 2:
            how = ""
        elif self.claim in CONJUNCTIONS:
            how = "; the claim joins its parts with 'and': not supported if any part is not"
        else:
            how = "; mixed when one part is supported and another is not"
        return "; ".join(p.rule.text() for p in self.parts) + how

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "verdict": self.verdict, "stability": self.stability,
                "replications": self.replications, "parts": [p.to_dict() for p in self.parts],
                "evidence": self.evidence, "rule": self.rule_text(), "notes": self.notes}


def judge(claim: str, estimates: Mapping[str, Estimate], evidence: str, notes: Sequence[str] = ()) -> Verdict:
    """Apply the rules of ``claim`` (from :data:`RULES`) to its estimates, one per part name."""
    rules = RULES[claim]
    missing = [r.part for r in rules if r.part not in estimates]
    if missing:
        raise ValueError(f"claim {claim!r} needs estimates for {missing}")
    parts = [Part(r, estimates[r.part], decide(estimates[r.part], r)) for r in rules]
    return Verdict(claim, combine([p.verdict for p in parts], claim in CONJUNCTIONS), parts, evidence, list(notes))


def verdict_counts(verdicts: Mapping[str, Verdict | Mapping[str, Any]]) -> dict[str, int]:
    """How many claims got each verdict."""
    names = [v.verdict if isinstance(v, Verdict) else v["verdict"] for v in verdicts.values()]
    return {k: names.count(k) for k in VERDICTS}


# -- the table ---------------------------------------------------------------------------------------------
# Thresholds, each a judgement stated in the report beside the verdict it decides:
#: "a wide range of problems": quick on at least two thirds of the problems.
WIDE_SHARE = 2 / 3
#: "can be slow": slow on more than half of the problems.
SLOW_SHARE = 0.5
#: AdaDelta needs no learning rate if its good range spans at least two decades.
INSENSITIVE_DECADES = 2.0
#: "sensitive to the batch size": changing it moves the validation loss by more than 10%.
BATCH_SPREAD = 0.10
#: "prone to getting stuck": more than one run in ten ends at a spurious minimum.
STUCK_SHARE = 0.10
#: "noisy updates": the mini-batch gradient points away from the full one (cosine below 0.9), and more than 5
#: points more of SGD's steps raise the full training loss than GD's.
NOISY_COSINE = 0.9
NOISY_STEPS = 0.05
#: "efficient": a step streams at most 25% more memory per parameter than the median optimizer's.
EFFICIENT_RATIO = 1.25
#: "easy to implement": at most twice the statements per step of the median rule (one assignment never decides).
EASY_RATIO = 2.0
#: "can be used for large datasets": GD reaches the target within 10 times SGD's work at the largest size.
LARGE_DATA_RATIO = 10.0
#: "handles large datasets": work to the target grows slower than the square root of the dataset size.
SCALING_EXPONENT = 0.5
#: "constant memory": the second half of a stream needs at most 1.5 times the peak memory of the first half.
MEMORY_GROWTH = 1.5
#: The share of the learnable loss that may be left at the target of the dataset-size runs, and after one pass
#: over the stream for "learns online".
STREAM_EXCESS = 0.25
#: "per-parameter rates": the 90th/10th percentile ratio of Adagrad's rates is above 2.
RATE_SPREAD = 2.0
#: "slow with many parameters": twice as far behind the others at the widest network as at the narrowest.
WIDTH_SLOWDOWN = 2.0
#: "best depends on the problem" and "tuning is necessary": 10% margins.
TUNING_GAIN = 1.10

_QUICK = ("share of the problems on which it is quick (Wilson interval over problems): at tuned settings, it "
          "reaches the problem's target on every seed within twice the epochs of the fastest optimizer there")
_WIDTH = ("width, in decades, of the learning rates whose final validation loss is within 10% of the best one "
          "(mean curve over the seeds)")
_TUNABLE = ("share of its tuning trials (quasi-random over every tuned hyperparameter) whose cross-validated loss is "
            "within 10% of the best trial, over the median share of the other five (geometric mean over problems)")
#: "sensitive to hyperparameters": a smaller good region than the typical optimizer's (relative, not absolute).
SENSITIVE_RATIO = 1.0
_STATEMENTS = "arithmetic statements its update rule executes per step at default settings"
_HYPER = ("numeric hyperparameters of the algorithm with a non-zero default (a zero default switches an option off; "
          "AdaDelta's torch-only lr is not one)")
_TRAFFIC = ("arrays a step streams through memory per parameter (θ read and written, g read, each state buffer read "
            "and written; counted from the code), over the median of the other five")
_NOISY = ("excess loss over the noise floor at the noisy setting (batch 4, each at its best rate), over SGD's "
          "at batch 4")
_SPARSE = ("error of the rare features' weights relative to SGD's on Zipf-sparse inputs, over the same ratio on the "
           "dense control (each at its best rate; a linear model, CSR inputs): below 1 when the advantage is "
           "specific to sparsity")


def _noisy_sparse(holds: str) -> tuple[Rule, Rule]:
    return (Rule("noisy", _NOISY, 1.0, holds, ".2f"), Rule("sparse", _SPARSE, 1.0, holds, ".2f"))


RULES: dict[str, tuple[Rule, ...]] = {
    "gd-simple": (
        Rule("statements", f"{_STATEMENTS}, GD's minus the median of the other five", 0.0, "below", ".1f"),
        Rule("state", "state buffers at default settings, GD's minus the median of the other five", 0.0, "below",
             ".1f"),
        Rule("hyperparameters", f"{_HYPER}, GD's minus the median of the other five", 0.0, "below", ".1f")),
    "gd-any-size": (
        Rule("work", "GD's samples processed to the target over SGD's at the largest dataset (geometric mean over "
             "seeds; a GD run that misses the target within 10× SGD's work, and at least 5 full steps, is a failure)",
             LARGE_DATA_RATIO, "at most", ".3g"),),
    "gd-combine": (
        Rule("combined", "final training loss of GD with momentum, a cosine schedule and clipping over plain GD's "
             "(each at its best rate)", 1.0, "below", ".3g"),),
    "gd-local-minima": (
        Rule("2-D", "share of GD's starts on the six-hump camel that end in a minimum that is not global",
             STUCK_SHARE, "above", ".2f"),
        Rule("network", "share of GD's restarts on a realisable teacher–student network that stop at a stationary "
             "point with a loss far above the global minimum of 0", STUCK_SHARE, "above", ".2f")),
    "gd-slow": (
        Rule("slow share", "share of the problems on which GD is not quick (see the wide-range claims)",
             SLOW_SHARE, "above", ".2f"),),
    "sgd-faster": (
        Rule("per epoch", "GD's training loss over SGD's after equal epochs (equal samples processed: equal work)",
             1.0, "above", ".3g"),),
    "sgd-large-online": (
        Rule("scaling", "exponent k of SGD's samples processed to the target, work ∝ nᵏ over the dataset sizes",
             SCALING_EXPONENT, "below", ".2f"),
        Rule("memory", "peak memory in the second half of a partial_fit stream over the first half's",
             MEMORY_GROWTH, "at most", ".3g"),
        Rule("online", "share of the learnable loss left after one pass over the stream (excess over the noise "
             "floor, over a constant prediction's excess)", STREAM_EXCESS, "at most", ".3f")),
    "sgd-local-minima": (
        Rule("2-D", "share of starts on the six-hump camel ending in a non-global minimum, GD's minus noisy "
             "SGD's (the same starts)", 0.0, "above", ".2f"),
        Rule("network", "share of teacher–student restarts stuck at a spurious stationary point, GD's minus SGD's "
             "(the same initial weights)", 0.0, "above", ".2f")),
    "sgd-sensitive": (
        Rule("hyperparameters", f"SGD's {_TUNABLE}", SENSITIVE_RATIO, "below", ".2f"),
        Rule("batch size", "relative change of SGD's validation loss across batch sizes at its best rate "
             "(largest over smallest, minus 1)", BATCH_SPREAD, "above", ".2f")),
    "sgd-noisy": (
        Rule("direction", "mean cosine between SGD's mini-batch gradient (batch 32) and the full gradient at the same "
             "point (1 for GD)", NOISY_COSINE, "below", ".2f"),
        Rule("rising steps", "share of SGD's steps (batch 32) that raise the full training loss, minus GD's share",
             NOISY_STEPS, "above", ".2f")),
    "adam-memory": (
        Rule("memory", "optimizer state per parameter, Adam's minus the median of the other five", 0.0, "below",
             ".1f"),
        Rule("efficient", f"Adam's {_TRAFFIC}", EFFICIENT_RATIO, "at most", ".2f")),
    "adam-noisy-sparse": _noisy_sparse("below"),
    "adam-wide": (Rule("quick share", f"Adam's {_QUICK}", WIDE_SHARE, "at least", ".2f"),),
    "adam-sensitive": (Rule("hyperparameters", f"Adam's {_TUNABLE}", SENSITIVE_RATIO, "below", ".2f"),),
    "adam-suboptimal": (
        Rule("test error", "test error after early stopping (Wilson et al. 2017's sense of a suboptimal solution), "
             "Adam's minus SGD-with-momentum's, both tuned (mean over the classification problems)", 0.0, "above",
             ".3f"),),
    "adagrad-per-param": (
        Rule("spread", "90th over 10th percentile of Adagrad's per-parameter rates γ/(√S + ε) after training, "
             "at the width where it is smallest", RATE_SPREAD, "above", ".3g"),),
    "adagrad-noisy-sparse": _noisy_sparse("below"),
    "adagrad-small": (
        Rule("smallest width", "Adagrad's final training loss over the median of SGD's, AdaDelta's and Adam's, "
             "at the smallest width", 1.0, "below", ".3g"),),
    "adagrad-large": (
        Rule("width trend", "Adagrad's loss relative to the others at the widest network over the same at the "
             "narrowest", WIDTH_SLOWDOWN, "above", ".3g"),),
    "adagrad-unstable": (
        Rule("instability", "share of the learning-rate grid at which Adagrad's run diverges or ends with a higher "
             "validation loss than it started with, minus Adam's (the same seeds and rates)", 0.0, "above", ".2f"),),
    "rmsprop-easy": (
        Rule("easy", f"{_STATEMENTS}, RMSprop's over the median of the other five", EASY_RATIO, "at most", ".2f"),
        Rule("efficient", f"RMSprop's {_TRAFFIC}", EFFICIENT_RATIO, "at most", ".2f")),
    "rmsprop-wide": (Rule("quick share", f"RMSprop's {_QUICK}", WIDE_SHARE, "at least", ".2f"),),
    "rmsprop-nonstationary": (
        Rule("tracking", "RMSprop's mean online loss relative to the median of the other four stochastic "
             "optimizers on a target that switches, over the same on a stationary control (each at its best rate): "
             "below 1 when its advantage is specific to the switching", 1.0, "below", ".3g"),),
    "rmsprop-sensitive": (Rule("hyperparameters", f"RMSprop's {_TUNABLE}", SENSITIVE_RATIO, "below", ".2f"),),
    "rmsprop-noisy-sparse": _noisy_sparse("above"),
    "adadelta-fewer": (
        Rule("count", f"{_HYPER}, AdaDelta's minus the median of the other five", 0.0, "below", ".1f"),
        Rule("learning rate", f"AdaDelta's {_WIDTH}", INSENSITIVE_DECADES, "at least", ".2f")),
    "adadelta-noisy-sparse": _noisy_sparse("below"),
    "adadelta-wide": (Rule("quick share", f"AdaDelta's {_QUICK}", WIDE_SHARE, "at least", ".2f"),),
    "adadelta-sensitive": (Rule("hyperparameters", f"AdaDelta's {_TUNABLE}", SENSITIVE_RATIO, "below", ".2f"),),
    "adadelta-large": (
        Rule("width trend", "AdaDelta's loss relative to the others at the widest network over the same at the "
             "narrowest", WIDTH_SLOWDOWN, "above", ".3g"),),
    "overall": (
        Rule("problem", "share of the problems on which the best all-round optimizer's test loss is more than 10% "
             "above that problem's best", 0.0, "above", ".2f"),
        Rule("hyperparameters", "test loss at torch's defaults over the loss at tuned settings (geometric mean "
             "over problems and optimizers)", TUNING_GAIN, "above", ".3g")),
}
