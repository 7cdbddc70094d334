"""microdl.config's thread policy (NOTE [threading layer]): the threads are used only while no other process
wants the cores they need, judged from the tasks runnable now, not from the 1-minute load average."""

import multiprocessing
import os
import time

import numba
import pytest

from microdl import config

linux_only = pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux's /proc")


@pytest.fixture
def fresh_check(monkeypatch):
    """Forget the last check, so that the next ``machine_is_busy`` looks again."""
    monkeypatch.setitem(config._state, "load_checked", -1e9)


@pytest.mark.parametrize(("others", "threads", "cores", "busy"), [
    (0, 2, 2, False),  # a quiet machine: the threads have their cores
    (1, 2, 2, True),  # one busy process on 2 cores: one of the two threads would wait for it
    (2, 2, 2, True),
    (1, 1, 2, False),  # one thread needs one core, and one is free
    (2, 4, 8, False),  # 8 cores: 4 threads and 2 other tasks fit
    (5, 4, 8, True),
])
def test_busy_when_other_tasks_want_the_cores_the_threads_need(monkeypatch, fresh_check, others, threads, cores,
                                                               busy):
    monkeypatch.setattr(config, "other_runnable", lambda: others)
    monkeypatch.setattr(config, "_machine_cores", lambda: cores)
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    assert config.machine_is_busy() is busy


@pytest.mark.parametrize(("load", "busy"), [(3.9, False), (4.1, True)])
def test_without_proc_the_load_average_decides(monkeypatch, fresh_check, load, busy):
    monkeypatch.setattr(config, "other_runnable", lambda: None)
    monkeypatch.setattr(config, "_usable_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert config.machine_is_busy() is busy


def test_the_check_is_cached_between_looks(monkeypatch, fresh_check):
    calls = []
    monkeypatch.setattr(config, "other_runnable", lambda: calls.append(1) or 0)
    for _ in range(5):
        config.machine_is_busy()
    assert len(calls) == 1


def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@linux_only
def test_this_process_counts_its_running_thread_and_a_spinning_process_is_seen():
    assert config._runnable_here() >= 1  # the thread reading is running
    others = config.other_runnable()
    assert isinstance(others, int) and others >= 0
    spinners = [multiprocessing.get_context("spawn").Process(target=_spin, args=(20.0,)) for _ in range(2)]
    for p in spinners:
        p.start()
    try:
        time.sleep(3.0)  # the spawned interpreters start, then spin
        # two processes that never sleep are runnable at every sample: the least of the samples sees both
        assert config.other_runnable() >= 2
    finally:
        for p in spinners:
            p.terminate()
            p.join()


def test_a_fit_leaves_numpys_blas_alone_for_the_other_threads():
    """microdl's kernels call SciPy's BLAS (scipy.linalg.cython_blas) and limit only it, only during each kernel
    call (issue 20.3); NumPy's, which a user's other threads use for ``X @ W``, keeps the threads it had while
    a fit runs in another thread."""
    import threading

    import numpy as np
    from threadpoolctl import threadpool_info

    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit

    def numpys_blas_threads():
        return {i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas" and "numpy" in i["filepath"]}

    before = numpys_blas_threads()
    if not before or max(before) < 2:
        pytest.skip("NumPy's BLAS runs on one thread here already")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 50)), rng.integers(0, 3, 4000)
    seen = set()
    fitter = threading.Thread(target=lambda: fit(net, Adam(net.params), X, y, epochs=5, batch_size=100))
    net = MLP((50, 128, 3), random_state=0)
    fitter.start()
    while fitter.is_alive():
        seen |= numpys_blas_threads()
        time.sleep(0.01)
    fitter.join()
    assert seen <= before


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.register_at_fork")
@pytest.mark.parametrize("through", ["run_parallel", "kernel_call"])
def test_a_fork_waits_for_a_launch_in_another_thread_to_end(through):
    """NOTE [fork while a kernel runs]: a fork never lands inside a parallel launch (which holds PARALLEL_LOCK,
    also taken by the fork) nor inside a kernel call (the gate)."""
    import threading

    started, events = threading.Event(), []

    def kernel():
        started.set()
        time.sleep(0.3)
        events.append("kernel ended")

    def launch():
        if through == "run_parallel":
            config.run_parallel(kernel)
        else:
            with config.kernel_call():
                kernel()

    worker = threading.Thread(target=launch)
    worker.start()
    started.wait()
    pid = os.fork()
    if pid == 0:  # the child: nothing to do but leave, without running the parent's clean-ups
        os._exit(0)
    events.append("fork returned")
    worker.join()
    assert os.waitpid(pid, 0)[1] == 0
    assert events == ["kernel ended", "fork returned"]
    assert config.PARALLEL_LOCK.acquire(blocking=False)  # and the fork gave the lock back
    config.PARALLEL_LOCK.release()
