"""Training under load, and forking after a fit: microdl's threading choices against one thread, against GNU
OpenMP (Numba's default layer on a pip install) and against scikit-learn, all under the same load.

NOTE [threading layer] in microdl/config.py explains the choice this measures. Each configuration runs in a
fresh process (Numba's threading layer cannot change once started), first on a quiet machine, then with
``--busy`` processes spinning on the cores (a shared machine, or a joblib/Dask worker next to others), started
``--settle`` seconds before the runs (microdl sees the runnable tasks at once; the 1-minute load average that
it read before took a minute to see them):

* ``microdl``: the defaults (Numba's layer, threads only where the work repays a launch and the machine is not
  oversubscribed);
* ``microdl always threads``: the same, but launching the threads whatever the load
  (``config.machine_is_busy`` always false): what the defaults avoid;
* ``microdl 1 thread``: ``NUMBA_NUM_THREADS=1``;
* ``scikit-learn``: ``MLPClassifier`` with the same network, solver, batch size and epochs.

Four problems: the issue's small one (10 epochs of SGD on digits, hidden 64, batch 32: one row block, serial
kernels), full-batch GD on digits (50 epochs: two row blocks per pass, the case issue 20 found 13-31 times slower
on threads under load), and a larger one where the row blocks run in parallel (20,000 × 100, hidden (256, 256),
batch 256, 2 epochs; and full-batch GD, 5 epochs). Times are the best of ``--repeat`` rounds, each round running
every configuration once in turn; compare the ratios in one row. The fork check fits a model on the parallel path,
then maps over ``joblib.Parallel(n_jobs=2, backend="multiprocessing")`` with the children predicting, on each
threading layer; "hung" means it did not finish within its timeout.

    python -m benchmarks.load [--busy 1 2] [--repeat 3] [--no-quiet]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

from benchmarks.common import machine_info, markdown_table
from microdl.config import other_runnable

PROBLEMS = {
    "digits, (64,), batch 32, 10 epochs": "small",
    "digits, (64,), full batch (GD), 50 epochs": "small_full",
    "20000×100, (256, 256), batch 256, 2 epochs": "large",
    "20000×100, (256, 256), full batch (GD), 5 epochs": "large_full",
}

TRAIN = """
import time, numpy as np
from sklearn.datasets import load_digits, make_classification
if "{problem}".startswith("small"):
    X, y = load_digits(return_X_y=True); X = X / 16; hidden, batch, epochs = (64,), 32, 10
else:
    X, y = make_classification(20000, 100, n_informative=40, n_classes=5, random_state=0)
    hidden, batch, epochs = (256, 256), 256, 2
if "{problem}".endswith("full"):  # full-batch gradient descent: one batch of every row per epoch
    batch, epochs = len(X), 50 if "{problem}".startswith("small") else 5
import os
if os.environ.get("MICRODL_BENCH_ALWAYS_THREADS"):
    from microdl import config
    config.machine_is_busy = lambda: False
def run():
    if "{who}" == "sklearn":
        from sklearn.neural_network import MLPClassifier
        MLPClassifier(hidden, solver="sgd", learning_rate_init=0.01, batch_size=batch, max_iter=epochs, tol=0,
                      n_iter_no_change=10**9, random_state=0).fit(X, y)
    else:
        from microdl.nn import MLP
        from microdl.optim import GD, SGD
        from microdl.train import fit
        net = MLP((X.shape[1], *hidden, int(y.max()) + 1), random_state=0)
        opt = (GD if batch == len(X) else SGD)(net.params, lr=0.01)
        fit(net, opt, X, y, epochs=epochs, batch_size=batch, random_state=0)
import warnings; warnings.simplefilter("ignore")
run()  # compile and warm up
best = float("inf")
for _ in range({repeat}):
    t = time.perf_counter(); run(); best = min(best, time.perf_counter() - t)
