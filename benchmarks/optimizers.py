"""One optimizer step on a flat float32 buffer: microdl's kernels beside their streaming bound, NumPy and torch.

Run from the repository root::

    python -m benchmarks.optimizers                      # N = 1e5, 1e6, 1e7; 1-3 minutes on 2 cores
    python -m benchmarks.optimizers --quick              # tiny sizes, a smoke test (seconds)
    python -m benchmarks.optimizers --sizes 1e7 --optimizers adam,adamw --out adam.md

For each size N and optimizer it measures, in the same run and interleaved round by round, in three passes
over all sizes (the machines are shared and noisy, so each figure is the minimum over all its samples, taken
at moments far apart, and the comparisons are ratios):

* ``numba``: ``opt.step(g)`` on ``backend="cpu"`` (Numba ``prange``, all of Numba's threads), with the
  Python overhead of ``step`` included;
* ``bound``: the optimizer's *streaming bound*, a ``prange`` kernel that reads and writes the same arrays per
  element as the optimizer but does no arithmetic (it rotates the values, with one add so that every load is
  used): the fastest any kernel with that memory traffic can be;
* ``numpy``: ``backend="numpy"``, microdl's readable reference (the rule applied to whole arrays);
* ``naive np``: the textbook update written directly in NumPy, with its temporaries;
* ``torch loop``, ``torch foreach``, ``torch fused``: ``torch.optim`` with ``foreach=False`` (its default CPU
  path), ``foreach=True`` and ``fused=True`` (where torch has it: SGD, Adagrad, Adam, AdamW), on one flat
  tensor of N parameters with ``.grad`` set and ``torch.set_num_threads`` equal to Numba's thread count.

Byte model: an element's bytes are what the update must read and write, 4 bytes each in float32. Every
optimizer reads θ, g and its state and writes θ and its state: plain SGD 2 reads + 1 write = 12 B; SGD with
momentum, Adagrad and RMSprop (defaults) 3 + 2 = 20 B; Adadelta, Adam and AdamW 4 + 3 = 28 B. Effective GB/s
is N × bytes / time. The machine's own bandwidth comes from a STREAM-style copy (8 B per element) and triad
(12 B) in Numba ``prange``, at every N. GD is not listed: it runs SGD's kernel, on a full-batch gradient.

Start-up is a fresh ``python`` that imports microdl and takes one Adam step on ``backend="cpu"``: first with an
empty Numba cache (``NUMBA_CACHE_DIR`` pointing at a new directory, so the kernel compiles), then again with
that cache warm.

The header names Numba's threading layer (``omp`` on a pip install unless ``NUMBA_THREADING_LAYER`` says
otherwise; a parallel launch costs several times more on ``workqueue``) and the load average around the run:
microdl takes the serial twin of a kernel below ``config.MIN_PARALLEL_ELEMENTS`` and on an oversubscribed machine
(NOTE [threading layer] in :mod:`microdl.config`).
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from benchmarks.common import machine_info, markdown_table, time_best
from microdl.optim import OPTIMIZERS

DTYPE = np.float32
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (1_000, 10_000)

# ---------------------------------------------------------------------------------------------------------
# The peers: streaming bound and STREAM kernels, compiled like microdl's (parallel, cached on disk).
_kernel = njit(parallel=True, cache=True, nogil=True)


@_kernel
def bound_1(theta, g):
    """2 reads, 1 write: plain SGD's traffic."""
    for i in prange(theta.size):
        theta[i] = theta[i] + g[i]


@_kernel
def bound_2(theta, g, s):
    """3 reads, 2 writes: the traffic of an optimizer with one state buffer."""
    for i in prange(theta.size):
        x = theta[i]
        theta[i] = s[i]
        s[i] = x + g[i]


