"""microdl.optim._cpu: the kernels compile once per dtype, and a float32 kernel stays float32 and vectorises
with the step's scalars passed as a NamedTuple rebuilt inside it (NOTE [typed scalars], NOTE [plain tuple at
the kernel boundary] in microdl.optim.rules); the parallel kernels and their serial twins give the same bits
(NOTE [threading layer] in microdl.config)."""

import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest
from numba import njit, typeof

from microdl import config
from microdl.optim import SGD, Adadelta, Adagrad, Adam, RMSprop, _cpu
from tests.optim.registry_cases import ALL_OPTIONS


@pytest.fixture(params=["parallel", "serial"])
def build(request, monkeypatch):
    """Run the steps through the parallel kernels (on the threads, whatever the size) or their serial twins:
    ``build(cls)`` is the kernel that runs ``cls``'s steps."""
    if request.param == "parallel":
        monkeypatch.setattr(config, "MIN_PARALLEL_ELEMENTS", 0)
        monkeypatch.setattr(config, "use_threads", lambda: True)
        return lambda cls: _cpu.kernels_for(cls).parallel
    monkeypatch.setattr(config, "use_threads", lambda: False)
    return lambda cls: _cpu.kernels_for(cls).serial


@pytest.mark.parametrize(("name", "cls", "hyper"), ALL_OPTIONS, ids=[c[0] for c in ALL_OPTIONS])
def test_second_step_does_not_recompile(name, cls, hyper, build):
    kernel = build(cls)

    def compiled_for(opt):
        # signatures for these array types (any scalars): more than one means that the scalars' types change
        # from step to step, so that steps recompile
        arrays = tuple(typeof(a) for a in (opt.params, opt.params, *opt._slots))
        return [sig for sig in kernel.signatures if (sig[0], sig[1], *sig[3:3 + len(opt._slots)]) == arrays]

    opt64 = cls(np.ones(9), backend="cpu", **hyper)
    opt64.step(np.ones(9))
    assert len(compiled_for(opt64)) == 1
    n_signatures = len(kernel.signatures)
    for _ in range(4):  # t == 1 and t > 1 (SGD's first-step flag), decaying rates, a new learning rate
        opt64.step(np.full(9, 0.5))
        opt64.lr = 0.01
    opt64_again = cls(np.ones(9), backend="cpu", **hyper)  # a second optimizer reuses the kernel too
    opt64_again.step(np.ones(9))
    assert len(kernel.signatures) == n_signatures

    opt32 = cls(np.ones(9, dtype=np.float32), backend="cpu", **hyper)
    had_float32 = len(compiled_for(opt32))
    for _ in range(3):
        opt32.step(np.ones(9, dtype=np.float32))
    assert len(compiled_for(opt32)) == 1
    assert len(kernel.signatures) == n_signatures + (1 - had_float32), "switching dtype adds exactly one"


