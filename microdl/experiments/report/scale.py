"""Dataset size and streaming: work and peak memory to a target loss as the data grows, GD against SGD, and a
model learning from a stream through ``partial_fit``.

The data come from a teacher network with noise (:class:`~microdl.experiments.report.problems.Teacher`), so
the best possible loss is known and the loss on fresh samples measures what a model has learnt. The *target*
is the loss that leaves a quarter of the learnable part unlearnt: floor + 0.25 · (a constant prediction's loss −
floor). For each size n, GD (one full-batch step per call of :func:`microdl.train.fit`) and SGD (one call
per chunk of mini-batches, in the data's order) train until the loss on a held-out sample reaches the target.
Work is counted, not timed (Bottou & Bousquet 2008 compare computation): the *samples processed* (one sample
through a forward and backward pass; a GD step processes all n, an SGD step a batch). :mod:`tracemalloc`
records the peak memory that training allocates on top of the data. GD's work is capped at ``CAP_FACTOR``
times SGD's at the same n, and never below ``GD_MIN_STEPS`` full steps; a GD run that has not reached the
target by then counts as a failure. Training time is kept for reference and decides nothing.
"""

from __future__ import annotations

import math
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from microdl._format import format_seconds
from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, fmt, interval, save_figure
from microdl.experiments.report.problems import Teacher
from microdl.experiments.report.verdicts import LARGE_DATA_RATIO, STREAM_EXCESS, Verdict
from microdl.experiments.report.verdicts import judge as apply_rules

KEY = "scale"
TITLE = "Large datasets and online learning"

#: The teacher: inputs, hidden units, noise; the student's hidden units; the share of the learnable loss left.
_FEATURES, _TEACHER_HIDDEN, _NOISE, _STUDENT_HIDDEN, _LEFT = 10, 8, 0.5, 16, STREAM_EXCESS
_BATCH, _EVAL_SAMPLES, _EVAL_EVERY = 32, 10_000, 20
#: GD's time cap, as a multiple of SGD's time at the same size (the rule's own threshold).
CAP_FACTOR = LARGE_DATA_RATIO
#: SGD's own cap (seconds, a safety net), the fewest full steps GD's cap allows, SGD's cap in samples, and the
#: steps a rate may take while it is being tuned.
_SGD_CAP, GD_MIN_STEPS, _SGD_MAX_SAMPLES, _TUNE_STEPS = 20.0, 5, 2_000_000, {"sgd": 4000, "gd": 400}
_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
_TUNE_SIZE = 10_000


def _problem() -> tuple[Teacher, np.ndarray, np.ndarray, float]:
    teacher = Teacher(_FEATURES, _TEACHER_HIDDEN, _NOISE, seed=2024)
    X_eval, y_eval = teacher.sample(_EVAL_SAMPLES, np.random.default_rng(99))
    constant = 0.5 * float(np.var(y_eval))
    target = teacher.noise_floor + _LEFT * (constant - teacher.noise_floor)
    return teacher, X_eval, y_eval, target


def _train_to_target(name: str, lr: float, seed: int, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray,
                     y_eval: np.ndarray, target: float, cap: float, max_steps: float = math.inf,
                     max_samples: float = math.inf) -> dict[str, float]:
    """Train until the held-out loss reaches ``target``, or the training time reaches ``cap``, the steps
    ``max_steps`` or the samples processed ``max_samples``; returns the samples processed and the training time
    (inf if the target was not reached), the steps, the time per step and the peak memory."""
    from microdl.nn import MLP
    from microdl.optim import make_optimizer
    from microdl.train import DivergenceWarning, evaluate_loss, fit

    n = X.shape[0]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    model = MLP((_FEATURES, _STUDENT_HIDDEN, 1), loss="squared_error", random_state=seed)
    opt = make_optimizer(name, model.params, lr=lr)
    clock, steps, reached, processed, reached_samples = 0.0, 0, math.inf, 0, math.inf
    pos = int(np.random.default_rng(seed).integers(n))  # each seed starts at another place in the data
    chunk = _BATCH * _EVAL_EVERY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        while clock < cap and steps < max_steps and processed < max_samples:
            if name == "gd":
                Xc, yc = X, y
            else:
                if pos + chunk > n:
                    pos = 0
                Xc, yc = X[pos:pos + chunk], y[pos:pos + chunk]
                pos += chunk
            tic = time.perf_counter()
            history = fit(model, opt, Xc, yc, epochs=1, batch_size=_BATCH, shuffle=False)
            clock += time.perf_counter() - tic
            taken = history.grad_evals[-1] if history.grad_evals else 0
            steps += taken
            processed += len(Xc) if name == "gd" else min(len(Xc), taken * _BATCH)
            if history.diverged:
                break
            if evaluate_loss(model, X_eval, y_eval) <= target:
                reached, reached_samples = clock, processed
                break
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {"samples": float(reached_samples), "time": reached, "steps": steps, "step_time": clock / max(steps, 1),
            "peak_bytes": float(peak)}


