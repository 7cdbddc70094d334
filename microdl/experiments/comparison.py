"""``compare``: optimizers × datasets × seeds, with the same network, initialisation and split per seed.

For each seed s, every optimizer trains the same MLP from the same initial weights (``random_state=s``), on
the same train/test split (``load_dataset(name, random_state=s)``) and sees the batches in the same order.
Only the optimizer and its learning rate differ. See NOTE [what a curve measures] in
:mod:`microdl.experiments.runs` for what the curves and the clock mean, and :func:`target_loss` for the
target behind "epochs and time to target". A run that diverged (NOTE [a diverged run] there) is counted as
such and left out of the means, the target and the "best" optimizer.

The learning rates matter as much as the algorithms: at torch's default rates GD ends at 9% test accuracy on
digits after 50 epochs. So by default each optimizer runs at the hyperparameters tuned once for the dataset
(:data:`microdl.experiments.tuning.PRESETS`), or, for your own data, at hyperparameters tuned by
cross-validation of the training data before the comparison (:func:`microdl.experiments.tuning.tune`, the
protocol of Choi et al. 2019); the table says which.

L-BFGS (``"lbfgs"``) can join as a seventh contender, never by default: the article's full-batch GD against a
full-batch quasi-Newton method. It has no learning rate (its line search picks each step), so it is never
tuned and its rate shows as "—"; it trains on the full batch, one iteration per epoch, so an epochs budget is
its iteration limit (it may stop earlier, "converged"), and each iteration's line search may evaluate the
gradient more than once (``grad_evals`` counts them all).

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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdl._files import atomic_folder, check_replaceable_folder, strict_json
from microdl._format import format_seconds
from microdl._validation import check_choice, check_int, check_real
from microdl.datasets import RawData, load_dataset
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
    takes_lr,
    threads_per_run,
)
from microdl.experiments.tuning import PRESET_SETUP, TRIALS, preset
from microdl.experiments.tuning import tune as tune_hyperparameters

__all__ = ["compare", "CompareResult", "load_results", "target_loss", "check_output_folder", "DEFAULT_EPOCHS",
           "RATES"]

DEFAULT_EPOCHS = 50
#: The target is this fraction of the way from the initial loss to the best final loss (see target_loss).
DEFAULT_TARGET = 0.9
#: Where the learning rates come from: "auto" (the preset of a built-in dataset, else tuned), "tuned" (on a
#: validation split before the comparison), "torch" (torch.optim's defaults).
RATES = ("auto", "tuned", "torch")
#: What CompareResult.save writes; an output folder holding anything else is never replaced.
OUTPUT_FILES = ("history.json", "summary.csv", "summary.txt", "curves.png")
#: Who wrote an output folder, as its manifest records (NOTE [output folders] in microdl._files).
WRITER = "microdl compare"


def compare(datasets: str | RawData | Iterable[str | RawData] = ("digits",),
            optimizers: str | Iterable[str] = SIX_OPTIMIZERS, seeds: int | Iterable[int] = 3, *,
            epochs: int | None = None, budget: str | Budget | None = None, batch_size: int = 32,
            hidden: Sequence[int] = (64,), activation: str = "relu", lrs: Mapping[str, float] | None = None,
            rates: str = "auto", tune: bool = False, trials: int = TRIALS, target: float = DEFAULT_TARGET,
            jobs: int = 1, backend: str = "loky", scheduler: str | None = None, progress: bool | None = None,
            model_backend: str = "numba") -> CompareResult:
    """Train every optimizer on every dataset with every seed, and collect the curves.

    Parameters
    ----------
    datasets : str, RawData or a sequence of them
        Names from :data:`microdl.datasets.DATASETS` (a comma-separated string works too), or your own data
        (:func:`microdl.datasets.read_data`, :func:`microdl.datasets.from_arrays`), split anew for each seed.
    optimizers : str or sequence of str
        Names from :data:`microdl.optim.OPTIMIZERS`; by default the article's six. ``"lbfgs"`` runs without a
        learning rate, on the full batch, one iteration per epoch.
    seeds : int or sequence of int
        ``n`` means seeds 0..n-1. Seed s fixes the split, the initialisation and the batch order.
    epochs : int, optional
        Shorthand for ``budget="epochs:N"`` (default 50 epochs); with a grad_evals or time budget, a cap.
    budget : str or Budget, optional
        ``"epochs:N"``, ``"grad_evals:N"`` or ``"time:SECONDS"`` (training time, evaluation excluded).
    batch_size : int
        Mini-batch size; GD and L-BFGS always use the full batch.
    hidden : sequence of int
        Hidden layer widths.
    lrs : mapping of optimizer name to learning rate, optional
        Rates to use; the others come from ``rates``. L-BFGS takes none (``ValueError``).
    rates : {"auto", "tuned", "torch"}
        Where the other rates come from. "auto": the rate tuned once for a built-in dataset
        (:data:`microdl.experiments.tuning.PRESETS`), tuned here for your own data or an optimizer without
        a preset; "tuned": tuned here for every one; "torch": torch.optim's defaults.
    tune : bool
        The same as ``rates="tuned"``. Tuning picks every relevant hyperparameter (rate, momentum, β₁, β₂, ε,
        ...) by ``trials`` quasi-random trials plus the defaults, cross-validated on the training data (never
        the test set; :func:`microdl.experiments.tuning.tune`).
    trials : int
        Trials per optimizer when tuning (the same for every optimizer).
    target : float in (0, 1)
        Fraction of the best improvement that defines the target loss (:func:`target_loss`).
    jobs, backend, scheduler, progress
        How runs are executed (:func:`microdl.experiments.runs.execute`).
    model_backend : {"numba", "numpy"}
        ``"numpy"`` trains on the textbook code: the model's :mod:`microdl.nn.reference` pass and the optimizers'
        NumPy rules (slow; for reading and checking).
    """
    sources = _check_sources(datasets)
    names = tuple(sources)
    optimizers = check_optimizers(optimizers)
    check_execution(jobs, backend, scheduler)
    seeds = check_seeds(seeds)
    check_choice("model_backend", model_backend, ("numba", "numpy"))
    budget, epoch_cap = _resolve_budget(epochs, budget)
    batch_size = check_int("batch_size", batch_size, 1)
    hidden = tuple(check_int("hidden layer width", h, 1) for h in hidden)
    check_choice("rates", rates, RATES)
    if tune and rates == "torch":
        raise ValueError("tune=True contradicts rates='torch'; give one of them")
    rates = "tuned" if tune else rates
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a fraction in (0, 1); got {target!r}")
    lrs = dict(lrs or {})
    for name, lr in lrs.items():
        check_optimizers([name])
        if not takes_lr(name):
            raise ValueError(f"{name} has no learning rate (its line search picks each step); give no rate for it")
        lrs[name] = check_real(f"the learning rate of {name}", lr, 0.0, low_open=True)
    threads = threads_per_run(jobs, backend)

    data_by_seed = {name: {s: load_dataset(src, random_state=s) for s in seeds} for name, src in sources.items()}
    info, chosen, tuning = {}, {}, {}
    for name, src in sources.items():
        d = data_by_seed[name][seeds[0]]
        layer_sizes = (d.n_features, *hidden, d.n_outputs)
        info[name] = {"task": d.task, "n_train": int(d.X_train.shape[0]), "n_test": int(d.X_test.shape[0]),
                      "n_features": int(d.n_features), "n_outputs": int(d.n_outputs), "loss": d.loss,
                      "layer_sizes": list(layer_sizes), "metric": "accuracy" if d.task == "classification" else "r2",
                      "source": src.source if isinstance(src, RawData) else "built-in"}
        chosen[name] = {o: _rate(o, lrs, rates, None if isinstance(src, RawData) else name) for o in optimizers}
        to_tune = [o for o in optimizers if chosen[name][o]["source"] == "tuned"]
        if to_tune:
            # Only the training parts go in: tune carves its validation folds out of them.
            train_sets = {s: (data_by_seed[name][s].X_train, data_by_seed[name][s].y_train) for s in seeds}
            tuning[name] = tune_hyperparameters(train_sets, layer_sizes=layer_sizes, loss=d.loss, optimizers=to_tune,
                                budget=budget, batch_size=batch_size, activation=activation, trials=trials,
                                labels={"dataset": name}, jobs=jobs, backend=backend, scheduler=scheduler,
                                progress=progress, threads=threads)
            for o in to_tune:
                chosen[name][o]["lr"] = tuning[name][o]["lr"]
                chosen[name][o]["kwargs"] = tuning[name][o]["kwargs"]

    specs = []
    for name in names:
        for s in seeds:
            d = data_by_seed[name][s]
            for o in optimizers:
                specs.append(RunSpec(o, chosen[name][o]["lr"], s, tuple(info[name]["layer_sizes"]), d.loss,
                                     d.X_train, d.y_train, d.X_test, d.y_test, budget, batch_size, activation,
                                     eval_name="test", threads=threads, max_epochs=epoch_cap,
                                     hyper=dict(chosen[name][o].get("kwargs", {})),
                                     labels={"dataset": name, "phase": "compare"}, model_backend=model_backend))
    runs = execute(specs, jobs=jobs, backend=backend, scheduler=scheduler, progress=progress, desc="compare")
    tuned_any = any(v["source"] == "tuned" for d in chosen.values() for v in d.values())
    config = {
        "datasets": list(names), "optimizers": list(optimizers), "seeds": list(seeds), "budget": str(budget),
        "epoch_cap": epoch_cap, "batch_size": batch_size, "hidden": list(hidden), "activation": activation,
        "rates": rates, "tune": tuned_any, "trials": trials if tuned_any else None, "target": target, "jobs": jobs,
        "backend": backend, "lrs": chosen,
    }
    return CompareResult(config, info, runs, tuning)


def _check_sources(datasets: str | RawData | Iterable[str | RawData]) -> dict[str, str | RawData]:
    """Name -> built-in name or RawData, in order; names must not repeat."""
    if isinstance(datasets, (str, RawData)):
        datasets = [datasets]
    datasets = list(datasets)
    out: dict[str, str | RawData] = {}
    for d in datasets:
        if isinstance(d, RawData):
            if d.name in out:
                raise ValueError(f"two datasets are called {d.name!r}; rename one (the results are keyed by name)")
            out[d.name] = d
        else:
            for name in check_datasets(d):
                out.setdefault(name, name)
    if not out:
        raise ValueError("datasets must name at least one")
    return out


def _rate(optimizer: str, given: Mapping[str, float], rates: str, builtin: str | None) -> dict[str, Any]:
    """``{"lr", "source"}`` of one optimizer on one dataset: given > torch default > preset > tuned.
    A "tuned" entry's lr is filled in by the tuning; an optimizer without a learning rate (L-BFGS) gets
    ``{"lr": None, "source": "none"}`` and is never tuned."""
    if not takes_lr(optimizer):
        return {"lr": None, "source": "none"}
    if optimizer in given:
        return {"lr": float(given[optimizer]), "source": "given"}
    if rates == "torch":
        return {"lr": default_lr(optimizer), "source": "torch default"}
    found = preset(builtin, optimizer) if rates == "auto" else None
    if found is not None:
        lr = found.pop("lr")
        return {"lr": float(lr), "source": "preset", "kwargs": found}
    return {"lr": math.nan, "source": "tuned"}


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
        Per dataset, the tuning record of :func:`microdl.experiments.tuning.tune` (empty without tuning).
    """

    def __init__(self, config: dict[str, Any], datasets: dict[str, Any], runs: list[dict[str, Any]],
                 tuning: dict[str, Any] | None = None) -> None:
        self.config, self.datasets, self.runs, self.tuning = config, datasets, runs, tuning or {}

    def runs_of(self, dataset: str, optimizer: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["dataset"] == dataset and (optimizer is None or r["optimizer"] == optimizer)]

    # -- the numbers -------------------------------------------------------------------------------------------
    def finished(self, dataset: str, optimizer: str | None = None) -> list[dict[str, Any]]:
        """The runs that did not diverge (NOTE [a diverged run] in :mod:`microdl.experiments.runs`)."""
        return [r for r in self.runs_of(dataset, optimizer) if not r["diverged"]]

    def target(self, dataset: str) -> dict[str, Any]:
        """``{"target", "initial", "best_final", "best_optimizer", "fraction"}`` for ``dataset`` (see
        :func:`target_loss`). Diverged runs are left out; if every run diverged, ``target``, ``best_final`` and
        ``best_optimizer`` are None."""
        initial = _mean_std([r["train_loss"][0] for r in self.runs_of(dataset)])[0]
        finals = {o: _mean_std([r["final_train_loss"] for r in self.finished(dataset, o)])[0]
                  for o in self.config["optimizers"]}
        finite = {o: v for o, v in finals.items() if math.isfinite(v)}
        if not finite or not math.isfinite(initial):
            return {"target": None, "initial": initial, "best_final": None, "best_optimizer": None,
                    "fraction": self.config["target"]}
        best_optimizer = min(finite, key=finite.get)
        best = finite[best_optimizer]
        return {"target": target_loss(initial, best, self.config["target"]), "initial": initial,
                "best_final": best, "best_optimizer": best_optimizer, "fraction": self.config["target"]}

    def summary(self) -> list[dict[str, Any]]:
        """One row per (dataset, optimizer): mean and std over the seeds that did not diverge of the final
        numbers, epochs and time to the target, and the number of diverged runs."""
        rows = []
        for dataset in self.config["datasets"]:
            tgt = self.target(dataset)
            for o in self.config["optimizers"]:
                runs, finished = self.runs_of(dataset, o), self.finished(dataset, o)
                lr = self.config["lrs"][dataset][o]
                row: dict[str, Any] = {"dataset": dataset, "optimizer": o, "lr": lr["lr"], "lr_source": lr["source"],
                                       "metric": self.datasets[dataset]["metric"], "n_seeds": len(runs)}
                for key in ("final_train_loss", "final_test_loss", "final_train_metric", "final_test_metric"):
                    mean, std, _ = _mean_std([r[key] for r in finished])
                    short = key.removeprefix("final_")
                    row[f"{short}_mean"], row[f"{short}_std"] = mean, std
                reached = [] if tgt["target"] is None else [first_reach(r["train_loss"], tgt["target"])
                                                            for r in finished]
                hits = [(k, r) for k, r in zip(reached, finished) if k is not None]
                row["target_loss"] = tgt["target"]
                row["reached"] = len(hits)
                row["epochs_to_target_mean"], row["epochs_to_target_std"], _ = _mean_std([float(k) for k, _ in hits])
                row["time_to_target_mean"], row["time_to_target_std"], _ = _mean_std(
                    [r["wall_time"][k] for k, r in hits])
                row["epochs_mean"] = _mean_std([float(r["epoch"][-1]) for r in runs])[0]
                row["grad_evals_mean"] = _mean_std([float(r["grad_evals"][-1]) for r in runs])[0]
                row["wall_time_mean"] = _mean_std([r["wall_time"][-1] for r in runs])[0]
                row["diverged"] = len(runs) - len(finished)
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
                "epochs→target", "time→target", "time", "diverged"]
        body = []
        for r in rows:
            src = {"torch default": "torch", "preset": "preset", "tuned": "tuned", "given": "given"}.get(r["lr_source"])
            lr = "—" if r["lr"] is None else f"{r['lr']:.3g} ({src})"
            body.append([r["optimizer"], lr, _pm(r, "train_loss"), _pm(r, "test_loss"),
                         _pm(r, "train_metric", ".3f", ".3f"), _pm(r, "test_metric", ".3f", ".3f"),
                         _reach(r, "epochs_to_target", ".1f", n), _reach(r, "time_to_target", "seconds", n),
                         format_seconds(r["wall_time_mean"]), f"{r['diverged']}/{n}"])
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        if tgt["target"] is None:
            target_line = "target: none, every run diverged"
        else:
            target_line = (f"target: train loss <= {tgt['target']:.4g}, i.e. {tgt['fraction']:.0%} of the way from "
                           f"the initial loss {tgt['initial']:.4g} to the best final loss {tgt['best_final']:.4g} "
                           f"({tgt['best_optimizer']}; diverged runs left out)")
        source = "" if info.get("source", "built-in") == "built-in" else f"{info['source']}; "
        lines = [
            f"{dataset} ({source}{info['task']}; {info['n_train']} train / {info['n_test']} test samples; MLP "
            f"{'-'.join(map(str, info['layer_sizes']))} {cfg['activation']}; batch {cfg['batch_size']} "
            f"({_full_batch(cfg['optimizers'])}: full); "
            f"budget {parse_budget(cfg['budget']).describe()}; seeds {', '.join(map(str, cfg['seeds']))})",
            target_line,
            "  ".join(h.ljust(w) for h, w in zip(head, widths)),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        return "\n".join(lines)

    def lr_note(self) -> str:
        """How the learning rates were chosen, one clause per source."""
        sources = {v["source"] for d in self.config["lrs"].values() for v in d.values()}
        parts = []
        if "preset" in sources:
            parts.append(f"'preset' hyperparameters were tuned once per built-in dataset for {PRESET_SETUP}, by "
                         "the protocol of microdl.experiments.tuning (every relevant hyperparameter, quasi-random "
                         "search, cross-validation of the training data; microdl.experiments.tuning.PRESETS; "
                         "--rates tuned re-tunes for this set-up)")
        if "tuned" in sources:
            parts.append(f"'tuned' hyperparameters (rate and every other relevant one) were chosen by "
                         f"{self.config['trials']} quasi-random trials plus the defaults per optimizer, each scored "
                         "by its mean final validation loss in cross-validation of the training data (never the "
                         "test set), per seed; the consensus of the seeds is used")
        if "torch default" in sources:
            defaults = ", ".join(f"{o} {default_lr(o):g}" for o in self.config["optimizers"] if takes_lr(o))
            parts.append(f"'torch' rates are torch.optim's defaults ({defaults})")
        if "given" in sources:
            parts.append("'given' rates were set by the caller")
        if "none" in sources:
            parts.append("lbfgs has none ('—'): its line search picks each step; it trains on the full batch, one "
                         "iteration per epoch")
        return "learning rates: " + "; ".join(parts) + "."

    def format_tables(self) -> str:
        """Every dataset's table, then the learning-rate note and how to read the columns."""
        tables = [self.format_table(d) for d in self.config["datasets"]]
        legend = ("Values are mean ± sample std over the seeds that did not diverge, of the final model. "
                  "epochs/time→target: mean over the seeds that reached the target (reached/total); time counts "
                  "training steps only, not evaluation.")
        return "\n\n".join(tables) + "\n\n" + self.lr_note() + "\n" + legend

    # -- files -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "datasets": self.datasets, "tuning": self.tuning, "runs": self.runs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompareResult:
        return cls(d["config"], d["datasets"], d["runs"], d.get("tuning"))

    def save(self, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
        """Write ``history.json`` (everything, every curve), ``summary.csv``, ``summary.txt`` (the tables)
        and ``curves.png`` (unless ``plot`` is False) into ``out_dir``; returns their paths.

        The folder is written whole under a temporary name and then swapped in (an interrupted save leaves the
        previous results intact, never a mix), so ``out_dir`` must be new or hold only these files
        (:func:`check_output_folder`)."""
        out = check_output_folder(out_dir, WRITER)
        paths = {"history": out / "history.json", "summary": out / "summary.csv", "tables": out / "summary.txt"}
        if plot:
            paths["curves"] = out / "curves.png"
        with atomic_folder(out, WRITER) as tmp:
            (tmp / "history.json").write_text(json.dumps(strict_json(self.to_dict()), indent=1, allow_nan=False))
            rows = self.summary()
            with open(tmp / "summary.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            (tmp / "summary.txt").write_text(self.format_tables() + "\n")
            if plot:
                self.plot(tmp / "curves.png")
        return paths

    def plot(self, path: str | Path) -> Path:
        """``curves.png``: per dataset, training loss against epoch and against training time, and test loss
        against epoch; the line is the mean over seeds, the band their min–max. Diverged runs are left out (their
        losses would stretch the axes over hundreds of decades); the legend counts them."""
        from microdl.experiments.plots import band_plot, color_of, new_figure

        names = self.config["datasets"]
        fig, axes = new_figure(len(names), 3, width=15, height=3.8)
        for row, dataset in zip(axes, names):
            tgt = self.target(dataset)["target"]
            for o in self.config["optimizers"]:
                runs = self.finished(dataset, o)
                diverged = len(self.runs_of(dataset, o)) - len(runs)
                label, color = o + (f" ({diverged} diverged)" if diverged else ""), color_of(o)
                band_plot(row[0], [r["epoch"] for r in runs], [r["train_loss"] for r in runs], label, color=color)
                band_plot(row[1], [r["wall_time"] for r in runs], [r["train_loss"] for r in runs], label,
                          on_grid=True, color=color)
                band_plot(row[2], [r["epoch"] for r in runs], [r["test_loss"] for r in runs], label, color=color)
            for ax, xlabel, ylabel in zip(row, ("epoch", "training time (s)", "epoch"),
                                          ("train loss", "train loss", "test loss")):
                ax.set_yscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(f"{dataset}: {ylabel}")
                ax.grid(True, alpha=0.3)
            for ax in row[:2] if tgt is not None else ():
                ax.axhline(tgt, color="grey", ls="--", lw=1, label="target")
        if axes[0][0].get_legend_handles_labels()[0]:  # nothing to name when every run diverged
            axes[0][0].legend(fontsize=8, ncol=2)
        fig.suptitle("mean over seeds, band: min–max over seeds; training time excludes evaluation", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return Path(path)


def check_output_folder(path: str | Path, writer: str = WRITER, what: str = "output folder") -> Path:
    """``path`` if a result folder may be written there: new, or holding only what ``writer`` wrote there
    before (an earlier run's results, as its manifest records), since it is replaced as a whole
    (:func:`microdl._files.check_replaceable_folder`, NOTE [output folders])."""
    return check_replaceable_folder(path, what, writer)


def _full_batch(optimizers: Iterable[str]) -> str:
    """The optimizers that always train on the full batch, for the table's header (GD even when not run)."""
    from microdl.optim import OPTIMIZERS

    full = (o for o in optimizers if o != "gd" and getattr(OPTIMIZERS.get(o), "full_batch", False))
    return ", ".join(["gd", *full])


def _pm(row: Mapping[str, Any], key: str, fmt: str = ".4g", std_fmt: str = ".2g") -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if not math.isfinite(mean):
        return "—"
    return f"{mean:{fmt}} ± {std:{std_fmt}}"


def _reach(row: Mapping[str, Any], key: str, fmt: str, n: int) -> str:
    if row["reached"] == 0:
        return f"— (0/{n})"
    mean = row[f"{key}_mean"]
    return f"{format_seconds(mean) if fmt == 'seconds' else format(mean, fmt)} ({row['reached']}/{n})"


def load_results(out_dir: str | Path) -> CompareResult:
    """Read back what :meth:`CompareResult.save` wrote (from ``history.json``)."""
    path = Path(out_dir) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"no history.json in {out_dir}: not a compare output folder")
    return CompareResult.from_dict(json.loads(path.read_text()))
