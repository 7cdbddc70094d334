"""``sensitivity``: final validation loss against the learning rate, per optimizer (and batch size for SGD).

"Sensitive to the choice of hyperparameters" becomes a number here: the *width*, in decades, of the range of
learning rates whose final validation loss is within ``within`` (10% by default) of the best one on the grid
(:func:`flat_width`). A wide range means a rate picked roughly works; a narrow one means it must be tuned.
Validation data is carved from the training data, as in tuning; the test set is not used.

Example
-------
>>> from microdl.experiments import sensitivity
>>> result = sensitivity("iris", ["sgd", "adam"], seeds=1, epochs=5, progress=False)   # doctest: +SKIP
>>> print(result.format_table())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdl._files import atomic_folder, strict_json
from microdl._validation import check_int, check_real
from microdl.datasets import RawData, load_dataset
from microdl.experiments.comparison import check_output_folder
from microdl.experiments.runs import (
    SIX_OPTIMIZERS,
    Budget,
    RunSpec,
    check_datasets,
    check_execution,
    check_optimizers,
    check_seeds,
    execute,
    parse_budget,
    takes_lr,
    threads_per_run,
)
from microdl.experiments.tuning import LR_GRID, validation_split

__all__ = ["sensitivity", "SensitivityResult", "flat_width", "load_sensitivity", "DEFAULT_SWEEP_EPOCHS"]

DEFAULT_SWEEP_EPOCHS = 20
#: What SensitivityResult.save writes; an output folder holding anything else is never replaced.
OUTPUT_FILES = ("sensitivity.json", "sensitivity.csv", "sensitivity.txt", "sensitivity.png")
#: Who wrote an output folder, as its manifest records (NOTE [output folders] in microdl._files).
WRITER = "microdl sensitivity"


def flat_width(lrs: Sequence[float], losses: Sequence[float | None], within: float) -> dict[str, Any]:
    """The learning-rate range around the best grid point whose loss stays within ``within`` of the best.

    Walking out from the best rate in both directions, the range ends where the loss first exceeds
    ``best · (1 + within)``; the crossing is interpolated linearly in log10(lr) between the two grid points
    around it (a diverged point, None, ends the range at the last good point). Returns ``best_lr``,
    ``best_loss``, ``threshold``, ``low`` and ``high`` (rates), ``width`` (decades, log10(high/low)) and
    ``censored``: True when the range reaches an end of the grid, so the true width is at least ``width``.

    The best loss 1.0 at lr 0.1 sets the threshold 1.1; going down, the loss crosses it a tenth of the way to
    2.0 at lr 0.01 (0.1 decade), and going up it stays within it to the end of the grid (1 decade, censored):

    >>> r = flat_width([0.01, 0.1, 1.0], [2.0, 1.0, 1.05], 0.1)
    >>> round(r["width"], 6), r["censored"]
    (1.1, True)
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    y = np.array([np.inf if v is None or not math.isfinite(v) else v for v in losses], dtype=float)
    if not np.isfinite(y).any():
        return {"best_lr": None, "best_loss": None, "threshold": None, "low": None, "high": None,
                "width": 0.0, "censored": False}
    b = int(np.argmin(y))
    threshold = y[b] * (1.0 + within) if y[b] >= 0 else y[b] * (1.0 - within)
    censored = False

    def edge(step: int) -> float:
        nonlocal censored
        k = b
        while 0 <= k + step < len(y) and y[k + step] <= threshold:
            k += step
        if not 0 <= k + step < len(y):
            censored = True
            return x[k]
        nxt = k + step
        if not np.isfinite(y[nxt]):
            return x[k]
        frac = (threshold - y[k]) / (y[nxt] - y[k])
        return x[k] + frac * (x[nxt] - x[k])

    lo, hi = edge(-1), edge(+1)
    return {"best_lr": float(lrs[b]), "best_loss": float(y[b]), "threshold": float(threshold),
            "low": float(10**lo), "high": float(10**hi), "width": float(hi - lo), "censored": censored}