print(best)
"""

FORK = """
import numpy as np
from microdl import config
config.MIN_BLOCK_ROWS, config.MIN_BLOCK_WORK = 1, 1  # the parallel path, whatever the size and load
config.machine_is_busy = lambda: False
from microdl.nn import MLP
from microdl.optim import Adam
from microdl.train import fit
from joblib import Parallel, delayed
rng = np.random.default_rng(0)
X, y = rng.normal(size=(512, 20)), rng.integers(0, 3, 512)
net = MLP((20, 64, 3), random_state=0)
fit(net, Adam(net.params), X, y, epochs=2, batch_size=128)
def child(k):
    return int(net.predict(X)[k])
print(Parallel(n_jobs=2, backend="multiprocessing")(delayed(child)(k) for k in range(4)))
"""

CONFIGS = {
    "microdl": ("microdl", {}),
    "microdl always threads": ("microdl", {"MICRODL_BENCH_ALWAYS_THREADS": "1"}),
    "microdl 1 thread": ("microdl", {"NUMBA_NUM_THREADS": "1"}),
    "scikit-learn": ("sklearn", {}),
}


def _spin() -> None:
    while True:
        pass


def _python(code: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)


def _time(who: str, problem: str, env: dict[str, str], repeat: int) -> float | None:
    try:
        proc = _python(TRAIN.format(who=who, problem=problem, repeat=repeat), env, timeout=900)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(proc.stdout.split()[-1])


def _interleaved(problem: str, repeat: int) -> dict[str, float | None]:
    """The best time of each configuration over ``repeat`` rounds, each round running every configuration once
    in turn (a fresh process each, its fit warmed up first), so that a load that comes and goes (other users
    of a shared machine) falls on all of them alike."""
    best: dict[str, float | None] = dict.fromkeys(CONFIGS, float("inf"))
    for _ in range(repeat):
        for name, (who, env) in CONFIGS.items():
            t = _time(who, problem, env, 1)
            best[name] = None if t is None or best[name] is None else min(best[name], t)
    return best


def _fork(env: dict[str, str]) -> str:
    try:
        proc = _python(FORK, env, timeout=60)
    except subprocess.TimeoutExpired:
        return "hung (60 s)"
    if "fork() called" in proc.stderr:
        return "child aborted (GNU OpenMP after fork)"
    return "ok" if proc.returncode == 0 and proc.stdout.strip().startswith("[") else f"failed: {proc.stderr[-200:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, nargs="+", default=[1, 2],
                        help="busy processes for each loaded run (default 1, then 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration, best kept (default 3)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between starting the busy processes and the runs (default 5)")
    parser.add_argument("--no-quiet", action="store_true", help="skip the runs without busy processes")
    args = parser.parse_args()
    print(machine_info())
    rows = []
    for load in (() if args.no_quiet else (0,)) + tuple(args.busy):
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(load)]
        for p in spinners:
            p.start()
        if load:
            time.sleep(args.settle)
        try:
            for label, problem in PROBLEMS.items():
                times = _interleaved(problem, args.repeat)
                single = times["microdl 1 thread"]
                row = {"busy processes": load, "other tasks runnable": other_runnable(), "problem": label}
                for name, t in times.items():
                    row[f"{name} s"] = t
                for name, peer, over in (("microdl ÷ 1 thread", "microdl", single),
                                         ("always threads ÷ 1 thread", "microdl always threads", single),
                                         ("microdl ÷ scikit-learn", "microdl", times["scikit-learn"])):
                    row[name] = None if None in (times[peer], over) else times[peer] / over
                rows.append(row)
                print(markdown_table([row]), flush=True)
        finally:
            for p in spinners:
                p.terminate()
    print("\n## training under load (seconds, best of runs)\n")
    print(markdown_table(rows))
    print("\n## fork after a fit (joblib multiprocessing, children predicting)\n")
    print(markdown_table([{"Numba threading layer": layer, "result": _fork({"NUMBA_THREADING_LAYER": layer})}
                          for layer in ("omp", "workqueue")]))


if __name__ == "__main__":
    main()
