"""Wider networks: SGD, Adagrad, AdaDelta and Adam as the hidden layer grows from tens to a million weights.

On the focus dataset each optimizer trains one hidden layer of every width in ``widths`` at the rate tuned at
the standard width, for the same epochs and seeds. A claim that an optimizer "suffers with many parameters"
predicts that it falls further behind the others as the width grows: rel(w), its final training loss over the
geometric mean of the others' at width w, should grow. The runs also record Adagrad's per-parameter rate
γ/(√S + ε) (NOTE [what a curve measures] and ``track_steps`` in :mod:`microdl.experiments.runs`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, fmt, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules

KEY = "width"
TITLE = "Wider networks"


def run(ctx: Context) -> dict[str, Any]:
    from microdl.datasets import load_dataset
    from microdl.experiments.runs import Budget, RunSpec, execute, threads_per_run

    s, ex = ctx.settings, ctx.execution
    # every hyperparameter as tuned, nested: seed i runs with the choice of its own tuning seed (Context)
    setting = {(o, seed): ctx.tuned_setting(o, seed) for o in s.width_optimizers for seed in s.seeds}
    threads = threads_per_run(ex["jobs"], ex["backend"])
    specs = []
    for seed in s.seeds:
        d = load_dataset(s.focus, random_state=seed)
        for w in s.widths:
            for o in s.width_optimizers:
                lr, hyper = setting[(o, seed)]
                specs.append(RunSpec(o, lr, seed, (d.n_features, w, d.n_outputs), d.loss, d.X_train, d.y_train,
                                     d.X_test, d.y_test, Budget("epochs", s.width_epochs), s.batch_size,
                                     threads=threads, track_steps=True, hyper=hyper, labels={"width": w}))
    runs = execute(specs, desc="width", **ex)
    table: dict[str, Any] = {}
    for w in s.widths:
        row = {}
        for o in s.width_optimizers:
            rr = sorted([r for r in runs if r["width"] == w and r["optimizer"] == o],
                        key=lambda r: s.seeds.index(r["seed"]))
            entry: dict[str, Any] = {"n_params": rr[0]["n_params"], "lr": [setting[(o, e)][0] for e in s.seeds],
                                     "hyper": [setting[(o, e)][1] for e in s.seeds],
                                     "final_train_loss": [r["final_train_loss"] for r in rr],
                                     "train_loss": [r["train_loss"] for r in rr],
                                     "step_size": [r["step_size"] for r in rr],
                                     "diverged": [bool(r["diverged"]) for r in rr]}
            if "effective_lr" in rr[0]:
                entry["effective_lr"] = [r["effective_lr"] for r in rr]
                entry["effective_spread"] = [r["effective_spread"] for r in rr]
            row[o] = entry
        table[str(w)] = row
    return {"dataset": s.focus, "widths": list(s.widths), "optimizers": list(s.width_optimizers),
            "epochs": s.width_epochs, "seeds": list(s.seeds), "table": table}


def _losses(r: dict[str, Any], w: int, o: str) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in r["table"][str(w)][o]["final_train_loss"]], dtype=float)


def relative(r: dict[str, Any], w: int, o: str) -> np.ndarray:
    """Per seed: o's final training loss over the geometric mean of the other optimizers' at width w."""
    others = [_losses(r, w, x) for x in r["optimizers"] if x != o]
    with np.errstate(divide="ignore", invalid="ignore"):
        gm = np.exp(np.mean(np.log(np.maximum(others, 1e-300)), axis=0))
        return _losses(r, w, o) / gm


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    ws, opts = r["widths"], r["optimizers"]
    out: dict[str, Verdict] = {}
    for o in ("adagrad", "adadelta"):
        if o not in opts:
            continue
        rel = {w: relative(r, w, o) for w in ws}
        trend = stats.paired_ratio(rel[ws[-1]], rel[ws[0]])
        out[f"{o}-large"] = apply_rules(
            f"{o}-large", {"width trend": trend},
            f"{o}'s loss relative to the others (geometric mean over seeds): "
            + ", ".join(f"{fmt(_gm(rel[w]), '.3g')} at width {w} ({r['table'][str(w)][o]['n_params']:,} parameters)"
                        for w in ws)
            + f"; widest over narrowest {interval(trend)}")
    if "adagrad" in opts:
        small = ws[0]
        others = [_losses(r, small, x) for x in opts if x != "adagrad"]
        median = np.median(np.array(others), axis=0)
        est = stats.paired_ratio(_losses(r, small, "adagrad"), median)
        out["adagrad-small"] = apply_rules(
            "adagrad-small", {"smallest width": est},
            f"at width {small} ({r['table'][str(small)]['adagrad']['n_params']:,} parameters), mean final training "
            "loss " + ", ".join(f"{x} {fmt(float(np.nanmean(_losses(r, small, x))), '.3g')}" for x in opts)
            + f"; Adagrad over the median of the others {interval(est)}")
        spread = np.array([[np.nan if v is None else v for v in r["table"][str(w)]["adagrad"]["effective_spread"]]
                           for w in ws], dtype=float)
        est = stats.bootstrap(spread.shape[1], lambda idx: float(np.min(np.nanmean(spread[:, idx], axis=1))))
        out["adagrad-per-param"] = apply_rules(
            "adagrad-per-param", {"spread": est},
            "the 90th/10th percentile ratio of Adagrad's per-parameter rates after training (mean over seeds): "
            + ", ".join(f"{fmt(float(np.nanmean(spread[k])), '.3g')} at width {w}" for k, w in enumerate(ws))
            + f"; smallest {interval(est)}")
    return out


def _rates(r: dict[str, Any], w: int, o: str) -> list[float]:
    """The rate of each seed (one number in reports written before the rates were nested)."""
    lr = r["table"][str(w)][o]["lr"]
    return [float(x) for x in lr] if isinstance(lr, list) else [float(lr)]


def _gm(x: np.ndarray) -> float:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.mean(np.log(x)))) if x.size else math.nan


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import band_plot, color_of, new_figure

    r = results[KEY]
    ws, opts = r["widths"], r["optimizers"]
    cols = len(ws)
    fig, axes = new_figure(2, cols, width=3.7 * cols, height=3.5)
    for ax, w in zip(axes[0], ws):
        for o in opts:
            curves = r["table"][str(w)][o]["train_loss"]
            band_plot(ax, [list(range(len(c))) for c in curves], curves, o)
        ax.set_title(f"width {w} ({r['table'][str(w)][opts[0]]['n_params']:,} parameters)", fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"{r['dataset']}: training loss")
    axes[0][0].legend(fontsize=7)
    bottom = axes[1]
    ax = bottom[0]
    for o in opts:
        ax.plot(ws, [_gm(relative(r, w, o)) for w in ws], marker="o", color=color_of(o), label=o)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_title("final loss / geometric mean of the others'", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if "adagrad" in opts and len(bottom) > 1:
        ax = bottom[1]
        for k, w in enumerate(ws):
            eff = np.nanmean(np.array(r["table"][str(w)]["adagrad"]["effective_lr"], dtype=float), axis=0)
            ax.plot(range(1, len(eff) + 1), eff, marker=".", label=f"width {w}", color=f"C{k}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title("Adagrad: median of 1/(√S + ε) over parameters", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if len(bottom) > 2:
        ax = bottom[2]
        for o in opts:
            steps = [np.nanmean(np.array(r["table"][str(w)][o]["step_size"], dtype=float)[:, -1]) for w in ws]
            ax.plot(ws, steps, marker="o", color=color_of(o), label=o)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width")
        ax.set_title("mean |Δθ| per step / lr, last epoch", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    for ax in bottom[3:]:
        ax.axis("off")
    return save_figure(fig, out, "width.png", dpi=100)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    ws, opts = r["widths"], r["optimizers"]
    doc.paragraph(
        f"On {r['dataset']}, one hidden layer of width {', '.join(map(str, ws))}, {r['epochs']} epochs, "
        f"{len(r['seeds'])} seeds; each optimizer with every hyperparameter as tuned at width "
        f"{settings.hidden[0]} by the wide experiment, seed i with the choice of its own tuning seed, so that the "
        "tuning's noise is inside the intervals (rates: "
        + "; ".join(f"{o} " + ", ".join(f"{x:.3g}" for x in dict.fromkeys(_rates(r, ws[0], o))) for o in opts)
        + ").")
    doc.table(["width", "parameters", *[f"{o} loss (rel)" for o in opts]],
              [[w, f"{r['table'][str(w)][opts[0]]['n_params']:,}",
                *[f"{fmt(float(np.nanmean(_losses(r, w, o))), '.3g')} ({fmt(_gm(relative(r, w, o)), '.2g')})"
                  for o in opts]] for w in ws],
              caption="final training loss, mean over seeds; in brackets rel(w), the loss over the geometric mean "
                      "of the others' at that width")
