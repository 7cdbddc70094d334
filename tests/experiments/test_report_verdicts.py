"""The verdict rules of the claims report, pinned by table tests on synthetic estimates.

Every part of every claim gets three hand-written intervals: one just on the claim's side of its threshold
(supported), one just on the other side, touching it where the rule says "at or" (not supported), and one
across it (inconclusive). Claims with several parts are checked as conjunctions (one false part: not
supported) or as measurements of one property (parts that disagree: mixed). The numbers are written out here,
not read from the rules, so moving any threshold in ``microdl.experiments.report.verdicts`` by more than a hair
turns one of these cases and fails a test.
"""

import math

import pytest

from microdl.experiments.report import CLAIMS
from microdl.experiments.report.stats import Estimate, exact
from microdl.experiments.report.verdicts import (
    CONJUNCTIONS,
    INCONCLUSIVE,
    MIXED,
    NOT_SUPPORTED,
    RULES,
    SUPPORTED,
    UNSTABLE,
    Rule,
    combine,
    decide,
    judge,
    stable_verdict,
    verdict_counts,
)

S, N, D, M = SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED


def est(low, high):
    return Estimate((low + high) / 2, low, high, 5, "synthetic")


# claim -> [(part, supported interval, not-supported interval, straddling interval)]
PINS = {
    "gd-simple": [("statements", (-2, -0.01), (0, 0), (-1, 1)), ("state", (-1, -0.01), (0, 1), (-0.5, 0.5)),
                  ("hyperparameters", (-2, -0.01), (0, 0), (-1, 1))],
    "gd-any-size": [("work", (2, 10), (10.01, 30), (5, 11))],
    "gd-combine": [("combined", (0.5, 0.99), (1.0, 1.2), (0.9, 1.1))],
    "gd-local-minima": [("2-D", (0.11, 0.3), (0.0, 0.10), (0.05, 0.2)),
                        ("network", (0.11, 0.4), (0.0, 0.10), (0.0, 0.2))],
    "gd-slow": [("slow share", (0.51, 1.0), (0.2, 0.5), (0.4, 0.6))],
    "sgd-faster": [("per epoch", (1.01, 3), (0.5, 1.0), (0.9, 1.1))],
    "sgd-large-online": [("scaling", (-0.1, 0.49), (0.5, 1.1), (0.3, 0.7)),
                         ("memory", (1.0, 1.5), (1.51, 3), (1.2, 1.6)),
                         ("online", (0.05, 0.25), (0.26, 0.5), (0.2, 0.3))],
    "sgd-local-minima": [("2-D", (0.01, 0.1), (-0.1, 0.0), (-0.05, 0.05)),
                         ("network", (0.01, 0.2), (0.0, 0.0), (-0.1, 0.1))],
    "sgd-sensitive": [("hyperparameters", (0.5, 0.99), (1.0, 2.0), (0.8, 1.2)),
                      ("batch size", (0.11, 0.5), (0.0, 0.10), (0.05, 0.15))],
    "sgd-noisy": [("direction", (0.3, 0.89), (0.9, 1.0), (0.8, 0.95)),
                  ("rising steps", (0.06, 0.3), (0.0, 0.05), (0.03, 0.08))],
    "adam-memory": [("memory", (-1, -0.01), (0, 1), (-1, 1)), ("efficient", (0.9, 1.25), (1.26, 1.5), (1.1, 1.3))],
    "adam-noisy-sparse": [("noisy", (0.5, 0.99), (1.0, 2.0), (0.9, 1.1)),
                          ("sparse", (0.3, 0.99), (1.0, 1.5), (0.8, 1.2))],
    "adam-wide": [("quick share", (0.67, 1.0), (0.3, 0.66), (0.5, 0.8))],
    "adam-sensitive": [("hyperparameters", (0.5, 0.99), (1.0, 3.0), (0.9, 1.1))],
    "adam-suboptimal": [("test error", (0.01, 0.3), (-0.2, 0.0), (-0.1, 0.1))],
    "adagrad-per-param": [("spread", (2.01, 9), (1.0, 2.0), (1.5, 3))],
    "adagrad-noisy-sparse": [("noisy", (0.5, 0.99), (1.0, 2.0), (0.9, 1.1)),
                             ("sparse", (0.3, 0.99), (1.0, 1.5), (0.8, 1.2))],
    "adagrad-small": [("smallest width", (0.5, 0.99), (1.0, 2.0), (0.9, 1.1))],
    "adagrad-large": [("width trend", (2.01, 5), (0.5, 2.0), (1.5, 3))],
    "adagrad-unstable": [("instability", (0.01, 0.2), (-0.1, 0.0), (-0.05, 0.05))],
    "rmsprop-easy": [("easy", (1.0, 2.0), (2.01, 3), (1.5, 2.5)),
                     ("efficient", (0.9, 1.25), (1.26, 1.5), (1.1, 1.3))],
    "rmsprop-wide": [("quick share", (0.67, 1.0), (0.3, 0.66), (0.5, 0.8))],
    "rmsprop-nonstationary": [("tracking", (0.5, 0.99), (1.0, 1.5), (0.9, 1.1))],
    "rmsprop-sensitive": [("hyperparameters", (0.5, 0.99), (1.0, 3.0), (0.9, 1.1))],
    "rmsprop-noisy-sparse": [("noisy", (1.01, 2), (0.5, 1.0), (0.9, 1.1)),
                             ("sparse", (1.01, 1.5), (0.3, 1.0), (0.8, 1.2))],
    "adadelta-fewer": [("count", (-1, -0.01), (0, 1), (-1, 1)), ("learning rate", (2.0, 4.0), (0.5, 1.99), (1.5, 2.5))],
    "adadelta-noisy-sparse": [("noisy", (0.5, 0.99), (1.0, 2.0), (0.9, 1.1)),
                              ("sparse", (0.3, 0.99), (1.0, 1.5), (0.8, 1.2))],
    "adadelta-wide": [("quick share", (0.67, 1.0), (0.3, 0.66), (0.5, 0.8))],
    "adadelta-sensitive": [("hyperparameters", (0.5, 0.99), (1.0, 3.0), (0.9, 1.1))],
    "adadelta-large": [("width trend", (2.01, 5), (0.5, 2.0), (1.5, 3))],
    "overall": [("problem", (0.01, 0.5), (0.0, 0.0), (0.0, 0.3)),
                ("hyperparameters", (1.11, 2), (0.9, 1.1), (1.0, 1.2))],
}


