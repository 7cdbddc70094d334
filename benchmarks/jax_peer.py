"""microdl against JAX + optax's compiled epoch, with the GEMM floor beside (issue 20, deliverable 7).

The same network (ReLU hidden layers, softmax cross-entropy, float32), the same initial weights (microdl's,
copied into JAX), the same batches (each epoch's order drawn as :func:`microdl.train.fit` draws it from the same
seed) and the same Adam (torch's and optax's convention: ε added to √v̂). JAX runs the whole epoch as one
``jax.jit`` function, ``lax.scan`` over the full batches and one more step for a last, smaller batch; its
compile time is reported apart and never counted in the epoch. microdl runs :func:`microdl.train.fit` (its
time per epoch includes the per-fit checks, which are small beside an epoch), as it comes, and again with every
step taken from Python (``config.COMPILED_RUNS = False``, as before the compiled runs of steps: NOTE [compiled runs
of steps] in :mod:`microdl._runs`), whose last loss must be the same to the bit.

The GEMM floor is the time NumPy's matrix products of the same shapes take for one epoch (forward X·W per
layer, backward Aᵀ·δ per layer and δ·Wᵀ per layer but the first), on preallocated outputs: what any
implementation that calls a BLAS per product must spend. ``floor ÷ microdl`` is the share of microdl's epoch
those products would take; the rest is elementwise work, the optimizer step and per-batch overhead.

The contenders take turns, round by round (the machines these run on are shared); times are the best of
``--rounds``. Needs the ``jax`` extra (``pip install -e '.[jax]'``).

    python -m benchmarks.jax_peer [--quick] [--rounds 5] [--out jax.md]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import machine_info, print_report

try:
    import jax
    import jax.numpy as jnp
    import jaxlib
    import optax
except ImportError:  # the one guarded import: the benchmark needs the optional extra
    jax = None


def problems(quick: bool) -> list[dict[str, Any]]:
    """(name, X, y, hidden, batch sizes, epochs per fit) of each measured case."""
    from sklearn.datasets import load_digits, make_classification

    X, y = load_digits(return_X_y=True)
    digits = np.ascontiguousarray(X / 16, dtype=np.float32)
    cases = [{"problem": "digits", "X": digits, "y": y, "hidden": (64,), "batch": b,
              "epochs": {1: 1, 32: 5, 200: 20}[b] if not quick else 1} for b in (1, 32, 200)]
    if not quick:
        X, y = make_classification(50_000, 100, n_informative=40, n_classes=10, random_state=0)
        cases.append({"problem": "50000×100", "X": np.ascontiguousarray(X, dtype=np.float32), "y": y,
                      "hidden": (256, 256), "batch": 200, "epochs": 2})
    return cases


def orders(n: int, batch: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Each epoch's row order as :func:`microdl.train.fit` draws it for an int ``random_state`` (NOTE [random
    streams]): a fresh ``rng.permutation(n)`` per epoch from ``default_rng(seed)``, none for one batch."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) if batch < n else np.arange(n) for _ in range(epochs)]


def initial_layers(net) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) per layer, copied out of microdl's flat buffer (W is fan_in × fan_out, as the kernels read it)."""
    return [(net.params[w: w + fi * fo].reshape(fi, fo).copy(), net.params[b: b + fo].copy())
            for fi, fo, w, b in net._layout]


