"""The report as a document: an opening summary, the verdict table, the set-up, and one section per experiment
with its figures beside its verdicts; written as ``report.md``, ``report.html`` and ``results.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from microdl._files import strict_json
from microdl._format import format_seconds
from microdl.experiments.report.claims import CLAIMS, Claim
from microdl.experiments.report.context import fmt, interval
from microdl.experiments.report.literature import REFERENCES, comparison
from microdl.experiments.report.markup import Card, Document
from microdl.experiments.report.verdicts import RULES, Verdict, verdict_counts

__all__ = ["build_document", "write_files", "TITLE", "QUICK_BANNER"]

TITLE = 'Testing the claims of "Optimization techniques in Deep Learning"'
#: The article under test (kept beside this module, copied into every report folder and linked from the report).
ARTICLE = Path(__file__).with_name("article.md")
ARTICLE_TITLE = "Optimization technique in Deep Learning learning (2023-02-14)"
_HOLDS_SIGN = {"above": ">", "at least": "≥", "below": "<", "at most": "≤"}

#: Heads a ``--quick`` report, and its printed summary: its budgets are too small for its verdicts to count.
QUICK_BANNER = ("Preview (--quick): tiny budgets and few datasets; these verdicts check that the report runs, "
                "not what the claims are. Run `microdl report` for the measured ones.")


def _estimate_text(est: Any, spec: str) -> str:
    return f"{fmt(est.value, spec)} (exact)" if est.method.startswith("exact") else interval(est, spec)


def card(c: Claim, v: Verdict) -> Card:
    """A claim's verdict card."""
    rows = [[p.rule.part, _estimate_text(p.estimate, p.rule.fmt),
             f"{_HOLDS_SIGN[p.rule.holds]} {format(p.rule.threshold, p.rule.fmt)}", f"[[{p.verdict}]]"]
            for p in v.parts]
    methods = list(dict.fromkeys(p.estimate.method for p in v.parts))
    sides = {"above": "above", "at least": "at or above", "below": "below", "at most": "at or below"}
    measured = "; ".join(f"*{p.rule.part}*: {p.rule.effect}; the part holds if its interval lies "
                         f"{sides[p.rule.holds]} {format(p.rule.threshold, p.rule.fmt)}" for p in v.parts)
    who = "all optimizers" if c.optimizer == "all" else c.optimizer
    return Card(anchor=f"claim-{c.id}", title=f"{who}: “{c.text}”", verdict=v.verdict, parts=rows,
                evidence=f"{v.evidence}.",
                rule=f"{measured}." + (f" {v.rule_text().split('; ')[-1].capitalize()}." if len(v.parts) > 1 else "")
                + (f" Replications: {', '.join(v.replications)}." if v.replications else ""),
                notes=[*v.notes, "Intervals: " + "; ".join(methods) + ".", comparison(c.id, v.verdict)])


def _compact(v: Verdict) -> str:
    """Each part as "name: value [interval]; needs < threshold"."""
    return "\n".join(f"{p.rule.part}: {_estimate_text(p.estimate, p.rule.fmt)}; needs "
                       f"{_HOLDS_SIGN[p.rule.holds]} {format(p.rule.threshold, p.rule.fmt)}" for p in v.parts)


def _totals(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("supported", "not supported"))