@_kernel
def bound_3(theta, g, s1, s2):
    """4 reads, 3 writes: the traffic of an optimizer with two state buffers (Adam: θ, g, m, v)."""
    for i in prange(theta.size):
        x = theta[i]
        theta[i] = s1[i]
        s1[i] = s2[i]
        s2[i] = x + g[i]


BOUNDS = {0: bound_1, 1: bound_2, 2: bound_3}


@_kernel
def stream_copy(a, b):
    for i in prange(a.size):
        a[i] = b[i]


@_kernel
def stream_triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


# ---------------------------------------------------------------------------------------------------------
# Naive NumPy: the textbook update with temporaries, written independently of microdl's rules (steady state:
# the first-step special cases are left out).
def naive_sgd(p, g, state, t, lr=1e-3):
    p -= lr * g


def naive_sgd_momentum(p, g, state, t, lr=1e-3, momentum=0.9):
    (b,) = state
    b[:] = momentum * b + g
    p -= lr * b


def naive_adagrad(p, g, state, t, lr=1e-2, eps=1e-10):
    (s,) = state
    s += g * g
    p -= lr * g / (np.sqrt(s) + eps)


def naive_rmsprop(p, g, state, t, lr=1e-2, alpha=0.99, eps=1e-8):
    (v,) = state
    v[:] = alpha * v + (1 - alpha) * g * g
    p -= lr * g / (np.sqrt(v) + eps)


def naive_adadelta(p, g, state, t, lr=1.0, rho=0.9, eps=1e-6):
    v, u = state
    v[:] = rho * v + (1 - rho) * g * g
    delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    u[:] = rho * u + (1 - rho) * delta * delta
    p -= lr * delta


def naive_adam(p, g, state, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.0):
    m, v = state
    if decay:
        p *= 1 - lr * decay
    m[:] = beta1 * m + (1 - beta1) * g
    v[:] = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps)


def naive_adamw(p, g, state, t):
    naive_adam(p, g, state, t, decay=1e-2)


@dataclass(frozen=True)
class Case:
    """One optimizer configuration, as microdl, the naive NumPy update and torch.optim spell it."""

    optimizer: str  # name in microdl.optim.OPTIMIZERS
    hyper: dict[str, Any]
    n_state: int  # state buffers the configuration reads and writes
    naive: Callable
    torch_name: str
    torch_hyper: dict[str, Any] = field(default_factory=dict)
    torch_fused: bool = False

    @property
    def reads_writes(self) -> tuple[int, int]:
        return 2 + self.n_state, 1 + self.n_state


CASES: dict[str, Case] = {
    "sgd": Case("sgd", {"lr": 1e-3}, 0, naive_sgd, "SGD", {"lr": 1e-3}, True),
    "sgd_momentum": Case("sgd", {"lr": 1e-3, "momentum": 0.9}, 1, naive_sgd_momentum, "SGD",
                         {"lr": 1e-3, "momentum": 0.9}, True),
    "adagrad": Case("adagrad", {}, 1, naive_adagrad, "Adagrad", {}, True),
    "rmsprop": Case("rmsprop", {}, 1, naive_rmsprop, "RMSprop", {}),
    "adadelta": Case("adadelta", {}, 2, naive_adadelta, "Adadelta", {}),
    "adam": Case("adam", {}, 2, naive_adam, "Adam", {}, True),
    "adamw": Case("adamw", {}, 2, naive_adamw, "AdamW", {}, True),
}


