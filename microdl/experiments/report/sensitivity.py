"""Learning-rate and batch-size sensitivity: how wide is the range of rates that work, per optimizer.

:func:`microdl.experiments.sensitivity` trains every optimizer at every rate of the grid on 80% of the focus
dataset's training data and scores the final loss on the other 20%; SGD also at several batch sizes. The
*width* of an optimizer is the span, in decades, of the rates whose mean validation loss is within
``within`` of the best (:func:`microdl.experiments.sweep.flat_width`); its interval comes from resampling the
seeds and recomputing the mean curve. The same sweep counts divergences per rate, for Adagrad's "numerical
instability".
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, fmt, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules
from microdl.experiments.runs import SIX_OPTIMIZERS as SIX

KEY = "sensitivity"
TITLE = "Learning-rate and batch-size sensitivity"


def run(ctx: Context) -> dict[str, Any]:
    from microdl.experiments.sweep import sensitivity

    s = ctx.settings
    result = sensitivity(s.focus, SIX, s.seeds, epochs=s.sens_epochs, batch_size=s.batch_size,
                         batch_sizes=s.batch_sizes, sweep_batch_for=["sgd"], hidden=s.hidden, grid=s.lr_grid,
                         within=s.within, **ctx.execution)
    grid = sorted(float(x) for x in s.lr_grid)
    curves: dict[str, Any] = {}
    for r in result.runs:
        key = f"{r['optimizer']}@{r['batch_size']}"
        c = curves.setdefault(key, {"optimizer": r["optimizer"], "batch_size": r["batch_size"],
                                    "val_loss": [[None] * len(s.seeds) for _ in grid],
                                    "diverged": [[False] * len(s.seeds) for _ in grid],
                                    "worse": [[False] * len(s.seeds) for _ in grid]})
        i, j = grid.index(float(r["lr"])), s.seeds.index(r["seed"])
        c["diverged"][i][j] = bool(r["diverged"]) or r["final_val_loss"] is None
        c["val_loss"][i][j] = None if c["diverged"][i][j] else r["final_val_loss"]
        # a run that ends worse than it started (or diverged): training made the model unstable
        c["worse"][i][j] = c["diverged"][i][j] or not r["final_val_loss"] < r["val_loss"][0]
    return {"dataset": s.focus, "grid": grid, "seeds": list(s.seeds), "within": s.within, "epochs": s.sens_epochs,
            "batch_size": s.batch_size, "batch_sizes": list(s.batch_sizes), "curves": curves}


def key_of(r: dict[str, Any], optimizer: str, batch_size: int | None = None) -> str:
    """The curve of ``optimizer`` at ``batch_size`` (default: the common batch size; GD: its only one)."""
    keys = [k for k, c in r["curves"].items() if c["optimizer"] == optimizer]
    wanted = [k for k in keys if r["curves"][k]["batch_size"] == (batch_size or r["batch_size"])]
    return wanted[0] if wanted else keys[0]


def _matrix(r: dict[str, Any], key: str) -> np.ndarray:
    """(rates, seeds) final validation losses, NaN where the run diverged."""
    return np.array([[np.nan if v is None else v for v in row] for row in r["curves"][key]["val_loss"]], float)


def mean_curve(values: np.ndarray) -> list[float | None]:
    """Mean over seeds per rate; None where any seed diverged (as the sweep itself counts it)."""
    return [None if np.isnan(row).any() else float(row.mean()) for row in values]


def width(r: dict[str, Any], key: str, idx: np.ndarray | None = None) -> dict[str, Any]:
    """flat_width of the mean curve over the seeds ``idx`` (all by default)."""
    from microdl.experiments.sweep import flat_width

    values = _matrix(r, key)
    if idx is not None:
        values = values[:, idx]
    return flat_width(r["grid"], mean_curve(values), r["within"])


def width_estimate(r: dict[str, Any], optimizer: str) -> stats.Estimate:
    key = key_of(r, optimizer)
    n = len(r["seeds"])
    return stats.bootstrap(n, lambda idx: width(r, key, idx)["width"])


#: A tuning trial is "good" when its validation loss is within this factor of its seed's best trial.
GOOD_TRIAL = 1.10


def good_shares(wide: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per optimizer, per problem: the share of its tuning trials (Sobol points over *every* tuned
    hyperparameter, from the wide experiment) whose cross-validated loss is within GOOD_TRIAL of the best trial
    of the same tuning seed, averaged over the tuning seeds. A small share: a small good region, hard to tune
    (Sivaprasad et al. 2020 measure the same thing as the loss expected after k random trials)."""
    out: dict[str, list[float]] = {o: [] for o in SIX}
    for d in wide["datasets"].values():
        for o in SIX:
            shares = []
            for scores in d["tuning"][o]["scores"].values():
                s = np.array([math.inf if v is None else v for v in scores], dtype=float)
                best = np.min(s)
                shares.append(float(np.mean(s <= GOOD_TRIAL * best)) if np.isfinite(best) else 0.0)
            out[o].append(float(np.mean(shares)))
    return {o: np.array(v) for o, v in out.items()}


