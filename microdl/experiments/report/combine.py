"""GD combined with other techniques: momentum, a learning-rate schedule and gradient clipping.

Full-batch GD trains the focus dataset's network plain, with heavy-ball momentum (0.9), with a cosine
schedule (with warm-up), with clipping of the gradient's norm, and with all three at once, through the same
:func:`microdl.train.fit` call (``make_optimizer("gd", momentum=...)``, ``schedule=``, ``clip_norm=``). Each
variant runs at its own best rate, picked on a separate seed; the effect is the final training loss of the
all-three combination over plain GD's, seed by seed.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, best_rate, fit_quietly, fmt, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules

KEY = "combine"
TITLE = "GD combined with momentum, a schedule and clipping"

#: name -> (momentum, schedule, clip_norm)
VARIANTS: dict[str, tuple[float, str | None, float | None]] = {
    "plain": (0.0, None, None), "momentum": (0.9, None, None), "cosine schedule": (0.0, "cosine", None),
    "clipping": (0.0, None, 1.0), "all three": (0.9, "cosine", 1.0)}


def _run(variant: str, lr: float, seed: int, d: Any, hidden: tuple[int, ...], epochs: int) -> dict[str, Any]:
    """One run of ``variant`` on ``d``, the focus dataset split by ``seed``."""
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import evaluate_loss

    momentum, schedule, clip = VARIANTS[variant]
    model = MLP((d.n_features, *hidden, d.n_outputs), loss=d.loss, random_state=seed)
    opt = make_optimizer("gd", model.params, lr=lr, momentum=momentum)
    history = fit_quietly(model, opt, d.X_train, d.y_train, epochs=epochs, schedule=schedule, clip_norm=clip,
                          random_state=seed)
    final = evaluate_loss(model, d.X_train, d.y_train)
    ok = np.isfinite(final) and not history.diverged
    return {"final": float(final) if ok else float("inf"), "curve": [float(x) for x in history.train_loss]}


def run(ctx: Context) -> dict[str, Any]:
    from microdl.datasets import load_dataset

    s = ctx.settings
    out: dict[str, Any] = {"dataset": s.focus, "epochs": s.combine_epochs, "grid": list(s.tune_grid),
                           "seeds": list(s.seeds), "variants": {}}
    data = {seed: load_dataset(s.focus, random_state=seed) for seed in (s.tune_seeds[0], *s.seeds)}
    epochs = s.combine_epochs
    tune_seed = s.tune_seeds[0]
    tune_final = lambda variant, lr: _run(variant, lr, tune_seed, data[tune_seed], s.hidden, epochs)["final"]
    for variant in VARIANTS:
        lr, _ = best_rate(s.tune_grid, partial(tune_final, variant))
        runs = [_run(variant, lr, seed, data[seed], s.hidden, epochs) for seed in s.seeds]
        out["variants"][variant] = {"lr": lr, "final": [r["final"] for r in runs], "curves": [r["curve"] for r in runs]}
    return out


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    plain = r["variants"]["plain"]["final"]
    ratios = {v: stats.paired_ratio(x["final"], plain) for v, x in r["variants"].items() if v != "plain"}
    return {"gd-combine": apply_rules(
        "gd-combine", {"combined": ratios["all three"]},
        f"final training loss over plain GD's after {r['epochs']} epochs, each at its best rate: "
        + ", ".join(f"{v} {interval(e)}" for v, e in ratios.items())
        + f" (plain GD: {fmt(float(np.mean(plain)), '.3g')})")}


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import band_plot, new_figure, seed_dots

    r = results[KEY]
    fig, axes = new_figure(1, 2, width=13, height=4)
    ax = axes[0][0]
    for k, (variant, v) in enumerate(r["variants"].items()):
        band_plot(ax, [list(range(1, len(c) + 1)) for c in v["curves"]], v["curves"], variant, color=f"C{k}")
        ax.lines[-1].set_label(f"{variant} (lr {v['lr']:g})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (one full-batch step)")
    ax.set_ylabel(f"{r['dataset']}: training loss")
    ax.set_title("GD and its combinations (mean over seeds, band: min–max)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0][1]
    plain = np.array(r["variants"]["plain"]["final"], dtype=float)
    names = [v for v in r["variants"] if v != "plain"]
    for k, variant in enumerate(names):
        seed_dots(ax, k, np.array(r["variants"][variant]["final"], dtype=float) / plain, f"C{k + 1}")
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("final training loss / plain GD's (dots: seeds)")
    ax.set_title("below 1: the combination trains further", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, out, "combine.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    doc.paragraph(
        f"On {r['dataset']}, full-batch GD for {r['epochs']} epochs, {len(r['seeds'])} seeds; momentum 0.9 "
        "(torch's heavy ball), the cosine schedule of `fit(schedule='cosine')` (5% warm-up), clipping of the "
        "gradient's global norm at 1. Each variant's rate is the one of "
        f"{', '.join(f'{x:g}' for x in r['grid'])} with the lowest final training loss on a separate seed.")
    doc.table(["variant", "lr", "final training loss (mean over seeds)"],
              [[v, f"{x['lr']:g}", fmt(float(np.mean(x["final"])), ".4g")] for v, x in r["variants"].items()])