def _summary_points(results: dict[str, Any], verdicts: dict[str, Verdict]) -> list[str]:
    """What the evidence says about choosing an optimizer: a few sentences, each following its numbers (none
    is written in advance of the measurement)."""
    points = []
    part = {(c, p.rule.part): p for c, v in verdicts.items() for p in v.parts}
    if "wide" in results:
        wide = results["wide"]["datasets"]
        tuning = part[("overall", "hyperparameters")]
        lead = {"supported": "Tuning mattered.", "not supported": "Tuning did not matter much here."}.get(
            tuning.verdict, "Whether tuning mattered is not settled here.")
        points.append(
            f"**{lead}** At torch's defaults the test loss was {interval(tuning.estimate, '.2g')} times the loss at "
            f"tuned settings (geometric mean over {len(wide)} problems and six optimizers, every relevant "
            f"hyperparameter tuned); the widest good range of learning rates (within 10% of the best loss) spanned "
            f"{_max_width(results)} decades.")
        winners = {}
        for d, v in wide.items():
            means = {o: np.mean([x for x in v["tuned"][o]["final_test_loss"] if x is not None] or [math.inf])
                     for o in v["tuned"]}
            winners[d] = min(means, key=means.get)
        distinct = sorted(set(winners.values()))
        lead = "No optimizer wins everywhere." if len(distinct) > 1 else f"{distinct[0]} won everywhere."
        points.append(f"**{lead}** The lowest test loss at tuned settings went to "
                      + ", ".join(f"{o} on {d}" for d, o in winners.items()) + ".")
        quick = {o: verdicts[f"{o}-wide"].parts[0].estimate.value for o in ("adam", "rmsprop", "adadelta")}
        points.append(
            "**How often each was quick** (reached the target within twice the fastest optimizer's epochs, at "
            "tuned settings): " + ", ".join(f"{o} on {q:.0%} of the problems" for o, q in quick.items())
            + f"; GD was slow on {verdicts['gd-slow'].parts[0].estimate.value:.0%}.")
    if "scale" in results:
        r = results["scale"]
        n = r["sizes"][-1]
        scaling = part[("sgd-large-online", "scaling")].estimate
        memory = part[("sgd-large-online", "memory")].estimate
        points.append(
            f"**Data size.** SGD's work (samples processed) to a fixed target went as nᵏ with k = "
            f"{interval(scaling, '.2f')} from {r['sizes'][0]:,} to {n:,} samples; GD reached the target at {n:,} on "
            f"{int(np.isfinite(r['runs'][str(n)]['gd']['samples']).sum())}/{len(r['seeds'])} seeds within "
            f"{r['cap_factor']:g}× SGD's work; a partial_fit stream's peak memory changed by a factor "
            f"{fmt(memory.value, '.3g')} from its first half to its second.")
    if "noisy_sparse" in results and "drift" in results:
        sparse = {o: part[(f"{o}-noisy-sparse", "sparse")].estimate.value for o in ("adagrad", "rmsprop", "adam",
                                                                                    "adadelta")}
        drift = results["drift"]["optimizers"]
        ranked = sorted(drift, key=lambda o: np.mean(drift[o]["tracking"]))
        points.append(
            "**Rare features and moving targets.** The rare features' weight error relative to SGD's on Zipf-sparse "
            "inputs, over the same ratio on the dense control (below 1: an advantage specific to sparsity): "
            + ", ".join(f"{o} {fmt(x, '.2g')}" for o, x in sparse.items())
            + f". On a target that switches, the online loss ranked {', '.join(ranked)} (best first).")
    if "landscape" in results:
        cam = results["landscape"]["camel"]
        net = results["landscape"]["network"]["optimizers"]
        points.append(
            f"**Local minima.** On a 2-D function with six minima GD ended in a local one from "
            f"{sum(cam['gd']['non_global'])}/{cam['starts']} starts, SGD with gradient noise from "
            f"{sum(cam['sgd']['non_global'])}; on a realisable network {sum(net['gd']['stuck'])}/"
            f"{len(net['gd']['stuck'])} GD restarts and {sum(net['sgd']['stuck'])}/{len(net['sgd']['stuck'])} SGD "
            "restarts stopped at a spurious stationary point.")
    return points


