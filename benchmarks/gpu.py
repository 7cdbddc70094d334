"""microdl on a CUDA GPU: epoch times against the CPU path and torch, the matrix multiply against cuBLAS, and
each optimizer update against the device's copy bandwidth.

Run from the repository root, on a machine with an NVIDIA GPU (it exits with a message anywhere else)::

    python -m benchmarks.gpu              # a few minutes
    python -m benchmarks.gpu --quick      # fewer epochs and repeats, no CPU run on the large problem
    python -m benchmarks.gpu --json out.json --out report.md
    python -m benchmarks.gpu --smoke      # tiny sizes: checks the script end to end (CI runs it under
                                          # NUMBA_ENABLE_CUDASIM=1); its figures mean nothing

What is measured, all in float32, in one run:

* **Copy bandwidth**: a device-to-device ``cudaMemcpy`` of N floats (8 bytes moved per element: one read, one
  write), and the same copy as a Numba grid-stride kernel with the optimizers' launch shape.
* **Optimizer updates** at N = 1e8 (and 2.5e8 without ``--quick``): ``opt.step(g)`` with ``backend="cuda"``,
  Python included. Byte model as in benchmarks/optimizers.py: each update reads θ, g and its state and writes
  θ and its state (SGD with momentum, Adagrad, RMSprop: 20 B per element; Adadelta, Adam, AdamW: 28 B).
  Target: ≥ 80% of the copy bandwidth.
* **Matrix multiply**: ``microdl.cuda.kernels.matmul`` (and the transposed variants backprop uses) against
  cuBLAS through CuPy, or torch when CuPy is missing, with TF32 off (plain float32 on both sides); TFLOP/s =
  2·M·N·K / time.
* **Epoch time**, with Adam (lr 1e-3), relu and cross-entropy:
  - ``make_classification`` 50,000 × 100 (50 informative features, 10 classes), hidden (256, 256), batch 200
    (scikit-learn's default batch size);
  - a larger synthetic problem, 1,000,000 × 256 standard-normal features labelled by a random linear teacher
    over 10 classes, hidden (1024, 1024), batch 1024; target: within 3× of torch on CUDA.
  microdl's figure is the fastest epoch after the first (the first includes the upload of the data and the
  compilation of the kernels, and is shown apart); torch runs the same network with the same batches per
  epoch (a device-side ``randperm``, fused Adam where available) and synchronises once per epoch like
  microdl. microdl's CPU path runs the small problem, and the large one only without ``--quick`` (one epoch).

Times are wall-clock with a device synchronisation around each measured block; each figure is the minimum
over its repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from benchmarks.common import machine_info, markdown_table

DTYPE = np.float32
OPTIMIZER_CASES = {  # name: (hyperparameters that switch every state buffer on, bytes per element)
    "sgd": ({"lr": 1e-3, "momentum": 0.9}, 20),
    "adagrad": ({"lr": 1e-2}, 20),
    "rmsprop": ({"lr": 1e-3}, 20),
    "adadelta": ({"lr": 1.0}, 28),
    "adam": ({"lr": 1e-3}, 28),
    "adamw": ({"lr": 1e-3}, 28),
}


cuda: Any = None  # numba.cuda, once require_gpu() has found a GPU


def require_gpu(allow_simulator: bool = False) -> Any:
    """numba.cuda if a real GPU (or, with ``allow_simulator``, the simulator) is usable, else exit with a
    message saying what is missing."""
    global cuda
    from microdl._cuda_support import CudaUnavailableError, require_cuda, simulator_enabled

    if simulator_enabled() and not allow_simulator:
        sys.exit("benchmarks.gpu: NUMBA_ENABLE_CUDASIM is set; the simulator is not a GPU. Unset it (or pass "
                 "--smoke to check the script itself).")
    try:
        cuda = require_cuda()
    except CudaUnavailableError as exc:
        sys.exit(f"benchmarks.gpu needs an NVIDIA GPU: {exc}")
    return cuda


def _copy(src, dst):
    """dst[:] = src in a grid-stride loop: an update's memory traffic without its arithmetic."""
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i]


