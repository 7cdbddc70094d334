"""Noisy and sparse gradients: does an adaptive optimizer cope with them better than plain SGD?

* **Sparse.** A linear model (a network without a hidden layer) learns known weights from CSR inputs whose
  features follow a Zipf law: feature 0 is in most rows, the last ones in a handful, so the rare features'
  weights get a gradient only now and then. The effect is how far the rarer half of the (seen) features'
  weights are from the truth after training, relative to SGD's. The dense control, every feature in every
  row, shows the same error on the same weights when nothing is rare.
* **Noisy.** A small network learns a teacher network from fresh samples, with the same number of steps at
  batch 128 and at batch 4 (a noisier gradient). The effect is the absolute one at the noisy setting: each
  optimizer's excess loss (over the noise floor) at batch 4, over SGD's at batch 4. (A ratio of ratios, batch 4
  over batch 128, would count an optimizer as "degrading more" merely for being better at batch 128.)
* **Sparse** is judged against the dense control: the rare weights' error relative to SGD's on the Zipf-sparse
  inputs, over the same ratio on the dense control. Below 1 only when the advantage is specific to sparsity.

Every optimizer runs at its best rate for each condition, picked on a separate seed.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, best_rate, fit_quietly, fmt, interval, save_figure
from microdl.experiments.report.problems import Teacher, zipf_problem
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules
from microdl.experiments.runs import SIX_OPTIMIZERS

KEY = "noisy_sparse"
TITLE = "Noisy and sparse gradients"

FIVE = SIX_OPTIMIZERS[1:]  # all but GD
_BATCH = 32
#: Noisy part: the teacher, the student, and the two batch sizes.
_FEATURES, _TEACHER_HIDDEN, _NOISE, _STUDENT_HIDDEN = 10, 8, 0.5, 16
_NOISY_BATCH, _CLEAN_BATCH, _EVAL = 4, 128, 5000


# -- sparse --------------------------------------------------------------------------------------------------
def _sparse_run(name: str, lr: float, seed: int, problem: dict[str, Any], epochs: int) -> dict[str, Any]:
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import evaluate_loss

    X, y, w = problem["X"], problem["y"], problem["w"]
    d = w.size
    n_fit = int(0.8 * X.shape[0])
    model = MLP((d, 1), loss="squared_error", random_state=seed)
    opt = make_optimizer(name, model.params, lr=lr)
    history = fit_quietly(model, opt, X[:n_fit], y[:n_fit], epochs=epochs, batch_size=_BATCH, random_state=seed)
    w_hat = np.array(model.weights[0][:, 0])  # the learnt weights, a view into the flat buffer
    seen = np.flatnonzero(problem["freq_fit"] > 0)
    rare = seen[np.argsort(problem["freq_fit"][seen], kind="stable")[: seen.size // 2]]
    frequent = np.setdiff1d(seen, rare)

    def error(idx: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged run's error is inf: a failure, not a warning
            return float(np.linalg.norm(w_hat[idx] - w[idx]) / np.linalg.norm(w[idx]))

    val = evaluate_loss(model, X[n_fit:], y[n_fit:])
    return {"rare": error(rare), "frequent": error(frequent), "val_loss": val if np.isfinite(val) else np.inf,
            "diverged": bool(history.diverged), "abs_error": np.abs(w_hat - w).tolist()}


def _sparse(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"features": s.sparse_features, "samples": s.sparse_samples, "epochs": s.sparse_epochs,
                           "conditions": {}}
    tune_loss = lambda problem, name, lr: _sparse_run(name, lr, s.tune_seeds[0], problem, s.sparse_epochs)["val_loss"]
    for condition, sparse in (("zipf", True), ("dense", False)):
        problems = {}
        for seed in (*s.seeds, s.tune_seeds[0]):
            p = zipf_problem(s.sparse_samples, s.sparse_features, seed, sparse=sparse)
            n_fit = int(0.8 * s.sparse_samples)
            # what the training part saw of each feature (the Zipf problem's frequencies are over all rows)
            p["freq_fit"] = np.asarray((p["X"][:n_fit] != 0).sum(axis=0)).ravel() / n_fit if sparse else p["freq"]
            problems[seed] = p
        res = {}
        for name in FIVE:
            lr, _ = best_rate(s.tune_grid, partial(tune_loss, problems[s.tune_seeds[0]], name))
            runs = [_sparse_run(name, lr, seed, problems[seed], s.sparse_epochs) for seed in s.seeds]
            res[name] = {"lr": lr, **{k: [r[k] for r in runs] for k in ("rare", "frequent", "val_loss", "diverged")},
                         "abs_error": runs[0]["abs_error"]}
        out["conditions"][condition] = {"optimizers": res, "freq": problems[s.seeds[0]]["freq_fit"].tolist()}
    return out


# -- noisy ---------------------------------------------------------------------------------------------------
def _noisy_run(name: str, lr: float, seed: int, batch: int, steps: int, teacher: Teacher, X_eval: np.ndarray,
               y_eval: np.ndarray) -> float:
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import evaluate_loss

    X, y = teacher.sample(steps * batch, np.random.default_rng(seed))
    model = MLP((_FEATURES, _STUDENT_HIDDEN, 1), loss="squared_error", random_state=seed)
    opt = make_optimizer(name, model.params, lr=lr)
    history = fit_quietly(model, opt, X, y, epochs=1, batch_size=batch, shuffle=False)
    loss = evaluate_loss(model, X_eval, y_eval)
    return float(loss) if np.isfinite(loss) and not history.diverged else float("inf")


def _noisy(s: Any) -> dict[str, Any]:
    teacher = Teacher(_FEATURES, _TEACHER_HIDDEN, _NOISE, seed=77)
    X_eval, y_eval = teacher.sample(_EVAL, np.random.default_rng(78))
    floor = 0.5 * float(np.mean((teacher.targets(X_eval, None) - y_eval) ** 2))
    out: dict[str, Any] = {"steps": s.noisy_steps, "batches": [_NOISY_BATCH, _CLEAN_BATCH], "floor": floor,
                           "optimizers": {}}
    tune_seed = s.tune_seeds[0]
    tune_loss = lambda name, batch, lr: _noisy_run(name, lr, tune_seed, batch, s.noisy_steps, teacher, X_eval, y_eval)
    for name in FIVE:
        rec: dict[str, Any] = {}
        for batch in (_NOISY_BATCH, _CLEAN_BATCH):
            lr, _ = best_rate(s.tune_grid, partial(tune_loss, name, batch))
            rec[str(batch)] = {"lr": lr, "loss": [_noisy_run(name, lr, seed, batch, s.noisy_steps, teacher, X_eval,
                                                             y_eval) for seed in s.seeds]}
        out["optimizers"][name] = rec
    return out


def run(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    return {"sparse": _sparse(s), "noisy": _noisy(s), "seeds": list(s.seeds)}


# -- verdicts ----------------------------------------------------------------------------------------------
def degradation(noisy: dict[str, Any], name: str) -> np.ndarray:
    """Per seed: excess loss at the noisy batch over the excess at the clean batch."""
    v = noisy["optimizers"][name]
    floor = noisy["floor"]
    excess = {b: np.maximum(np.array(v[str(b)]["loss"], dtype=float) - floor, 1e-9) for b in noisy["batches"]}
    return excess[noisy["batches"][0]] / excess[noisy["batches"][1]]


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    sp, no = r["sparse"]["conditions"], r["noisy"]
    rare = {c: {o: np.array(v["optimizers"][o]["rare"], dtype=float) for o in FIVE} for c, v in sp.items()}
    deg = {o: degradation(no, o) for o in FIVE}
    noisy_excess = {o: excess_at(no, o, no["batches"][0]) for o in FIVE}
    out = {}
    for o, claim in (("adam", "adam-noisy-sparse"), ("adagrad", "adagrad-noisy-sparse"),
                     ("rmsprop", "rmsprop-noisy-sparse"), ("adadelta", "adadelta-noisy-sparse")):
        noisy = stats.paired_ratio(noisy_excess[o], noisy_excess["sgd"])
        zipf = stats.paired_ratio(rare["zipf"][o], rare["zipf"]["sgd"])
        dense = stats.paired_ratio(rare["dense"][o], rare["dense"]["sgd"])
        with np.errstate(divide="ignore", invalid="ignore"):
            sparse = stats.paired_ratio(rare["zipf"][o] / rare["zipf"]["sgd"], rare["dense"][o] / rare["dense"]["sgd"])
        out[claim] = apply_rules(
            claim, {"noisy": noisy, "sparse": sparse},
            f"noisy: excess loss at batch {no['batches'][0]}, {o} "
            f"{fmt(float(np.exp(np.mean(np.log(noisy_excess[o])))), '.3g')} vs SGD "
            f"{fmt(float(np.exp(np.mean(np.log(noisy_excess['sgd'])))), '.3g')} (ratio {interval(noisy)}; for "
            f"reference, batch {no['batches'][0]} over batch {no['batches'][1]}: {o} "
            f"{fmt(float(np.exp(np.mean(np.log(deg[o])))), '.3g')}, SGD "
            f"{fmt(float(np.exp(np.mean(np.log(deg['sgd'])))), '.3g')}); sparse: relative error of the rare half of "
            f"the features' weights over SGD's {interval(zipf)} on Zipf-sparse inputs and {interval(dense)} on the "
            f"dense control, the ratio of the two {interval(sparse)}")
    return out


def excess_at(noisy: dict[str, Any], name: str, batch: int) -> np.ndarray:
    """Per seed: the excess loss over the noise floor at ``batch`` (a diverged run stays infinite: a failure)."""
    v = noisy["optimizers"][name][str(batch)]["loss"]
    return np.maximum(np.array([np.inf if x is None else x for x in v], dtype=float) - noisy["floor"], 1e-9)


# -- figure ------------------------------------------------------------------------------------------------
def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import color_of, new_figure, seed_dots

    r = results[KEY]
    sp, no = r["sparse"]["conditions"], r["noisy"]
    fig, axes = new_figure(1, 3, width=16, height=4.3)
    ax = axes[0][0]
    freq = np.array(sp["zipf"]["freq"])
    seen = freq > 0
    bins = np.quantile(freq[seen], np.linspace(0, 1, 9))
    centres = np.sqrt(bins[:-1] * bins[1:])
    for o in FIVE:
        err = np.array(sp["zipf"]["optimizers"][o]["abs_error"])
        which = np.clip(np.digitize(freq[seen], bins[1:-1]), 0, len(centres) - 1)
        per_bin = np.array([np.mean(err[seen][which == k]) if np.any(which == k) else np.nan
                            for k in range(len(centres))])
        ok = np.isfinite(per_bin)  # tied frequencies leave some quantile bins empty
        ax.plot(centres[ok], per_bin[ok], marker="o", ms=3, color=color_of(o), label=o)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("share of training rows holding the feature")
    ax.set_ylabel("mean |ŵ − w| of its weight (seed 0)")
    ax.set_title("Zipf-sparse inputs: error of each weight by frequency", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0][1]
    x = np.arange(len(FIVE))
    for k, cond in enumerate(("zipf", "dense")):
        for j, o in enumerate(FIVE):
            color = color_of(o) if k == 0 else "0.6"
            seed_dots(ax, x[j] + (k - 0.5) * 0.4, sp[cond]["optimizers"][o]["rare"], color, width=0.3)
    ax.set_xticks(x, FIVE)
    ax.set_yscale("log")
    ax.set_ylabel("relative error, rarer half of the weights")
    ax.set_title("rare features' weights: Zipf inputs (left, colour) vs the dense control (right, grey)",
                 fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax = axes[0][2]
    for k, b in enumerate(no["batches"]):
        for j, o in enumerate(FIVE):
            excess = np.maximum(np.array(no["optimizers"][o][str(b)]["loss"], dtype=float) - no["floor"], 1e-9)
            seed_dots(ax, x[j] + (k - 0.5) * 0.4, excess, color_of(o) if k == 0 else "0.6", width=0.3)
    ax.set_xticks(x, FIVE)
    ax.set_yscale("log")
    ax.set_ylabel("held-out loss above the noise floor")
    ax.set_title(f"noisy gradients: batch {no['batches'][0]} (left, colour) vs {no['batches'][1]} (right, grey), "
                 f"{no['steps']} steps each", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, out, "noisy_sparse.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    sp, no = r["sparse"], r["noisy"]
    doc.paragraph(
        f"**Sparse.** {sp['samples']:,} rows of {sp['features']} features, 5 non-zero per row, drawn with "
        "probability ∝ 1/rank¹·¹ (a Zipf law), values standard normal, stored as CSR; targets are a known random "
        f"linear function plus noise of 0.1. 80% trains a linear model for {sp['epochs']} epochs with batches of "
        f"{_BATCH}; the other 20% picks each optimizer's rate (on a separate seed). The dense control has every "
        "feature in every row, scaled to the same signal. **Noisy.** A 10-8-1 tanh teacher with noise 0.5 labels "
        f"fresh samples; a 10-16-1 ReLU student takes {no['steps']} steps at batch {no['batches'][0]} and at batch "
        f"{no['batches'][1]}, each at its own best rate, and is scored on {_EVAL:,} held-out samples.")
    rows = []
    for o in FIVE:
        z, d = sp["conditions"]["zipf"]["optimizers"][o], sp["conditions"]["dense"]["optimizers"][o]
        v = no["optimizers"][o]
        at = [v[str(b)] for b in no["batches"]]
        rows.append([o, f"{z['lr']:g}", fmt(float(np.mean(z["rare"])), ".3g"),
                     fmt(float(np.mean(z["frequent"])), ".3g"), f"{d['lr']:g}", fmt(float(np.mean(d["rare"])), ".3g"),
                     *[f"{fmt(float(np.mean(x['loss'])), '.3g')} (lr {x['lr']:g})" for x in at]])
    doc.table(["optimizer", "Zipf lr", "rare-weight error", "frequent-weight error", "dense lr",
               "same weights, dense", f"loss at batch {no['batches'][0]}", f"loss at batch {no['batches'][1]}"], rows,
              caption=f"means over seeds; the noise floor of the noisy problem is {no['floor']:.3g}")
