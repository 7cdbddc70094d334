"""Six optimizers on many problems: who converges quickly, where, and how much tuning matters.

Every optimizer trains an MLP on each problem of the problem set (:mod:`~.problem_set`: every tabular dataset
scikit-learn bundles, and generated families that vary conditioning, dimension, noise, class balance, sparsity
and the architecture), once per evaluation seed, first with hyperparameters tuned for that problem and then at
torch.optim's defaults. Tuning follows :mod:`microdl.experiments.tuning` (Choi et al. 2019: every relevant
hyperparameter, the same number of quasi-random trials per optimizer, cross-validation of the training data,
defaults as a contender, edges that widen the space) on the design's own *tuning seeds*; evaluation seed *i* uses
the choice of tuning seed *i* mod (number of tuning seeds), so the tuning's own noise is inside every interval
(nested replication). A problem's target loss is 90% of the way from the initial training loss to the best
final one among the six (tuned); an optimizer is *quick* on a problem when it reaches the target on every seed
within twice the epochs of the fastest optimizer there (at least two epochs of slack). Claims about "a wide
range of problems" are about problems, so their intervals resample problems (Wilson's interval over the problem
set), not seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.comparison import DEFAULT_TARGET, first_reach, target_loss
from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, fmt, interval, save_figure
from microdl.experiments.report.verdicts import TUNING_GAIN, Verdict
from microdl.experiments.report.verdicts import judge as apply_rules
from microdl.experiments.runs import SIX_OPTIMIZERS as SIX

KEY = "wide"
TITLE = "Six optimizers on many problems"

#: "Quick": within this many times the fastest optimizer's epochs to the target.
QUICK_FACTOR = 2.0
#: A test loss within this factor of a dataset's best counts as "near the best".
NEAR_BEST = 1.10
#: Losses are floored here before any ratio: on a tiny dataset a run can predict every test sample with
#: probability 1 to float precision, a cross-entropy of exactly 0, which no ratio survives.
LOSS_FLOOR = 1e-6


def run(ctx: Context) -> dict[str, Any]:
    from microdl.experiments.report.problem_set import PROBLEMS, load_problem
    from microdl.experiments.runs import Budget, RunSpec, default_lr, execute, threads_per_run
    from microdl.experiments.tuning import FOLDS, tune

    s, ex = ctx.settings, ctx.execution
    threads = threads_per_run(ex["jobs"], ex["backend"])
    out: dict[str, Any] = {"datasets": {}, "seeds": list(s.seeds), "tune_seeds": list(s.tune_seeds),
                           "epochs": s.epochs, "trials": s.trials, "tune_epochs": s.tune_epochs, "folds": FOLDS}
    for name in s.datasets:
        problem = PROBLEMS[name]
        data = {seed: load_problem(name, seed) for seed in dict.fromkeys((*s.tune_seeds, *s.seeds))}
        first = data[s.tune_seeds[0]]
        layers = (first.n_features, *problem.hidden, first.n_outputs)
        tuning = tune({t: (data[t].X_train, data[t].y_train) for t in s.tune_seeds}, layer_sizes=layers,
                      loss=first.loss, optimizers=SIX, budget=Budget("epochs", s.tune_epochs),
                      batch_size=s.batch_size, trials=s.trials, labels={"dataset": name}, threads=threads, **ex)
        # nested replication: evaluation seed i runs with the choice of tuning seed i mod T
        assign = {e: s.tune_seeds[i % len(s.tune_seeds)] for i, e in enumerate(s.seeds)}
        specs = []
        for e in s.seeds:
            d = data[e]
            for o in SIX:
                pick = tuning[o]["per_seed"][str(assign[e])]["hyper"]
                common = (e, layers, d.loss, d.X_train, d.y_train, d.X_test, d.y_test, Budget("epochs", s.epochs),
                          s.batch_size)
                specs.append(RunSpec(o, pick["lr"], *common, threads=threads, hyper=_kwargs(pick),
                                     labels={"dataset": name, "phase": "tuned"}))
                specs.append(RunSpec(o, default_lr(o), *common, threads=threads,
                                     labels={"dataset": name, "phase": "default"}))
        runs = execute(specs, desc=name, **ex)
        by = {(r["phase"], r["optimizer"], r["seed"]): r for r in runs}
        wilson = _early_stopped_test_error(name, data, layers, tuning, assign, s, threads, ex) \
            if first.task == "classification" else None
        tuned_runs = [r for r in runs if r["phase"] == "tuned"]
        initial = float(np.mean([r["train_loss"][0] for r in tuned_runs]))
        finals = {o: [by[("tuned", o, e)]["final_train_loss"] for e in s.seeds if not by[("tuned", o, e)]["diverged"]]
                  for o in SIX}
        best = min((float(np.mean(v)) for v in finals.values() if v), default=initial)
        target = target_loss(initial, best, DEFAULT_TARGET)
        out["datasets"][name] = {
            "task": first.task, "family": problem.family, "hidden": list(problem.hidden),
            "n_train": int(first.X_train.shape[0]), "target": float(target),
            "lrs": {o: float(tuning[o]["lr"]) for o in SIX},
            "default_lrs": {o: default_lr(o) for o in SIX},
            "tuning": {o: {k: tuning[o][k] for k in ("hyper", "spread", "space", "trials", "rounds", "widened",
                                                      "on_edge", "defaults")}
                       | {"chosen": {t: v["hyper"] for t, v in tuning[o]["per_seed"].items()},
                          "chose_default": {t: v["chose_default"] for t, v in tuning[o]["per_seed"].items()},
                          "scores": {t: v["scores"] for t, v in tuning[o]["per_seed"].items()},
                          "best_score": {t: v["score"] for t, v in tuning[o]["per_seed"].items()}}
                       for o in SIX},
            "assign": {str(e): t for e, t in assign.items()}, "early_stopped": wilson,
            "tuned": _numbers(by, "tuned", target, s.seeds), "default": _numbers(by, "default", target, s.seeds)}
        ctx.advance(1 / len(s.datasets))
    return out


#: The optimizers of the early-stopping comparison (Wilson et al. 2017: adaptive methods against SGD with
#: momentum, both tuned), and the share of the training data held out to choose the stopping epoch.
EARLY_STOP_OPTIMIZERS, EARLY_STOP_VALIDATION = ("sgd", "adam"), 0.2


def _early_stopped_test_error(name: str, data: dict[int, Any], layers: tuple[int, ...], tuning: dict[str, Any],
                              assign: dict[int, int], s: Any, threads: int | None,
                              ex: dict[str, Any]) -> dict[str, list[float]]:
    """Per optimizer of EARLY_STOP_OPTIMIZERS, per evaluation seed: the test error (1 − accuracy) after early
    stopping, as Wilson et al. (2017) compare optimizers. Each run trains on 80% of the training data and records
    the validation loss on the rest every epoch; the stopping epoch is the one with the lowest validation loss;
    the same run (same seed, so the same trajectory) is then replayed to that epoch and scored on the test set."""
    from microdl.experiments.runs import Budget, RunSpec, execute
    from microdl.experiments.tuning import validation_split

    first, second = [], []
    for e in s.seeds:
        d = data[e]
        X_fit, y_fit, X_val, y_val = validation_split(d.X_train, d.y_train, EARLY_STOP_VALIDATION, e, True)
        for o in EARLY_STOP_OPTIMIZERS:
            pick = tuning[o]["per_seed"][str(assign[e])]["hyper"]
            first.append(RunSpec(o, pick["lr"], e, layers, d.loss, X_fit, y_fit, X_val, y_val,
                                 Budget("epochs", s.epochs), s.batch_size, eval_name="val", threads=threads,
                                 hyper=_kwargs(pick), labels={"dataset": name, "phase": "early-stop"}))
    curves = execute(first, desc=f"{name}: early stopping", **ex)
    for spec, r in zip(first, curves):
        val = [math.inf if v is None else v for v in r["val_loss"][1:]]
        stop = 1 + int(np.argmin(val)) if val and np.isfinite(min(val)) else s.epochs
        d = data[spec.seed]
        X_fit, y_fit, _, _ = validation_split(d.X_train, d.y_train, EARLY_STOP_VALIDATION, spec.seed, True)
        second.append(RunSpec(spec.optimizer, spec.lr, spec.seed, layers, d.loss, X_fit, y_fit, d.X_test, d.y_test,
                              Budget("epochs", stop), s.batch_size, threads=threads, hyper=spec.hyper,
                              labels={"dataset": name, "phase": "early-stopped", "stop": stop}))
    scored = execute(second, desc=f"{name}: early-stopped test", **ex)
    out: dict[str, list[float]] = {o: [] for o in EARLY_STOP_OPTIMIZERS}
    for r in scored:  # in the order of the seeds
        acc = r["final_test_metric"]
        out[r["optimizer"]].append(1.0 if r["diverged"] or acc is None else 1.0 - float(acc))
    out["stop"] = {o: [r["stop"] for r in scored if r["optimizer"] == o] for o in EARLY_STOP_OPTIMIZERS}
    return out


def _kwargs(point: dict[str, float]) -> dict[str, Any]:
    from microdl.experiments.tuning import to_kwargs

    return to_kwargs(point)


def _numbers(by: dict[tuple[str, str, int], Any], phase: str, target: float,
             seeds: tuple[int, ...]) -> dict[str, Any]:
    """Per optimizer, per seed (in the order of ``seeds``): epochs to the target (None: never), final losses,
    the test metric, divergence, and the training curve."""
    out = {}
    for o in SIX:
        runs = [by[(phase, o, e)] for e in seeds]
        out[o] = {"epochs_to_target": [None if r["diverged"] else first_reach(r["train_loss"], target)
                                       for r in runs],
                  "final_train_loss": [r["final_train_loss"] for r in runs],
                  "final_test_loss": [r["final_test_loss"] for r in runs],
                  "final_test_metric": [r["final_test_metric"] for r in runs],
                  "diverged": [bool(r["diverged"]) for r in runs], "train_loss": [r["train_loss"] for r in runs],
                  "grad_evals": [r["grad_evals"][-1] for r in runs]}
    return out


# -- the statistics ----------------------------------------------------------------------------------------
def _array(r: dict[str, Any], which: str, key: str, missing: float) -> np.ndarray:
    """(datasets, optimizers, seeds) array of one per-seed number, ``missing`` where it is None; losses are
    floored at LOSS_FLOOR."""
    a = np.array([[[missing if v is None else float(v) for v in r["datasets"][d][which][o][key]] for o in SIX]
                  for d in r["datasets"]], dtype=float)
    return np.maximum(a, LOSS_FLOOR) if key.endswith("_loss") else a  # NaN stays NaN


def quick_table(epochs: np.ndarray) -> np.ndarray:
    """(datasets, optimizers) booleans from epochs to the target per seed (inf: never reached): reached on
    every seed, and the mean is within QUICK_FACTOR of the fastest optimizer's (at least 2 epochs of slack)."""
    mean = epochs.mean(axis=-1)  # inf if any seed missed
    fastest = np.min(mean, axis=1, keepdims=True)
    return np.isfinite(mean) & (mean <= QUICK_FACTOR * np.maximum(fastest, 1.0))