def sensitivity(dataset: str | RawData = "digits", optimizers: str | Iterable[str] = SIX_OPTIMIZERS,
                seeds: int | Iterable[int] = 2, *, epochs: int | None = None, budget: str | Budget | None = None,
                batch_size: int = 32, batch_sizes: Sequence[int] = (8, 32, 128),
                sweep_batch_for: Iterable[str] = ("sgd",), hidden: Sequence[int] = (64,),
                activation: str = "relu", grid: Sequence[float] = LR_GRID, within: float = 0.10,
                validation_fraction: float = 0.2, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
                progress: bool | None = None) -> SensitivityResult:
    """Sweep the learning rate over ``grid`` for every optimizer, and the batch size too for some (SGD).

    Parameters
    ----------
    dataset : str or RawData
        One dataset name, or your own data (:func:`microdl.datasets.read_data`).
    optimizers, seeds, hidden, activation, jobs, backend, scheduler, progress
        As in :func:`microdl.experiments.compare`; but ``"lbfgs"``, which has no learning rate to sweep, is
        refused (ValueError).
    epochs, budget
        Training per run: ``epochs`` (default 20) or a budget string such as ``"grad_evals:500"``.
    batch_size : int
        Batch size of the optimizers whose batch size is not swept (GD is always full batch).
    batch_sizes : sequence of int
        The batch sizes of the optimizers in ``sweep_batch_for``.
    sweep_batch_for : sequence of str
        Optimizers swept over ``batch_sizes`` as well (default: SGD, whose claim names the batch size).
    within : float
        Relative tolerance of :func:`flat_width` (0.1 = 10%).
    """
    source = dataset if isinstance(dataset, RawData) else check_datasets([dataset])[0]  # your own data, or a name
    dataset = source.name if isinstance(source, RawData) else source
    optimizers = check_optimizers(optimizers)
    no_rate = [o for o in optimizers if not takes_lr(o)]
    if no_rate:
        raise ValueError(f"sensitivity sweeps the learning rate, and {', '.join(no_rate)} has none (its line search "
                         "picks each step); leave it out")
    check_execution(jobs, backend, scheduler)
    seeds = check_seeds(seeds)
    if epochs is not None and budget is not None:
        raise ValueError("give epochs or budget, not both")
    budget = parse_budget(budget) if budget is not None else Budget("epochs", epochs or DEFAULT_SWEEP_EPOCHS)
    batch_size = check_int("batch_size", batch_size, 1)
    batch_sizes = tuple(check_int("batch size", b, 1) for b in batch_sizes) or (batch_size,)
    sweep_batch_for = tuple(o for o in check_optimizers(tuple(sweep_batch_for) or ("sgd",)) if o != "gd")
    hidden = tuple(check_int("hidden layer width", h, 1) for h in hidden)
    within = check_real("within", within, 0.0, 10.0, low_open=True, high_open=True)
    grid = sorted(float(lr) for lr in grid)
    if not grid or grid[0] <= 0:
        raise ValueError("the learning-rate grid must hold positive numbers")
    threads = threads_per_run(jobs, backend)

    specs, info = [], {}
    for s in seeds:
        d = load_dataset(source, random_state=s)
        layer_sizes = (d.n_features, *hidden, d.n_outputs)
        info = {"task": d.task, "n_train": int(d.X_train.shape[0]), "layer_sizes": list(layer_sizes)}
        X_fit, y_fit, X_val, y_val = validation_split(d.X_train, d.y_train, validation_fraction, s,
                                                      d.task == "classification")
        info["n_fit"], info["n_val"] = int(X_fit.shape[0]), int(X_val.shape[0])
        for o in optimizers:
            sizes = batch_sizes if o in sweep_batch_for else (X_fit.shape[0] if o == "gd" else batch_size,)
            for b in sizes:
                for lr in grid:
                    specs.append(RunSpec(o, lr, s, layer_sizes, d.loss, X_fit, y_fit, X_val, y_val, budget, b,
                                         activation, eval_name="val", threads=threads,
                                         labels={"dataset": dataset, "phase": "sensitivity"}))
    runs = execute(specs, jobs=jobs, backend=backend, scheduler=scheduler, progress=progress, desc="sensitivity")
    config = {"dataset": dataset, "optimizers": list(optimizers), "seeds": list(seeds), "budget": str(budget),
              "batch_size": batch_size, "batch_sizes": list(batch_sizes), "sweep_batch_for": list(sweep_batch_for),
              "hidden": list(hidden),
              "activation": activation, "grid": grid, "within": within, "validation_fraction": validation_fraction,
              "dataset_info": info}
    return SensitivityResult(config, runs)


