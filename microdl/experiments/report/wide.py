"""Six optimizers on many problems: who converges quickly, where, and how much the learning rate matters.

Every optimizer trains the same network on each dataset, once per seed, first at rates tuned for that dataset
and then at torch.optim's defaults. The rates are tuned on *other* seeds (``tune_seeds``), on a validation split
of their training data, so that no run judged here chose its own rate. A dataset's target loss is 90% of the
way from the initial training loss to the best final one among the six (at tuned rates); an optimizer is
*quick* on a dataset when it reaches the target on every seed within twice the epochs of the fastest
optimizer there (at least two epochs of slack, since the fastest often needs one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.comparison import DEFAULT_TARGET, first_reach
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
    from microdl.datasets import load_dataset
    from microdl.experiments.comparison import compare
    from microdl.experiments.runs import Budget, default_lr, threads_per_run
    from microdl.experiments.tuning import tune_lrs

    s, ex = ctx.settings, ctx.execution
    common = {"seeds": s.seeds, "epochs": s.epochs, "batch_size": s.batch_size, "hidden": s.hidden, **ex}
    out: dict[str, Any] = {"datasets": {}, "seeds": list(s.seeds), "tune_seeds": list(s.tune_seeds),
                           "epochs": s.epochs, "grid": list(s.lr_grid)}
    for name in s.datasets:
        data = {seed: load_dataset(name, random_state=seed) for seed in s.tune_seeds}
        first = data[s.tune_seeds[0]]
        tuning = tune_lrs({seed: (d.X_train, d.y_train) for seed, d in data.items()},
                          layer_sizes=(first.n_features, *s.hidden, first.n_outputs), loss=first.loss,
                          optimizers=SIX, budget=Budget("epochs", s.epochs), batch_size=s.batch_size,
                          grid=s.lr_grid, labels={"dataset": name}, threads=threads_per_run(ex["jobs"], ex["backend"]),
                          **ex)
        lrs = {o: float(tuning[o]["lr"]) for o in SIX}
        tuned = compare([name], SIX, lrs=lrs, **common)
        default = compare([name], SIX, lrs={o: default_lr(o) for o in SIX}, **common)
        target = tuned.target(name)["target"]
        out["datasets"][name] = {
            "task": first.task, "n_train": int(first.X_train.shape[0]), "target": float(target), "lrs": lrs,
            "default_lrs": {o: default_lr(o) for o in SIX},
            "tuning": {o: {"val_loss": tuning[o]["val_loss"], "diverged": tuning[o]["diverged"]} for o in SIX},
            "tuned": _numbers(tuned, name, target, s.seeds), "default": _numbers(default, name, target, s.seeds)}
        ctx.advance(1 / len(s.datasets))
    return out


def _numbers(result: Any, name: str, target: float, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Per optimizer, per seed (in the order of ``seeds``): epochs to the target (None: never), final losses,
    the test metric, divergence, and the training curve."""
    out = {}
    for o in SIX:
        runs = sorted(result.runs_of(name, o), key=lambda r: seeds.index(r["seed"]))
        out[o] = {"epochs_to_target": [first_reach(r["train_loss"], target) for r in runs],
                  "final_train_loss": [r["final_train_loss"] for r in runs],
                  "final_test_loss": [r["final_test_loss"] for r in runs],
                  "final_test_metric": [r["final_test_metric"] for r in runs],
                  "diverged": [bool(r["diverged"]) for r in runs], "train_loss": [r["train_loss"] for r in runs]}
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


