"""``microdl report``: the claims of the optimisation article, each put to a measurement, with a verdict.

The article (``optimization-techniques.md``: GD, SGD, Adam, Adagrad, RMSprop, AdaDelta, with advantages and
disadvantages for each) makes about thirty claims. :data:`CLAIMS` lists every one of them. Each is tied to
one of the experiments below, or marked "not tested" with the reason; each tested claim gets a verdict from
a rule written next to it (in :func:`_verdicts`) and printed in the report:

* **wide** — :func:`compare` of the six optimizers on seven datasets (classification and regression), at
  torch's default learning rates and at rates tuned on a validation split; "converges quickly" means reaching
  the target loss (90% of the best improvement) on every seed, in the top half by epochs.
* **gd_sgd** — full-batch GD against mini-batch SGD at their tuned rates, per epoch, per second of training
  and per gradient evaluation.
* **width** — SGD, Adagrad, AdaDelta and Adam as the hidden layer widens (more parameters): loss after a
  fixed budget relative to the others, the mean step per parameter and Adagrad's effective rate γ/(√S + ε).
* **sensitivity** — :func:`sensitivity`: the width in decades of the learning-rate range within 10% of the
  best validation loss, and the same at several batch sizes.
* **noise** — SGD's steps measured one by one: how often a step raises the full training loss, and the
  cosine between the mini-batch gradient and the full gradient.
* **memory** — optimizer state per parameter and time per step.

Verdicts: **supported**, **not supported**, **depends** (the measurement goes both ways, or depends on the
unit or setting), **not tested** (with the reason). They hold for these datasets, this network family and
these budgets, which the report states; they are not general truths.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microdl.experiments.comparison import CompareResult, _mean_std, compare, first_reach
from microdl.experiments.runs import (
    SIX_OPTIMIZERS,
    Budget,
    RunSpec,
    check_execution,
    default_lr,
    execute,
    threads_per_run,
)
from microdl.experiments.sweep import sensitivity
from microdl.experiments.tuning import LR_GRID

__all__ = ["make_report", "Report", "ReportSettings", "QUICK", "CLAIMS", "Claim"]


# -- the claims --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One sentence of the article: ``id``, the optimizer it is about, advantage or disadvantage, the text,
    and the experiment that tests it (None: not tested, ``reason`` says why)."""

    id: str
    optimizer: str
    kind: str
    text: str
    experiment: str | None
    reason: str = ""


_SPARSE = ("no dataset here has sparse features or sparse gradients, so the 'sparse' half is not tested; the "
           "'noisy' half is tested by shrinking the batch")
