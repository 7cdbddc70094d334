"""GD against SGD on the focus dataset: the training loss per epoch, per second of training and per step.

Both run at their tuned rates from the same initial weights per seed; GD takes one full-batch step per epoch,
SGD a step per mini-batch. "Faster" is judged per epoch (the same passes over the data) and per second of
training (the clock stops during the evaluations, NOTE [what a curve measures] in
:mod:`microdl.experiments.runs`); per step is shown but not judged, since a GD step costs n/b SGD steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, fmt, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules

KEY = "gd_sgd"
TITLE = "GD against SGD"


def run(ctx: Context) -> dict[str, Any]:
    from microdl.experiments.comparison import compare

    s = ctx.settings
    lrs = ctx.tuned_lrs()
    common = {"seeds": s.seeds, "batch_size": s.batch_size, "hidden": s.hidden, **ctx.execution}
    out: dict[str, Any] = {"dataset": s.focus, "lrs": {"gd": lrs["gd"], "sgd": lrs["sgd"]},
                           "epochs": {"gd": s.gd_epochs, "sgd": s.sgd_epochs}}
    for name, epochs in (("sgd", s.sgd_epochs), ("gd", s.gd_epochs)):
        result = compare([s.focus], [name], epochs=epochs, lrs={name: lrs[name]}, **common)
        runs = sorted(result.runs_of(s.focus, name), key=lambda r: s.seeds.index(r["seed"]))
        out[name] = {k: [r[k] for r in runs] for k in ("train_loss", "wall_time", "grad_evals")}
    return out


def _at(xs: list[float], ys: list[float | None], x: float) -> float:
    """The curve ``ys(xs)`` at ``x`` (linear interpolation; NaN beyond its end)."""
    xs_a = np.asarray(xs, dtype=float)
    ys_a = np.array([np.nan if v is None else v for v in ys], dtype=float)
    return float(np.interp(x, xs_a, ys_a)) if x <= xs_a[-1] else float("nan")


def comparisons(r: dict[str, Any]) -> dict[str, list[float]]:
    """Per seed, GD's and SGD's training loss at equal epochs, at equal training time and at equal steps."""
    gd, sgd = r["gd"], r["sgd"]
    epoch = r["epochs"]["sgd"]
    out: dict[str, list[float]] = {k: [] for k in ("gd_epoch", "sgd_epoch", "gd_time", "sgd_time", "time",
                                                  "gd_step", "sgd_step", "step")}
    for k in range(len(gd["train_loss"])):
        out["gd_epoch"].append(_at(list(range(len(gd["train_loss"][k]))), gd["train_loss"][k], epoch))
        out["sgd_epoch"].append(_at(list(range(len(sgd["train_loss"][k]))), sgd["train_loss"][k], epoch))
        t = min(gd["wall_time"][k][-1], sgd["wall_time"][k][-1])
        out["time"].append(t)
        out["gd_time"].append(_at(gd["wall_time"][k], gd["train_loss"][k], t))
        out["sgd_time"].append(_at(sgd["wall_time"][k], sgd["train_loss"][k], t))
        # equal gradient evaluations: the last SGD epoch boundary that GD also reached
        steps = [g for g in sgd["grad_evals"][k][1:] if g <= gd["grad_evals"][k][-1]]
        step = steps[-1] if steps else float("nan")
        out["step"].append(step)
        out["gd_step"].append(_at(gd["grad_evals"][k], gd["train_loss"][k], step))
        out["sgd_step"].append(_at(sgd["grad_evals"][k], sgd["train_loss"][k], step))
    return out


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    c = comparisons(r)
    per_epoch = stats.paired_ratio(c["gd_epoch"], c["sgd_epoch"])
    per_second = stats.paired_ratio(c["gd_time"], c["sgd_time"])
    per_step = stats.paired_ratio(c["gd_step"], c["sgd_step"])
    mean = lambda xs: fmt(float(np.nanmean(xs)), ".3g")  # noqa: E731
    evidence = (f"after {r['epochs']['sgd']} epochs, training loss SGD {mean(c['sgd_epoch'])} vs GD "
                f"{mean(c['gd_epoch'])} (GD/SGD {interval(per_epoch)}: equal samples processed, the work measure); "
                f"for reference, after {mean(c['time'])} s of training, SGD {mean(c['sgd_time'])} vs GD "
                f"{mean(c['gd_time'])} (GD/SGD {interval(per_second)}; wall clock, not judged: it moves with the "
                f"machine's load); per gradient evaluation ({mean(c['step'])} steps), SGD {mean(c['sgd_step'])} vs GD "
                f"{mean(c['gd_step'])} (GD/SGD {interval(per_step)}, not judged: a GD step costs n/b SGD steps)")
    return {"sgd-faster": apply_rules("sgd-faster", {"per epoch": per_epoch}, evidence)}


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import band_plot, new_figure

    r = results[KEY]
    fig, axes = new_figure(1, 3, width=15, height=4)
    row = axes[0]
    for name in ("gd", "sgd"):
        v = r[name]
        label = f"{name} (lr {r['lrs'][name]:g})"
        epochs = [list(range(len(c))) for c in v["train_loss"]]
        band_plot(row[0], epochs, v["train_loss"], name)
        band_plot(row[1], v["wall_time"], v["train_loss"], name, on_grid=True)
        band_plot(row[2], v["grad_evals"], v["train_loss"], name, on_grid=True)
        row[0].lines[-1].set_label(label)
    for ax, xlabel in zip(row, ("epoch (passes over the data)", "training time (s)", "gradient evaluations (steps)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{r['dataset']}: training loss")
        ax.grid(True, alpha=0.3)
    row[0].axvline(r["epochs"]["sgd"], color="grey", ls=":", lw=1)
    row[0].legend(fontsize=8)
    row[2].set_xscale("symlog", linthresh=1)
    row[2].set_xlim(left=0)
    fig.suptitle("mean over seeds, band: min–max", fontsize=9)
    return save_figure(fig, out, "gd_vs_sgd.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    c = comparisons(r)
    doc.paragraph(
        f"On {r['dataset']}, at the tuned rates (GD {r['lrs']['gd']:g}, SGD {r['lrs']['sgd']:g}): GD for "
        f"{r['epochs']['gd']} epochs (one step each), SGD for {r['epochs']['sgd']} epochs (batch "
        f"{settings.batch_size}), {len(r['gd']['train_loss'])} seeds. The losses are on the whole training set.")
    mean = lambda xs: fmt(float(np.nanmean(xs)), ".4g")  # noqa: E731
    doc.table(["compared at", "SGD training loss", "GD training loss"], [
        [f"{r['epochs']['sgd']} epochs", mean(c["sgd_epoch"]), mean(c["gd_epoch"])],
        [f"{mean(c['time'])} s of training", mean(c["sgd_time"]), mean(c["gd_time"])],
        [f"{mean(c['step'])} gradient evaluations", mean(c["sgd_step"]), mean(c["gd_step"])]],
        caption="mean over seeds")