def gpu_time(cuda: Any, fn: Callable[[], Any], *, repeat: int, number: int = 1, warmup: int = 1) -> float:
    """Seconds per call of ``fn`` (GPU work included): the minimum over ``repeat`` rounds of ``number`` calls."""
    for _ in range(warmup):
        fn()
    cuda.synchronize()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def torch_cuda() -> Any:
    """torch, if it is installed with CUDA support and sees a device (else None)."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def device_info(cuda: Any) -> dict[str, Any]:
    from microdl._cuda_support import simulator_enabled

    if simulator_enabled():
        return {"gpu": "Numba CUDA simulator (figures mean nothing)"}
    dev = cuda.get_current_device()
    info = {"gpu": dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name),
            "compute_capability": ".".join(map(str, dev.compute_capability)),
            "multiprocessors": dev.MULTIPROCESSOR_COUNT}
    try:
        free, total = cuda.current_context().get_memory_info()
        info["memory_GiB"] = round(total / 2**30, 1)
    except Exception:
        pass
    import numba_cuda

    info["numba-cuda"] = getattr(numba_cuda, "__version__", "?")
    return info


# -- bandwidth -----------------------------------------------------------------------------------------------
def bandwidth(cuda: Any, sizes: list[int], repeat: int) -> tuple[list[dict], dict[int, float]]:
    from microdl import config
    from microdl.optim import make_optimizer

    copy_kernel = cuda.jit(_copy)
    rows, copy_gbs = [], {}
    for n in sizes:
        src = cuda.to_device(np.random.default_rng(0).standard_normal(n, dtype=DTYPE))
        dst = cuda.device_array(n, DTYPE)
        t = gpu_time(cuda, partial(dst.copy_to_device, src), repeat=repeat, number=5)
        copy_gbs[n] = 8 * n / t / 1e9
        rows.append({"N": f"{n:.1e}", "update": "cudaMemcpy D2D (the reference)", "B/elem": 8, "ms": 1e3 * t,
                     "GB/s": copy_gbs[n], "% of copy": 100.0})
        blocks, threads = config.launch_1d(n)
        t = gpu_time(cuda, partial(copy_kernel[blocks, threads], src, dst), repeat=repeat, number=5)
        rows.append({"N": f"{n:.1e}", "update": "copy kernel (optimizers' launch shape)", "B/elem": 8,
                     "ms": 1e3 * t, "GB/s": 8 * n / t / 1e9, "% of copy": 100 * 8 * n / t / 1e9 / copy_gbs[n]})
        for name, (hyper, nbytes) in OPTIMIZER_CASES.items():
            params = cuda.to_device(np.zeros(n, dtype=DTYPE))
            opt = make_optimizer(name, params, backend="cuda", **hyper)
            t = gpu_time(cuda, partial(opt.step, src), repeat=repeat, number=5)  # any finite gradient
            gbs = nbytes * n / t / 1e9
            rows.append({"N": f"{n:.1e}", "update": name, "B/elem": nbytes, "ms": 1e3 * t, "GB/s": gbs,
                         "% of copy": 100 * gbs / copy_gbs[n]})
    return rows, copy_gbs


# -- matrix multiply ---------------------------------------------------------------------------------------
def blas_matmul() -> tuple[str, Callable[[Any, Any, bool, bool], Callable[[], Any]]] | None:
    """cuBLAS through CuPy (preferred) or torch, reading microdl's device arrays in place; TF32 off."""
    try:
        import cupy

        def prepare(A, B, ta, tb):
            a, b = cupy.asarray(A), cupy.asarray(B)
            a, b = (a.T if ta else a), (b.T if tb else b)
            return lambda: cupy.matmul(a, b)

        return f"cuBLAS (CuPy {cupy.__version__})", prepare
    except ImportError:
        pass
    torch = torch_cuda()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False

        def prepare(A, B, ta, tb):
            a, b = torch.as_tensor(A, device="cuda"), torch.as_tensor(B, device="cuda")
            a, b = (a.T if ta else a), (b.T if tb else b)
            return lambda: torch.matmul(a, b)

        return f"cuBLAS (torch {torch.__version__})", prepare
    return None