CLAIMS: tuple[Claim, ...] = (
    Claim("gd-simple", "gd", "advantage", "Simple and widely used", None,
          "not a measurable property (microdl's GD is SGD's rule given the full batch: one line of arithmetic)"),
    Claim("gd-any-size", "gd", "advantage", "Can be used for both small and large datasets", None,
          "every step touches every sample, so a step costs time proportional to the dataset; the datasets here "
          "are all small, and 'can be used' is not a yes/no measurement"),
    Claim("gd-combine", "gd", "advantage", "Can be combined with other optimization techniques", None,
          "true by construction (microdl's GD takes momentum, schedules and clipping), nothing to measure"),
    Claim("gd-local-minima", "gd", "disadvantage", "Can be prone to getting stuck in local minima", None,
          "telling a local minimum from slow progress needs a landscape analysis; final losses at a fixed budget "
          "confound it with speed"),
    Claim("gd-slow", "gd", "disadvantage", "Can be slow to converge on high-dimensional and non-convex loss "
          "functions", "wide"),
    Claim("sgd-faster", "sgd", "advantage", "Faster convergence than standard Gradient Descent", "gd_sgd"),
    Claim("sgd-large-online", "sgd", "advantage", "Can handle large datasets and online learning", None,
          "no large or streaming dataset here; a step's cost does not depend on the dataset size by construction"),
    Claim("sgd-local-minima", "sgd", "advantage", "Reduces the risk of getting stuck in local minima", None,
          "as for GD: needs a landscape analysis, not a fixed-budget loss"),
    Claim("sgd-sensitive", "sgd", "disadvantage", "Can be sensitive to the learning rate and batch size",
          "sensitivity"),
    Claim("sgd-noisy", "sgd", "disadvantage", "Can suffer from noisy updates", "noise"),
    Claim("adam-memory", "adam", "advantage", "Efficient and requires less memory than other optimization "
          "algorithms", "memory"),
    Claim("adam-noisy-sparse", "adam", "advantage", "Can handle noisy and sparse gradients", "batch_noise", _SPARSE),
    Claim("adam-wide", "adam", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("adam-sensitive", "adam", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("adam-suboptimal", "adam", "disadvantage", "Can converge to suboptimal solutions on non-convex problems",
          "wide"),
    Claim("adagrad-per-param", "adagrad", "advantage", "Automatically adjusts the learning rate for each "
          "parameter", "width"),
    Claim("adagrad-noisy-sparse", "adagrad", "advantage", "Can handle sparse data and noisy gradients",
          "batch_noise", _SPARSE),
    Claim("adagrad-small", "adagrad", "advantage", "Converges quickly on problems with a small number of "
          "parameters", "width"),
    Claim("adagrad-large", "adagrad", "disadvantage", "Can suffer from slow convergence on problems with a large "
          "number of parameters", "width"),
    Claim("adagrad-unstable", "adagrad", "disadvantage", "Can accumulate too much learning rate, leading to "
          "numerical instability", "width"),
    Claim("rmsprop-easy", "rmsprop", "advantage", "Efficient and easy to implement", None,
          "ease is not measurable; its step costs about the same as the others' (see the memory and step-time "
          "table)"),
    Claim("rmsprop-wide", "rmsprop", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("rmsprop-nonstationary", "rmsprop", "advantage", "Handles non-stationary environments well", None,
          "every dataset here is stationary"),
    Claim("rmsprop-sensitive", "rmsprop", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("rmsprop-noisy-sparse", "rmsprop", "disadvantage", "Can suffer from noisy and sparse gradients",
          "batch_noise", _SPARSE),
    Claim("adadelta-fewer", "adadelta", "advantage", "Requires fewer hyperparameters than other optimization "
          "algorithms", "memory"),
    Claim("adadelta-noisy-sparse", "adadelta", "advantage", "Can handle sparse data and noisy gradients",
          "batch_noise", _SPARSE),
    Claim("adadelta-wide", "adadelta", "advantage", "Converges quickly on a wide range of problems", "wide"),
    Claim("adadelta-sensitive", "adadelta", "disadvantage", "Can be sensitive to the choice of hyperparameters",
          "sensitivity"),
    Claim("adadelta-large", "adadelta", "disadvantage", "Can suffer from slow convergence on problems with a "
          "large number of parameters", "width"),
    Claim("overall", "all", "conclusion", "The choice of optimization technique depends on the specific problem "
          "and dataset, and it is often necessary to experiment with different algorithms and hyperparameters",
          "wide"),
)

_EXPERIMENT_TITLES = {
    "wide": "Six optimizers on seven problems", "gd_sgd": "GD against SGD", "width": "Wider networks",
    "sensitivity": "Learning-rate and batch-size sensitivity", "batch_noise": "Noisy gradients (small batches)",
    "noise": "SGD's noisy updates, step by step", "memory": "Memory, step time and hyperparameters",
}


# -- settings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportSettings:
    """Datasets, seeds and budgets of every experiment. ``focus`` is the dataset of the single-dataset
    experiments (GD vs SGD, width, sensitivity, noise); it must be one of ``datasets``."""

    datasets: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits", "moons", "diabetes", "regression")
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 30
    batch_size: int = 32
    hidden: tuple[int, ...] = (64,)
    lr_grid: tuple[float, ...] = LR_GRID
    focus: str = "digits"
    sgd_epochs: int = 20
    gd_epochs: int = 200
    widths: tuple[int, ...] = (16, 64, 256, 1024)
    width_optimizers: tuple[str, ...] = ("sgd", "adagrad", "adadelta", "adam")
    width_seeds: tuple[int, ...] = (0, 1)
    width_epochs: int = 20
    sens_seeds: tuple[int, ...] = (0, 1)
    sens_epochs: int = 20
    batch_sizes: tuple[int, ...] = (8, 32, 128)
    within: float = 0.10
    noise_batch_sizes: tuple[int, ...] = (8, 32, 128)
    noise_steps: int = 100
    noise_seeds: tuple[int, ...] = (0, 1)
    step_time_params: int = 1_000_000


#: Tiny budgets: the whole report in seconds (tests, previews). Its verdicts mean little.
QUICK = ReportSettings(datasets=("iris", "diabetes"), seeds=(0, 1), epochs=3, lr_grid=(1e-3, 1e-2, 1e-1, 1.0),
                       focus="iris", sgd_epochs=2, gd_epochs=6, widths=(4, 16), width_seeds=(0,), width_epochs=2,
                       sens_seeds=(0,), sens_epochs=2, batch_sizes=(8, 32), noise_batch_sizes=(8,), noise_steps=5,
                       noise_seeds=(0,), step_time_params=10_000)


# -- the report object -------------------------------------------------------------------------------------
@dataclass
class Report:
    """What :func:`make_report` measured: per experiment its numbers, per claim a verdict and the evidence."""

    settings: ReportSettings
    results: dict[str, Any]
    verdicts: dict[str, dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)

    def summary_text(self) -> str:
        """One line per claim: verdict, optimizer, claim and the key figure."""
        lines = []
        for c in CLAIMS:
            v = self.verdicts[c.id]
            lines.append(f"{v['verdict']:26s}  {c.optimizer:8s}  {c.text}")
        counts = verdict_counts(self.verdicts)
        lines.append("totals: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return "\n".join(lines)


def make_report(out_dir: str | Path = "report", *, quick: bool = False, settings: ReportSettings | None = None,
                jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
                progress: bool | None = None) -> Report:
    """Run every experiment, decide every claim and write ``report.md``, ``report.html``, the figures and
    ``results.json`` (all measured numbers and verdicts) into ``out_dir``.

    Parameters
    ----------
    quick : bool
        Use :data:`QUICK`'s tiny budgets (seconds instead of minutes).
    settings : ReportSettings, optional
        Full control over datasets, seeds and budgets (overrides ``quick``).
    jobs, backend, scheduler, progress
        As in :func:`microdl.experiments.compare`. One job gives the cleanest wall-clock figures.
    """
    check_execution(jobs, backend, scheduler)
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError('the report draws figures, which needs matplotlib: pip install "microdl[plot]"')
    s = settings or (QUICK if quick else ReportSettings())
    if s.focus not in s.datasets:
        raise ValueError(f"the focus dataset {s.focus!r} must be one of the datasets {s.datasets}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = {"jobs": jobs, "backend": backend, "scheduler": scheduler, "progress": progress}
    tic = time.perf_counter()
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}

    t = time.perf_counter()
    results["wide"] = _exp_wide(s, out, run)
    timings["wide"] = time.perf_counter() - t
    tuned = results["wide"]["tuned_lrs"][s.focus]
    for name, fn in (("gd_sgd", _exp_gd_sgd), ("width", _exp_width), ("sensitivity", _exp_sensitivity),
                     ("noise", _exp_noise), ("memory", _exp_memory)):
        t = time.perf_counter()
        results[name] = fn(s, out, run, tuned)
        timings[name] = time.perf_counter() - t
    verdicts = _verdicts(s, results)
    meta = _meta(s, time.perf_counter() - tic, timings, jobs, backend)
    report = Report(s, results, verdicts, meta)
    _write(report, out)
    return report


# -- experiment: six optimizers on many problems -----------------------------------------------------------
def _exp_wide(s: ReportSettings, out: Path, run: dict[str, Any]) -> dict[str, Any]:
    common = {"seeds": s.seeds, "epochs": s.epochs, "batch_size": s.batch_size, "hidden": s.hidden, **run}
    default = compare(s.datasets, SIX_OPTIMIZERS, **common)
    tuned = compare(s.datasets, SIX_OPTIMIZERS, tune=True, lr_grid=s.lr_grid, **common)
    default.save(out / "wide_default")
    tuned.save(out / "wide_tuned")
    res: dict[str, Any] = {"default": _wide_numbers(default), "tuned": _wide_numbers(tuned),
                           "tuned_lrs": {d: {o: v["lr"] for o, v in tuned.config["lrs"][d].items()}
                                         for d in s.datasets},
                           "tables_default": default.format_tables(), "tables_tuned": tuned.format_tables(),
                           "tuning_note": tuned.lr_note()}
    return res


def _wide_numbers(result: CompareResult) -> dict[str, Any]:
    """Per dataset: target, per optimizer the summary row, its rank by epochs to target and 'quick'."""
    n = len(result.config["seeds"])
    by_dataset: dict[str, Any] = {}
    rows = result.summary()
    for d in result.config["datasets"]:
        mine = {r["optimizer"]: r for r in rows if r["dataset"] == d}
        # rank by mean epochs to target; an optimizer that misses the target on some seed ranks after
        # every one that reaches it on all seeds (then by how many seeds reached, then final loss)
        order = sorted(mine, key=lambda o: (-mine[o]["reached"],
                                            mine[o]["epochs_to_target_mean"] if mine[o]["reached"] else math.inf,
                                            mine[o]["train_loss_mean"]))
        info = {"target": result.target(d), "task": result.datasets[d]["task"], "optimizers": {}}
        best_test = min(mine, key=lambda o: mine[o]["test_loss_mean"]
                        if math.isfinite(mine[o]["test_loss_mean"]) else math.inf)
        info["best_test_optimizer"] = best_test
        best_loss = mine[best_test]["test_loss_mean"]
        info["near_best_test"] = [o for o in mine if mine[o]["test_loss_mean"] <= 1.1 * best_loss]
        fastest = min((r["epochs_to_target_mean"] for r in mine.values() if r["reached"] == n), default=math.inf)
        info["fastest_epochs"] = fastest
        for o, r in mine.items():
            rank = order.index(o) + 1
            # "quick": reaches the target on every seed within twice the epochs of the fastest optimizer
            # (at least 2 epochs of slack, since the fastest often needs a single epoch)
            quick = r["reached"] == n and r["epochs_to_target_mean"] <= 2 * max(fastest, 1.0)
            info["optimizers"][o] = {**r, "rank": rank, "quick": quick}
        by_dataset[d] = info
    return by_dataset


# -- experiment: GD against SGD ----------------------------------------------------------------------------
def _exp_gd_sgd(s: ReportSettings, out: Path, run: dict[str, Any], lrs: dict[str, float]) -> dict[str, Any]:
    common = {"seeds": s.seeds, "batch_size": s.batch_size, "hidden": s.hidden, **run}
    sgd = compare([s.focus], ["sgd"], epochs=s.sgd_epochs, lrs={"sgd": lrs["sgd"]}, **common)
    gd = compare([s.focus], ["gd"], epochs=s.gd_epochs, lrs={"gd": lrs["gd"]}, **common)
    sgd_runs, gd_runs = sgd.runs, gd.runs
    E = s.sgd_epochs
    per_epoch = {"epoch": E, "sgd": _mean_at(sgd_runs, "epoch", E), "gd": _mean_at(gd_runs, "epoch", E)}
    T = min(_mean_std([r["wall_time"][-1] for r in sgd_runs])[0], _mean_std([r["wall_time"][-1] for r in gd_runs])[0])
    per_second = {"time": T, "sgd": _mean_at(sgd_runs, "wall_time", T), "gd": _mean_at(gd_runs, "wall_time", T)}
    # per gradient evaluation: the last SGD epoch whose step count GD also reached
    steps = [g for g in sgd_runs[0]["grad_evals"][1:] if g <= s.gd_epochs]
    k = steps[-1] if steps else None
    per_step = {"steps": k, "sgd": _mean_at(sgd_runs, "grad_evals", k) if k else None,
                "gd": _mean_at(gd_runs, "grad_evals", k) if k else None}
    gd_final = _mean_std([r["train_loss"][-1] for r in gd_runs])[0]
    hits = [first_reach(r["train_loss"], gd_final) for r in sgd_runs]
    sgd_time_to_gd_final = [r["wall_time"][h] for h, r in zip(hits, sgd_runs) if h is not None]
    res = {"lrs": {"sgd": lrs["sgd"], "gd": lrs["gd"]}, "per_epoch": per_epoch, "per_second": per_second,
           "per_step": per_step, "gd_final": {"epochs": s.gd_epochs, "loss": gd_final,
                                              "time": _mean_std([r["wall_time"][-1] for r in gd_runs])[0]},
           "sgd_reaches_gd_final": {"seeds": len(sgd_time_to_gd_final), "of": len(sgd_runs),
                                    "time": _mean_std(sgd_time_to_gd_final)[0],
                                    "epochs": _mean_std([float(h) for h in hits if h is not None])[0]},
           "sgd_epoch_time": _mean_std([r["wall_time"][-1] / r["epoch"][-1] for r in sgd_runs])[0],
           "gd_epoch_time": _mean_std([r["wall_time"][-1] / r["epoch"][-1] for r in gd_runs])[0],
           "steps_per_sgd_epoch": sgd_runs[0]["grad_evals"][1], "figure": "gd_vs_sgd.png"}
    _plot_gd_sgd(out / "gd_vs_sgd.png", sgd_runs, gd_runs, s.focus)
    return res


def _mean_at(runs: Sequence[dict[str, Any]], x_key: str, x: float) -> float:
    """Mean over runs of the training loss at ``x`` on the axis ``x_key`` (linear interpolation)."""
    values = []
    for r in runs:
        xs = np.asarray(r[x_key], float)
        ys = np.array([np.nan if v is None else v for v in r["train_loss"]], float)
        if x <= xs[-1]:
            values.append(float(np.interp(x, xs, ys)))
    return float(np.mean(values)) if values else math.nan


def _plot_gd_sgd(path: Path, sgd_runs: list, gd_runs: list, dataset: str) -> None:
    from microdl.experiments.plots import band_plot, new_figure

    fig, axes = new_figure(1, 3, width=15, height=4)
    row = axes[0]
    for runs, name in ((gd_runs, "gd"), (sgd_runs, "sgd")):
        band_plot(row[0], [r["epoch"] for r in runs], [r["train_loss"] for r in runs], name)
        band_plot(row[1], [r["wall_time"] for r in runs], [r["train_loss"] for r in runs], name, on_grid=True)
        band_plot(row[2], [r["grad_evals"] for r in runs], [r["train_loss"] for r in runs], name, on_grid=True)
    for ax, xlabel in zip(row, ("epoch (passes over the data)", "training time (s)", "gradient evaluations (steps)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{dataset}: train loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    row[2].set_xscale("symlog", linthresh=1)
    row[2].set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- experiment: wider networks ----------------------------------------------------------------------------
def _exp_width(s: ReportSettings, out: Path, run: dict[str, Any], lrs: dict[str, float]) -> dict[str, Any]:
    from microdl.datasets import load_dataset

    threads = threads_per_run(run["jobs"], run["backend"])
    specs = []
    for seed in s.width_seeds:
        d = load_dataset(s.focus, random_state=seed)
        for w in s.widths:
            for o in s.width_optimizers:
                specs.append(RunSpec(o, lrs[o], seed, (d.n_features, w, d.n_outputs), d.loss, d.X_train, d.y_train,
                                     d.X_test, d.y_test, Budget("epochs", s.width_epochs), s.batch_size,
                                     threads=threads, track_steps=True, labels={"width": w, "phase": "width"}))
    runs = execute(specs, desc="width", **run)
    table: dict[int, dict[str, Any]] = {}
    for w in s.widths:
        row: dict[str, Any] = {}
        for o in s.width_optimizers:
            rr = [r for r in runs if r["width"] == w and r["optimizer"] == o]
            step = np.nanmean([[np.nan if v is None else v for v in r["step_size"]] for r in rr], axis=0)
            entry = {"n_params": rr[0]["n_params"],
                     "final_train_loss": _mean_std([r["final_train_loss"] for r in rr])[0],
                     "step_first": float(step[0]), "step_last": float(step[-1]),
                     "diverged": sum(bool(r["diverged"]) for r in rr)}
            if "effective_lr" in rr[0]:
                eff = np.nanmean([r["effective_lr"] for r in rr], axis=0)
                entry["effective_first"], entry["effective_last"] = float(eff[0]), float(eff[-1])
                entry["effective_spread"] = float(np.mean([r["effective_spread"] for r in rr]))
                entry["effective_monotone"] = all(
                    all(b <= a * (1 + 1e-12) for a, b in zip(r["effective_lr"], r["effective_lr"][1:])) for r in rr)
            row[o] = entry
        for o in s.width_optimizers:  # loss relative to the geometric mean of the others at this width
            others = [row[x]["final_train_loss"] for x in s.width_optimizers if x != o]
            gm = math.exp(np.mean([math.log(max(v, 1e-300)) for v in others])) if others else math.nan
            row[o]["relative_loss"] = row[o]["final_train_loss"] / gm
            rank = sorted(s.width_optimizers, key=lambda x: row[x]["final_train_loss"]).index(o) + 1
            row[o]["rank"] = rank
        table[w] = row
    _plot_width(out / "width.png", runs, s)
    return {"lrs": {o: lrs[o] for o in s.width_optimizers}, "table": table, "figure": "width.png",
            "epochs": s.width_epochs}


def _plot_width(path: Path, runs: list, s: ReportSettings) -> None:
    from microdl.experiments.plots import band_plot, color_of, new_figure

    cols = len(s.widths) + 2
    fig, axes = new_figure(1, cols, width=3.6 * cols, height=3.6)
    row = axes[0]
    for ax, w in zip(row, s.widths):
        for o in s.width_optimizers:
            rr = [r for r in runs if r["width"] == w and r["optimizer"] == o]
            band_plot(ax, [r["epoch"] for r in rr], [r["train_loss"] for r in rr], o)
        ax.set_title(f"width {w} ({rr[0]['n_params']} parameters)", fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    row[0].set_ylabel("train loss")
    row[0].legend(fontsize=7)
    ax = row[-2]
    for o in s.width_optimizers:
        rel = []
        for w in s.widths:
            finals = {x: np.mean([r["final_train_loss"] for r in runs if r["width"] == w and r["optimizer"] == x])
                      for x in s.width_optimizers}
            others = [math.log(max(v, 1e-300)) for x, v in finals.items() if x != o]
            rel.append(finals[o] / math.exp(np.mean(others)))
        ax.plot(s.widths, rel, marker="o", color=color_of(o), label=o)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_title("final train loss / geometric mean of the others", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = row[-1]
    for k, w in enumerate(s.widths):
        rr = [r for r in runs if r["width"] == w and r["optimizer"] == "adagrad"]
        if rr:
            eff = np.nanmean([r["effective_lr"] for r in rr], axis=0)
            ax.plot(range(1, len(eff) + 1), eff, marker=".", label=f"width {w}", color=f"C{k}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("Adagrad: median of 1/(√S + ε) over parameters", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- experiment: sensitivity -------------------------------------------------------------------------------
def _exp_sensitivity(s: ReportSettings, out: Path, run: dict[str, Any], lrs: dict[str, float]) -> dict[str, Any]:
    result = sensitivity(s.focus, SIX_OPTIMIZERS, s.sens_seeds, epochs=s.sens_epochs, batch_size=s.batch_size,
                         batch_sizes=s.batch_sizes, sweep_batch_for=[o for o in SIX_OPTIMIZERS if o != "gd"],
                         hidden=s.hidden, grid=s.lr_grid, within=s.within, **run)
    result.save(out / "sensitivity")
    main = {o: _curve_numbers(result.curve(o)) for o in SIX_OPTIMIZERS}
    by_batch: dict[str, dict[int, Any]] = {}
    for o in SIX_OPTIMIZERS:
        if o == "gd":
            continue
        by_batch[o] = {b: _curve_numbers(result.curve(o, b)) for b in s.batch_sizes}
    # SGD at the rate that is best at the common batch size, at every batch size
    sgd_best_lr = main["sgd"]["best_lr"]
    at_fixed_lr = {}
    for b in s.batch_sizes:
        c = result.curve("sgd", b)
        at_fixed_lr[b] = c["val_loss"][c["lrs"].index(sgd_best_lr)] if sgd_best_lr in c["lrs"] else None
    return {"main": main, "by_batch": by_batch, "sgd_at_best_lr": {"lr": sgd_best_lr, "val_loss": at_fixed_lr},
            "table": result.format_table(), "figure": "sensitivity/sensitivity.png", "within": s.within}


def _curve_numbers(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("best_lr", "best_loss", "low", "high", "width", "censored", "lrs", "val_loss",
                              "diverged")}


# -- experiment: SGD's updates one by one ------------------------------------------------------------------
def _exp_noise(s: ReportSettings, out: Path, run: dict[str, Any], lrs: dict[str, float]) -> dict[str, Any]:
    """For each batch size (and GD), from the same initial weights: after every step, did the loss on the
    whole training set go up? And how well does the mini-batch gradient point along the full gradient
    (cosine)?"""
    from microdl.datasets import load_dataset
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import evaluate_loss

    configs = [("sgd", b, lrs["sgd"]) for b in s.noise_batch_sizes] + [("gd", None, lrs["gd"])]
    rows = []
    curves: dict[str, list[list[float]]] = {}
    for name, b, lr in configs:
        ups, cosines = [], []
        label = f"sgd, batch {b}" if b else "gd (full batch)"
        curves[label] = []
        for seed in s.noise_seeds:
            d = load_dataset(s.focus, random_state=seed)
            model = MLP((d.n_features, *s.hidden, d.n_outputs), loss=d.loss, random_state=seed)
            opt = make_optimizer(name, model.params, lr=lr)
            X, Y = d.X_train, model.encode_targets(d.y_train)
            n = X.shape[0]
            rng = np.random.default_rng(seed)
            order, pos = rng.permutation(n), 0
            full = evaluate_loss(model, X, Y)
            curve, up, cos = [full], 0, []
            for _ in range(s.noise_steps):
                model._loss_and_grad(X, Y)
                g_full = model.grads.copy()
                if b is None or b >= n:
                    Xb, Yb = X, Y
                else:
                    if pos + b > n:
                        order, pos = rng.permutation(n), 0
                    idx = order[pos : pos + b]
                    pos += b
                    Xb, Yb = X[idx], Y[idx]
                model._loss_and_grad(Xb, Yb)
                g = model.grads
                denom = float(np.linalg.norm(g) * np.linalg.norm(g_full))
                cos.append(float(g @ g_full) / denom if denom > 0 else 1.0)
                opt.step(g)
                new = evaluate_loss(model, X, Y)
                if not math.isfinite(new):
                    break
                up += new > full
                full = new
                curve.append(full)
            ups.append(up / max(1, len(curve) - 1))
            cosines.append(float(np.mean(cos)))
            curves[label].append(curve)
        rows.append({"optimizer": name, "batch_size": b, "label": label, "lr": lr,
                     "up_fraction": float(np.mean(ups)), "cosine": float(np.mean(cosines))})
    _plot_noise(out / "noise.png", curves, s)
    return {"rows": rows, "steps": s.noise_steps, "figure": "noise.png"}


def _plot_noise(path: Path, curves: dict[str, list[list[float]]], s: ReportSettings) -> None:
    from microdl.experiments.plots import band_plot, new_figure

    fig, axes = new_figure(1, 1, width=7, height=4)
    ax = axes[0][0]
    for k, (label, cs) in enumerate(curves.items()):
        band_plot(ax, [list(range(len(c))) for c in cs], cs, label, color=f"C{k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"{s.focus}: loss on the whole training set")
    ax.set_title("after every step; SGD's rises are its noisy updates", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- experiment: memory, step time, hyperparameters --------------------------------------------------------
def _exp_memory(s: ReportSettings, out: Path, run: dict[str, Any], lrs: dict[str, float]) -> dict[str, Any]:
    from microdl.optim import make_optimizer

    rows = {}
    n = s.step_time_params
    params = np.zeros(n)
    grads = np.random.default_rng(0).standard_normal(n)
    for o in SIX_OPTIMIZERS:
        opt = make_optimizer(o, params)
        state_bytes = sum(int(buf.nbytes) for buf in opt.state.values())
        opt.step(grads)  # compile / warm up
        reps = 20
        tic = time.perf_counter()
        for _ in range(reps):
            opt.step(grads)
        step_ms = (time.perf_counter() - tic) / reps * 1e3
        numeric = []
        for key, value in opt.hyperparameters.items():
            if key == "weight_decay" or isinstance(value, bool):
                continue  # a regulariser every optimizer shares, and on/off switches
            if isinstance(value, (tuple, list)):
                numeric += [f"{key}[{i}]" for i in range(len(value))]
            else:
                numeric.append(key)
        rows[o] = {"state_buffers": len(opt.state), "state_per_param": state_bytes / (8 * n),
                   "step_ms": step_ms, "hyperparameters": numeric}
    return {"rows": rows, "n_params": n}


# -- verdicts ----------------------------------------------------------------------------------------------
def _v(verdict: str, evidence: str, rule: str) -> dict[str, str]:
    return {"verdict": verdict, "evidence": evidence, "rule": rule}


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:{spec}}"


def _verdicts(s: ReportSettings, r: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    wide = r["wide"]["tuned"]
    n_data = len(s.datasets)

    # "converges quickly on a wide range of problems"
    default = r["wide"]["default"]
    rule_wide = ("quick on a dataset = reaches the target on every seed, in at most twice the epochs of the fastest "
                 "optimizer there (at tuned rates); supported if quick on at least 3/4 of the datasets, not "
                 "supported if on at most 1/4, else depends")

    def epochs_of(table: dict[str, Any], d: str, o: str) -> str:
        row = table[d]["optimizers"][o]
        mine = "—" if not row["reached"] else f"{row['epochs_to_target_mean']:.1f}"
        return f"{d} {mine} vs {_fmt(table[d]['fastest_epochs'], '.1f')}"

    for o in ("adam", "rmsprop", "adadelta"):
        quick = [d for d in s.datasets if wide[d]["optimizers"][o]["quick"]]
        quick_default = [d for d in s.datasets if default[d]["optimizers"][o]["quick"]]
        frac = len(quick) / n_data
        verdict = "supported" if frac >= 0.75 else "not supported" if frac <= 0.25 else "depends"
        out[f"{o}-wide"] = _v(
            verdict, f"quick on {len(quick)}/{n_data} datasets at tuned rates ({len(quick_default)}/{n_data} at "
            f"torch's default rate); epochs to the target, {o} vs the fastest: "
            + ", ".join(epochs_of(wide, d, o) for d in s.datasets), rule_wide)

    # GD slow
    slow = [d for d in s.datasets if not wide[d]["optimizers"]["gd"]["quick"]]
    frac = len(slow) / n_data
    out["gd-slow"] = _v("supported" if frac >= 0.75 else "not supported" if frac <= 0.25 else "depends",
                        f"GD is not quick (as defined for the 'wide range' claims) on {len(slow)}/{n_data} datasets "
                        "at tuned rates; epochs to the target, GD vs the fastest: "
                        + ", ".join(epochs_of(wide, d, "gd") for d in s.datasets) + "; see also GD against SGD",
                        "supported if GD is not quick on at least 3/4 of the datasets, not supported if on at most "
                        "1/4, else depends")

    # Adam suboptimal
    worse = []
    for d in s.datasets:
        rows = wide[d]["optimizers"]
        best = min(v["test_loss_mean"] for v in rows.values() if math.isfinite(v["test_loss_mean"]))
        a = rows["adam"]["test_loss_mean"]
        if a > best * 1.10 + 1e-12:
            worse.append(f"{d} ({_fmt(a)} vs best {_fmt(best)})")
    frac = len(worse) / n_data
    out["adam-suboptimal"] = _v(
        "supported" if frac >= 0.5 else "not supported" if not worse else "depends",
        f"Adam's final test loss (tuned rate) is more than 10% above the best optimizer's on {len(worse)}/{n_data} "
        f"datasets" + (": " + "; ".join(worse) if worse else ""),
        "supported if Adam's final test loss is >10% worse than the best on at least half the datasets, not "
        "supported if on none, else depends")

    # overall
    winners = {d: wide[d]["best_test_optimizer"] for d in s.datasets}
    distinct = sorted(set(winners.values()))
    widths = [r["sensitivity"]["main"][o]["width"] for o in SIX_OPTIMIZERS]
    near = {d: len(wide[d]["near_best_test"]) for d in s.datasets}
    out["overall"] = _v(
        "supported" if len(distinct) > 1 else "not supported",
        f"lowest final test loss (tuned): {', '.join(f'{d} {o}' for d, o in winners.items())}: {len(distinct)} "
        "different winners, though often by a small margin (optimizers within 10% of the best test loss: "
        + ", ".join(f"{d} {k}" for d, k in near.items()) + "); and no optimizer's good learning-rate range "
        f"(within {s.within:.0%}) spans more than {_fmt(max(widths), '.2f')} decades, so the rate must be tuned",
        "supported if the best optimizer differs between datasets")

    # GD vs SGD
    g = r["gd_sgd"]
    epoch_ok = g["per_epoch"]["sgd"] < g["per_epoch"]["gd"]
    second_ok = g["per_second"]["sgd"] < g["per_second"]["gd"]
    step_ok = g["per_step"]["sgd"] is not None and g["per_step"]["sgd"] < g["per_step"]["gd"]
    verdict = "supported" if epoch_ok and second_ok else "not supported" if not (epoch_ok or second_ok) else "depends"
    out["sgd-faster"] = _v(
        verdict,
        f"after {g['per_epoch']['epoch']} epochs: SGD {_fmt(g['per_epoch']['sgd'])} vs GD "
        f"{_fmt(g['per_epoch']['gd'])}; "
        f"after {_fmt(g['per_second']['time'], '.3f')} s of training: SGD {_fmt(g['per_second']['sgd'])} vs GD "
        f"{_fmt(g['per_second']['gd'])}; per gradient evaluation ({g['per_step']['steps']} steps): SGD "
        f"{_fmt(g['per_step']['sgd'])} vs GD {_fmt(g['per_step']['gd'])} "
        f"({'SGD' if step_ok else 'GD'} ahead)",
        "supported if SGD's mean training loss is lower both at equal epochs and at equal training time; not "
        "supported if lower at neither; else depends. Per step is reported, not judged (GD's step is n/b times "
        "as expensive)")

    # sensitivity
    sens = r["sensitivity"]
    rule_sens = (f"width = decades of learning rate whose mean final validation loss is within {s.within:.0%} of "
                 "the best; supported if under 1 decade (a 3x change from the best rate costs more than "
                 f"{s.within:.0%}), not supported if 2 decades or more, else depends")
    ranked = sorted(SIX_OPTIMIZERS, key=lambda o: sens["main"][o]["width"])
    ranking = ", ".join(f"{o} {_fmt(sens['main'][o]['width'], '.2f')}{'+' if sens['main'][o]['censored'] else ''}"
                        for o in ranked)

    def sens_verdict(o: str) -> str:
        w = sens["main"][o]["width"]
        if w >= 2:
            return "not supported"
        return "supported" if w < 1 and not sens["main"][o]["censored"] else "depends"

    for o in ("adam", "rmsprop", "adadelta"):
        out[f"{o}-sensitive"] = _v(sens_verdict(o),
                                   f"{o}: {_fmt(sens['main'][o]['width'], '.2f')} decades (best lr "
                                   f"{_fmt(sens['main'][o]['best_lr'])}); all, narrowest first: {ranking}", rule_sens)
    fixed = sens["sgd_at_best_lr"]
    finite = [v for v in fixed["val_loss"].values() if v is not None]
    spread = (max(finite) / min(finite) - 1) if len(finite) > 1 else math.nan
    best_by_batch = {b: sens["by_batch"]["sgd"][b]["best_lr"] for b in s.batch_sizes}
    lr_part = sens_verdict("sgd")
    batch_sensitive = (len(finite) < len(fixed["val_loss"])) or (math.isfinite(spread) and spread > s.within)
    verdict = lr_part if (lr_part == "supported") == batch_sensitive else "depends"
    out["sgd-sensitive"] = _v(
        verdict,
        f"learning rate: {_fmt(sens['main']['sgd']['width'], '.2f')} decades; batch size: at lr "
        f"{_fmt(fixed['lr'])} the validation loss is "
        + ", ".join(f"{_fmt(v, '.4g')} (batch {b})" for b, v in fixed["val_loss"].items())
        + f", a spread of {_fmt(100 * spread, '.0f')}%; best lr per batch size: "
        + ", ".join(f"{b}: {_fmt(v)}" for b, v in best_by_batch.items()),
        rule_sens + f"; batch size: sensitive if, at SGD's best rate, changing the batch size moves the loss by more "
        f"than {s.within:.0%} (or diverges); the verdict is 'depends' if the two parts disagree")

    # noisy gradients via small batches
    small, large = min(s.batch_sizes), max(s.batch_sizes)
    rule_bn = (f"best validation loss (each at its own best rate, equal epochs) at batch {small} vs batch {large}: "
               f"handles noise if no more than {s.within:.0%} worse, suffers if more than {s.within:.0%} worse")
    for o, claim_id, positive in (("adam", "adam-noisy-sparse", True), ("adagrad", "adagrad-noisy-sparse", True),
                                  ("rmsprop", "rmsprop-noisy-sparse", False),
                                  ("adadelta", "adadelta-noisy-sparse", True)):
        bs = sens["by_batch"][o]
        a, b = bs[small]["best_loss"], bs[large]["best_loss"]
        if a is None or b is None:
            verdict, ratio = "depends", math.nan
        else:
            ratio = a / b
            suffers = ratio > 1 + s.within
            verdict = "supported" if suffers != positive else "not supported"
        out[claim_id] = _v(verdict + " (noisy part)",
                           f"{o}: best validation loss {_fmt(a, '.4g')} at batch {small} vs {_fmt(b, '.4g')} at batch "
                           f"{large} (ratio {_fmt(ratio, '.2f')}); sparse gradients not tested", rule_bn)

    # SGD noisy updates
    rows = r["noise"]["rows"]
    sgd_rows = [x for x in rows if x["optimizer"] == "sgd"]
    gd_row = [x for x in rows if x["optimizer"] == "gd"][0]
    mid = min(sgd_rows, key=lambda x: abs(x["batch_size"] - s.batch_size))
    noisy = mid["up_fraction"] >= 0.05 + gd_row["up_fraction"] or mid["cosine"] <= 0.9
    out["sgd-noisy"] = _v(
        "supported" if noisy else "not supported",
        "; ".join(f"{x['label']}: {100 * x['up_fraction']:.0f}% of steps raise the full training loss, gradient "
                  f"cosine with the full gradient {x['cosine']:.2f}" for x in rows),
        f"supported if at batch {mid['batch_size']} at least 5 points more of the steps raise the full training "
        "loss than with GD, or the mini-batch gradient's mean cosine with the full gradient is 0.9 or less")

    # width: Adagrad and AdaDelta with many parameters
    wt = r["width"]["table"]
    ws = list(s.widths)
    rule_large = ("rel(w) = final train loss / geometric mean of the other optimizers' at width w; supported if rel "
                  "grows with width (Spearman >= 0.8 and rel(widest) >= 2 rel(narrowest)), not supported if "
                  "rel(widest) <= rel(narrowest), else depends")
    for o, claim_id in (("adagrad", "adagrad-large"), ("adadelta", "adadelta-large")):
        rel = [wt[w][o]["relative_loss"] for w in ws]
        rho = _spearman(ws, rel)
        if rel[-1] <= rel[0]:
            verdict = "not supported"
        elif rho >= 0.8 and rel[-1] >= 2 * rel[0]:
            verdict = "supported"
        else:
            verdict = "depends"
        out[claim_id] = _v(verdict, f"{o}: rel = " + ", ".join(
            f"{_fmt(v, '.3g')} (width {w}, {wt[w][o]['n_params']} params)" for w, v in zip(ws, rel))
            + f"; Spearman {_fmt(rho, '.2f')}", rule_large)
    first = wt[ws[0]]
    rank_small = first["adagrad"]["rank"]
    losses_small = ", ".join(f"{o} {_fmt(first[o]['final_train_loss'])}" for o in s.width_optimizers)
    out["adagrad-small"] = _v(
        "supported" if rank_small <= len(s.width_optimizers) / 2 else "not supported",
        f"at width {ws[0]} ({first['adagrad']['n_params']} params) Adagrad's final train loss ranks {rank_small} of "
        f"{len(s.width_optimizers)} ({losses_small})",
        "supported if Adagrad is in the top half at the smallest width")
    spreads = [wt[w]["adagrad"]["effective_spread"] for w in ws]
    out["adagrad-per-param"] = _v(
        "supported" if min(spreads) >= 2 else "not supported",
        "the per-parameter effective rate γ/(√S + ε) differs across parameters by a factor (90th/10th percentile) "
        f"of {', '.join(f'{_fmt(x)}' for x in spreads)} at widths {', '.join(map(str, ws))}",
        "supported if the 90th/10th percentile ratio of the per-parameter rates is at least 2 at every width")
    monotone = all(wt[w]["adagrad"]["effective_monotone"] for w in ws)
    shrink = [wt[w]["adagrad"]["effective_first"] / wt[w]["adagrad"]["effective_last"] for w in ws]
    div = sum(wt[w]["adagrad"]["diverged"] for w in ws)
    sens_div = sum(bool(x) for x in sens["main"]["adagrad"]["diverged"])
    grid_top = max(s.lr_grid)
    out["adagrad-unstable"] = _v(
        "not supported" if monotone and div == 0 else "depends",
        f"the median effective rate only falls (monotone in every run: {monotone}); it shrinks by "
        f"{', '.join(_fmt(x) for x in shrink)}x over {r['width']['epochs']} epochs at widths "
        f"{', '.join(map(str, ws))}; divergences: {div} in the width runs, at {sens_div} of the swept rates up to "
        f"{grid_top:g}",
        "not supported if Adagrad's effective rate never grows and no width run diverges; else depends")

    # memory and hyperparameters
    mem = r["memory"]["rows"]
    adam_state = mem["adam"]["state_per_param"]
    others = {o: v["state_per_param"] for o, v in mem.items() if o != "adam"}
    out["adam-memory"] = _v(
        "supported" if adam_state < min(others.values()) else "not supported",
        "state per parameter: " + ", ".join(f"{o} {v['state_per_param']:g}" for o, v in mem.items())
        + "; step time on " + f"{r['memory']['n_params']:,}" + " parameters: "
        + ", ".join(f"{o} {v['step_ms']:.2f} ms" for o, v in mem.items()),
        "supported if Adam keeps less optimizer state per parameter than every other optimizer")
    counts = {o: len(v["hyperparameters"]) for o, v in mem.items()}
    fewest = counts["adadelta"] < min(c for o, c in counts.items() if o != "adadelta")
    wide_lr = sens["main"]["adadelta"]["width"]
    verdict = ("supported" if fewest and wide_lr >= 2 else
               "not supported" if not fewest and wide_lr < 1 else "depends")
    out["adadelta-fewer"] = _v(
        verdict,
        "numeric hyperparameters (weight decay aside): " + ", ".join(
            f"{o} {counts[o]} ({', '.join(mem[o]['hyperparameters'])})" for o in SIX_OPTIMIZERS)
        + f"; AdaDelta's learning rate (a step scale in torch's form) still matters: "
          f"{_fmt(wide_lr, '.2f')}{'+' if sens['main']['adadelta']['censored'] else ''} decades within {s.within:.0%}",
        "supported if AdaDelta has strictly the fewest numeric hyperparameters and its lr range within the "
        "tolerance spans 2 decades or more; not supported if neither; else depends")

    for c in CLAIMS:
        if c.experiment is None:
            out[c.id] = _v("not tested", c.reason, "")
    missing = [c.id for c in CLAIMS if c.id not in out]
    assert not missing, f"claims without a verdict: {missing}"
    return out


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    if len(x) < 2:
        return math.nan
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.std(rx) == 0 or np.std(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def verdict_counts(verdicts: dict[str, dict[str, str]]) -> dict[str, int]:
    """How many claims got each verdict ("supported (noisy part)" counts as supported)."""
    base = [v["verdict"].split(" (")[0] for v in verdicts.values()]
    return {k: base.count(k) for k in ("supported", "not supported", "depends", "not tested")}


# -- metadata ----------------------------------------------------------------------------------------------
def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def _meta(s: ReportSettings, seconds: float, timings: dict[str, float], jobs: int, backend: str) -> dict[str, Any]:
    import numba

    import microdl

    return {"commit": _git_commit(), "microdl": microdl.__version__, "numpy": np.__version__,
            "numba": numba.__version__, "python": platform.python_version(), "machine": platform.platform(),
            "cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(), "jobs": jobs, "backend": backend,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": seconds, "timings": timings}


# -- writing -----------------------------------------------------------------------------------------------
def _write(report: Report, out: Path) -> None:
    from microdl.experiments.markup import Document

    s, r, v, meta = report.settings, report.results, report.verdicts, report.meta
    doc = Document('Testing the claims of "Optimization techniques in Deep Learning"')
    doc.paragraph(
        "Each claim of the article (advantages and disadvantages of GD, SGD, Adam, Adagrad, RMSprop and AdaDelta) "
        "is tested by a measurement on small MLPs, or marked not tested with the reason. Verdicts follow the rule "
        "stated with each one, and hold for these datasets, this network family and these budgets only.")
    doc.heading("Set-up")
    doc.bullets([
        f"commit `{meta['commit']}`; microdl {meta['microdl']}, numpy {meta['numpy']}, numba {meta['numba']}, "
        f"Python {meta['python']}; {meta['machine']}, {meta['cpus']} CPUs, {meta['numba_threads']} Numba threads, "
        f"{meta['jobs']} job(s) ({meta['backend']}); {meta['date']}; total {meta['seconds']:.0f} s",
        f"datasets: {', '.join(s.datasets)} (scikit-learn's, standardised; classification with softmax "
        "cross-entropy, regression with squared error on standardised targets; 75/25 train/test split per seed)",
        f"network: MLP with hidden layer(s) {', '.join(map(str, s.hidden))} and ReLU, He initialisation; batch "
        f"{s.batch_size} (GD: the full training set); seeds {', '.join(map(str, s.seeds))} (a seed fixes the split, "
        "the initial weights and the batch order, the same for every optimizer)",
        f"budgets: {s.epochs} epochs on every dataset; GD vs SGD: {s.gd_epochs} epochs of GD, {s.sgd_epochs} of SGD; "
        f"width: {s.width_epochs} epochs, widths {', '.join(map(str, s.widths))}, seeds "
        f"{', '.join(map(str, s.width_seeds))}; sensitivity: {s.sens_epochs} epochs, seeds "
        f"{', '.join(map(str, s.sens_seeds))}, batch sizes {', '.join(map(str, s.batch_sizes))}; noise: "
        f"{s.noise_steps} steps, seeds {', '.join(map(str, s.noise_seeds))}",
        f"learning rates: torch.optim's defaults ({', '.join(f'{o} {default_lr(o):g}' for o in SIX_OPTIMIZERS)}), "
        f"and rates tuned per dataset on a 20% validation split of the training data (never the test set) over "
        f"{len(s.lr_grid)} rates from {min(s.lr_grid):g} to {max(s.lr_grid):g}",
        "losses are measured on the whole training (or test) set after each epoch; training time excludes that "
        "evaluation",
        "reproduce with `microdl report --out report`; all numbers are in `results.json`",
    ])
    doc.heading("Verdicts")
    doc.table(["#", "optimizer", "claim", "verdict", "experiment"],
              [[i + 1, c.optimizer, c.text, f"**{v[c.id]['verdict']}**",
                _EXPERIMENT_TITLES.get(c.experiment, "—") if c.experiment else "—"] for i, c in enumerate(CLAIMS)])
    counts = verdict_counts(v)
    doc.paragraph("Totals: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".")

    def claims_of(experiment: str) -> None:
        for c in CLAIMS:
            if c.experiment == experiment:
                doc.paragraph(f"**{c.optimizer}: \"{c.text}\"**: **{v[c.id]['verdict']}**. {v[c.id]['evidence']}. "
                              f"*Rule:* {v[c.id]['rule']}.")

    # wide
    doc.heading(_EXPERIMENT_TITLES["wide"])
    doc.paragraph(
        f"Every optimizer trains the same network on each dataset for {s.epochs} epochs, once per seed, first at "
        "torch's default rates and then at rates tuned on a validation split. The target loss of a dataset is "
        "90% of the way from the initial training loss to the best final training loss among the six; "
        "'epochs→target' is the first epoch whose full training loss is at or below it. At tuned rates most "
        "optimizers reach it within a few epochs, so 'quick' below allows twice the epochs of the fastest.")
    doc.pre(r["wide"]["tables_tuned"])
    doc.image("wide_tuned/curves.png", "training and test loss curves at tuned rates")
    doc.paragraph("At torch's default rates (GD and SGD's 1e-3 is far too small for these networks):")
    doc.pre(r["wide"]["tables_default"])
    doc.image("wide_default/curves.png", "training and test loss curves at default rates")
    doc.table(["dataset", *SIX_OPTIMIZERS], [
        [d, *[f"{r['wide']['tuned_lrs'][d][o]:g}" for o in SIX_OPTIMIZERS]] for d in s.datasets])
    doc.paragraph("(tuned learning rates per dataset)")
    for experiment in ("wide",):
        claims_of(experiment)

    # GD vs SGD
    g = r["gd_sgd"]
    doc.heading(_EXPERIMENT_TITLES["gd_sgd"])
    doc.paragraph(
        f"On {s.focus}, at the tuned rates (GD {g['lrs']['gd']:g}, SGD {g['lrs']['sgd']:g}): GD for {s.gd_epochs} "
        f"epochs (one step each), SGD for {s.sgd_epochs} epochs of {g['steps_per_sgd_epoch']} steps. An epoch "
        f"costs {1e3 * g['gd_epoch_time']:.2f} ms for GD and {1e3 * g['sgd_epoch_time']:.2f} ms for SGD. "
        f"GD's loss after {s.gd_epochs} epochs ({_fmt(g['gd_final']['loss'])}, {g['gd_final']['time']:.3f} s) is "
        f"reached by SGD on {g['sgd_reaches_gd_final']['seeds']}/{g['sgd_reaches_gd_final']['of']} seeds, after "
        f"{_fmt(g['sgd_reaches_gd_final']['epochs'], '.1f')} epochs and "
        f"{_fmt(g['sgd_reaches_gd_final']['time'], '.3f')} s.")
    doc.table(["compared at", "SGD train loss", "GD train loss"], [
        [f"{g['per_epoch']['epoch']} epochs", _fmt(g["per_epoch"]["sgd"], ".4g"), _fmt(g["per_epoch"]["gd"], ".4g")],
        [f"{g['per_second']['time']:.3f} s of training", _fmt(g["per_second"]["sgd"], ".4g"),
         _fmt(g["per_second"]["gd"], ".4g")],
        [f"{g['per_step']['steps']} gradient evaluations", _fmt(g["per_step"]["sgd"], ".4g"),
         _fmt(g["per_step"]["gd"], ".4g")]])
    doc.image(g["figure"], "GD vs SGD per epoch, per second and per step")
    claims_of("gd_sgd")

    # width
    w = r["width"]
    doc.heading(_EXPERIMENT_TITLES["width"])
    doc.paragraph(
        f"On {s.focus}, one hidden layer of width {', '.join(map(str, s.widths))}, {s.width_epochs} epochs, each "
        f"optimizer at its rate tuned at width {s.hidden[0]} ("
        + ", ".join(f"{o} {lr:g}" for o, lr in w["lrs"].items()) + "). 'step' is the mean |Δθ| per parameter per "
        "step in units of the learning rate, first and last epoch.")
    head = ["width", "params"] + [f"{o} loss (rel)" for o in s.width_optimizers] + \
        [f"{o} step" for o in s.width_optimizers]
    rows = []
    for width in s.widths:
        row = w["table"][width]
        rows.append([width, row[s.width_optimizers[0]]["n_params"]]
                    + [f"{_fmt(row[o]['final_train_loss'])} ({_fmt(row[o]['relative_loss'], '.2g')})"
                       for o in s.width_optimizers]
                    + [f"{_fmt(row[o]['step_first'], '.2g')} → {_fmt(row[o]['step_last'], '.2g')}"
                       for o in s.width_optimizers])
    doc.table(head, rows)
    doc.image(w["figure"], "loss curves per width, relative loss and Adagrad's effective rate")
    claims_of("width")

    # sensitivity
    sens = r["sensitivity"]
    doc.heading(_EXPERIMENT_TITLES["sensitivity"])
    doc.paragraph(
        f"On {s.focus}: every optimizer at every rate of the grid, trained on 80% of the training data and scored "
        f"on the other 20% (final validation loss, mean over seeds); the non-GD optimizers also at batch sizes "
        f"{', '.join(map(str, s.batch_sizes))}. The width is the span, in decades, of the rates within "
        f"{s.within:.0%} of the best (interpolated between grid points; '≥' where it reaches the end of the grid).")
    doc.pre(sens["table"])
    doc.image(sens["figure"], "final validation loss against learning rate")
    claims_of("sensitivity")
    doc.heading(_EXPERIMENT_TITLES["batch_noise"], 3)
    doc.paragraph("A smaller batch gives a noisier gradient. From the same sweep: each optimizer's best validation "
                  "loss (at its own best rate) per batch size, equal epochs.")
    doc.table(["optimizer", *[f"batch {b}" for b in s.batch_sizes]], [
        [o, *[f"{_fmt(sens['by_batch'][o][b]['best_loss'], '.4g')} (lr {_fmt(sens['by_batch'][o][b]['best_lr'])})"
              for b in s.batch_sizes]] for o in sens["by_batch"]])
    claims_of("batch_noise")

    # noise
    n = r["noise"]
    doc.heading(_EXPERIMENT_TITLES["noise"])
    doc.paragraph(
        f"On {s.focus}, from the same initial weights, {n['steps']} steps each at the tuned rates; after every step "
        "the loss on the whole training set is computed. 'Cosine' is the mean cosine between the step's gradient "
        "and the full-batch gradient at the same point (1 for GD).")
    doc.table(["run", "lr", "steps that raise the full loss", "cosine with full gradient"], [
        [x["label"], f"{x['lr']:g}", f"{100 * x['up_fraction']:.0f}%", f"{x['cosine']:.2f}"] for x in n["rows"]])
    doc.image(n["figure"], "full training loss after every step")
    claims_of("noise")

    # memory
    m = r["memory"]
    doc.heading(_EXPERIMENT_TITLES["memory"])
    doc.table(["optimizer", "state buffers", "state per parameter", f"step time ({m['n_params']:,} params)",
               "numeric hyperparameters"], [
        [o, x["state_buffers"], f"{x['state_per_param']:g}", f"{x['step_ms']:.2f} ms",
         ", ".join(x["hyperparameters"])] for o, x in m["rows"].items()])
    doc.paragraph("State at default settings (SGD and GD keep a momentum buffer only when momentum > 0). Step time: "
                  "one update over a flat float64 buffer with the Numba CPU backend, mean of 20.")
    claims_of("memory")

    doc.heading("Claims not tested")
    doc.bullets([f"**{c.optimizer}: \"{c.text}\"**: {c.reason}." for c in CLAIMS if c.experiment is None])

    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html())
    payload = {"settings": asdict(s), "meta": meta, "verdicts": v, "claims": [asdict(c) for c in CLAIMS],
               "results": _jsonable(r)}
    (out / "results.json").write_text(json.dumps(payload, indent=1))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x