def _tune(name: str, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray, y_eval: np.ndarray, target: float,
          seed: int) -> float:
    """The rate of the grid that reaches the target in the fewest steps (tuning seed ``seed``, n = _TUNE_SIZE); a
    rate stops as soon as it has taken as many steps as the best so far."""
    best_steps, best_lr = _TUNE_STEPS[name], _GRID[0]
    for lr in _GRID:
        r = _train_to_target(name, lr, seed, X, y, X_eval, y_eval, target, _SGD_CAP, max_steps=best_steps)
        if math.isfinite(r["time"]) and r["steps"] < best_steps:
            best_steps, best_lr = r["steps"], lr
    return best_lr


def _stream(lr: float, seed: int, chunks: int, chunk: int, teacher: Teacher, X_eval: np.ndarray,
            y_eval: np.ndarray) -> dict[str, Any]:
    """MLPRegressor.partial_fit over ``chunks`` freshly generated chunks, never stored: the peak memory of each
    chunk (generating it and learning from it) and, now and then, the held-out loss (measured after the peak is
    read, so that scoring does not count as learning)."""
    from microdl.sklearn import MLPRegressor

    est = MLPRegressor(hidden_layer_sizes=(_STUDENT_HIDDEN,), solver="sgd", learning_rate_init=lr, momentum=0.0,
                       batch_size=_BATCH, random_state=seed)
    rng = np.random.default_rng(seed)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    peaks, losses = [], []
    for k in range(chunks):
        tracemalloc.reset_peak()
        X, y = teacher.sample(chunk, rng)
        est.partial_fit(X, y)
        peaks.append(float(tracemalloc.get_traced_memory()[1] - base))
        del X, y
        if k % max(1, chunks // 20) == 0 or k == chunks - 1:
            losses.append((k + 1, 0.5 * float(np.mean((est.predict(X_eval) - y_eval) ** 2))))
    tracemalloc.stop()
    return {"peaks": peaks, "losses": losses}


def run(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    teacher, X_eval, y_eval, target = _problem()
    constant = 0.5 * float(np.var(y_eval))
    X, y = teacher.sample(_TUNE_SIZE, np.random.default_rng(7))
    # the replication's own tuning seed (NOTE [report seeds]), never one of the evaluation seeds
    lrs = {name: _tune(name, X, y, X_eval, y_eval, target, s.tune_seeds[0]) for name in ("sgd", "gd")}
    out: dict[str, Any] = {"floor": teacher.noise_floor, "constant": constant, "target": target, "lrs": lrs,
                           "sizes": list(s.sizes), "seeds": list(s.seeds), "cap_factor": CAP_FACTOR, "runs": {}}
    for n in s.sizes:
        X, y = teacher.sample(n, np.random.default_rng(n))
        sgd = [_train_to_target("sgd", lrs["sgd"], seed, X, y, X_eval, y_eval, target, _SGD_CAP,
                                max_samples=_SGD_MAX_SAMPLES) for seed in s.seeds]
        sgd_work = [r["samples"] for r in sgd if math.isfinite(r["samples"])]
        # GD's cap in work: CAP_FACTOR times SGD's, never fewer than GD_MIN_STEPS full steps
        cap = max(GD_MIN_STEPS * n, CAP_FACTOR * float(np.median(sgd_work)) if sgd_work else _SGD_MAX_SAMPLES)
        gd = [_train_to_target("gd", lrs["gd"], seed, X, y, X_eval, y_eval, target, _SGD_CAP, max_samples=cap)
              for seed in s.seeds]
        out["runs"][str(n)] = {"data_bytes": float(X.nbytes + y.nbytes), "gd_cap": cap,
                               "sgd": {k: [r[k] for r in sgd] for k in sgd[0]},
                               "gd": {k: [r[k] for r in gd] for k in gd[0]}}
        del X, y
    out["stream"] = {"chunks": s.stream_chunks, "chunk": s.stream_chunk, "lr": lrs["sgd"],
                     "runs": [_stream(lrs["sgd"], seed, s.stream_chunks, s.stream_chunk, teacher, X_eval, y_eval)
                              for seed in s.seeds]}
    return out


def _exponent(sizes: list[int], times: np.ndarray) -> float:
    """Least-squares slope of log(time) on log(n); inf if some size never reached the target."""
    if not np.all(np.isfinite(times)):
        return math.inf
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    sizes = r["sizes"]
    largest = r["runs"][str(sizes[-1])]
    gd_w = np.array(largest["gd"]["samples"], dtype=float)
    sgd_w = np.array(largest["sgd"]["samples"], dtype=float)
    n_seeds = len(r["seeds"])
    gd_est = stats.paired_ratio(gd_w, sgd_w)  # a GD run that missed the target within its cap is a failure
    reached = int(np.isfinite(gd_w).sum())
    mem = {n: (np.median(r["runs"][str(n)]["gd"]["peak_bytes"]), np.median(r["runs"][str(n)]["sgd"]["peak_bytes"]))
           for n in sizes}
    out = {"gd-any-size": apply_rules(
        "gd-any-size", {"work": gd_est},
        f"at n = {sizes[-1]:,}, SGD reached the target after {fmt(float(np.median(sgd_w)), '.3g')} samples processed "
        f"(median); GD reached it on {reached}/{n_seeds} seeds within its cap of {fmt(largest['gd_cap'], '.3g')} "
        f"samples ({CAP_FACTOR:g}× SGD's work, at least {GD_MIN_STEPS} full steps), GD/SGD {interval(gd_est)}; GD's "
        "samples to the target: " + ", ".join(f"{fmt(float(np.median(r['runs'][str(n)]['gd']['samples'])), '.3g')} "
                                             f"at n = {n:,}" for n in sizes)
        + "; peak training memory GD vs SGD: " + ", ".join(f"{_mb(g)} vs {_mb(s_)} at {n:,}"
                                                             for n, (g, s_) in mem.items()))}
    work = np.array([r["runs"][str(n)]["sgd"]["samples"] for n in sizes], dtype=float)  # (sizes, seeds)
    scaling = stats.bootstrap(n_seeds, lambda idx: _exponent(sizes, work[:, idx].mean(axis=1)))
    streams = r["stream"]["runs"]
    growth = [max(p[len(p) // 2:]) / max(p[: len(p) // 2]) for p in (run["peaks"] for run in streams)]
    excess = [(run["losses"][-1][1] - r["floor"]) / (r["constant"] - r["floor"]) for run in streams]
    memory = stats.mean(growth)
    online = stats.mean(excess)
    out["sgd-large-online"] = apply_rules(
        "sgd-large-online", {"scaling": scaling, "memory": memory, "online": online},
        "SGD's median samples processed to the target: " + ", ".join(
            f"{fmt(float(np.median(r['runs'][str(n)]['sgd']['samples'])), '.3g')} at n = {n:,}" for n in sizes)
        + f" (exponent {interval(scaling, '.2f')}); a stream of {r['stream']['chunks']} chunks of "
          f"{r['stream']['chunk']} fresh samples through MLPRegressor.partial_fit: peak memory of the second half "
          f"over the first {interval(memory)}, {_mb(float(np.mean([max(run['peaks']) for run in streams])))} at "
          f"most; after one pass {interval(online, '.3f')} of the learnable loss is left")
    return out


def _mb(x: float) -> str:
    return f"{x / 2**20:.3g} MB" if x >= 2**20 else f"{x / 2**10:.3g} kB"


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import color_of, new_figure

    r = results[KEY]
    sizes = np.array(r["sizes"], dtype=float)
    fig, axes = new_figure(1, 3, width=15, height=4.2)
    ax = axes[0][0]
    for name in ("gd", "sgd"):
        t = np.array([r["runs"][str(int(n))][name]["samples"] for n in sizes], dtype=float)
        med = np.array([np.median(row) if np.isfinite(row).all() else np.nan for row in t])
        ax.plot(sizes, med, marker="o", color=color_of(name), label=f"{name} (lr {r['lrs'][name]:g})")
        for k, n in enumerate(sizes):
            ok = np.isfinite(t[k])
            ax.plot([n] * int(ok.sum()), t[k][ok], ".", color=color_of(name), alpha=0.5)
            if name == "gd" and not ok.all():
                ax.plot(n, r["runs"][str(int(n))]["gd_cap"], "^", color=color_of(name), ms=9, mfc="none")
    ax.plot([], [], "^", color=color_of("gd"), mfc="none", label="gd: not reached within its cap")
    # GD's steps to the target hardly depend on n, so its work at every n is about those steps times n
    gd_runs = [r["runs"][str(int(n))]["gd"] for n in sizes]
    steps = [s for g in gd_runs for s, t in zip(g["steps"], g["samples"]) if np.isfinite(t)]
    if steps:
        ax.plot(sizes, np.median(steps) * sizes, "--", color=color_of("gd"), lw=1,
                label=f"gd, projected: {np.median(steps):.0f} steps × n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training samples n")
    ax.set_ylabel("samples processed to the target")
    ax.set_title("work to the target loss (median, dots: seeds)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0][1]
    for name in ("gd", "sgd"):
        peak = [np.median(r["runs"][str(int(n))][name]["peak_bytes"]) / 2**20 for n in sizes]
        ax.plot(sizes, peak, marker="o", color=color_of(name), label=name)
    ax.plot(sizes, [r["runs"][str(int(n))]["data_bytes"] / 2**20 for n in sizes], "k--", lw=1, label="the data")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training samples n")
    ax.set_ylabel("peak memory allocated by training (MB)")
    ax.set_title("memory on top of the data (tracemalloc)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0][2]
    st = r["stream"]
    for run in st["runs"]:
        k, loss = zip(*run["losses"])
        ax.plot(np.array(k) * st["chunk"], loss, color=color_of("sgd"), alpha=0.7)
    ax.axhline(r["floor"], color="k", ls=":", lw=1, label="noise floor")
    ax.axhline(r["target"], color="grey", ls="--", lw=1, label="target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples streamed")
    ax.set_ylabel("held-out loss")
    twin = ax.twinx()
    for run in st["runs"]:
        twin.plot(np.arange(1, len(run["peaks"]) + 1) * st["chunk"], np.array(run["peaks"]) / 2**10,
                  color="C7", lw=0.6, alpha=0.6)
    twin.set_ylabel("peak memory per chunk (kB, grey)")
    twin.set_ylim(bottom=0)
    ax.set_title(f"MLPRegressor.partial_fit on a stream of {st['chunks']} × {st['chunk']} samples", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, out, "scale.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    doc.paragraph(
        f"A teacher network ({_FEATURES}-{_TEACHER_HIDDEN}-1, tanh) labels standard-normal inputs, plus noise of "
        f"standard deviation {_NOISE:g}: the best possible loss is {r['floor']:.3g} and a constant prediction "
        f"scores {r['constant']:.3g}. The target is {r['target']:.3g}, which leaves {_LEFT:.0%} of the learnable "
        f"part unlearnt; a held-out sample of {_EVAL_SAMPLES:,} measures it every {_EVAL_EVERY} SGD steps or every GD "
        f"step, off the clock (work is counted in samples processed; time is for reference). Students are "
        f"{_FEATURES}-{_STUDENT_HIDDEN}-1 ReLU networks; SGD uses batches of "
        f"{_BATCH} in the data's order. Each optimizer's rate is the one of {', '.join(map(str, _GRID))} that "
        f"reaches the target in the fewest steps at n = {_TUNE_SIZE:,} (GD {r['lrs']['gd']:g}, SGD "
        f"{r['lrs']['sgd']:g}). {len(r['seeds'])} seeds (initial weights and starting point in the data).")
    rows = []
    for n in r["sizes"]:
        v = r["runs"][str(n)]
        g, s_ = v["gd"], v["sgd"]
        rows.append([f"{n:,}", f"{fmt(float(np.median(s_['samples'])), '.3g')}",
                     f"{int(np.isfinite(g['samples']).sum())}/{len(g['samples'])}, "
                     f"{fmt(float(np.median(g['samples'])), '.3g')} (cap {fmt(v['gd_cap'], '.3g')})",
                     format_seconds(float(np.median(g["step_time"]))),
                     _mb(float(np.median(g["peak_bytes"]))), _mb(float(np.median(s_["peak_bytes"]))),
                     _mb(v["data_bytes"])])
    doc.table(["n", "SGD samples to target", "GD: seeds that reached it, median samples", "GD time per step",
               "GD peak memory", "SGD peak memory", "the data"], rows, caption="medians over seeds")