# ---------------------------------------------------------------------------------------------------------
# Timing: every implementation once per round, round after round; the figure is the minimum over all samples.
class Interleaved:
    """Time several callables round-robin, so that a noisy spell on the machine hits all of them alike."""

    def __init__(self, target_s: float = 2e-3, max_samples: int = 50) -> None:
        self.fns: dict[str, Callable[[], Any]] = {}
        self.best: dict[str, float] = {}
        self.samples: dict[str, int] = {}
        self.rounds: dict[str, int] = {}
        self.target_s, self.max_samples = target_s, max_samples

    def add(self, name: str, fn: Callable[[], Any], rounds: int) -> None:
        fn()  # compile, allocate torch's state, take the first step's special case
        one = time_best(fn, repeat=1, warmup=0)
        self.fns[name] = fn
        self.best[name] = one
        self.rounds[name] = rounds
        # Samples per round: enough for ~target_s of work, so cheap calls get many chances at a quiet moment.
        self.samples[name] = int(min(self.max_samples, max(1, self.target_s // max(one, 1e-7))))

    def run(self) -> dict[str, float]:
        for r in range(max(self.rounds.values(), default=0)):
            for name, fn in self.fns.items():
                if r < self.rounds[name]:
                    # One untimed call first: another thread pool (torch's OpenMP, Numba's) may still be
                    # spinning from the previous implementation.
                    t = time_best(fn, repeat=self.samples[name], number=1, warmup=1)
                    self.best[name] = min(self.best[name], t)
        return self.best


class Arrays:
    """Fresh float32 buffers of one size, copied from one random draw (drawing 1e7 normals per buffer is slow)."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.base = rng.standard_normal(n, dtype=DTYPE)

    def new(self) -> np.ndarray:
        return self.base.copy()


def torch_steppers(case: Case, arrays: Arrays, g: np.ndarray, torch: Any) -> dict[str, Callable[[], Any]]:
    """``opt.step`` of torch.optim's loop, foreach and (where it exists) fused implementations."""
    variants = {"torch loop": {"foreach": False}, "torch foreach": {"foreach": True}}
    if case.torch_fused:
        variants["torch fused"] = {"fused": True}
    steppers = {}
    for label, flags in variants.items():
        p = torch.from_numpy(arrays.new()).requires_grad_(True)
        p.grad = torch.from_numpy(g)  # read only, so shared
        opt = getattr(torch.optim, case.torch_name)([p], **case.torch_hyper, **flags)
        steppers[label] = opt.step
    return steppers


def time_stream(arrays: Arrays, rounds: int) -> dict[str, float]:
    a, b, c = arrays.new(), arrays.new(), arrays.new()
    s = DTYPE(0.5)
    timer = Interleaved()
    timer.add("copy", lambda: stream_copy(a, b), rounds)
    timer.add("triad", lambda: stream_triad(a, b, c, s), rounds)
    return timer.run()


def time_case(case: Case, arrays: Arrays, rounds: int, ref_rounds: int, torch: Any) -> dict[str, float]:
    """Seconds per step of every implementation of ``case``, measured interleaved."""
    timer = Interleaved()
    g = arrays.new()
    opt = OPTIMIZERS[case.optimizer](arrays.new(), backend="cpu", **case.hyper)
    timer.add("numba", lambda: opt.step(g), rounds)
    bound_args = [arrays.new(), g] + [arrays.new() for _ in range(case.n_state)]
    timer.add("bound", lambda: BOUNDS[case.n_state](*bound_args), rounds)
    if torch is not None:
        for label, step in torch_steppers(case, arrays, g, torch).items():
            timer.add(label, step, rounds)
    if ref_rounds:
        ref = OPTIMIZERS[case.optimizer](arrays.new(), backend="numpy", **case.hyper)
        timer.add("numpy", lambda: ref.step(g), ref_rounds)
        p, state, t = arrays.new(), [np.zeros(arrays.base.size, DTYPE) for _ in range(case.n_state)], [0]

        def naive() -> None:
            t[0] += 1
            case.naive(p, g, state, t[0])

        timer.add("naive np", naive, ref_rounds)
    return timer.run()


def stream_row(n: int, best: dict[str, float]) -> dict[str, Any]:
    item = np.dtype(DTYPE).itemsize
    return {"N": f"{n:.0e}", "copy GB/s": 2 * item * n / best["copy"] / 1e9,
            "triad GB/s": 3 * item * n / best["triad"] / 1e9}


def case_row(name: str, case: Case, n: int, best: dict[str, float]) -> dict[str, Any]:
    reads, writes = case.reads_writes
    nbytes = (reads + writes) * np.dtype(DTYPE).itemsize
    ms = {k: v * 1e3 for k, v in best.items()}
    row = {"N": f"{n:.0e}", "optimizer": name, "B/elem": f"{nbytes} ({reads}r+{writes}w)",
           "bound ms": ms["bound"], "numba ms": ms["numba"], "numba GB/s": nbytes * n / best["numba"] / 1e9,
           "% of bound": 100 * best["bound"] / best["numba"], "numpy ms": ms["numpy"],
           "naive np ms": ms["naive np"], "torch loop ms": ms.get("torch loop"),
           "torch foreach ms": ms.get("torch foreach"), "torch fused ms": ms.get("torch fused")}
    row["× torch loop"] = best["torch loop"] / best["numba"] if "torch loop" in best else None
    row["× torch fused"] = best["torch fused"] / best["numba"] if "torch fused" in best else None
    return row


def merge_min(into: dict[str, float], new: dict[str, float]) -> None:
    for k, v in new.items():
        into[k] = min(into.get(k, v), v)


# ---------------------------------------------------------------------------------------------------------
STARTUP_SCRIPT = """
import time
t0 = time.perf_counter()
import numpy as np
import microdl.optim
t1 = time.perf_counter()
p = np.zeros(1000, np.float32)
microdl.optim.Adam(p, backend="cpu").step(np.ones(1000, np.float32))
t2 = time.perf_counter()
print({"import": t1 - t0, "step": t2 - t1})
"""


def bench_startup(repeat: int) -> list[dict[str, Any]]:
    """A fresh process importing microdl and taking one Adam step: cold Numba cache, then warm."""
    samples: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="microdl-numba-cache-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for kind in ("cold", "warm"):
                start = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], env=env, capture_output=True,
                                     text=True, check=True).stdout
                wall = time.perf_counter() - start
                inner = ast.literal_eval(out.strip().splitlines()[-1])
                samples[kind].append({"process s": wall, "import s": inner["import"], "first step s": inner["step"]})
    return [{"Numba cache": kind, **{k: min(s[k] for s in runs) for k in runs[0]}} for kind, runs in samples.items()]


# ---------------------------------------------------------------------------------------------------------
def targets(rows: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    """The issue's targets, each with its worst case over the optimizers measured."""
    out = []

    def check(label: str, need: float, pick: list[tuple[str, float]]) -> None:
        if not pick:
            return
        worst = min(pick, key=lambda x: x[1])
        out.append({"target": label, "worst case": f"{worst[0]}: {worst[1]:.3g}",
                    "met": "yes" if worst[1] >= need else "NO"})

    largest, smallest = f"{max(sizes):.0e}", f"{min(sizes):.0e}"
    at = lambda n, key: [(r["optimizer"], r[key]) for r in rows if r["N"] == n and r.get(key) is not None]
    check(f"N={largest}: numba ≥ 85% of its streaming bound", 85, at(largest, "% of bound"))
    for n in dict.fromkeys(r["N"] for r in rows):
        check(f"N={n}: numba ≥ 1× torch fused", 1, at(n, "× torch fused"))
    for n in dict.fromkeys(r["N"] for r in rows):
        check(f"N={n}: numba ≥ 5× torch loop (foreach=False)", 5, at(n, "× torch loop"))
    check(f"N={smallest}: numba ≥ 3× torch fused", 3, at(smallest, "× torch fused"))
    return out


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizers", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None,
                        help="comma-separated parameter counts (default 1e5,1e6,1e7)")
    parser.add_argument("--optimizers", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved rounds per figure, spread over up to 3 passes (default 21; NumPy "
                             "and naive NumPy get at most 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one round: a smoke test")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out even if it is installed")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--out", default=None, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)

    names = [s.strip() for s in args.optimizers.split(",") if s.strip()]
    unknown = [s for s in names if s not in CASES]
    if unknown:
        parser.error(f"unknown optimizer(s) {unknown}; choose from {', '.join(CASES)}")
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    rounds = args.repeat or (1 if args.quick else 21)
    ref_rounds = min(rounds, 3)

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(numba.get_num_threads())

    # The rounds are split over several passes through all sizes and optimizers, so that each figure's samples
    # come from moments far apart: another job that holds a core for a few seconds would otherwise spoil
    # every sample of whatever runs meanwhile (a 2-thread kernel then waits for a time slice each call).
    passes = min(3, rounds)
    rng = np.random.default_rng(0)
    stream_best: dict[int, dict[str, float]] = {}
    case_best: dict[tuple[int, str], dict[str, float]] = {}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    for done in range(passes):
        share = rounds // passes + (done < rounds % passes)
        ref_share = ref_rounds // passes + (done < ref_rounds % passes)
        for n in sizes:
            arrays = Arrays(n, rng)
            merge_min(stream_best.setdefault(n, {}), time_stream(arrays, share))
            for name in names:
                merge_min(case_best.setdefault((n, name), {}), time_case(CASES[name], arrays, share, ref_share, torch))
                print(f"  pass {done + 1}/{passes}: {name} at N={n:.0e} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr)
            del arrays
    stream = [stream_row(n, best) for n, best in stream_best.items()]
    rows = [case_row(name, CASES[name], n, best) for (n, name), best in case_best.items()]
    startup = [] if args.no_startup else bench_startup(1 if args.quick else 2)

    info = machine_info()
    command = "python -m benchmarks.optimizers" + (" " + " ".join(sys.argv[1:]) if argv is None else "")
    try:  # which layer runs the parallel kernels matters as much as the kernels (NOTE [threading layer])
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran
        layer = "no"
    lines = [
        f"## Optimizer step, float32, {info['numba_threads']} Numba threads, {layer} threading layer",
        "",
        f"`{command.strip()}` on {info['cpus']} CPUs ({info['machine']}), Python {info['python']}, "
        f"numpy {info['numpy']}, numba {info['numba']}, torch {info.get('torch', 'not installed')}"
        + (f" ({torch.get_num_threads()} threads)" if torch is not None else "")
        + f"; 1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({time.perf_counter() - start:.0f} s).",
        "",
    ]
    if load_before >= 0.5 * (info["cpus"] or 1):  # "after" includes this run's own threads
        lines += [f"**The machine was busy (load {load_before:.1f} on {info['cpus']} CPUs): a kernel on all cores "
                  "waits for time slices, and even the minima may be off. Compare the ratios, or run again when it "
                  "is idle.**", ""]
    lines += [
        "Milliseconds per step, minimum over interleaved samples. `bound`: a kernel with the optimizer's memory "
        "traffic and no arithmetic; `% of bound` = bound time / numba time. `× torch loop` and `× torch fused` = "
        "torch time / numba time. Bytes per element: θ, g and the state read, θ and the state written, 4 B "
        "each. `numba` is `opt.step(g)` with `backend=\"cpu\"`, Python overhead included. GD runs SGD's kernel.",
        "",
        markdown_table(rows),
        "",
        "Memory bandwidth (Numba `prange`, STREAM-style: copy counts 8 B per element, triad 12 B):",
        "",
        markdown_table(stream),
    ]
    if startup:
        lines += ["", "Start-up: a fresh process imports microdl and takes one Adam step on `backend=\"cpu\"` "
                      "(seconds; `process` includes the interpreter's own start):", "", markdown_table(startup)]
    goal = targets(rows, sizes)
    if goal:
        lines += ["", "Targets (issue 3), worst case over the optimizers measured:", "", markdown_table(goal)]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
    return report


if __name__ == "__main__":
    main()