def _test_loss_stats(test: np.ndarray) -> tuple[float, int]:
    """The share of datasets where the all-round best optimizer is >10% behind that dataset's best, and that
    optimizer's index. The all-round best has the lowest geometric mean of (test loss / dataset's best)."""
    mean = np.nanmean(test, axis=-1)
    rel = mean / np.nanmin(mean, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.nanmean(np.log(rel), axis=0)
    best = int(np.nanargmin(score))
    return float(np.mean(rel[:, best] > NEAR_BEST)), best


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    names = list(r["datasets"])
    n_seeds = len(r["seeds"])
    epochs = _array(r, "tuned", "epochs_to_target", math.inf)
    epochs_default = _array(r, "default", "epochs_to_target", math.inf)
    quick = quick_table(epochs)
    quick_default = quick_table(epochs_default)
    out: dict[str, Verdict] = {}

    def share_of(o: int, negate: bool = False) -> stats.Estimate:
        def statistic(idx: np.ndarray) -> float:
            q = quick_table(epochs[:, :, idx])[:, o]
            return float(np.mean(~q if negate else q))
        return stats.bootstrap(n_seeds, statistic)

    def listing(o: int) -> str:
        mean = epochs[:, o].mean(axis=-1)
        fastest = epochs.mean(axis=-1).min(axis=1)
        return ", ".join(f"{d} {fmt(m, '.1f')} vs {fmt(f, '.1f')}{' (quick)' if q else ''}"
                         for d, m, f, q in zip(names, mean, fastest, quick[:, o]))

    for o in ("adam", "rmsprop", "adadelta"):
        k = SIX.index(o)
        est = share_of(k)
        out[f"{o}-wide"] = apply_rules(
            f"{o}-wide", {"quick share": est},
            f"quick on {int(quick[:, k].sum())}/{len(names)} datasets at tuned rates ({interval(est, '.2f')}), "
            f"{int(quick_default[:, k].sum())}/{len(names)} at torch's default rate; mean epochs to the target, "
            f"{o} vs the fastest: {listing(k)}")
    k = SIX.index("gd")
    est = share_of(k, negate=True)
    out["gd-slow"] = apply_rules(
        "gd-slow", {"slow share": est},
        f"not quick on {int((~quick[:, k]).sum())}/{len(names)} datasets ({interval(est, '.2f')}); mean epochs to "
        f"the target, GD vs the fastest: {listing(k)} (an epoch is one step for GD; see also GD against SGD)")

    test = _array(r, "tuned", "final_test_loss", math.nan)
    test_default = _array(r, "default", "final_test_loss", math.nan)
    share, best = _test_loss_stats(test)
    problem = stats.bootstrap(n_seeds, lambda idx: _test_loss_stats(test[:, :, idx])[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        def gain(idx: np.ndarray) -> float:
            ratio = np.nanmean(test_default[:, :, idx], axis=-1) / np.nanmean(test[:, :, idx], axis=-1)
            return float(np.exp(np.nanmean(np.log(ratio))))
    tuning = stats.bootstrap(n_seeds, gain)
    winners = [SIX[int(np.nanargmin(np.nanmean(test[i], axis=-1)))] for i in range(len(names))]
    out["overall"] = apply_rules(
        "overall", {"problem": problem, "hyperparameters": tuning},
        f"lowest mean test loss at tuned rates: {', '.join(f'{d} {w}' for d, w in zip(names, winners))}; the "
        f"all-round best ({SIX[best]}) is more than 10% behind the best on {share:.0%} of the datasets "
        f"({interval(problem, '.2f')}); torch's default rates give {interval(tuning, '.3g')} times the tuned test "
        f"loss (geometric mean; above {TUNING_GAIN:g} means tuning matters)")
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
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
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
    slowdown = mean / np.maximum(np.min(mean, axis=1, keepdims=True), 1.0)
    test = np.nanmean(_array(r, "tuned", "final_test_loss", math.nan), axis=-1)
    test_default = np.nanmean(_array(r, "default", "final_test_loss", math.nan), axis=-1)
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
    r = results[KEY]
    names = list(r["datasets"])
    doc.paragraph(
        f"Every optimizer trains the same MLP (hidden layer {', '.join(map(str, settings.hidden))}, ReLU, batch "
        f"{settings.batch_size}; GD: the full training set) for {r['epochs']} epochs on each dataset, once per seed "
        f"({', '.join(map(str, r['seeds']))}): a seed fixes the split, the initial weights and the batch order, the "
        f"same for every optimizer. Rates were tuned on seeds {', '.join(map(str, r['tune_seeds']))} (a 20% "
        f"validation split of their training data; grid {fmt(min(r['grid']), 'g')} .. {fmt(max(r['grid']), 'g')}, "
        f"{len(r['grid'])} rates), never on the seeds judged here. The target of a dataset is "
        f"{DEFAULT_TARGET:.0%} of the way from the initial training loss to the best final one among the six.")
    doc.table(["dataset", "task", "target", *[f"{o} lr" for o in SIX]],
              [[d, v["task"], fmt(v["target"], ".3g"), *[fmt(v["lrs"][o], "g") for o in SIX]]
               for d, v in r["datasets"].items()], caption="tuned learning rates and each dataset's target loss")
    rows = []
    for d in names:
        v = r["datasets"][d]
        cells = []
        for o in SIX:
            test = [x for x in v["tuned"][o]["final_test_loss"] if x is not None]
            metric = [x for x in v["tuned"][o]["final_test_metric"] if x is not None]
            cells.append(f"{fmt(float(np.mean(test)), '.3g')} ({fmt(float(np.mean(metric)), '.2f')})"
                         if test and metric else "—")
        rows.append([d, *cells])
    doc.table(["dataset", *SIX], rows, caption="final test loss at tuned rates, mean over seeds (in brackets: test "
              "accuracy, or R² for regression)")
