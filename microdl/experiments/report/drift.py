"""A non-stationary target: the function to learn switches every few hundred steps; who keeps up?

A stream of standard-normal inputs is labelled by a random linear teacher (plus a little noise) that is
replaced by a new one every ``drift_steps`` steps. Each optimizer trains a small ReLU network online, one
mini-batch per step, each batch seen once. Its *online loss* is the loss of each batch before the step that
learns from it (what a deployed model would have scored), averaged over every segment after the first switch.
The stochastic optimizers take part; GD has no full batch to use on a stream. A *stationary control* runs the
same stream with the first teacher kept throughout: an optimizer handles non-stationarity well when its
advantage over the others is larger on the switching stream than on the stationary one (a difference against
the control, so that an optimizer that is simply better everywhere does not count).
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
from microdl.experiments.runs import SIX_OPTIMIZERS

KEY = "drift"
TITLE = "A non-stationary target"

FIVE = SIX_OPTIMIZERS[1:]  # all but GD
_FEATURES, _HIDDEN, _BATCH, _NOISE = 8, 16, 8, 0.1
#: Steps per call of ``fit`` (one point of the online-loss curve).
_CHUNK = 20


def _stream(seed: int, segments: int, steps: int, stationary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of a stream whose linear teacher changes every ``steps`` steps (``stationary``: the
    first teacher throughout, the same inputs and noise)."""
    rng = np.random.default_rng(seed)
    n = segments * steps * _BATCH
    X = rng.standard_normal((n, _FEATURES))
    w = rng.standard_normal((segments, _FEATURES)) / np.sqrt(_FEATURES)
    segment = np.zeros(n, dtype=int) if stationary else np.arange(n) // (steps * _BATCH)
    y = np.einsum("ij,ij->i", X, w[segment]) + _NOISE * rng.standard_normal(n)
    return X, y