@pytest.mark.parametrize(("name", "cls", "hyper"), ALL_OPTIONS, ids=[c[0] for c in ALL_OPTIONS])
def test_float32_kernels_stay_float32_and_vectorise(name, cls, hyper, build):
    # The cached kernels cannot be inspected, so the same function is compiled again, with the same options,
    # without the cache. One step runs through it and must match the cached kernel exactly.
    kernel = build(cls)
    fresh = njit(**{k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")})(kernel.py_func)
    g = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
    opts = [cls(np.linspace(1.0, 2.0, 64, dtype=np.float32), backend="cpu", **hyper) for _ in range(2)]
    opts[0].step(g)
    opts[1].t += 1
    fresh(opts[1].params, g, tuple(opts[1]._scalars()), *opts[1]._slots)
    np.testing.assert_array_equal(opts[1].params, opts[0].params)

    (ir,) = fresh.inspect_llvm().values()
    assert "fpext" not in ir, "a float32 value is widened to float64 inside the kernel (NOTE [typed scalars])"
    assert re.search(r"<\d+ x float>", ir), "the loop does not vectorise"
    if platform.machine() in ("x86_64", "AMD64"):
        (asm,) = fresh.inspect_asm().values()
        assert "cvtss2sd" not in asm
        assert re.search(r"\bv?(mul|add)ps\b", asm), "no packed float32 arithmetic"


@pytest.mark.parametrize("cls", [SGD, Adagrad, RMSprop, Adadelta, Adam], ids=lambda c: c.__name__)
def test_each_kernel_takes_its_own_state_buffers_and_no_more(cls):
    # NOTE [kernel arguments] in microdl.optim._cpu: θ, g, the scalars and the rule's buffers, no padding
    import inspect
    import linecache

    for kernel in _cpu.kernels_for(cls):
        loop = kernel.py_func
        assert list(inspect.signature(loop).parameters) == ["theta", "g", "h",
                                                            *(f"x{k}" for k in range(len(cls.state_names)))]
        # filed under _cpu.py (Numba caches only kernels defined in a file), at the lines that write it
        assert loop.__code__.co_filename == _cpu.__file__
        assert 'f"def {name}(theta, g, h{state}' in linecache.getline(_cpu.__file__, loop.__code__.co_firstlineno)


def test_steps_and_clipping_from_several_threads_at_once():
    # Numba's workqueue threading layer (where Numba falls back when OpenMP is missing) aborts the whole process
    # when two threads launch parallel kernels at once; every step and clip holds config.PARALLEL_LOCK (NOTE
    # [threading layer] in microdl.config). Without it this run dies with "Terminating: ... not threadsafe".
    code = (
        "import threading, numpy as np, numba\n"
        "from microdl import config\n"
        "config.use_threads = lambda: True  # the parallel kernels, whatever the machine's load\n"
        "import microdl.optim as optim\n"
        "n = 200_000\n"
        "g = np.ones(n, np.float32)\n"
        "def run(seed):\n"
        "    opt = optim.Adam(np.zeros(n, np.float32), backend='cpu')\n"
        "    for _ in range(100):\n"
        "        grads = g.copy()\n"
        "        optim.clip_grad_norm(grads, 1.0)\n"
        "        optim.clip_grad_value(grads, 1.0)\n"
        "        opt.step(grads)\n"
        "threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(numba.threading_layer())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    env["NUMBA_NUM_THREADS"] = "2"  # a parallel layer even on a one-core runner
    env["NUMBA_THREADING_LAYER"] = "workqueue"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["workqueue"]


def test_each_parallel_launch_holds_the_lock(monkeypatch):
    from microdl import config
    from microdl.optim import clip_grad_norm, clip_grad_value

    inside = []

    class Lock:
        def __enter__(self):
            inside.append(True)

        def __exit__(self, *exc):
            inside.pop()

    def holding(kernel):
        def launch(*args):
            assert inside, f"{kernel.__name__} launched without config.PARALLEL_LOCK"
            return kernel(*args)

        return launch

    monkeypatch.setattr(config, "PARALLEL_LOCK", Lock())
    monkeypatch.setattr(config, "MIN_PARALLEL_ELEMENTS", 0)  # the parallel kernels, on tiny buffers
    monkeypatch.setattr(config, "use_threads", lambda: True)
    for cls in (SGD, Adagrad, RMSprop, Adadelta, Adam):
        _cpu.kernels_for(cls)  # built, then wrapped
    for key, kernels in list(_cpu._KERNELS.items()):
        monkeypatch.setitem(_cpu._KERNELS, key, kernels._replace(parallel=holding(kernels.parallel)))
    for name in ("_sum_of_squares", "_scale", "_clamp"):
        kernel = getattr(_cpu, name)
        monkeypatch.setattr(_cpu, name, holding(kernel))
        monkeypatch.setitem(_cpu.SERIAL, getattr(_cpu, name), _cpu.SERIAL[kernel])
    for _, cls, hyper in ALL_OPTIONS:
        cls(np.zeros(3), backend="cpu", **hyper).step(np.ones(3))
    g = np.full(3, 10.0)
    clip_grad_norm(g, 1.0)
    clip_grad_value(g, 0.1)
    np.testing.assert_allclose(g, 0.1)


@pytest.mark.parametrize(("name", "cls", "hyper"), ALL_OPTIONS, ids=[c[0] for c in ALL_OPTIONS])
def test_parallel_kernels_and_serial_twins_give_the_same_bits(name, cls, hyper, monkeypatch):
    rng = np.random.default_rng(0)
    theta0, grads = rng.normal(size=3000).astype(np.float32), rng.normal(size=(3, 3000)).astype(np.float32)
    results = []
    for threads in (True, False):
        monkeypatch.setattr(config, "MIN_PARALLEL_ELEMENTS", 0)
        monkeypatch.setattr(config, "use_threads", lambda threads=threads: threads)
        opt = cls(theta0.copy(), backend="cpu", **hyper)
        for g in grads:
            opt.step(g)
        results.append((opt.params, {k: v.copy() for k, v in opt.state.items()}))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])
