"""Adam's step on parameters whose gradient stays exactly zero (issue 20, deliverable 6).

In float32, Adam's first moment of a parameter whose gradient becomes exactly zero (a dead ReLU unit, an input
column that is zero in every row of the batch, a sparse input) decays as β₁ᵗ: from 1e-3 it passes float32's
smallest normal number, 1.2e-38, after about 800 steps and would stay subnormal for another 100 or so, and
the second moment follows after some 80,000 steps at β₂ = 0.999. Arithmetic on subnormal numbers takes a slow
path on x86 CPUs (microcode assists, tens to hundreds of cycles each), so a step over such a buffer can run
many times slower. NOTE [subnormal state] in :mod:`microdl.optim.rules` flushes them to zero instead.

This times one step over N parameters (half of them with a zero gradient from step 2 on) on a fresh optimizer
(a few dozen steps in) and on one ``--steps`` steps in, the two timed in turn, round by round, on the CPU
kernel (Numba's threads) and on the NumPy backend, and counts the subnormal entries of the state after those
steps; a ratio near 1 means no slowdown.

    python -m benchmarks.subnormal [--n 1000000] [--steps 2000] [--dtype float32] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import machine_info, markdown_table


def subnormal_count(a: np.ndarray) -> int:
    tiny = np.finfo(a.dtype).tiny
    return int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))


def time_interleaved(fresh, decayed, g: np.ndarray, steps: int = 20, rounds: int = 7) -> tuple[float, float]:
    """The best over ``rounds`` of the mean seconds per step over ``steps`` steps, of each optimizer, the two
    timed in turn round by round (so that a machine that gets busier slows both alike)."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, opt in enumerate((fresh, decayed)):
            start = time.perf_counter()
            for _ in range(steps):
                opt.step(g)
            best[k] = min(best[k], (time.perf_counter() - start) / steps)
    return best[0], best[1]


def measure(n: int, steps: int, dtype: str, backends: tuple[str, ...]) -> list[dict]:
    from microdl.optim import Adam

    rows = []
    for backend in backends:
        rng = np.random.default_rng(0)
        theta0 = rng.normal(size=n).astype(dtype)
        g_first = (1e-3 * rng.normal(size=n)).astype(dtype)  # every parameter gets a gradient once ...
        g = g_first.copy()
        g[: n // 2] = 0  # ... then half of them get exactly zero: their moments decay from here
        fresh, decayed = (Adam(theta0.copy(), lr=1e-3, backend=backend) for _ in range(2))
        for opt in (fresh, decayed):
            opt.step(g_first)
        for _ in range(steps):
            decayed.step(g)
        subnormal = {key: subnormal_count(decayed.state[key]) for key in ("m", "v")}
        t_fresh, t_decayed = time_interleaved(fresh, decayed, g)
        rows.append({"backend": backend, "N": n, "dtype": dtype, "µs/step fresh": 1e6 * t_fresh,
                     f"µs/step after {steps}": 1e6 * t_decayed, "ratio": t_decayed / t_fresh,
                     "subnormal m": subnormal["m"], "subnormal v": subnormal["v"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--quick", action="store_true", help="N = 10,000 and 1,000 steps (a smoke test)")
    args = parser.parse_args(argv)
    n, steps = (10_000, 1000) if args.quick else (args.n, args.steps)
    rows = measure(n, steps, args.dtype, ("cpu", "numpy"))
    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"## Adam step with half the gradients exactly zero, before and after {steps} steps\n")
    print(markdown_table(rows))
    print(f"\nBest of 7 interleaved rounds of 20 steps each. {', '.join(f'{k} {v}' for k, v in info.items())}; "
          f"1-minute load average {load:.2f}.")


if __name__ == "__main__":
    main()
