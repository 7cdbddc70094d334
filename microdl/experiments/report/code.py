"""The code itself: how much each update rule computes, what state it keeps, how many hyperparameters it
has, and how long a step takes.

"Simple", "easy to implement" and "fewer hyperparameters" are claims about an algorithm, and the nearest
thing to measure is its implementation. Each optimizer's rule in :mod:`microdl.optim.rules` is run once on
the NumPy backend at default settings under a line tracer, which counts the arithmetic statements (the
assignments) that the step executes; options that are off at the defaults (momentum, weight decay, AMSGrad,
centring) do not count. These are measures of this code, labelled as such in the report: another
implementation of the same algorithm would give other counts, though the ordering would be hard to change.
"""

from __future__ import annotations

import ast
import inspect
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from microdl._format import format_seconds
from microdl.experiments.report import stats
from microdl.experiments.report.context import Context, interval, save_figure
from microdl.experiments.report.verdicts import Verdict
from microdl.experiments.report.verdicts import judge as apply_rules
from microdl.experiments.runs import SIX_OPTIMIZERS as SIX

KEY = "code"
TITLE = "The code: statements, state, hyperparameters and step time"

#: Steps timed per optimizer and round (after one warm-up step).
_REPS = 5


def _rule_function(opt: Any) -> Any:
    from microdl.optim import rules

    fn = getattr(rules, opt.rule)
    return getattr(fn, "py_func", fn)  # a compiled rule keeps its Python function here


def _assignments(fn: Any) -> list[ast.stmt]:
    """The assignment statements of ``fn``'s body, except unpacking a bare name (the hyperparameter tuple)."""
    lines, _ = inspect.getsourcelines(fn)  # read from the file, at the line the loaded code starts
    if not any(line.lstrip().startswith(f"def {fn.__name__}(") for line in lines[:5]):
        raise RuntimeError(f"the source of {fn.__module__}.{fn.__name__} changed after it was imported; run the "
                           "report again")
    tree = ast.parse(textwrap.dedent("".join(lines)))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                continue
            out.append(node)
    return out


def _executed_statements(name: str) -> tuple[int, int]:
    """(assignments the rule executes in one step at default settings, assignments in the whole rule)."""
    from microdl.optim import make_optimizer

    opt = make_optimizer(name, np.zeros(8), backend="numpy")
    fn = _rule_function(opt)
    code = fn.__code__
    first = code.co_firstlineno
    lines: set[int] = set()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not code:
            return None
        if event == "line":
            lines.add(frame.f_lineno)
        return tracer

    grads = np.linspace(-1.0, 1.0, 8)
    opt.step(grads)  # past t = 1, so that first-step branches do not count
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        opt.step(grads)
    finally:
        sys.settrace(previous)
    statements = _assignments(fn)
    # ast line numbers count from the function's first line
    executed = [s for s in statements if any(first + k - 1 in lines for k in range(s.lineno, s.end_lineno + 1))]
    return len(executed), len(statements)


#: Hyperparameters of torch's form that the algorithm itself does not have: Zeiler's ADADELTA has no learning
#: rate (torch adds ``lr`` as a step scale, default 1, which leaves the algorithm unchanged).
_NOT_IN_ALGORITHM = {"adadelta": ("lr",)}


def _hyperparameters(opt: Any, name: str = "") -> tuple[list[str], list[str]]:
    """(numeric hyperparameters, those with a non-zero default): weight decay, on/off flags and what the
    algorithm does not have (_NOT_IN_ALGORITHM) aside."""
    numeric, active = [], []
    for key, value in opt.hyperparameters.items():
        if key == "weight_decay" or isinstance(value, (bool, str)) or key in _NOT_IN_ALGORITHM.get(name, ()):
            continue  # a regulariser every optimizer shares, switches, and conventions (Adam's eps_on)
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        names = [f"{key}[{i}]" for i in range(len(values))] if len(values) > 1 else [key]
        numeric += names
        active += [n for n, v in zip(names, values) if v != 0]
    return numeric, active


