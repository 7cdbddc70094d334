"""SGD's updates one by one: how often a step makes the loss on the whole training set worse.

Noise matters once the gradient's signal is small, so every run starts from the same partly trained weights
per seed (``noise_warm`` epochs of SGD at its tuned rate). From there SGD (at several batch sizes) and GD take
steps at their tuned rates on the focus dataset; after every step the loss on the whole training set is
computed. A step that raises it is a noisy update in the plainest sense. The cosine between each mini-batch
gradient and the full gradient at the same point says how far the noise turns the direction (1 for GD).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules

KEY = "noise"
TITLE = "SGD's noisy updates, step by step"


def _label(batch: int | None) -> str:
    return f"sgd, batch {batch}" if batch else "gd (full batch)"


def run(ctx: Context) -> dict[str, Any]:
    from microdl.datasets import load_dataset
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import evaluate_loss, fit

    s = ctx.settings
    lrs = ctx.tuned_lrs()
    configs = [("sgd", b) for b in s.noise_batch_sizes] + [("gd", None)]
    out: dict[str, Any] = {"dataset": s.focus, "steps": s.noise_steps, "warm": s.noise_warm, "seeds": list(s.seeds),
                           "runs": {}}
    data = {seed: load_dataset(s.focus, random_state=seed) for seed in s.seeds}
    warm = {}
    for seed in s.seeds:
        d = data[seed]
        model = MLP((d.n_features, *s.hidden, d.n_outputs), loss=d.loss, random_state=seed)
        fit(model, make_optimizer("sgd", model.params, lr=lrs["sgd"]), d.X_train, d.y_train, epochs=s.noise_warm,
            batch_size=s.batch_size, random_state=seed)
        warm[seed] = model.params.copy()
    for name, batch in configs:
        rec: dict[str, Any] = {"optimizer": name, "batch_size": batch, "lr": lrs[name], "curves": [], "up": [],
                               "cosine": []}
        for seed in s.seeds:
            d = data[seed]
            model = MLP((d.n_features, *s.hidden, d.n_outputs), loss=d.loss, random_state=seed)
            model.params[...] = warm[seed]
            opt = make_optimizer(name, model.params, lr=lrs[name])
            X, y = d.X_train, d.y_train
            n = X.shape[0]
            rng = np.random.default_rng(seed)
            order, pos = rng.permutation(n), 0
            full = evaluate_loss(model, X, y)
            curve, ups, cosines = [full], 0, []
            for _ in range(s.noise_steps):
                model.loss_and_grad(X, y)
                g_full = model.grads.copy()
                if batch is not None and batch < n:
                    if pos + batch > n:
                        order, pos = rng.permutation(n), 0
                    idx = order[pos:pos + batch]
                    pos += batch
                    model.loss_and_grad(X[idx], y[idx])
                with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends the loop just below
                    norm = float(np.linalg.norm(model.grads) * np.linalg.norm(g_full))
                    cosines.append(float(model.grads @ g_full) / norm if norm > 0 else 1.0)
                opt.step(model.grads)
                new = evaluate_loss(model, X, y)
                if not math.isfinite(new):
                    break
                ups += new > full
                full = new
                curve.append(full)
            rec["curves"].append(curve)
            rec["up"].append(ups / max(1, len(curve) - 1))
            rec["cosine"].append(float(np.mean(cosines)))
        out["runs"][_label(batch)] = rec
    return out


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    sgd = [v for v in r["runs"].values() if v["optimizer"] == "sgd"]
    mid = min(sgd, key=lambda v: abs(v["batch_size"] - settings.batch_size))
    gd = r["runs"][_label(None)]
    rising = stats.paired_difference(mid["up"], gd["up"])
    cosine = stats.mean(mid["cosine"])
    evidence = "; ".join(f"{label}: {100 * np.mean(v['up']):.0f}% of steps raise the full training loss, gradient "
                         f"cosine with the full gradient {np.mean(v['cosine']):.2f}" for label, v in r["runs"].items())
    return {"sgd-noisy": apply_rules(
        "sgd-noisy", {"direction": cosine, "rising steps": rising},
        f"after {r['warm']} epochs of training: {evidence}; at batch {mid['batch_size']}, cosine "
        f"{interval(cosine, '.2f')}, rising steps minus GD's {interval(rising, '.2f')}")}


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import band_plot, new_figure

    r = results[KEY]
    fig, axes = new_figure(1, 2, width=13, height=4)
    ax = axes[0][0]
    for k, (label, v) in enumerate(r["runs"].items()):
        band_plot(ax, [list(range(len(c))) for c in v["curves"]], v["curves"], label, color=f"C{k}")
    ax.set_yscale("log")
    ax.set_xlabel(f"step (after {r['warm']} epochs of SGD)")
    ax.set_ylabel(f"{r['dataset']}: loss on the whole training set")
    ax.set_title("after every step (mean over seeds, band: min–max)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0][1]
    labels = list(r["runs"])
    ups = [100 * np.array(r["runs"][label]["up"]) for label in labels]
    cos = [np.array(r["runs"][label]["cosine"]) for label in labels]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, [u.mean() for u in ups], 0.4, color=[f"C{k}" for k in x], label="steps that raise the loss (%)")
    for k, u in enumerate(ups):
        ax.plot([k - 0.2] * len(u), u, "k.", ms=4)
    ax.set_ylabel("steps that raise the full loss (%), dots: seeds")
    twin = ax.twinx()
    twin.plot(x + 0.2, [c.mean() for c in cos], "D", color="k", label="cosine with the full gradient")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("mean cosine with the full gradient (◆)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_title("noisy updates: rising steps and gradient direction", fontsize=9)
    return save_figure(fig, out, "noise.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    doc.paragraph(
        f"On {r['dataset']}, from the same weights per seed ({len(r['seeds'])} seeds), trained for {r['warm']} epochs "
        f"of SGD beforehand, {r['steps']} steps each at the tuned rates; after every step the loss on the whole "
        "training set is computed.")
    doc.table(["run", "lr", "steps that raise the full loss", "cosine with the full gradient"],
              [[label, f"{v['lr']:g}", f"{100 * np.mean(v['up']):.0f}%", f"{np.mean(v['cosine']):.2f}"]
               for label, v in r["runs"].items()], caption="mean over seeds")
