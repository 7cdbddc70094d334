"""``compare``: optimizers × datasets × seeds, with the same network, initialisation and split per seed.

For each seed s, every optimizer trains the same MLP from the same initial weights (``random_state=s``), on
the same train/test split (``load_dataset(name, random_state=s)``) and sees the batches in the same order.
Only the optimizer and its learning rate differ. See NOTE [what a curve measures] in
:mod:`microdl.experiments.runs` for what the curves and the clock mean, and :func:`target_loss` for the
target behind "epochs and time to target".

Example
-------
>>> from microdl.experiments import compare
>>> result = compare(["iris"], ["sgd", "adam"], seeds=2, epochs=5, progress=False)
>>> print(result.format_tables())                                   # doctest: +SKIP
>>> result.save("out")                                              # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdl._validation import check_int, check_real
from microdl.datasets import load_dataset
from microdl.experiments.runs import (
    SIX_OPTIMIZERS,
    Budget,
    RunSpec,
    check_datasets,
    check_execution,
    check_optimizers,
    check_seeds,
    default_lr,
    execute,
    parse_budget,
    threads_per_run,
)
from microdl.experiments.tuning import LR_GRID, tune_lrs

__all__ = ["compare", "CompareResult", "load_results", "target_loss", "DEFAULT_EPOCHS"]

DEFAULT_EPOCHS = 50
#: The target is this fraction of the way from the initial loss to the best final loss (see target_loss).
DEFAULT_TARGET = 0.9


def compare(datasets: str | Iterable[str] = ("digits",), optimizers: str | Iterable[str] = SIX_OPTIMIZERS,
            seeds: int | Iterable[int] = 3, *, epochs: int | None = None, budget: str | Budget | None = None,
            batch_size: int = 32, hidden: Sequence[int] = (64,), activation: str = "relu",
            lrs: Mapping[str, float] | None = None, tune: bool = False, lr_grid: Sequence[float] = LR_GRID,
            validation_fraction: float = 0.2, target: float = DEFAULT_TARGET, jobs: int = 1,
            backend: str = "loky", scheduler: str | None = None, progress: bool | None = None) -> CompareResult:
    """Train every optimizer on every dataset with every seed, and collect the curves.

    Parameters
    ----------
    datasets : str or sequence of str
        Names from :data:`microdl.datasets.DATASETS` (a comma-separated string works too).
    optimizers : str or sequence of str
        Names from :data:`microdl.optim.OPTIMIZERS`; by default the article's six.
    seeds : int or sequence of int
        ``n`` means seeds 0..n-1. Seed s fixes the split, the initialisation and the batch order.
    epochs : int, optional
        Shorthand for ``budget="epochs:N"`` (default 50 epochs); with a grad_evals or time budget, a cap.
    budget : str or Budget, optional
        ``"epochs:N"``, ``"grad_evals:N"`` or ``"time:SECONDS"`` (training time, evaluation excluded).
    batch_size : int
        Mini-batch size; GD always uses the full batch.
    hidden : sequence of int
        Hidden layer widths.
    lrs : mapping of optimizer name to learning rate, optional
        Rates to use; the others get torch.optim's default, or the tuned rate with ``tune=True``.
    tune : bool
        Pick each remaining rate from ``lr_grid`` on a validation split of the training data (never the test
        set; :func:`microdl.experiments.tuning.tune_lrs`).
    target : float in (0, 1)
        Fraction of the best improvement that defines the target loss (:func:`target_loss`).
    jobs, backend, scheduler, progress
        How runs are executed (:func:`microdl.experiments.runs.execute`).
    """
    datasets = check_datasets(datasets)
    optimizers = check_optimizers(optimizers)
    check_execution(jobs, backend, scheduler)
    seeds = check_seeds(seeds)
    budget, epoch_cap = _resolve_budget(epochs, budget)
    batch_size = check_int("batch_size", batch_size, 1)
    hidden = tuple(check_int("hidden layer width", h, 1) for h in hidden)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a fraction in (0, 1); got {target!r}")
    lrs = dict(lrs or {})
    for name, lr in lrs.items():
        check_optimizers([name])
        lrs[name] = check_real(f"the learning rate of {name}", lr, 0.0, low_open=True)
    threads = threads_per_run(jobs, backend)

    data_by_seed = {name: {s: load_dataset(name, random_state=s) for s in seeds} for name in datasets}
    info, chosen, tuning = {}, {}, {}
    for name in datasets:
        d = data_by_seed[name][seeds[0]]
        layer_sizes = (d.n_features, *hidden, d.n_outputs)
        info[name] = {"task": d.task, "n_train": int(d.X_train.shape[0]), "n_test": int(d.X_test.shape[0]),
                      "n_features": int(d.n_features), "n_outputs": int(d.n_outputs), "loss": d.loss,
                      "layer_sizes": list(layer_sizes), "metric": "accuracy" if d.task == "classification" else "r2"}
        chosen[name] = {o: {"lr": float(lrs[o]), "source": "given"} if o in lrs
                        else {"lr": default_lr(o), "source": "torch default"} for o in optimizers}
        to_tune = [o for o in optimizers if o not in lrs]
        if tune and to_tune:
            # Only the training parts go in: tune_lrs carves its validation split out of them.
            train_sets = {s: (data_by_seed[name][s].X_train, data_by_seed[name][s].y_train) for s in seeds}
            tuning[name] = tune_lrs(train_sets, layer_sizes=layer_sizes, loss=d.loss, optimizers=to_tune,
                                    budget=budget, batch_size=batch_size, activation=activation, grid=lr_grid,
                                    validation_fraction=validation_fraction, labels={"dataset": name}, jobs=jobs,
                                    backend=backend, scheduler=scheduler, progress=progress, threads=threads)
            for o in to_tune:
                chosen[name][o] = {"lr": tuning[name][o]["lr"], "source": "tuned"}

    specs = []
    for name in datasets:
        for s in seeds:
            d = data_by_seed[name][s]
            for o in optimizers:
                specs.append(RunSpec(o, chosen[name][o]["lr"], s, tuple(info[name]["layer_sizes"]), d.loss,
                                     d.X_train, d.y_train, d.X_test, d.y_test, budget, batch_size, activation,
                                     eval_name="test", threads=threads, max_epochs=epoch_cap,
                                     labels={"dataset": name, "phase": "compare"}))
    runs = execute(specs, jobs=jobs, backend=backend, scheduler=scheduler, progress=progress, desc="compare")
    config = {
        "datasets": list(datasets), "optimizers": list(optimizers), "seeds": list(seeds), "budget": str(budget),
        "epoch_cap": epoch_cap, "batch_size": batch_size, "hidden": list(hidden), "activation": activation,
        "tune": bool(tune), "lr_grid": [float(x) for x in lr_grid] if tune else None,
        "validation_fraction": validation_fraction if tune else None, "target": target, "jobs": jobs,
        "backend": backend, "lrs": chosen,
    }
    return CompareResult(config, info, runs, tuning)


def _resolve_budget(epochs: int | None, budget: str | Budget | None) -> tuple[Budget, int | None]:
    """The budget and an epoch cap (only for grad_evals and time budgets given together with epochs)."""
    if epochs is not None:
        epochs = check_int("epochs", epochs, 1)
    if budget is None:
        return Budget("epochs", int(epochs or DEFAULT_EPOCHS)), None
    budget = parse_budget(budget)
    if budget.kind == "epochs":
        if epochs is not None and epochs != budget.value:
            raise ValueError(f"epochs={epochs} contradicts budget={budget}; give one of them")
        return budget, None
    return budget, None if epochs is None else int(epochs)


# -- the target --------------------------------------------------------------------------------------------
def target_loss(initial: float, best_final: float, fraction: float = DEFAULT_TARGET) -> float:
    """The loss that counts as "reached": ``fraction`` of the way from the initial loss to the best final one.

    ``target = L0 − fraction · (L0 − L_best)`` where L0 is the training loss at initialisation (the same for
    every optimizer of a seed; averaged over seeds) and L_best the lowest final training loss among the
    optimizers (mean over seeds). With fraction 0.9 an optimizer has reached the target once it has made 90%
    of the progress that the best optimizer made in the whole budget. This adapts to each dataset: on digits
    the best optimizers drive the loss near 0, on diabetes (noisy regression) nothing gets below ~0.4.
    """
    return initial - fraction * (initial - best_final)


def _mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def first_reach(losses: Sequence[float | None], target: float) -> int | None:
    """Index of the first entry <= target (None if never)."""
    for k, v in enumerate(losses):
        if v is not None and v <= target:
            return k
    return None


class CompareResult:
    """The outcome of :func:`compare`: configuration, dataset facts, every run's curves and the tuning.

    Attributes
    ----------
    config : dict
        The settings, including ``lrs[dataset][optimizer] = {"lr", "source"}`` (torch default, tuned, given).
    datasets : dict
        Per dataset: task, sizes, layer sizes, loss and metric name.
    runs : list of dict
        One record per (dataset, seed, optimizer) as returned by :func:`microdl.experiments.runs.run_one`.
    tuning : dict
        Per dataset, the tuning record of :func:`microdl.experiments.tuning.tune_lrs` (empty without tuning).
    """

    def __init__(self, config: dict[str, Any], datasets: dict[str, Any], runs: list[dict[str, Any]],
                 tuning: dict[str, Any] | None = None) -> None:
        self.config, self.datasets, self.runs, self.tuning = config, datasets, runs, tuning or {}

    def runs_of(self, dataset: str, optimizer: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["dataset"] == dataset and (optimizer is None or r["optimizer"] == optimizer)]

    # -- the numbers -------------------------------------------------------------------------------------------
    def target(self, dataset: str) -> dict[str, Any]:
        """``{"target", "initial", "best_final", "best_optimizer"}`` for ``dataset`` (see :func:`target_loss`)."""
        initial = _mean_std([r["train_loss"][0] for r in self.runs_of(dataset)])[0]
        finals = {o: _mean_std([r["final_train_loss"] for r in self.runs_of(dataset, o)])[0]
                  for o in self.config["optimizers"]}
        finite = {o: v for o, v in finals.items() if math.isfinite(v)}
        best_optimizer = min(finite, key=finite.get) if finite else None
        best = finite[best_optimizer] if finite else initial
        return {"target": target_loss(initial, best, self.config["target"]), "initial": initial,
                "best_final": best, "best_optimizer": best_optimizer, "fraction": self.config["target"]}

    def summary(self) -> list[dict[str, Any]]:
        """One row per (dataset, optimizer): mean and std over seeds of the final numbers, epochs and time
        to the target, divergences."""
        rows = []
        for dataset in self.config["datasets"]:
            tgt = self.target(dataset)
            for o in self.config["optimizers"]:
                runs = self.runs_of(dataset, o)
                lr = self.config["lrs"][dataset][o]
                row: dict[str, Any] = {"dataset": dataset, "optimizer": o, "lr": lr["lr"], "lr_source": lr["source"],
                                       "metric": self.datasets[dataset]["metric"], "n_seeds": len(runs)}
                for key in ("final_train_loss", "final_test_loss", "final_train_metric", "final_test_metric"):
                    mean, std, _ = _mean_std([r[key] for r in runs])
                    short = key.removeprefix("final_")
                    row[f"{short}_mean"], row[f"{short}_std"] = mean, std
                reached = [first_reach(r["train_loss"], tgt["target"]) for r in runs]
                hits = [(k, r) for k, r in zip(reached, runs) if k is not None]
                row["target_loss"] = tgt["target"]
                row["reached"] = len(hits)
                row["epochs_to_target_mean"], row["epochs_to_target_std"], _ = _mean_std([float(k) for k, _ in hits])
                row["time_to_target_mean"], row["time_to_target_std"], _ = _mean_std(
                    [r["wall_time"][k] for k, r in hits])
                row["epochs_mean"] = _mean_std([float(r["epoch"][-1]) for r in runs])[0]
                row["grad_evals_mean"] = _mean_std([float(r["grad_evals"][-1]) for r in runs])[0]
                row["wall_time_mean"] = _mean_std([r["wall_time"][-1] for r in runs])[0]
                row["diverged"] = sum(bool(r["diverged"]) for r in runs)
                rows.append(row)
        return rows

    # -- the table ---------------------------------------------------------------------------------------------
    def format_table(self, dataset: str) -> str:
        """The table of one dataset, with a header saying what was run and what the target is."""
        info, cfg, tgt = self.datasets[dataset], self.config, self.target(dataset)
        metric = "acc" if info["metric"] == "accuracy" else "R²"
        rows = [r for r in self.summary() if r["dataset"] == dataset]
        n = len(cfg["seeds"])
        head = ["optimizer", "lr", "train loss", "test loss", f"train {metric}", f"test {metric}",
                "epochs→target", "time→target (s)", "time (s)", "diverged"]
        body = []
        for r in rows:
            src = {"torch default": "default", "tuned": "tuned", "given": "given"}[r["lr_source"]]
            body.append([r["optimizer"], f"{r['lr']:.3g} ({src})", _pm(r, "train_loss"), _pm(r, "test_loss"),
                         _pm(r, "train_metric", ".3f", ".3f"), _pm(r, "test_metric", ".3f", ".3f"),
                         _reach(r, "epochs_to_target", ".1f", n), _reach(r, "time_to_target", ".3f", n),
                         f"{r['wall_time_mean']:.3g}", f"{r['diverged']}/{n}"])
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        lines = [
            f"{dataset} ({info['task']}; {info['n_train']} train / {info['n_test']} test samples; MLP "
            f"{'-'.join(map(str, info['layer_sizes']))} {cfg['activation']}; batch {cfg['batch_size']} (gd: full); "
            f"budget {parse_budget(cfg['budget']).describe()}; seeds {', '.join(map(str, cfg['seeds']))})",
            f"target: train loss <= {tgt['target']:.4g}, i.e. {tgt['fraction']:.0%} of the way from the initial "
            f"loss {tgt['initial']:.4g} to the best final loss {tgt['best_final']:.4g} ({tgt['best_optimizer']})",
            "  ".join(h.ljust(w) for h, w in zip(head, widths)),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        return "\n".join(lines)

    def lr_note(self) -> str:
        """One line on where the learning rates came from."""
        sources = {v["source"] for d in self.config["lrs"].values() for v in d.values()}
        parts = []
        if "torch default" in sources:
            defaults = ", ".join(f"{o} {default_lr(o):g}" for o in self.config["optimizers"])
            parts.append(f"'default' rates are torch.optim's defaults ({defaults})")
        if "tuned" in sources:
            grid = self.config["lr_grid"]
            parts.append(f"'tuned' rates minimise the mean final validation loss over the seeds on a "
                         f"{self.config['validation_fraction']:.0%} validation split of the training data "
                         f"(never the test set), grid {grid[0]:g} .. {grid[-1]:g} in {len(grid)} log steps")
        if "given" in sources:
            parts.append("'given' rates were set by the caller")
        return "learning rates: " + "; ".join(parts) + "."

    def format_tables(self) -> str:
        """Every dataset's table, then the learning-rate note and how to read the columns."""
        tables = [self.format_table(d) for d in self.config["datasets"]]
        legend = ("Values are mean ± sample std over seeds of the final model. epochs/time→target: mean over the "
                  "seeds that reached the target (reached/total); time counts training steps only, not "
                  "evaluation.")
        return "\n\n".join(tables) + "\n\n" + self.lr_note() + "\n" + legend

    # -- files -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "datasets": self.datasets, "tuning": self.tuning, "runs": self.runs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompareResult:
        return cls(d["config"], d["datasets"], d["runs"], d.get("tuning"))

    def save(self, out_dir: str | Path, plot: bool | None = None) -> dict[str, Path]:
        """Write ``history.json`` (everything, every curve), ``summary.csv``, ``summary.txt`` (the tables)
        and ``curves.png`` into ``out_dir``; returns their paths. ``plot=None`` draws ``curves.png`` if
        matplotlib is installed and warns otherwise; True requires it."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"history": out / "history.json", "summary": out / "summary.csv", "tables": out / "summary.txt"}
        paths["history"].write_text(json.dumps(self.to_dict(), indent=1))
        rows = self.summary()
        with open(paths["summary"], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        paths["tables"].write_text(self.format_tables() + "\n")
        if _can_plot(plot):
            paths["curves"] = out / "curves.png"
            self.plot(paths["curves"])
        return paths

    def plot(self, path: str | Path) -> Path:
        """``curves.png``: per dataset, training loss against epoch and against training time, and test loss
        against epoch; the line is the mean over seeds, the band their min–max."""
        from microdl.experiments.plots import band_plot, new_figure

        names = self.config["datasets"]
        fig, axes = new_figure(len(names), 3, width=15, height=3.8)
        for row, dataset in zip(axes, names):
            tgt = self.target(dataset)["target"]
            for o in self.config["optimizers"]:
                runs = self.runs_of(dataset, o)
                band_plot(row[0], [r["epoch"] for r in runs], [r["train_loss"] for r in runs], o)
                band_plot(row[1], [r["wall_time"] for r in runs], [r["train_loss"] for r in runs], o, on_grid=True)
                band_plot(row[2], [r["epoch"] for r in runs], [r["test_loss"] for r in runs], o)
            for ax, xlabel, ylabel in zip(row, ("epoch", "training time (s)", "epoch"),
                                          ("train loss", "train loss", "test loss")):
                ax.set_yscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(f"{dataset}: {ylabel}")
                ax.grid(True, alpha=0.3)
            for ax in row[:2]:
                ax.axhline(tgt, color="grey", ls="--", lw=1, label="target")
        axes[0][0].legend(fontsize=8, ncol=2)
        fig.suptitle("mean over seeds, band: min–max over seeds; training time excludes evaluation", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return Path(path)


def _can_plot(plot: bool | None) -> bool:
    """Whether to draw: True and False as given; None if matplotlib is there (with a warning if not)."""
    if plot is not None:
        return plot
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        warnings.warn('matplotlib is not installed, so no plot was drawn: pip install "microdl[plot]"',
                      stacklevel=3)
        return False
    return True


def _pm(row: Mapping[str, Any], key: str, fmt: str = ".4g", std_fmt: str = ".2g") -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if not math.isfinite(mean):
        return "—"
    return f"{mean:{fmt}} ± {std:{std_fmt}}"


def _reach(row: Mapping[str, Any], key: str, fmt: str, n: int) -> str:
    if row["reached"] == 0:
        return f"— (0/{n})"
    return f"{row[f'{key}_mean']:{fmt}} ({row['reached']}/{n})"


def load_results(out_dir: str | Path) -> CompareResult:
    """Read back what :meth:`CompareResult.save` wrote (from ``history.json``)."""
    path = Path(out_dir) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"no history.json in {out_dir}: not a compare output folder")
    return CompareResult.from_dict(json.loads(path.read_text()))