def relative_sensitivity(wide: dict[str, Any], optimizer: str) -> stats.Estimate:
    """The optimizer's share of good trials over the median share of the other five, per problem; geometric
    mean over problems with a t interval (problems are the unit). Below 1: more sensitive than the others."""
    shares = good_shares(wide)
    floor = 1.0 / (2 * max(1, int(wide.get("trials", 1))))  # half a trial: a share of 0 stays a finite log
    mine = np.maximum(shares[optimizer], floor)
    others = np.maximum(np.median(np.array([shares[o] for o in SIX if o != optimizer]), axis=0), floor)
    return stats.t_interval(np.log(mine) - np.log(others), unit="problems", transform="exp")


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    out: dict[str, Verdict] = {}
    wide = results.get("wide")
    shares = good_shares(wide) if wide else {}
    share_text = ", ".join(f"{o} {float(np.mean(v)):.2f}" for o, v in shares.items())

    def tunability(o: str) -> stats.Estimate:
        return relative_sensitivity(wide, o) if wide else stats.Estimate(math.nan, math.nan, math.nan, 0, "none")
    widths = {o: width(r, key_of(r, o)) for o in SIX}
    ranking = ", ".join(f"{o} {w['width']:.2f}{'+' if w['censored'] else ''}"
                        for o, w in sorted(widths.items(), key=lambda kv: kv[1]["width"]))

    def describe_width(o: str, est: stats.Estimate) -> str:
        w = widths[o]
        return (f"{o}: {interval(est, '.2f')} decades (best rate {fmt(w['best_lr'], 'g')}, good from "
                f"{fmt(w['low'], '.2g')} to {fmt(w['high'], '.2g')}"
                f"{'; reaches the end of the grid' if w['censored'] else ''})"
                f"; all, narrowest first: {ranking}")

    for o in ("adam", "rmsprop", "adadelta"):
        est = width_estimate(r, o)
        rel = tunability(o)
        out[f"{o}-sensitive"] = apply_rules(
            f"{o}-sensitive", {"hyperparameters": rel},
            f"share of {o}'s tuning trials (every tuned hyperparameter) within {GOOD_TRIAL - 1:.0%} of the best, over "
            f"the median of the other five's: {interval(rel, '.2f')} (mean shares: {share_text}); for reference, "
            f"the learning rate alone: " + describe_width(o, est))

    # SGD: the learning rate, and the batch size at SGD's best rate for the common batch size
    lr_est = width_estimate(r, "sgd")
    best = widths["sgd"]["best_lr"]
    k = r["grid"].index(best) if best is not None else 0
    per_batch = {b: _matrix(r, key_of(r, "sgd", b))[k] for b in r["batch_sizes"]}
    stack = np.array(list(per_batch.values()))

    def spread(idx: np.ndarray) -> float:
        m = stack[:, idx]
        if np.isnan(m).any():
            return math.inf  # a batch size at which this rate diverges: as sensitive as it gets
        means = m.mean(axis=1)
        return float(means.max() / means.min() - 1.0)

    batch_est = stats.bootstrap(len(r["seeds"]), spread)
    rel = tunability("sgd")
    out["sgd-sensitive"] = apply_rules(
        "sgd-sensitive", {"hyperparameters": rel, "batch size": batch_est},
        f"share of SGD's tuning trials (rate and momentum) within {GOOD_TRIAL - 1:.0%} of the best, over the median "
        f"of the other five's: {interval(rel, '.2f')} (mean shares: {share_text}); for reference, the learning rate "
        "alone: " + describe_width("sgd", lr_est) + f"; at rate {fmt(best, 'g')} the validation loss is "
        + ", ".join(f"{fmt(float(np.mean(v)), '.4g')} at batch {b}" for b, v in per_batch.items())
        + f", a spread of {interval(batch_est, '.2f')}; best rate per batch size: "
        + ", ".join(f"{b}: {fmt(width(r, key_of(r, 'sgd', b))['best_lr'], 'g')}" for b in r["batch_sizes"]))

    # Adagrad's instability over the grid, against Adam's at the same rates and seeds (both take a first step
    # of about lr·sign(g), so their rates are on one scale)
    bad = {o: np.array(r["curves"][key_of(r, o)]["worse"], dtype=float).mean(axis=0) for o in ("adagrad", "adam")}
    est = stats.paired_difference(bad["adagrad"], bad["adam"])
    n = len(r["grid"])
    out["adagrad-unstable"] = apply_rules(
        "adagrad-unstable", {"instability": est},
        f"runs that diverge or end worse than they started: Adagrad at {fmt(float(bad['adagrad'].mean() * n), '.1f')} "
        f"of the {n} rates on average, Adam at {fmt(float(bad['adam'].mean() * n), '.1f')} (difference in share "
        f"{interval(est, '.2f')}); Adagrad's per-parameter rate γ/(√S + ε) can only shrink, since S only grows "
        "(the width experiment's figure shows it)")
    return out


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import color_of, new_figure

    r = results[KEY]
    grid = np.array(r["grid"])
    fig, axes = new_figure(1, 2, width=14, height=4.6)
    top, bottom = 0.0, np.inf
    for ax, keys in ((axes[0][0], [key_of(r, o) for o in SIX]),
                     (axes[0][1], [key_of(r, "sgd", b) for b in r["batch_sizes"]])):
        for k, key in enumerate(keys):
            c = r["curves"][key]
            o = c["optimizer"]
            values = _matrix(r, key)
            mean = np.array([np.nan if v is None else v for v in mean_curve(values)])
            color = color_of(o) if ax is axes[0][0] else f"C{k}"
            label = o if ax is axes[0][0] else f"sgd, batch {c['batch_size']}"
            ax.plot(grid, mean, marker="o", ms=3, color=color, label=label)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a rate at which every seed diverged
                ax.fill_between(grid, np.nanmin(values, axis=1), np.nanmax(values, axis=1), color=color, alpha=0.12)
            w = width(r, key)
            if w["best_lr"] is not None:
                ax.plot([w["low"], w["high"]], [w["threshold"]] * 2, color=color, lw=4, alpha=0.5,
                        solid_capstyle="butt")
            if np.isfinite(values).any():
                top = max(top, float(np.nanmax(values[np.isfinite(values)])))
                bottom = min(bottom, float(np.nanmin(values[np.isfinite(values)])))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel(f"{r['dataset']}: final validation loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax, keys in ((axes[0][0], [key_of(r, o) for o in SIX]),
                     (axes[0][1], [key_of(r, "sgd", b) for b in r["batch_sizes"]])):
        for k, key in enumerate(keys):
            c = r["curves"][key]
            dead = grid[np.array(c["diverged"]).any(axis=1)]
            color = color_of(c["optimizer"]) if ax is axes[0][0] else f"C{k}"
            # along the top edge (x in data units, y in axes units): a diverged run has no loss to plot
            ax.plot(dead, [0.97 - 0.025 * k] * len(dead), "x", color=color, ms=6, transform=ax.get_xaxis_transform())
        if np.isfinite(bottom):
            ax.set_ylim(0.8 * bottom, min(top, 30 * bottom) * 1.3)
    axes[0][0].set_title(f"each optimizer (batch {r['batch_size']}); bar: rates within {r['within']:.0%} of the "
                         "best; ×: diverged on some seed", fontsize=9)
    axes[0][1].set_title("SGD at each batch size", fontsize=9)
    return save_figure(fig, out, "sensitivity.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    doc.paragraph(
        f"On {r['dataset']}: every optimizer at every rate of the grid ({len(r['grid'])} rates from "
        f"{fmt(r['grid'][0], 'g')} to {fmt(r['grid'][-1], 'g')}), {r['epochs']} epochs, trained on 80% of the "
        f"training data and scored on the other 20%, {len(r['seeds'])} seeds; SGD also at batch sizes "
        f"{', '.join(map(str, r['batch_sizes']))}. The width is the span, in decades, of the rates within "
        f"{r['within']:.0%} of the best mean validation loss (interpolated between grid points; a '+' where it "
        "reaches the end of the grid, so the true width is larger).")
    rows = []
    for key in [key_of(r, o) for o in SIX] + [key_of(r, "sgd", b) for b in r["batch_sizes"] if b != r["batch_size"]]:
        c = r["curves"][key]
        w = width(r, key)
        dead = int(np.array(c["diverged"]).any(axis=1).sum())
        rows.append([c["optimizer"], c["batch_size"], fmt(w["best_lr"], "g"), fmt(w["best_loss"], ".4g"),
                     f"{fmt(w['low'], '.2g')} .. {fmt(w['high'], '.2g')}",
                     f"{w['width']:.2f}{'+' if w['censored'] else ''}", f"{dead}/{len(r['grid'])}"])
    doc.table(["optimizer", "batch", "best lr", "best val loss", f"rates within {r['within']:.0%}", "width (decades)",
               "rates with a divergence"], rows)