def numpy_forward(layers: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray) -> np.ndarray:
    A = X
    for k, (W, b) in enumerate(layers):
        Z = A @ W + b
        A = np.maximum(Z, 0) if k < len(layers) - 1 else Z
    E = np.exp(A - A.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


# -- microdl -----------------------------------------------------------------------------------------------
def microdl_fit(case: dict[str, Any], lr: float, runs: bool = True) -> tuple[float, float]:
    """Seconds per epoch of microdl's fit and its last epoch's training loss; ``runs=False`` turns off the compiled
    runs of steps (NOTE [compiled runs of steps] in :mod:`microdl._runs`): every step from Python, as before."""
    from microdl import config
    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit

    X, y = case["X"], case["y"]
    net = MLP((X.shape[1], *case["hidden"], 10), dtype="float32", random_state=0)
    before, config.COMPILED_RUNS = config.COMPILED_RUNS, runs
    try:
        start = time.perf_counter()
        history = fit(net, Adam(net.params, lr=lr), X, y, epochs=case["epochs"], batch_size=case["batch"],
                      random_state=0)
        seconds = time.perf_counter() - start
    finally:
        config.COMPILED_RUNS = before
    return seconds / case["epochs"], history.train_loss[-1]


# -- JAX + optax ---------------------------------------------------------------------------------------------
def jax_epoch_function(n: int, batch: int, lr: float):
    """One jitted epoch: ``(params, opt_state, X, Y, order) -> (params, opt_state, mean loss)``."""
    tx = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    full, rest = divmod(n, batch)

    def loss_fn(params, Xb, Yb):
        A = Xb
        for W, b in params[:-1]:
            A = jax.nn.relu(A @ W + b)
        W, b = params[-1]
        logits = A @ W + b
        return -jnp.mean(jnp.sum(Yb * jax.nn.log_softmax(logits), axis=1))

    def step(carry, idx):
        params, opt_state, X, Y = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, X[idx], Y[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, X, Y), loss

    def epoch(params, opt_state, X, Y, order):
        carry = (params, opt_state, X, Y)
        carry, losses = jax.lax.scan(step, carry, order[: full * batch].reshape(full, batch))
        total = jnp.sum(losses) * batch
        if rest:
            carry, last = step(carry, order[full * batch:])
            total = total + last * rest
        return carry[0], carry[1], total / n

    return jax.jit(epoch), tx


def jax_setup(case: dict[str, Any], layers, lr: float) -> dict[str, Any]:
    """The jitted epoch compiled for this case (its compile time measured), and the device arrays it takes."""
    X, y = case["X"], case["y"]
    n = len(X)
    epoch, tx = jax_epoch_function(n, case["batch"], lr)
    Y = np.eye(10, dtype=np.float32)[y]
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    order = jnp.asarray(np.arange(n, dtype=np.int32))
    start = time.perf_counter()
    compiled = epoch.lower(params, tx.init(params), Xd, Yd, order).compile()
    compile_s = time.perf_counter() - start
    return {"compiled": compiled, "tx": tx, "params": params, "X": Xd, "Y": Yd, "compile_s": compile_s}


def jax_fit(case: dict[str, Any], setup: dict[str, Any]) -> tuple[float, float]:
    """Seconds per epoch of the compiled JAX epochs (the same orders as microdl's) and the last epoch's loss."""
    n = len(case["X"])
    epoch_orders = [jnp.asarray(o.astype(np.int32)) for o in orders(n, case["batch"], case["epochs"], 0)]
    params, opt_state = setup["params"], setup["tx"].init(setup["params"])
    jax.block_until_ready((params, opt_state, epoch_orders))
    start = time.perf_counter()
    for order in epoch_orders:
        params, opt_state, loss = setup["compiled"](params, opt_state, setup["X"], setup["Y"], order)
    loss = float(jax.block_until_ready(loss))
    return (time.perf_counter() - start) / case["epochs"], loss


# -- the GEMM floor --------------------------------------------------------------------------------------------
def gemm_floor(case: dict[str, Any], layers, rounds: int) -> float:
    """Seconds per epoch of NumPy's products of the training pass's shapes, on preallocated outputs."""
    n, batch = len(case["X"]), case["batch"]
    sizes = [case["X"].shape[1], *case["hidden"], 10]
    rng = np.random.default_rng(0)
    f32 = np.float32

    def buffers(m: int) -> list[tuple]:
        A = [rng.normal(size=(m, s)).astype(f32) for s in sizes]  # layer inputs/outputs, and the deltas alike
        out = []
        for k, (W, _) in enumerate(layers):
            out.append((A[k], W, np.empty((m, sizes[k + 1]), f32)))  # forward: A_k · W_k
            out.append((A[k].T, A[k + 1], np.empty_like(W)))  # backward: A_kᵀ · δ_k+1
            if k > 0:
                out.append((A[k + 1], W.T, np.empty((m, sizes[k]), f32)))  # backward: δ_k+1 · W_kᵀ
        return out

    full, rest = divmod(n, batch)
    products = buffers(batch)
    last = buffers(rest) if rest else []
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(full):
            for a, b, c in products:
                np.matmul(a, b, out=c)
        for a, b, c in last:
            np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return best


def measure(rounds: int, quick: bool, lr: float = 1e-3) -> list[dict[str, Any]]:
    from microdl.nn import MLP

    rows = []
    for case in problems(quick):
        X = case["X"]
        net = MLP((X.shape[1], *case["hidden"], 10), dtype="float32", random_state=0)
        layers = initial_layers(net)
        # the same initial network: JAX gets microdl's weights, and the two forward passes agree
        np.testing.assert_allclose(numpy_forward(layers, X[:50]), net.forward(X[:50]), rtol=1e-4, atol=1e-6)
        setup = jax_setup(case, layers, lr)
        for runs in (True, False):  # compile microdl's kernels outside the timings
            microdl_fit(dict(case, epochs=1), lr, runs)
        jax_fit(dict(case, epochs=1), setup)
        best_m = best_p = best_j = float("inf")
        for _ in range(rounds):  # taking turns: a machine that gets busier slows all alike
            t_m, loss_m = microdl_fit(case, lr)
            t_p, loss_p = microdl_fit(case, lr, runs=False)
            if loss_p != loss_m:
                raise AssertionError(f"{case['problem']}, batch {case['batch']}: the compiled runs' last loss "
                                     f"{loss_m!r} is not the Python steps' {loss_p!r}")
            t_j, loss_j = jax_fit(case, setup)
            best_m, best_p, best_j = min(best_m, t_m), min(best_p, t_p), min(best_j, t_j)
        floor = gemm_floor(case, layers, rounds)
        rows.append({"problem": case["problem"], "hidden": str(case["hidden"]), "batch": case["batch"],
                     "microdl ms/epoch": 1e3 * best_m, "microdl, Python steps ms/epoch": 1e3 * best_p,
                     "jax ms/epoch": 1e3 * best_j,
                     "microdl ÷ jax": best_m / best_j, "jax compile s": setup["compile_s"],
                     "GEMM floor ms": 1e3 * floor, "floor ÷ microdl": floor / best_m, "floor ÷ jax": floor / best_j,
                     "last loss microdl": loss_m, "last loss jax": loss_j})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits only, one epoch per fit (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (default 5, quick 2)")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if jax is None:
        raise SystemExit("benchmarks.jax_peer needs JAX and optax: pip install -e '.[jax]'")
    rounds = args.rounds or (2 if args.quick else 5)
    rows = measure(rounds, args.quick)
    info = machine_info()
    info.update({"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__,
                 "jax devices": ", ".join(d.platform for d in jax.devices())})
    print_report("microdl against JAX + optax's jitted epoch (Adam, float32), with the GEMM floor", rows,
                 f"Best of {rounds} rounds, the contenders taking turns; JAX's compile time apart.",
                 info, args.out)


if __name__ == "__main__":
    main()