#: What the report cannot show, said once at its head.
_LIMITATIONS = [
    "Small networks (one to three hidden layers, up to 1024 units) on small tabular problems with budgets of tens of "
    "epochs; the sources behind the claims trained convolutional and recurrent networks for days. A verdict here "
    "is about these problems, not deep learning at large.",
    "The problem set (every tabular dataset scikit-learn bundles and generated families) is a sample of problems, "
    "not a population: the claims about a range of problems are judged on it, with Wilson intervals over its "
    "problems; other problems could give other shares.",
    "Tuning budgets are short (few trials of few epochs); Choi et al. (2019) and Sivaprasad et al. (2020) show that "
    "rankings depend on the budget. The budget is stated and the same for every optimizer.",
    "Rules and thresholds are judgements fixed in advance (each printed beside its verdict); another reasonable "
    "threshold could move a verdict whose interval lies near it.",
    "'Simple', 'easy to implement' and 'fewer hyperparameters' are judged on microdl's own code, a measure of one "
    "implementation.",
    "Only the experiments on many problems and on wider networks run every hyperparameter as tuned by the protocol, "
    "each evaluation seed with its own tuning seed's choice; GD against SGD and SGD's noise run plain GD and SGD "
    "(the claims are about them) at the effective rate of the consensus choice, so the tuning's noise is not in "
    "their intervals. The drift, noisy and sparse, combination, landscape and dataset-size experiments tune the "
    "learning rate alone on a grid (widened where its best sits on an edge), every other hyperparameter at torch's "
    "default. Their claims are about a mechanism at its stated defaults (an accumulator, momentum, a schedule), and "
    "the protocol's trials, folds and tuning seeds on each of their streams and restarts would multiply the "
    "report's budget several times; a tuned β, ρ or ε could move those verdicts.",
    "Timings are kept for reference only (the machine may be shared); no verdict depends on wall-clock time.",
]


def _max_width(results: dict[str, Any]) -> str:
    if "sensitivity" not in results:
        return "—"
    from microdl.experiments.report import sensitivity

    r = results["sensitivity"]
    return fmt(max(sensitivity.width(r, k)["width"] for k in r["curves"]), ".2g")