def test_every_claim_has_rules_and_pins():
    assert [c.id for c in CLAIMS] == list(RULES) == list(PINS)
    assert len(CLAIMS) == 31
    for claim, pins in PINS.items():
        assert [p[0] for p in pins] == [r.part for r in RULES[claim]], claim


def _cases():
    for claim, pins in PINS.items():
        sup = {part: est(*s) for part, s, _, _ in pins}
        not_ = {part: est(*n) for part, _, n, _ in pins}
        yield claim, sup, S
        yield claim, not_, N
        conjunction = claim in CONJUNCTIONS
        for part, _, n, straddle in pins:
            yield claim, {**sup, part: est(*straddle)}, D
            # one part cannot tell, the others fail: a conjunction has failed; one property is still undecided
            yield claim, {**not_, part: est(*straddle)}, N if conjunction and len(pins) > 1 else D
            if len(pins) > 1:
                # one part fails, the others hold: a conjunction fails, a property measured twice is mixed
                yield claim, {**sup, part: est(*n)}, N if conjunction else M


@pytest.mark.parametrize(("claim", "estimates", "expected"), list(_cases()))
def test_verdict_rules(claim, estimates, expected):
    v = judge(claim, estimates, "synthetic evidence")
    assert v.verdict == expected, [(p.rule.part, p.estimate.low, p.estimate.high, p.verdict) for p in v.parts]


@pytest.mark.parametrize(("holds", "low", "high", "expected"), [
    ("above", 0.51, 0.9, S), ("above", 0.2, 0.5, N), ("above", 0.4, 0.6, D), ("above", 0.5, 0.9, D),
    ("at least", 0.5, 0.9, S), ("at least", 0.2, 0.49, N), ("at least", 0.2, 0.5, D),
    ("below", 0.1, 0.49, S), ("below", 0.5, 0.9, N), ("below", 0.1, 0.5, D),
    ("at most", 0.1, 0.5, S), ("at most", 0.51, 0.9, N), ("at most", 0.5, 0.9, D),
    ("above", math.nan, math.nan, D), ("below", -math.inf, math.inf, D), ("above", math.inf, math.inf, S),
])
def test_decide_by_hand(holds, low, high, expected):
    assert decide(Estimate(0.5, low, high, 5, "x"), Rule("p", "an effect", 0.5, holds)) == expected


def test_an_exact_count_decides_on_its_value():
    rule = Rule("count", "a count", 0.0, "below")
    assert decide(exact(-1), rule) == S and decide(exact(0), rule) == N


@pytest.mark.parametrize(("parts", "conjunction", "expected"), [
    ([S, S], False, S), ([N], False, N), ([S, N], False, M), ([D, D], False, D), ([S, D], False, D),
    ([N, D], False, D), ([S, N, D], False, M), ([S, S], True, S), ([S, N], True, N), ([S, D], True, D),
    ([D, N], True, N), ([D, D], True, D),
])
def test_combine(parts, conjunction, expected):
    assert combine(parts, conjunction) == expected


def test_combine_needs_a_part():
    with pytest.raises(ValueError):
        combine([])


@pytest.mark.parametrize(("replications", "expected", "share"), [
    ([S, S, S], S, 1.0), ([S, S, D], S, 2 / 3), ([S, N, D], UNSTABLE, 1 / 3), ([N, N, S, S], UNSTABLE, 0.5),
    ([M, M, D], M, 2 / 3), ([D], D, 1.0),
])
def test_stable_verdict(replications, expected, share):
    assert stable_verdict(replications) == (expected, pytest.approx(share))


def test_rule_text_states_threshold_and_direction():
    text = Rule("p", "GD's share", 0.1, "above", ".2f").text()
    assert text == ("GD's share: supported if its 95% interval lies above 0.10, not supported if it lies at or below "
                    "0.10, inconclusive if it straddles 0.10")
    with pytest.raises(ValueError, match="holds"):
        Rule("p", "x", 1.0, "over")


def test_judge_names_missing_parts_and_counts():
    with pytest.raises(ValueError, match="needs estimates"):
        judge("sgd-noisy", {"direction": est(0.1, 0.2)}, "")
    verdicts = {"a": judge("gd-combine", {"combined": est(0.5, 0.9)}, ""),
                "b": judge("gd-slow", {"slow share": est(0.4, 0.6)}, "")}
    assert verdict_counts(verdicts) == {S: 1, N: 0, D: 1, M: 0, UNSTABLE: 0}