def run(ctx: Context) -> dict[str, Any]:
    from microdl.optim import make_optimizer

    s = ctx.settings
    rows: dict[str, Any] = {}
    n = s.step_time_params
    params = {o: np.zeros(n) for o in SIX}
    grads = np.random.default_rng(0).standard_normal(n)
    opts = {o: make_optimizer(o, params[o]) for o in SIX}
    for o, opt in opts.items():
        executed, total = _executed_statements(o)
        numeric, active = _hyperparameters(opt, o)
        state = {k: v for k, v in opt.state.items() if v is not None}
        rows[o] = {"statements": executed, "statements_all_options": total, "state_buffers": len(state),
                   "state_per_param": sum(int(b.nbytes) for b in state.values()) / (params[o].itemsize * n),
                   # arrays a step streams through memory, per parameter: θ read and written, g read, and every
                   # state buffer read and written (an elementwise step is bound by this traffic, not arithmetic)
                   "traffic_per_param": 3 + 2 * sum(int(b.nbytes) for b in state.values())
                   / (params[o].itemsize * n),
                   "hyperparameters": numeric, "active_hyperparameters": active, "rule": opt.rule}
        opt.step(grads)  # compile and warm up
    # rounds of interleaved timings, so that a slow moment of the machine hits every optimizer alike
    times = {o: [] for o in SIX}
    for _ in range(s.step_time_rounds):
        for o, opt in opts.items():
            tic = time.perf_counter()
            for _ in range(_REPS):
                opt.step(grads)
            times[o].append((time.perf_counter() - tic) / _REPS)
    for o in SIX:
        rows[o]["step_seconds"] = times[o]
    return {"rows": rows, "n_params": n, "rounds": s.step_time_rounds}


def _minus_median(rows: dict[str, Any], o: str, key: str) -> float:
    count = (lambda r: len(r[key])) if isinstance(rows[o][key], list) else (lambda r: r[key])
    return float(count(rows[o]) - statistics.median(count(rows[x]) for x in SIX if x != o))


def _traffic_ratio(rows: dict[str, Any], o: str) -> float:
    """o's memory traffic per parameter and step over the median of the others'."""
    return rows[o]["traffic_per_param"] / statistics.median(rows[x]["traffic_per_param"] for x in SIX if x != o)


def _statement_ratio(rows: dict[str, Any], o: str) -> float:
    """o's statements per step over the median of the others'."""
    return rows[o]["statements"] / statistics.median(rows[x]["statements"] for x in SIX if x != o)


def _time_ratio(rows: dict[str, Any], o: str) -> stats.Estimate:
    """Per round, o's step time over the median of the others' in the same round."""
    t = {x: np.array(rows[x]["step_seconds"]) for x in SIX}
    others = np.median(np.array([t[x] for x in SIX if x != o]), axis=0)
    return stats.paired_ratio(t[o], others, unit="rounds of timings")


