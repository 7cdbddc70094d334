"""Training on every input layout at the speed of an aligned, C-ordered copy (issue 20, deliverable 2).

The same fit (Adam, float32, shuffled mini-batches, the same seed) runs on the same numbers held in different
layouts: a misaligned view at a byte offset of a buffer (what Dask and pickle protocol 5 hand a worker), a
strided view, Fortran order, a read-only array, an ``np.load(mmap_mode="r")`` file, an ``np.memmap``, float64
and byte-swapped data. Each row is timed interleaved with the aligned C-ordered copy (the peer), round by
round, so that a machine that gets busier in the middle slows both alike; the table gives the best time of
each and their ratio. The weights after each fit are compared with the peer's too: every layout must give the
same bits (NOTE [aligned input] in :mod:`microdl._validation`).

Three problems: digits (1,797 × 64, hidden (64,), batch 200) and 50,000 × 100 with hidden (64,), where the
batch gather is a large share of a step, and with hidden (256, 256), as in issue 20; batches of 200.
``--quick`` runs digits only, with fewer epochs and rounds (a smoke test, not a measurement).

    python -m benchmarks.layouts [--quick] [--rounds 5] [--out layouts.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import machine_info, print_report


def misaligned(X: np.ndarray) -> np.ndarray:
    """``X``'s values in a view one byte into a buffer: C-contiguous, ``flags.aligned`` False."""
    buf = bytearray(X.nbytes + 1)
    out = np.frombuffer(buf, dtype=X.dtype, count=X.size, offset=1).reshape(X.shape)
    out[...] = X
    return out


def strided(X: np.ndarray) -> np.ndarray:
    """``X``'s values as every other column of an array twice as wide."""
    wide = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
    wide[:, ::2] = X
    return wide[:, ::2]


def read_only(X: np.ndarray) -> np.ndarray:
    out = X.copy()
    out.flags.writeable = False
    return out


def layouts(X: np.ndarray, folder: str) -> dict[str, Callable[[], Any]]:
    """Each layout's name and a function making it from ``X`` (aligned, C-ordered; the memory maps are files
    in ``folder``)."""

    def npy_mmap() -> np.ndarray:
        path = os.path.join(folder, "X.npy")
        np.save(path, X)
        return np.load(path, mmap_mode="r")

    def raw_memmap() -> np.memmap:
        path = os.path.join(folder, "X.bin")
        m = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
        m[...] = X
        m.flush()
        return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)

    return {
        "misaligned (byte offset)": lambda: misaligned(X),
        "strided (every other column)": lambda: strided(X),
        "Fortran-ordered": lambda: np.asfortranarray(X),
        "read-only": lambda: read_only(X),
        "np.load(mmap_mode='r')": npy_mmap,
        "np.memmap": raw_memmap,
        "float64 (converted once)": lambda: X.astype(np.float64),
        "byte-swapped (>f4)": lambda: X.astype(X.dtype.newbyteorder(">")),
    }


def problems(quick: bool) -> dict[str, dict[str, Any]]:
    from sklearn.datasets import load_digits, make_classification

    X, y = load_digits(return_X_y=True)
    out = {"digits, (64,), batch 200": {"X": X / 16, "y": y, "hidden": (64,), "epochs": 5 if quick else 20}}
    if not quick:
        X, y = make_classification(50_000, 100, n_informative=40, n_classes=10, random_state=0)
        # a small network, where gathering the batch is a large share of the step, and the network
        out["50000×100, (64,), batch 200"] = {"X": X, "y": y, "hidden": (64,), "epochs": 3}
        out["50000×100, (256, 256), batch 200"] = {"X": X, "y": y, "hidden": (256, 256), "epochs": 2}
    for p in out.values():
        p["X"] = np.ascontiguousarray(p["X"], dtype=np.float32)
    return out


def fit_once(X: Any, y: np.ndarray, hidden: tuple[int, ...], epochs: int) -> tuple[float, np.ndarray]:
    """Seconds of one fit (the boundary copy included) and the weights it ends with."""
    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit

    net = MLP((X.shape[1], *hidden, 10), dtype="float32", random_state=0)
    opt = Adam(net.params, lr=1e-3)
    start = time.perf_counter()
    fit(net, opt, X, y, epochs=epochs, batch_size=200, random_state=0)
    return time.perf_counter() - start, net.params.copy()


def measure(rounds: int, quick: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for pname, p in problems(quick).items():
            X, y, hidden, epochs = p["X"], p["y"], p["hidden"], p["epochs"]
            _, reference = fit_once(X, y, hidden, 1)  # compile the kernels outside the timings
            for name, make in layouts(X, folder).items():
                A = make()
                fit_once(A, y, hidden, 1)  # and any a layout might compile for itself
                best_peer = best = float("inf")
                same = True
                for _ in range(rounds):  # interleaved: the peer and the layout see the same machine
                    t_peer, w_peer = fit_once(X, y, hidden, epochs)
                    t, w = fit_once(A, y, hidden, epochs)
                    best_peer, best = min(best_peer, t_peer), min(best, t)
                    same = same and np.array_equal(w, w_peer)
                rows.append({"problem": pname, "layout": name, "aligned ms/epoch": 1e3 * best_peer / epochs,
                             "layout ms/epoch": 1e3 * best / epochs, "ratio": best / best_peer,
                             "same weights": "yes" if same else "NO"})
                del A
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits only, few epochs and rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per layout (default 5, quick 2)")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    rows = measure(rounds, args.quick)
    info = machine_info()
    print_report("Input layouts against an aligned C-ordered copy (Adam, float32, shuffled batches of 200)", rows,
                 f"Best of {rounds} interleaved rounds; one fit includes the boundary copy.",
                 info, args.out)


if __name__ == "__main__":
    main()