def matmul_rows(cuda: Any, shapes: list[tuple[int, int, int]], repeat: int, use_blas: bool = True) -> list[dict]:
    from microdl.cuda import kernels

    blas = blas_matmul() if use_blas else None
    variants = {"A·B": (kernels.matmul, False, False), "Aᵀ·B": (kernels.matmul_tn, True, False),
                "A·Bᵀ": (kernels.matmul_nt, False, True)}
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in shapes:
        for label, (launch, ta, tb) in variants.items():
            A = cuda.to_device(rng.standard_normal((k, m) if ta else (m, k), dtype=DTYPE))
            B = cuda.to_device(rng.standard_normal((n, k) if tb else (k, n), dtype=DTYPE))
            C = cuda.device_array((m, n), DTYPE)
            flops = 2.0 * m * n * k
            t = gpu_time(cuda, partial(launch, A, B, C), repeat=repeat, number=3)
            row = {"M×K×N": f"{m}×{k}×{n}", "op": label, "microdl TFLOP/s": flops / t / 1e12}
            if blas is not None:
                name, prepare = blas
                fn = prepare(A, B, ta, tb)
                t_blas = gpu_time(cuda, fn, repeat=repeat, number=3)
                ref = fn()
                ref = ref.get() if hasattr(ref, "get") else ref.cpu().numpy()  # CuPy or torch
                err = np.max(np.abs(C.copy_to_host() - ref)) / np.max(np.abs(ref))
                row.update({"cuBLAS TFLOP/s": flops / t_blas / 1e12, "microdl / cuBLAS": t_blas / t,
                            "max rel. diff": float(err), "via": name})
            rows.append(row)
    return rows


# -- epoch time ----------------------------------------------------------------------------------------------
def small_problem() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=50_000, n_features=100, n_informative=50, n_classes=10, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(DTYPE), y


def large_problem(n: int, d: int = 256, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=DTYPE)
    teacher = rng.standard_normal((d, classes), dtype=DTYPE)
    return X, np.argmax(X @ teacher, axis=1)


def microdl_epochs(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], batch: int, epochs: int,
                   device: str) -> list[float]:
    """Seconds per epoch of microdl's fit (cumulative wall times differenced)."""
    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit

    model = MLP((X.shape[1], *hidden, int(y.max()) + 1), dtype="float32", random_state=0, device=device)
    opt = Adam(model.params, backend="cuda" if device == "cuda" else "cpu", lr=1e-3)
    history = fit(model, opt, X, y, epochs=epochs, batch_size=batch, random_state=0)
    return [float(t) for t in np.diff([0.0, *history.wall_time])]


def torch_epochs(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], batch: int, epochs: int) -> list[float]:
    import torch
    import torch.nn.functional as F

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device("cuda")
    Xt, yt = torch.as_tensor(X, device=dev), torch.as_tensor(y, device=dev, dtype=torch.long)
    sizes = (X.shape[1], *hidden, int(y.max()) + 1)
    layers: list[Any] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).to(dev)
    try:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, times = X.shape[0], []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        total = torch.zeros((), device=dev)
        for lo in range(0, n, batch):
            idx = perm[lo : lo + batch]
            loss = F.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        float(total)  # the epoch's one synchronisation, as in microdl
        times.append(time.perf_counter() - start)
    return times


def epoch_rows(problems: list[tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]], tuple[int, ...], int, bool]],
               epochs: int, use_torch: bool) -> list[dict]:
    """One row per problem (label, make data, hidden sizes, batch, run the CPU too)."""
    have_torch = use_torch and torch_cuda() is not None
    rows = []
    for label, make, hidden, batch, run_cpu in problems:
        X, y = make()
        row: dict[str, Any] = {"problem": label}
        gpu = microdl_epochs(X, y, hidden, batch, epochs, "cuda")
        row["microdl cuda s/epoch"] = min(gpu[1:])
        row["first epoch (upload, compile)"] = gpu[0]
        if run_cpu:
            cpu = microdl_epochs(X, y, hidden, batch, 2 if X.shape[0] <= 100_000 else 1, "cpu")
            row["microdl cpu s/epoch"] = cpu[-1]
            row["cpu / cuda"] = cpu[-1] / row["microdl cuda s/epoch"]
        else:
            row["microdl cpu s/epoch"] = "skipped (--quick)"
        if have_torch:
            t = torch_epochs(X, y, hidden, batch, epochs)
            row["torch cuda s/epoch"] = min(t[1:])
            row["microdl / torch"] = row["microdl cuda s/epoch"] / row["torch cuda s/epoch"]
        else:
            row["torch cuda s/epoch"] = "no torch with CUDA"
        rows.append(row)
        print(markdown_table([row]), flush=True)
        del X, y
    return rows


