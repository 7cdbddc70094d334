"""Model kernels, before and after: two source trees of microdl timed against each other, turn about.

Run as ``python -m benchmarks.ab_kernels OLD_TREE NEW_TREE`` (each a checkout of microdl, e.g. made with
``git worktree add /tmp/old 9530d49``), with the Python of an environment that has microdl's dependencies.
Every measurement runs in a fresh process whose ``PYTHONPATH`` and working directory are one tree, so the two
trees' code never meets in one process; each tree gets its own Numba cache directory, warmed once before the
rounds (the rounds time compiled code; ``cold`` times the compile). The trees take turns, round after round, the
order flipping every round, so that a noisy spell on a shared machine hits both alike. The table gives, per case,
the median over the rounds of new/old and its spread (smallest and largest round ratio); below 1.05 counts as
within noise.

Cases (``--cases``, comma-separated):

* ``lg``: :meth:`MLP.loss_and_grad` on random data, float64, relu, cross-entropy: 64-128-10 at 200 rows,
  100-256-256-2 at 200 and at 5,000 rows; best of 5 × 20 calls (the figures of issue 19's "no speed lost").
* ``fit``: ``microdl.sklearn.MLPClassifier`` as :mod:`benchmarks.sklearn_mlp` runs it (float32, alpha 1e-4,
  batches of 200): Adam seconds per epoch and L-BFGS seconds per iteration, on digits (hidden 128) and on 50,000
  × 100 ``make_classification`` (hidden 256, 256), as it comes (``backend='auto'``: NumPy for digits' small fits)
  and on digits with ``backend='numba'`` too; best of ``--fits`` fits, after a warm-up fit. (Both trees must know
  ``backend``: ``9530d49`` does not.)
* ``cold``: seconds from a fresh process with an empty Numba cache to the end of the first fit
  (``MLPClassifier(max_iter=1)`` on digits): import plus compile, what a new user waits for.
* ``step``: ``opt.step(g)`` on ``backend="cpu"``, float32, for each configuration of
  :mod:`benchmarks.optimizers` at N = 1e4, 1e5 and 1e6 (Python overhead included); best of 15 × ~2 ms of steps.
* ``launch``: the same at N = 16 with Numba's threads forced on (``config.use_threads``, no size threshold): what a
  step costs besides its arithmetic when it runs on the threads, as every step of 65,536 elements or more does on
  a quiet machine. Only a quiet machine gives figures here: on a loaded one a launch waits for time slices.

Each case gives two ratios: of wall-clock times, and of the CPU time of the calling thread
(``time.thread_time``), which a shared machine disturbs far less. The second counts all the work only when it
runs on that thread: a small batch (one row block) always does; with ``--sequential`` every pass does (the
kernels' blocks one after the other, as microdl itself runs them on a busy machine, NOTE [threading layer] in
:mod:`microdl.config`), so on a shared machine use ``--sequential`` and read the CPU ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.common import machine_info, markdown_table

#: The code each measurement runs, in a fresh process in one tree; argv[1] is the case as JSON.
WORKER = r"""
import json, sys, time, warnings
import numpy as np
case = json.loads(sys.argv[1])
out = {}
if case["sequential"]:  # every pass's row blocks one after the other on the calling thread (both trees have this)
    from microdl import config
    config.machine_is_busy = lambda: True

def loss_and_grad_times():
    from microdl.nn import MLP
    rng = np.random.default_rng(0)
    for sizes, n in [((64, 128, 10), 200), ((100, 256, 256, 2), 200), ((100, 256, 256, 2), 5000)]:
        X = rng.normal(size=(n, sizes[0])); y = rng.integers(0, sizes[-1], n)
        net = MLP(sizes, random_state=0)
        net.loss_and_grad(X, y)
        wall = cpu = np.inf
        for _ in range(5):
            t, c = time.perf_counter(), time.thread_time()
            for _ in range(20):
                net.loss_and_grad(X, y)
            wall = min(wall, (time.perf_counter() - t) / 20)
            cpu = min(cpu, (time.thread_time() - c) / 20)
        out["lg " + "-".join(map(str, sizes)) + f" @{n}"] = (wall, cpu)

def load(problem):
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    if problem == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = make_classification(n_samples=50_000, n_features=100, n_informative=50, random_state=0)
    X, _, y, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return StandardScaler().fit_transform(X).astype(np.float32), y

def fit_times():
    from microdl.sklearn import MLPClassifier
    warnings.simplefilter("ignore")
    for problem, hidden, epochs, iterations, backend in [("digits", (128,), 10, 20, "auto"),
                                                         ("digits", (128,), 10, 20, "numba"),
                                                         ("50k", (256, 256), 2, 3, "auto")]:
        X, y = load(problem)
        settings = dict(hidden_layer_sizes=hidden, alpha=1e-4, batch_size=200, learning_rate_init=1e-3, tol=0.0,
                        n_iter_no_change=10**9, random_state=0, backend=backend)
        MLPClassifier(max_iter=1, **settings).fit(X[:400], y[:400])
        for solver, n_iter in (("adam", epochs), ("lbfgs", iterations)):
            wall = cpu = np.inf
            for _ in range(case["fits"]):
                clf = MLPClassifier(solver=solver, max_iter=n_iter, **settings)
                t, c = time.perf_counter(), time.thread_time()
                clf.fit(X, y)
                wall = min(wall, (time.perf_counter() - t) / clf.n_iter_)
                cpu = min(cpu, (time.thread_time() - c) / clf.n_iter_)
            out[f"fit {problem}{'' if backend == 'auto' else ', ' + backend} {solver}"] = (wall, cpu)