class SensitivityResult:
    """The runs of :func:`sensitivity` and what they say: one curve per (optimizer, batch size)."""

    def __init__(self, config: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        self.config, self.runs = config, runs

    def curves(self) -> list[dict[str, Any]]:
        """Per (optimizer, batch size): the rates, the mean final validation loss per rate over the seeds
        (None where any seed diverged), the divergences, and :func:`flat_width`'s numbers."""
        out = []
        keys = []
        for r in self.runs:
            key = (r["optimizer"], r["batch_size"])
            if key not in keys:
                keys.append(key)
        for o, b in keys:
            lrs, losses, diverged = [], [], []
            for lr in self.config["grid"]:
                runs = [r for r in self.runs if r["optimizer"] == o and r["batch_size"] == b and r["lr"] == lr]
                bad = sum(bool(r["diverged"]) or r["final_val_loss"] is None for r in runs)
                lrs.append(lr)
                diverged.append(bad)
                losses.append(None if bad else float(np.mean([r["final_val_loss"] for r in runs])))
            swept = o in self.config["sweep_batch_for"] and len(self.config["batch_sizes"]) > 1
            label = f"{o} (batch {b})" if swept else o
            out.append({"optimizer": o, "batch_size": b, "label": label, "lrs": lrs, "val_loss": losses,
                        "diverged": diverged, **flat_width(lrs, losses, self.config["within"])})
        return out

    def format_table(self) -> str:
        cfg = self.config
        info = cfg["dataset_info"]
        head = ["optimizer", "batch", "best lr", "best val loss", f"range within {cfg['within']:.0%}",
                "width (decades)", "diverged lrs"]
        body = []
        for c in self.curves():
            if c["best_lr"] is None:
                body.append([c["optimizer"], str(c["batch_size"]), "—", "—", "—", "0",
                             str(sum(map(bool, c["diverged"])))])
                continue
            body.append([c["optimizer"], str(c["batch_size"]), f"{c['best_lr']:.3g}", f"{c['best_loss']:.4g}",
                         f"{c['low']:.3g} .. {c['high']:.3g}", ("≥ " if c["censored"] else "") + f"{c['width']:.2f}",
                         str(sum(map(bool, c["diverged"])))])
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        lines = [f"{cfg['dataset']}: learning-rate sensitivity (MLP {'-'.join(map(str, info['layer_sizes']))}, "
                 f"budget {parse_budget(cfg['budget']).describe()}, seeds {', '.join(map(str, cfg['seeds']))}; "
                 f"validation split {info['n_val']} of {info['n_train']} training samples; grid "
                 f"{cfg['grid'][0]:g} .. {cfg['grid'][-1]:g}, {len(cfg['grid'])} rates)",
                 "  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        lines.append(f"width: decades of learning rate whose mean final validation loss is within {cfg['within']:.0%} "
                     "of the best (≥: the range reaches the end of the grid). Narrow = sensitive.")
        return "\n".join(lines)

    def curve(self, optimizer: str, batch_size: int | None = None) -> dict[str, Any]:
        """The curve of ``optimizer`` at ``batch_size`` (default: the one it was swept at or, if it was swept
        over several, the one closest to the common ``batch_size``)."""
        matches = [c for c in self.curves() if c["optimizer"] == optimizer]
        if not matches:
            raise KeyError(f"{optimizer!r} was not swept")
        if batch_size is None:
            return min(matches, key=lambda c: abs(c["batch_size"] - self.config["batch_size"]))
        for c in matches:
            if c["batch_size"] == batch_size:
                return c
        raise KeyError(f"{optimizer!r} was not swept at batch size {batch_size}")

    def _draw(self, ax: Any, curves: list[dict[str, Any]], top: float, styles: bool) -> None:
        from microdl.experiments.plots import color_of

        sizes = self.config["batch_sizes"]
        for c in curves:
            color = color_of(c["optimizer"])
            ls = ["-", "--", ":", "-."][sizes.index(c["batch_size"]) % 4] if styles else "-"
            finals = [[r["final_val_loss"] for r in self.runs if r["optimizer"] == c["optimizer"]
                       and r["batch_size"] == c["batch_size"] and r["lr"] == lr] for lr in c["lrs"]]
            lows = [min((v for v in f if v is not None), default=np.nan) for f in finals]
            highs = [max((v for v in f if v is not None), default=np.nan) for f in finals]
            # a loss beyond the top of the axes is drawn at the top, so the curve visibly leaves the plot
            mean = [np.nan if v is None else min(v, 2 * top) for v in c["val_loss"]]
            label = f"batch {c['batch_size']}" if styles else c["optimizer"]
            ax.plot(c["lrs"], mean, ls=ls, marker="o", ms=3, color=color, label=label)
            ax.fill_between(c["lrs"], np.minimum(lows, top), np.minimum(highs, top), color=color, alpha=0.12, lw=0)
            if c["best_lr"] is not None:
                ax.plot([c["low"], c["high"]], [c["threshold"]] * 2, color=color, lw=4, alpha=0.6, ls=ls)
        best = [c["best_loss"] for c in curves if c["best_loss"] is not None and c["best_loss"] > 0]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5 * min(best) if best else None, top=top)
        ax.set_xlabel("learning rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)

    def plot(self, path: str | Path) -> Path:
        """``sensitivity.png``: final validation loss against the learning rate (log axes), mean over seeds with
        a min–max band and a bar over each curve's within-X% range. Left, every optimizer at the common batch
        size; then one panel per optimizer whose batch size was swept, one line per batch size."""
        from microdl.experiments.plots import new_figure

        cfg = self.config
        swept = [o for o in cfg["optimizers"] if o in cfg["sweep_batch_for"] and len(cfg["batch_sizes"]) > 1]
        cols = min(3, 1 + len(swept))
        rows = -(-(1 + len(swept)) // cols)
        fig, grid = new_figure(rows, cols, width=5 * cols, height=4.2)
        axes = [ax for row in grid for ax in row]
        top = 3 * max((r["val_loss"][0] for r in self.runs if r["val_loss"][0] is not None), default=10.0)
        main = [self.curve(o) for o in cfg["optimizers"]]
        self._draw(axes[0], main, top, styles=False)
        axes[0].set_title(f"{cfg['dataset']}, batch {cfg['batch_size']} (gd: full); bars: within "
                          f"{cfg['within']:.0%} of the best", fontsize=9)
        for ax, o in zip(axes[1:], swept):
            self._draw(ax, [c for c in self.curves() if c["optimizer"] == o], top, styles=True)
            ax.set_title(f"{o}: batch sizes", fontsize=9)
        for k, ax in enumerate(axes):
            if k > len(swept):
                ax.set_visible(False)
            elif k % cols == 0:
                ax.set_ylabel("final validation loss")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return Path(path)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "runs": self.runs}

    def save(self, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
        """Write ``sensitivity.json`` (every run), ``sensitivity.csv`` (one row per curve and rate),
        ``sensitivity.txt`` (the table) and ``sensitivity.png`` (unless ``plot`` is False), swapping the whole
        folder in at the end as :meth:`CompareResult.save` does."""
        out = check_output_folder(out_dir, WRITER)
        paths = {"history": out / "sensitivity.json", "summary": out / "sensitivity.csv",
                 "table": out / "sensitivity.txt"}
        if plot:
            paths["plot"] = out / "sensitivity.png"
        with atomic_folder(out, WRITER) as tmp:
            (tmp / "sensitivity.json").write_text(json.dumps(strict_json(self.to_dict()), indent=1,
                                                             allow_nan=False))
            with open(tmp / "sensitivity.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["optimizer", "batch_size", "lr", "mean_final_val_loss", "diverged_seeds", "best_lr",
                            "width_decades", "censored"])
                for c in self.curves():
                    for lr, v, dv in zip(c["lrs"], c["val_loss"], c["diverged"]):
                        w.writerow([c["optimizer"], c["batch_size"], lr, "" if v is None else v, dv, c["best_lr"],
                                    c["width"], c["censored"]])
            (tmp / "sensitivity.txt").write_text(self.format_table() + "\n")
            if plot:
                self.plot(tmp / "sensitivity.png")
        return paths

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SensitivityResult:
        return cls(d["config"], d["runs"])


def load_sensitivity(out_dir: str | Path) -> SensitivityResult:
    """Read back what :meth:`SensitivityResult.save` wrote."""
    path = Path(out_dir) / "sensitivity.json"
    if not path.exists():
        raise FileNotFoundError(f"no sensitivity.json in {out_dir}: not a sensitivity output folder")
    return SensitivityResult.from_dict(json.loads(path.read_text()))