def shrink_launches_for_the_simulator() -> None:
    """Small launch shapes, since the simulator runs every CUDA thread as a Python thread, and a short GIL
    switch interval, which makes its busy-waiting scheduler several times faster."""
    sys.setswitchinterval(2e-4)
    from microdl import config

    for name, value in {"TILE": 4, "REG": 2, "THREADS_PER_BLOCK": 32, "MAX_BLOCKS": 4, "REDUCE_COLS": 4,
                        "REDUCE_ROWS": 4}.items():
        setattr(config, name, value)


# -- main --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs, fewer repeats, N = 1e8 only, no CPU run on the large problem")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, to check the script end to end (also under NUMBA_ENABLE_CUDASIM=1); "
                             "the figures mean nothing")
    parser.add_argument("--large-n", type=int, default=1_000_000, help="rows of the large problem")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: bandwidth,matmul,epochs")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out of the epoch comparison")
    parser.add_argument("--out", default=None, help="also write the Markdown report to this file")
    parser.add_argument("--json", default=None, help="also write the raw rows as JSON to this file")
    args = parser.parse_args(argv)
    cuda = require_gpu(allow_simulator=args.smoke)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    repeat = 1 if args.smoke else 3 if args.quick else 7
    from microdl._cuda_support import simulator_enabled

    if args.smoke and simulator_enabled():
        shrink_launches_for_the_simulator()

    info = {**machine_info(), **device_info(cuda)}
    report = ["# microdl on the GPU", "", markdown_table([info]), ""]
    print("\n".join(report), flush=True)
    results: dict[str, Any] = {"info": info, "quick": args.quick}

    def section(title: str, rows: list[dict], note: str = "") -> None:
        text = [f"## {title}", "", markdown_table(rows), ""] + ([note, ""] if note else [])
        print("\n".join(text), flush=True)
        report.extend(text)

    if "bandwidth" not in skip:
        sizes = [1000] if args.smoke else [100_000_000] if args.quick else [100_000_000, 250_000_000]
        rows, _ = bandwidth(cuda, sizes, repeat)
        results["bandwidth"] = rows
        section("Optimizer updates against the copy bandwidth (float32)", rows,
                "Target: every update at >= 80% of the cudaMemcpy bandwidth.")
    if "matmul" not in skip:
        shapes = [(9, 7, 5)] if args.smoke else [(4096, 4096, 4096), (1024, 1024, 1024), (1024, 256, 1024)]
        rows = matmul_rows(cuda, shapes, repeat, use_blas=not simulator_enabled())
        results["matmul"] = rows
        section("Matrix multiply (float32, TF32 off)", rows)
    if "epochs" not in skip:
        if args.smoke:
            problems = [("120 × 6, hidden (5, 4), batch 50", lambda: large_problem(120, d=6, classes=3), (5, 4),
                         50, True)]
        else:
            problems = [("50,000 × 100, hidden (256, 256), batch 200", small_problem, (256, 256), 200, True),
                        (f"{args.large_n:,} × 256, hidden (1024, 1024), batch 1024",
                         lambda: large_problem(args.large_n), (1024, 1024), 1024, not args.quick)]
        rows = epoch_rows(problems, 2 if args.smoke or args.quick else 3,
                          use_torch=not args.no_torch and not simulator_enabled())
        results["epochs"] = rows
        section("Epoch time (float32, Adam)", rows,
                "Target: the large problem within 3x of torch on CUDA (microdl / torch <= 3).")

    text = "\n".join(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return text


if __name__ == "__main__":
    main()