def build_document(settings: Any, results: dict[str, Any], verdicts: dict[str, Verdict], figures: dict[str, list[str]],
                   experiments: Sequence[Any], meta: dict[str, Any]) -> Document:
    """The whole report as a Document."""
    doc = Document(TITLE)
    doc.paragraph(f"The article under test: [“{ARTICLE_TITLE}”](article.md) (its text, as tested, is in "
                  "`article.md` beside this report).")
    counts = verdict_counts(verdicts)
    if meta.get("quick"):
        doc.paragraph(f"**{QUICK_BANNER}**")
    doc.paragraph(
        "The article lists advantages and disadvantages of GD, SGD, Adam, Adagrad, RMSprop and AdaDelta: 31 claims "
        "in all. Each is put to a measurement here, on small networks and problems built so that the claim could "
        "come out either way, and decided by a rule fixed before it ran, written beside its verdict with the "
        f"measured effect and its 95% interval. The whole design ran {meta.get('replications', 1)} times under "
        "independent seeds; a claim whose verdict did not agree in most replications is *unstable*. "
        f"**{_totals(counts)}.** The verdicts hold for these problems, networks and budgets; they are evidence, not "
        "general truths.")
    doc.summary("What the evidence says about choosing an optimizer:", _summary_points(results, verdicts))

    doc.heading("Verdicts", anchor="verdicts")
    titles = {e.KEY: e.TITLE for e in experiments}
    rows = []
    for i, c in enumerate(CLAIMS, 1):
        v = verdicts[c.id]
        agreed = f"{round(v.stability * len(v.replications))}/{len(v.replications)}" if v.replications else "—"
        rows.append([i, c.optimizer, f"[{c.text}](#claim-{c.id})", f"[[{v.verdict}]]", agreed, _compact(v),
                     f"[{titles[c.experiment]}](#{c.experiment})"])
    doc.table(["#", "optimizer", "claim", "verdict", "agreed", "each part: value [95% interval]; needs", "section"],
              rows, caption=f"totals: {_totals(counts)}; agreed: replications whose verdict was the one shown; "
                            "each claim links to its verdict, each section to its figures")

    doc.heading("How to read the verdicts", anchor="method")
    doc.bullets([
        "**supported** — the effect's whole 95% interval lies on the claim's side of the rule's threshold; **not "
        "supported** — it lies on the other side; **inconclusive** — it straddles the threshold; **mixed** — a "
        "property measured in several ways holds in some and not in others; a claim that joins its parts with "
        "*and* is not supported as soon as one part is not; **unstable** — the verdict did not agree in most of the "
        "report's independent replications.",
        f"Intervals: Student-t over the {len(settings.seeds)} evaluation seeds of each comparison (paired where two "
        "optimizers share a seed; ratios on the log scale), each seed with its own tuning seed's choice, so that "
        "the tuning's noise is inside the interval; Wilson intervals for shares of independent restarts, and for "
        "shares of problems in the claims about a range of problems (the problems are the unit); a percentile "
        "bootstrap for statistics that are not means; counts read from the code are exact. A simulation test in "
        "the suite checks that these 95% intervals cover a known effect at least 90% of the time. A diverged run "
        "is a failure of its optimizer, never dropped.",
        f"Replications: the whole design ran {meta.get('replications', 1)} times from report seed "
        f"{meta.get('seed', 0)}, each with its own evaluation seeds, tuning seeds, restarts and streams; the verdict "
        "is the one most replications reached (figures and intervals shown: the first replication that reached it).",
        "Hyperparameters are always tuned on seeds (or streams) that the judged runs do not use.",
        "Every number is in `results.json`; every figure and table is built from it.",
    ])

    doc.heading("Set-up", anchor="setup")
    doc.bullets([
        f"commit `{meta['commit']}`; microdl {meta['microdl']}, numpy {meta['numpy']}, numba {meta['numba']}, "
        f"Python {meta['python']}; {meta['machine']}, {meta['cpus']} CPUs, {meta['numba_threads']} Numba thread(s) "
        f"per run, {meta['jobs']} job(s) ({meta['backend']}); {meta['date']}; total {format_seconds(meta['seconds'])}",
        "time per experiment (CPU time of this process in brackets; the machine may have been shared): "
        + ", ".join(f"{k} {format_seconds(t)} ({format_seconds(meta['cpu_seconds'][k])})"
                    for k, t in meta["timings"].items()),
        f"reproduce with `microdl report --seed {meta.get('seed', 0)} --out report`"
        f"{' --quick' if meta.get('quick') else ''}; the settings are in `results.json`",
    ])

    doc.heading("Limitations", anchor="limitations")
    doc.bullets(_LIMITATIONS)

    by_experiment: dict[str, list[Claim]] = {}
    for c in CLAIMS:
        by_experiment.setdefault(c.experiment, []).append(c)
    for e in experiments:
        doc.heading(e.TITLE, anchor=e.KEY)
        e.describe(doc, results, settings)
        cards = [card(c, verdicts[c.id]) for c in by_experiment.get(e.KEY, [])]
        doc.evidence([(f, f"{e.TITLE}: {f}") for f in figures.get(e.KEY, [])], cards)
    doc.heading("References", anchor="references")
    doc.bullets(list(REFERENCES.values()))
    return doc


def write_files(out: Path, doc: Document, settings: Any, results: dict[str, Any], verdicts: dict[str, Verdict],
                meta: dict[str, Any]) -> None:
    """``report.md``, ``report.html`` and ``results.json`` (settings, metadata, claims, rules, verdicts, results)."""
    (out / "report.md").write_text(doc.markdown(), encoding="utf-8")
    (out / "article.md").write_text(ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    (out / "report.html").write_text(doc.html(), encoding="utf-8")
    payload = {"settings": asdict(settings), "meta": meta, "claims": [asdict(c) for c in CLAIMS],
               "rules": {k: [asdict(r) for r in rules] for k, rules in RULES.items()},
               "verdicts": {k: v.to_dict() for k, v in verdicts.items()}, "results": results}
    (out / "results.json").write_text(json.dumps(strict_json(payload), indent=1, allow_nan=False), encoding="utf-8")