def _online(name: str, lr: float, seed: int, segments: int, steps: int, stationary: bool = False) -> list[float]:
    """The online loss of each chunk of ``_CHUNK`` steps over the whole stream (inf once diverged)."""
    from microdl.nn import MLP
    from microdl.optim import make_optimizer

    X, y = _stream(seed, segments, steps, stationary)
    model = MLP((_FEATURES, _HIDDEN, 1), loss="squared_error", random_state=seed)
    opt = make_optimizer(name, model.params, lr=lr)
    size = _CHUNK * _BATCH
    curve: list[float] = []
    for start in range(0, X.shape[0], size):
        history = fit_quietly(model, opt, X[start:start + size], y[start:start + size], epochs=1, batch_size=_BATCH,
                              shuffle=False)
        if history.diverged or not history.train_loss:
            curve += [float("inf")] * ((X.shape[0] - start) // size)
            break
        curve.append(float(history.train_loss[0]))
    return curve


def tracking_loss(curve: list[float], segments: int) -> float:
    """Mean online loss over the segments after the first switch."""
    per_segment = len(curve) // segments
    rest = np.array(curve[per_segment:], dtype=float)
    return float(rest.mean()) if rest.size else float("nan")


def run(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    segments, steps = s.drift_segments, s.drift_steps
    out: dict[str, Any] = {"segments": segments, "steps": steps, "grid": list(s.tune_grid), "seeds": list(s.seeds),
                           "optimizers": {}}
    tune_tracking = lambda name, lr: tracking_loss(_online(name, lr, s.tune_seeds[0], segments, steps), segments)
    for name in FIVE:
        # the rate with the lowest tracking loss on a stream of its own (another seed)
        lr, scores = best_rate(s.tune_grid, partial(tune_tracking, name))
        curves = [_online(name, lr, seed, segments, steps) for seed in s.seeds]
        control = [_online(name, lr, seed, segments, steps, stationary=True) for seed in s.seeds]
        out["optimizers"][name] = {"lr": lr, "tuning": [scores[r] for r in s.tune_grid], "curves": curves,
                                   "tracking": [tracking_loss(c, segments) for c in curves],
                                   "stationary": [tracking_loss(c, segments) for c in control]}
    return out


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    track = {o: stats.with_failures(v["tracking"])[0] for o, v in r["optimizers"].items()}
    still = {o: stats.with_failures(v["stationary"])[0] for o, v in r["optimizers"].items()}
    others = np.median(np.array([track[o] for o in FIVE if o != "rmsprop"]), axis=0)
    others_still = np.median(np.array([still[o] for o in FIVE if o != "rmsprop"]), axis=0)
    switching = stats.paired_ratio(track["rmsprop"], others)
    stationary = stats.paired_ratio(still["rmsprop"], others_still)
    # the advantage on the switching stream over the same on the stationary control, per seed
    est = stats.paired_ratio(track["rmsprop"] / others, still["rmsprop"] / others_still)
    ranked = sorted(FIVE, key=lambda o: float(np.mean(track[o])))
    return {"rmsprop-nonstationary": apply_rules(
        "rmsprop-nonstationary", {"tracking": est},
        "mean online loss after the first switch (each at its best rate): "
        + ", ".join(f"{o} {fmt(float(np.mean(track[o])), '.3g')}" for o in ranked)
        + f"; RMSprop over the median of the others {interval(switching)} on the switching stream and "
        f"{interval(stationary)} on the stationary control; the ratio of the two {interval(est)} (noise floor "
        f"{0.5 * _NOISE**2:.3g})")}


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import color_of, new_figure, seed_dots

    r = results[KEY]
    fig, axes = new_figure(1, 2, width=14, height=4.2)
    ax = axes[0][0]
    for name, v in r["optimizers"].items():
        curves = np.array(v["curves"], dtype=float)
        x = (np.arange(curves.shape[1]) + 1) * _CHUNK
        with np.errstate(invalid="ignore"):
            ax.plot(x, np.mean(curves, axis=0), color=color_of(name), lw=1.3, label=f"{name} (lr {v['lr']:g})")
    for k in range(1, r["segments"]):
        ax.axvline(k * r["steps"], color="grey", ls=":", lw=1)
    ax.axhline(0.5 * _NOISE**2, color="k", ls="--", lw=0.8, label="noise floor")
    ax.set_yscale("log")
    ax.set_xlabel("step (dotted: the teacher switches)")
    ax.set_ylabel("online loss (before each step)")
    ax.set_title("online loss on a switching target, mean over seeds", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax = axes[0][1]
    names = list(r["optimizers"])
    for k, name in enumerate(names):
        seed_dots(ax, k, r["optimizers"][name]["tracking"], color_of(name))
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("mean online loss after the first switch")
    ax.set_title("tracking loss per optimizer (dots: seeds, bar: geometric mean)", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, out, "drift.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    doc.paragraph(
        f"Inputs: {_FEATURES} standard-normal features; targets: a random linear function of them plus noise of "
        f"standard deviation {_NOISE:g}, replaced by a new random one every {r['steps']} steps, {r['segments']} "
        f"segments in all. The learner is a {_FEATURES}-{_HIDDEN}-1 ReLU network trained online with batches of "
        f"{_BATCH}, each seen once. Each optimizer's rate is the one of {', '.join(f'{x:g}' for x in r['grid'])} "
        f"with the lowest tracking loss on a separate stream; {len(r['seeds'])} seeds (streams and initial weights).")
    doc.table(["optimizer", "lr", "tracking loss (mean over seeds)", "first chunk after each switch (mean)"],
              [[o, f"{v['lr']:g}", fmt(float(np.mean(v["tracking"])), ".3g"),
                fmt(float(np.mean([c[k * len(c) // r['segments']] for c in v["curves"]
                                   for k in range(1, r["segments"])])), ".3g")]
               for o, v in r["optimizers"].items()])