def cold_time():
    t, c = time.perf_counter(), time.thread_time()
    from sklearn.datasets import load_digits
    from microdl.sklearn import MLPClassifier
    X, y = load_digits(return_X_y=True)
    warnings.simplefilter("ignore")
    MLPClassifier(max_iter=1, random_state=0).fit(X / 16, y)
    out["cold first fit"] = (time.perf_counter() - t, time.thread_time() - c)

def step_times(sizes=(10_000, 100_000, 1_000_000)):
    from microdl.optim import OPTIMIZERS
    configs = {"sgd": ("sgd", {"lr": 1e-3}), "sgd_momentum": ("sgd", {"lr": 1e-3, "momentum": 0.9}),
               "adagrad": ("adagrad", {}), "rmsprop": ("rmsprop", {}), "adadelta": ("adadelta", {}),
               "adam": ("adam", {}), "adamw": ("adamw", {})}
    rng = np.random.default_rng(0)
    for n in sizes:
        theta = rng.standard_normal(n, dtype=np.float32)
        g = theta * np.float32(1e-3)
        for label, (name, hyper) in configs.items():
            opt = OPTIMIZERS[name](theta.copy(), backend="cpu", **hyper)
            opt.step(g)
            t = time.perf_counter()
            opt.step(g)
            calls = max(1, min(200, int(2e-3 / max(time.perf_counter() - t, 1e-6))))  # about 2 ms of steps
            wall = cpu = np.inf
            for _ in range(15):
                t, c = time.perf_counter(), time.thread_time()
                for _ in range(calls):
                    opt.step(g)
                wall = min(wall, (time.perf_counter() - t) / calls)
                cpu = min(cpu, (time.thread_time() - c) / calls)
            out[f"step {label} @{n:,}"] = (wall, cpu)

def launch_times():
    from microdl import config
    config.use_threads, config.MIN_PARALLEL_ELEMENTS = (lambda: True), 0
    step_times(sizes=(16,))

{"lg": loss_and_grad_times, "fit": fit_times, "cold": cold_time, "step": step_times,
 "launch": launch_times}[case["name"]]()
print(json.dumps(out))
"""


def measure(tree: str, case: dict, cache_dir: str) -> dict[str, float]:
    """One measurement of ``case`` in a fresh process running ``tree``'s microdl."""
    env = dict(os.environ, PYTHONPATH=tree, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(case)], cwd=tree, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"case {case['name']} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the source tree measured as the baseline")
    parser.add_argument("new", help="the source tree compared with it")
    parser.add_argument("--cases", default="lg,fit,cold",
                        help="comma-separated: lg, fit, cold, step, launch (default: lg, fit, cold)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each case, the trees taking turns")
    parser.add_argument("--fits", type=int, default=2, help="fits per measurement of the fit case (best taken)")
    parser.add_argument("--sequential", action="store_true",
                        help="run every pass on the calling thread (a shared machine's choice anyway: NOTE "
                             "[threading layer]); the CPU-time ratio then counts all the work")
    args = parser.parse_args(argv)
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    for tree in trees.values():
        if not os.path.isfile(os.path.join(tree, "microdl", "__init__.py")):
            parser.error(f"{tree} is not a microdl source tree (no microdl/__init__.py)")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - {"lg", "fit", "cold", "step", "launch"})
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from lg, fit, cold, step, launch")

    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine_info().items()))
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    with tempfile.TemporaryDirectory(prefix="ab_kernels_") as tmp:
        warm = {side: os.path.join(tmp, side) for side in trees}
        for case_name in cases:
            case = {"name": case_name, "fits": args.fits, "sequential": args.sequential}
            if case_name != "cold":
                for side, tree in trees.items():  # fill each tree's cache; not timed
                    measure(tree, case, warm[side])
            for r in range(args.rounds):
                for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    cache = warm[side] if case_name != "cold" else tempfile.mkdtemp(dir=tmp)
                    for key, value in measure(trees[side], case, cache).items():
                        times[side].setdefault(key, []).append(value)
                print(f"  {case_name}: round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    for key, old in times["old"].items():
        new = times["new"][key]
        row = {"case": key, "old wall": statistics.median(o[0] for o in old),
               "new wall": statistics.median(n[0] for n in new)}
        for k, what in ((0, "wall"), (1, "cpu")):
            ratios = [n[k] / o[k] for n, o in zip(new, old)]
            row[f"new/old {what} (median)"] = statistics.median(ratios)
            row[f"{what} spread"] = f"{min(ratios):.2f}–{max(ratios):.2f}"
        rows.append(row)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"old = {trees['old']}\nnew = {trees['new']}\n{args.rounds} rounds; times in seconds")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