def _test_losses(r: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(datasets, optimizers, seeds) test losses at tuned and at default settings, a diverged run counted as a
    failure (NOTE [a diverged run] in :mod:`~.stats`: FAILURE_FACTOR times the worst loss of its problem's runs
    that did not diverge), floored at LOSS_FLOOR.

    A run flagged diverged is a failure even where its last loss is finite, and that loss (it can be 1e7 or more)
    is never the yardstick of the failure: it is set aside before the worst loss is taken, so the penalty is the
    same however far the run went before it was stopped.
    """
    tuned = _array(r, "tuned", "final_test_loss", math.nan)
    default = _array(r, "default", "final_test_loss", math.nan)
    for i, d in enumerate(r["datasets"]):
        for j, o in enumerate(SIX):
            for which, a in (("tuned", tuned), ("default", default)):
                a[i, j, np.array(r["datasets"][d][which][o]["diverged"], dtype=bool)] = math.nan
        tuned[i], default[i] = stats.with_failures(tuned[i], default[i])
    return np.maximum(tuned, LOSS_FLOOR), np.maximum(default, LOSS_FLOOR)


def _test_loss_stats(test: np.ndarray) -> tuple[np.ndarray, int]:
    """Per dataset, whether the all-round best optimizer is >10% behind that dataset's best, and that
    optimizer's index. The all-round best has the lowest geometric mean of (test loss / dataset's best)."""
    mean = test.mean(axis=-1)
    rel = mean / mean.min(axis=1, keepdims=True)
    best = int(np.argmin(np.mean(np.log(rel), axis=0)))
    return rel[:, best] > NEAR_BEST, best


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    names = list(r["datasets"])
    epochs = _array(r, "tuned", "epochs_to_target", math.inf)
    epochs_default = _array(r, "default", "epochs_to_target", math.inf)
    quick = quick_table(epochs)
    quick_default = quick_table(epochs_default)
    out: dict[str, Verdict] = {}

    def listing(o: int) -> str:
        mean = epochs[:, o].mean(axis=-1)
        fastest = epochs.mean(axis=-1).min(axis=1)
        return ", ".join(f"{d} {fmt(m, '.1f')} vs {fmt(f, '.1f')}{' (quick)' if q else ''}"
                         for d, m, f, q in zip(names, mean, fastest, quick[:, o]))

    for o in ("adam", "rmsprop", "adadelta"):
        k = SIX.index(o)
        est = stats.proportion(quick[:, k], unit="problems")
        out[f"{o}-wide"] = apply_rules(
            f"{o}-wide", {"quick share": est},
            f"quick on {int(quick[:, k].sum())}/{len(names)} problems at tuned settings ({interval(est, '.2f')}, "
            f"Wilson over problems), {int(quick_default[:, k].sum())}/{len(names)} at torch's defaults; mean epochs "
            f"to the target, {o} vs the fastest: {listing(k)}")
    k = SIX.index("gd")
    est = stats.proportion(~quick[:, k], unit="problems")
    out["gd-slow"] = apply_rules(
        "gd-slow", {"slow share": est},
        f"not quick on {int((~quick[:, k]).sum())}/{len(names)} problems ({interval(est, '.2f')}); mean epochs to "
        f"the target, GD vs the fastest: {listing(k)} (an epoch is one step for GD; see also GD against SGD)")

    # Wilson et al. 2017: test error after early stopping, Adam minus SGD with momentum (both tuned); per problem
    # the mean over seeds, then a t interval over the classification problems
    early = {d: v["early_stopped"] for d, v in r["datasets"].items() if v.get("early_stopped")}
    diffs = [float(np.mean(np.array(v["adam"]) - np.array(v["sgd"]))) for v in early.values()]
    gap = stats.t_interval(diffs, unit="classification problems")
    out["adam-suboptimal"] = apply_rules(
        "adam-suboptimal", {"test error": gap},
        f"test error after early stopping (the epoch of lowest validation loss on a held-out fifth of the training "
        f"data), Adam minus SGD with momentum, both tuned: {interval(gap, '.3f')} (mean over "
        f"{len(diffs)} classification problems); per problem: "
        + ", ".join(f"{d} {x:+.3f}" for d, x in zip(early, diffs)),
        notes=["The landscape experiment's teacher–student restarts show where each optimizer's training loss ends."])

    test, test_default = _test_losses(r)
    behind, best = _test_loss_stats(test)
    problem = stats.proportion(behind, unit="problems")
    # per problem, the mean over optimizers of log(default / tuned), seed means first; a t interval over problems
    log_gain = np.mean(np.log(test_default.mean(axis=-1) / test.mean(axis=-1)), axis=1)
    tuning = stats.t_interval(log_gain, unit="problems", transform="exp")
    winners = [SIX[int(np.argmin(test[i].mean(axis=-1)))] for i in range(len(names))]
    best_default = np.min(test_default.mean(axis=-1), axis=1) / np.min(test.mean(axis=-1), axis=1)
    out["overall"] = apply_rules(
        "overall", {"problem": problem, "hyperparameters": tuning},
        f"lowest mean test loss at tuned settings: {', '.join(f'{d} {w}' for d, w in zip(names, winners))}; the "
        f"all-round best ({SIX[best]}) is more than 10% behind the best on {int(behind.sum())}/{len(names)} "
        f"problems ({interval(problem, '.2f')}); torch's defaults give {interval(tuning, '.3g')} times the tuned "
        f"test loss (geometric mean over problems and optimizers; above {TUNING_GAIN:g} means tuning matters); the "
        f"best of the six at their defaults is within a factor {float(np.exp(np.mean(np.log(best_default)))):.3f} "
        "of the best tuned one (geometric mean over problems; Schmidt et al. 2021 found a few percent)")
    return out


# -- figures -----------------------------------------------------------------------------------------------
def _heatmap(ax: Any, values: np.ndarray, rows: list[str], cols: tuple[str, ...], title: str, marks: Any = None,
             spec: str = ".2g", vmax: float = 10.0) -> None:
    from matplotlib.colors import LogNorm

    shown = np.where(np.isfinite(values), values, vmax)
    ax.imshow(np.clip(shown, 1.0, vmax), cmap="OrRd", norm=LogNorm(1.0, vmax), aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            text = "—" if not np.isfinite(v) else format(v, spec)
            dark = not np.isfinite(v) or v >= vmax ** 0.75  # white text on the darkest cells, to stay readable
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black",
                    fontweight="bold" if marks is not None and marks[i, j] else "normal")
            if marks is not None and marks[i, j]:
                ax.add_patch(_box(j, i))
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)


def _box(x: float, y: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.46, y - 0.46), 0.92, 0.92, fill=False, edgecolor="#2e7d32", lw=1.8)


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import band_plot, color_of, new_figure

    r = results[KEY]
    names = list(r["datasets"])
    epochs = _array(r, "tuned", "epochs_to_target", math.inf)
    mean = epochs.mean(axis=-1)
    with np.errstate(invalid="ignore"):  # a problem no optimizer reached on every seed: inf / inf, shown as "—"
        slowdown = mean / np.maximum(np.min(mean, axis=1, keepdims=True), 1.0)
    test_all, default_all = _test_losses(r)
    test, test_default = test_all.mean(axis=-1), default_all.mean(axis=-1)
    fig, axes = new_figure(1, 3, width=15, height=0.45 * len(names) + 2.2)
    _heatmap(axes[0][0], slowdown, names, SIX, "epochs to the target / the fastest's (tuned rates)\n"
             "boxed: quick (every seed, ≤ 2× the fastest); —: missed on some seed", quick_table(epochs))
    _heatmap(axes[0][1], test / np.nanmin(test, axis=1, keepdims=True), names, SIX,
             "final test loss / the dataset's best (tuned rates)\nboxed: within 10% of the best",
             test / np.nanmin(test, axis=1, keepdims=True) <= NEAR_BEST, spec=".3g", vmax=3.0)
    _heatmap(axes[0][2], test_default / test, names, SIX, "test loss at torch's default rate / at the tuned rate",
             spec=".3g", vmax=10.0)
    figures = save_figure(fig, out, "wide.png", dpi=110)

    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = new_figure(rows, cols, width=15, height=3.0)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        d = r["datasets"][name]
        for o in SIX:
            curves = d["tuned"][o]["train_loss"]
            band_plot(ax, [list(range(len(c))) for c in curves], curves, o)
        ax.axhline(d["target"], color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{name} ({d['task']}, {d['n_train']} samples)", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(True, alpha=0.3)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].set_ylabel("training loss (tuned rates)")
    handles = [axes[0][0].plot([], [], color=color_of(o), label=o)[0] for o in SIX]
    fig.legend(handles=handles, loc="lower right", ncol=3, fontsize=9, title="mean over seeds, band: min–max; "
               "dashed: target", title_fontsize=8)
    return figures + save_figure(fig, out, "wide_curves.png", dpi=100)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    from microdl.experiments.report.problem_set import PROBLEMS
    from microdl.experiments.tuning import search_space

    r = results[KEY]
    names = list(r["datasets"])
    doc.paragraph(
        f"Every optimizer trains an MLP (ReLU, batch {settings.batch_size}; GD: the full training set) for "
        f"{r['epochs']} epochs on each of {len(names)} problems, once per evaluation seed "
        f"({', '.join(map(str, r['seeds']))}): a seed fixes the split, the initial weights and the batch order, the "
        f"same for every optimizer. Hyperparameters were tuned by the protocol of microdl.experiments.tuning after "
        f"Choi et al. (2019): every relevant hyperparameter, {r['trials']} scrambled-Sobol trials plus torch's "
        f"defaults per optimizer (the same for all), each scored by its mean final validation loss over "
        f"{r['folds']}-fold cross-validation of the training data (one pooled split on large sets), "
        f"{r['tune_epochs']}-epoch trials, on tuning seeds {', '.join(map(str, r['tune_seeds']))}. Evaluation seed i "
        "uses the choice of tuning seed i mod (number of tuning seeds), so that the tuning's own noise is inside "
        f"every interval. The target of a problem is {DEFAULT_TARGET:.0%} of the way from the initial training loss "
        "to the best final one among the six.")
    doc.table(["optimizer", "searched hyperparameters (before any widening)"],
              [[o, "; ".join(f"{k}: {dim.describe()}" for k, dim in search_space(o).items())] for o in SIX],
              caption="the search spaces (microdl.experiments.tuning.SEARCH_SPACES)")
    doc.table(["problem", "family", "hidden", "train samples", "what"],
              [[d, v["family"], "-".join(map(str, v["hidden"])), str(v["n_train"]),
                PROBLEMS[d].note if d in PROBLEMS else ""] for d, v in r["datasets"].items()],
              caption="the problem set (microdl.experiments.report.problem_set.PROBLEMS; add your own there)")
    rows = []
    for d in names:
        v = r["datasets"][d]
        cells = []
        for o in SIX:
            t = v["tuning"][o]
            lo, hi = t["spread"]["lr"]
            mark = " ⚠edge" if t["on_edge"] else ""
            wid = f" ↔{len(t['widened'])}" if t["widened"] else ""
            defaults = sum(t["chose_default"].values())
            cells.append(f"{fmt(lo, '.2g')}–{fmt(hi, '.2g')}{wid}{mark}" + (f" (d{defaults})" if defaults else ""))
        rows.append([d, *cells])
    doc.table(["problem", *SIX], rows,
              caption="chosen learning rate, lowest–highest over the tuning seeds (every other hyperparameter's "
                      "choices are in results.json); ↔n: the space widened n times at an edge; ⚠edge: a best value "
                      "still on an edge after widening; (dn): the defaults won on n tuning seeds")
    rows = []
    for d in names:
        v = r["datasets"][d]
        cells = []
        for o in SIX:
            test = [x for x in v["tuned"][o]["final_test_loss"] if x is not None]
            metric = [x for x in v["tuned"][o]["final_test_metric"] if x is not None]
            bad = sum(v["tuned"][o]["diverged"])
            cells.append((f"{fmt(float(np.mean(test)), '.3g')} ({fmt(float(np.mean(metric)), '.2f')})"
                          if test and metric else "—") + (f" {bad}✗" if bad else ""))
        rows.append([d, *cells])
    doc.table(["problem", *SIX], rows, caption="final test loss at tuned settings, mean over seeds (in brackets: "
              "test accuracy, or R² for regression; n✗: diverged runs, counted as failures in every verdict)")