def judge(results: dict[str, Any], settings: Any) -> dict[str, Verdict]:
    r = results[KEY]
    rows = r["rows"]
    table = "; ".join(f"{o} {rows[o]['statements']} statement(s), {rows[o]['state_buffers']} state buffer(s), "
                      f"{len(rows[o]['active_hyperparameters'])} hyperparameter(s)" for o in SIX)
    code = "a measure of this code: "
    out = {"gd-simple": apply_rules(
        "gd-simple", {"statements": stats.exact(_minus_median(rows, "gd", "statements")),
                      "state": stats.exact(_minus_median(rows, "gd", "state_buffers")),
                      "hyperparameters": stats.exact(_minus_median(rows, "gd", "active_hyperparameters"))},
        code + table, notes=["'Widely used' is not a property of code and is not measured."])}
    # "efficient" is decided by work counted from the code (memory traffic per step); the step time, measured
    # in interleaved rounds, is shown beside it and decides nothing (it moves with the machine's load)
    t_rms, t_adam = _time_ratio(rows, "rmsprop"), _time_ratio(rows, "adam")
    ms = ", ".join(f"{o} {format_seconds(float(np.median(rows[o]['step_seconds'])))}" for o in SIX)
    traffic = ", ".join(f"{o} {rows[o]['traffic_per_param']:g}" for o in SIX)
    out["rmsprop-easy"] = apply_rules(
        "rmsprop-easy", {"easy": stats.exact(_statement_ratio(rows, "rmsprop")),
                         "efficient": stats.exact(_traffic_ratio(rows, "rmsprop"))},
        f"{code}statements per step: " + ", ".join(f"{o} {rows[o]['statements']}" for o in SIX)
        + f"; arrays streamed per parameter and step: {traffic}; for reference, the median step time on "
        f"{r['n_params']:,} parameters: {ms} (RMSprop over the median of the others {interval(t_rms, '.2f')}; "
        "not used by the rule)")
    out["adam-memory"] = apply_rules(
        "adam-memory", {"memory": stats.exact(_minus_median(rows, "adam", "state_per_param")),
                        "efficient": stats.exact(_traffic_ratio(rows, "adam"))},
        "optimizer state per parameter at default settings: "
        + ", ".join(f"{o} {rows[o]['state_per_param']:g}" for o in SIX)
        + f"; arrays streamed per parameter and step: {traffic}; for reference, step time: {ms} (Adam over the "
        f"median of the others {interval(t_adam, '.2f')}; not used by the rule)")
    from microdl.experiments.report import sensitivity

    if sensitivity.KEY in results:
        width = sensitivity.width_estimate(results[sensitivity.KEY], "adadelta")
        out["adadelta-fewer"] = apply_rules(
            "adadelta-fewer", {"count": stats.exact(_minus_median(rows, "adadelta", "active_hyperparameters")),
                               "learning rate": width},
            "hyperparameters with a non-zero default: " + "; ".join(
                f"{o} {len(rows[o]['active_hyperparameters'])} ({', '.join(rows[o]['active_hyperparameters'])})"
                for o in SIX)
            + f"; torch's lr of AdaDelta is not counted (Zeiler 2012 has no learning rate; torch's is a step scale, "
              f"default 1), but it still matters here: its good range spans {interval(width, '.2f')} decades "
              "(sensitivity experiment)")
    return out


def draw(results: dict[str, Any], out: Path) -> list[str]:
    from microdl.experiments.plots import color_of, new_figure

    r = results[KEY]
    rows = r["rows"]
    fig, axes = new_figure(1, 4, width=15, height=3.4)
    panels = (("statements", "arithmetic statements per step\n(default settings)"),
              ("state_per_param", "state per parameter"),
              ("active_hyperparameters", "hyperparameters with a\nnon-zero default"),
              ("step_seconds", f"ms per step, {r['n_params']:,} parameters\n(dots: rounds)"))
    for ax, (key, title) in zip(axes[0], panels):
        values = [rows[o][key] for o in SIX]
        if key == "step_seconds":
            heights = [1e3 * float(np.median(v)) for v in values]
            for k, v in enumerate(values):
                ax.plot([k] * len(v), 1e3 * np.array(v), "k.", ms=3, alpha=0.6)
        else:
            heights = [len(v) if isinstance(v, list) else v for v in values]
        ax.bar(range(len(SIX)), heights, color=[color_of(o) for o in SIX])
        ax.set_xticks(range(len(SIX)), SIX, fontsize=8, rotation=30)
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("measures of microdl's code (microdl.optim.rules), not of the algorithms in general", fontsize=9)
    return save_figure(fig, out, "code.png", dpi=110)


def describe(doc: Any, results: dict[str, Any], settings: Any) -> None:
    r = results[KEY]
    rows = r["rows"]
    doc.paragraph(
        "Each optimizer's rule (`microdl.optim.rules`) ran one step on the NumPy backend at its defaults under a "
        "line tracer, which counted the assignments it executed. State is what the optimizer allocates at its "
        f"defaults. Step time: {_REPS} steps on {r['n_params']:,} float64 parameters with the Numba CPU backend, in "
        f"{r['rounds']} interleaved rounds (each round times every optimizer once).")
    doc.table(["optimizer", "rule", "statements per step", "statements, all options", "state buffers",
               "state per parameter", "hyperparameters (non-zero default)", "other numeric hyperparameters",
               "median step time"],
              [[o, f"`{v['rule']}`", v["statements"], v["statements_all_options"], v["state_buffers"],
                f"{v['state_per_param']:g}", ", ".join(v["active_hyperparameters"]),
                ", ".join(h for h in v["hyperparameters"] if h not in v["active_hyperparameters"]) or "—",
                format_seconds(float(np.median(v["step_seconds"])))] for o, v in rows.items()])
