"""Reliability across threads, fork and BLAS (issue 21, cases 1-2): the same fit gives the same bits in any
thread, and a fork while another thread trains neither hangs the parent nor freezes the trainer."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from microdl.nn import MLP
from microdl.nn._cpu import kernel_blas_info, single_threaded_blas
from microdl.optim import Adam
from microdl.train import fit
from tests.signals import train_stopped_by

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def _kernel_blas_threads() -> list[int]:
    """The thread counts of the BLAS that the kernels call (NOTE [which BLAS] in microdl/nn/_cpu.py)."""
    return [lib["num_threads"] for lib in kernel_blas_info()]


def _in_thread(function, *args):
    out: list = []
    worker = threading.Thread(target=lambda: out.append(function(*args)))
    worker.start()
    worker.join()
    return out[0]


def test_blas_is_limited_in_a_worker_thread_after_the_main_thread_limited_it():
    """threadpoolctl lets only the first thread that set OpenBLAS's (process-wide) limit set it again; a fit in
    a worker thread then ran its products on every BLAS thread (case 1)."""
    with single_threaded_blas():  # the main thread takes threadpoolctl's control first
        pass
    before = _blas_threads()

    def inside():
        with single_threaded_blas():
            return _kernel_blas_threads()

    assert _in_thread(inside) and all(n == 1 for n in _in_thread(inside))
    assert _blas_threads() == before  # restored, from whichever thread left last


@contextlib.contextmanager
def _limit_held_by_another_thread():
    """A thread inside ``single_threaded_blas()`` for as long as the block runs, which leaves it afterwards."""
    entered, leave = threading.Event(), threading.Event()

    def hold():
        with single_threaded_blas():
            entered.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        yield
    finally:
        leave.set()
        holder.join()


def test_the_limit_is_the_kernels_blas_only_and_is_held_by_the_last_thread_out():
    """SciPy's BLAS, which the kernels' np.dot calls, is limited; NumPy's (another library in the wheels) is
    not; a limit entered in one thread and left in another is restored by the last one out."""
    kernel = kernel_blas_info()
    assert kernel, "no BLAS found for the kernels"
    before = {lib["filepath"]: lib["num_threads"] for lib in threadpoolctl.threadpool_info()
              if lib["user_api"] == "blas"}
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with _limit_held_by_another_thread():
            with single_threaded_blas():
                inside = {lib["filepath"]: lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                          if lib["user_api"] == "blas"}
            still_held = _kernel_blas_threads()  # the holder is still inside: the limit stays
        after = _kernel_blas_threads()
    kernel_paths = {lib["filepath"] for lib in kernel}
    for path, n in inside.items():
        assert n == (1 if path in kernel_paths else 2)
    assert all(n == 1 for n in still_held) and all(n == 2 for n in after)
    numpys = {path for path in before if "numpy" in path}
    if len(before) > 1 and numpys:  # the wheels: the kernels call SciPy's library, not NumPy's
        assert not numpys & kernel_paths, kernel_paths


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1024, 64))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    return X, y


def _fitted_params(hidden=256):
    X, y = _problem()
    net = MLP((64, hidden, 2), random_state=0)
    fit(net, Adam(net.params), X, y, epochs=2, batch_size=512, random_state=0)
    return net.host_params().copy()


def test_a_fit_gives_the_same_bits_in_a_worker_thread_and_the_main_thread():
    with single_threaded_blas():
        pass
    main = _fitted_params()
    np.testing.assert_array_equal(_in_thread(_fitted_params), main)


def test_two_concurrent_fits_equal_sequential_ones():
    sequential = [_fitted_params(256), _fitted_params(192)]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(2)

    def work(hidden):
        start.wait()
        results[hidden] = _fitted_params(hidden)

    threads = [threading.Thread(target=work, args=(h,)) for h in (256, 192)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    np.testing.assert_array_equal(results[256], sequential[0])
    np.testing.assert_array_equal(results[192], sequential[1])


def test_the_numpy_backend_holds_numpys_blas_at_one_thread_during_each_pass_only(monkeypatch):
    """The NumPy backend's products are NumPy's: its own limit (NOTE [which BLAS]), during each pass only."""
    from microdl.nn import reference
    from microdl.nn._blas import _numpy_blas

    libraries = _numpy_blas()
    counts = lambda: [lib.get_num_threads() for lib in libraries]  # noqa: E731
    before, seen = counts(), []

    def spy(function):
        return lambda *args, **kwargs: (seen.append(counts()), function(*args, **kwargs))[1]

    monkeypatch.setattr(reference, "loss_and_grad", spy(reference.loss_and_grad))
    monkeypatch.setattr(reference, "evaluate", spy(reference.evaluate))
    net = MLP((4, 8, 3), random_state=0, backend="numpy")
    X, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3
    net.loss_and_grad(X, y)
    net.predict(X)
    assert len(seen) == 2 and all(n == 1 for c in seen for n in c), seen
    assert counts() == before


def test_other_threads_blas_settings_are_left_alone_outside_microdl():
    before = _blas_threads()
    _in_thread(_fitted_params)
    assert _blas_threads() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_another_thread_holds_the_limit_gets_its_blas_back():
    """The thread that would restore the count is not in a forked child: the child restores it itself, and
    its own kernel calls limit and restore as usual."""
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"), _limit_held_by_another_thread():
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if every check holds
            ok = all(n == 2 for n in _kernel_blas_threads())
            with single_threaded_blas():
                ok = ok and all(n == 1 for n in _kernel_blas_threads())
            ok = ok and all(n == 2 for n in _kernel_blas_threads())
            os._exit(0 if ok else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert all(n == 1 for n in _kernel_blas_threads())  # the parent's holder still holds it


FORK_WHILE_FITTING = """
    import os, threading, time
    import numpy as np
    from microdl.nn import MLP
    from microdl.optim import Adam
    from microdl.train import fit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20)); y = (X[:, 0] > 0).astype(int)
    warm = MLP((20, 8, 2), random_state=0)
    fit(warm, Adam(warm.params), X[:100], y[:100], epochs=1)   # the main thread limits BLAS first
    def work():
        net = MLP((20, 256, 2), random_state=0)
        fit(net, Adam(net.params), X, y, epochs=25, batch_size=256)
    trainer = threading.Thread(target=work); trainer.start()
    time.sleep(0.3)
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            child = MLP((20, 8, 2), random_state=0)
            fit(child, Adam(child.params), X[:200], y[:200], epochs=2)
            os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        time.sleep(0.05)
    trainer.join()
    print("done")
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_while_another_thread_fits_neither_hangs_nor_freezes_the_trainer():
    """Case 2: forking while a worker thread was inside a BLAS product froze it (OpenBLAS's fork handler
    stopped the threads it waited for). A hang fails here by the timeout instead of blocking the suite."""
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FORK_WHILE_FITTING)], capture_output=True,
                              text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("fork while another thread fits hung")
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout


# -- SIGTERM and SIGHUP stop a command as Ctrl-C does (case 9) -----------------------------------------------
def _descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (Linux /proc)."""
    import os

    parent_of = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent_of[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parent_of.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_ends_compare_like_ctrl_c(tmp_path):
    """Case 9: SIGTERM (docker stop, kill) left two loky workers and their resource trackers running and a
    temporary folder behind. Now: workers stopped, nothing left, the previous output intact, one line."""
    import signal
    import time

    signame, status = "SIGTERM", 143
    out = tmp_path / "out"
    tiny = [sys.executable, "-m", "microdl", "compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1",
            "--epochs", "1", "--hidden", "4", "--out", str(out), "--no-progress"]
    assert subprocess.run(tiny, capture_output=True, timeout=120).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([*tiny[:5], "digits", "--optimizers", "sgd,adam", "--seeds", "4", "--epochs", "100000",
                             "--jobs", "2", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:  # the loky workers are up
            time.sleep(0.2)
        time.sleep(1.0)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "the workers never started"
        proc.send_signal(getattr(signal, signame))
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"microdl compare: stopped by {signame}"), stderr
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "workers left running"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_stop_signal_during_the_save_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """Case 9, second half: the signal arrives while the folder is written (here, raised as it would be)."""
    import signal

    from microdl._files import Stopped, atomic_folder

    def interrupted(tmp):
        (tmp / "half.txt").write_text("half")
        raise Stopped(signal.SIGTERM)

    with pytest.raises(Stopped), atomic_folder(tmp_path / "out", "microdl compare") as tmp:
        interrupted(tmp)
    assert list(tmp_path.iterdir()) == []


def test_train_stopped_by_sighup_exits_129_and_keeps_the_old_checkpoint(tmp_path):
    import signal

    path = tmp_path / "model.npz"
    assert subprocess.run([sys.executable, "-m", "microdl", "train", "--dataset", "iris", "--epochs", "1", "--quiet",
                           "--save", str(path)], capture_output=True, timeout=120).returncode == 0
    before = path.read_bytes()
    returncode, stderr = train_stopped_by(signal.SIGHUP, path)
    assert returncode == 129
    assert stderr.strip().splitlines() == ["microdl train: stopped by SIGHUP; files written before were left as "
                                           "they were"]
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_that_python_swallowed_in_a_callback_is_raised_at_the_next_kernel_call(signame, capsys):
    """Ctrl-C during a first compile landed in llvmlite's ctypes callback, where Python prints "Exception
    ignored" and goes on: ``microdl compare`` then trained for minutes (CI, test_ctrl_c_in_compare...). Here the
    signal lands in a ``__del__``, which Python also swallows."""
    import gc
    import signal

    from microdl import config
    from microdl._files import Stopped, deferred_signals, stop_signals_as_exceptions

    class SwallowsWhatItRaises:
        def __del__(self):
            signal.raise_signal(getattr(signal, signame))  # the handler runs here, inside __del__

    expected = KeyboardInterrupt
    with stop_signals_as_exceptions():
        SwallowsWhatItRaises()
        gc.collect()
        with pytest.raises(expected) as raised, config.kernel_call():
            pytest.fail("the kernel call ran after the stop")
        with pytest.raises(expected), deferred_signals():  # nor does a commit of files
            pytest.fail("the files were committed after the stop")
    assert isinstance(raised.value, Stopped) == (signame == "SIGTERM")
    assert "Exception ignored" not in capsys.readouterr().err  # the command's one line is all a user sees
    with config.kernel_call():  # the command is over: the library works as before
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ctrl_c_while_the_cli_loads_its_modules_is_one_line_and_status_130(monkeypatch, capsys):
    from microdl import cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", interrupted)
    assert cli.main(["compare"]) == 130
    assert capsys.readouterr().err == "microdl: interrupted\n"


# -- the odd cases of issue 21 ---------------------------------------------------------------------------------
def test_save_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    from microdl.io import load, save

    target = tmp_path / "store" / "model.npz"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    net = MLP((3, 2), random_state=0)
    save(link, net)
    assert link.is_symlink() and link.resolve() == target.resolve()
    np.testing.assert_array_equal(load(target).model.params, net.params)


def test_nan_in_the_parameters_before_fit_is_refused_not_reported_as_restored():
    X, y = _problem()
    net = MLP((64, 8, 2), random_state=0)
    net.params[3] = np.nan
    with pytest.raises(ValueError, match="parameters hold NaN or infinity before training"):
        fit(net, Adam(net.params), X, y, epochs=1)


def test_a_schedule_returning_nan_stops_training_and_keeps_the_history():
    from microdl.optim.schedules import LRSchedule

    class Broken(LRSchedule):
        def lr_at(self, epoch, base_lr, metric=None):
            return base_lr if epoch < 2 else math.nan

    X, y = _problem()
    net = MLP((64, 8, 2), random_state=0)
    with pytest.warns(RuntimeWarning, match="unusable learning rate for epoch 3"):
        history = fit(net, Adam(net.params), X, y, epochs=5, schedule=Broken(), random_state=0)
    assert history.epochs == 2 and history.stop_reason.startswith("schedule: Broken")
    assert np.all(np.isfinite(net.host_params()))


@pytest.mark.parametrize(("alpha", "scale", "advice"), [(1e308, 1.0, "a smaller alpha"),
                                                        (0.0, 1e30, "standardised targets")])
def test_divergence_advice_names_the_cause_not_the_learning_rate(alpha, scale, advice):
    from microdl.optim import SGD
    from microdl.train import DivergenceWarning

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = scale * (X @ np.ones(3))
    net = MLP((3, 4, 1), loss="squared_error", alpha=alpha, random_state=0)
    with pytest.warns(DivergenceWarning):
        history = fit(net, SGD(net.params, lr=0.01), X, y, epochs=3, random_state=0)
    assert history.diverged and advice in history.stop_reason
    assert "a smaller learning rate" not in history.stop_reason


def test_compare_runs_no_more_jobs_at_once_than_cores_or_runs():
    from microdl.experiments.runs import local_jobs

    cores = len(__import__("os").sched_getaffinity(0))
    assert local_jobs(64, "loky") == cores and local_jobs(64, "threading", 1) == 1
    assert local_jobs(64, "dask") == 64 and local_jobs(1, "loky") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--seed", str(2**32)], "argument --seed: must be an integer from 0 to 4294967295"),
    (["compare", "--seeds", f"{2**32},"], "argument --seeds: seed must be <= 4294967295"),
    (["train", "--data", "/tmp/" + "d" * 300 + ".csv", "--target", "y"], "File name too long"),
])
def test_seeds_and_paths_beyond_limits_are_bad_values_with_status_2(argv, message, capsys):
    from microdl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_ctrl_c_inside_step_leaves_the_step_count_as_it_was(monkeypatch):
    net = MLP((3, 2), random_state=0)
    opt = Adam(net.params)
    opt.step(np.ones_like(net.params))
    before, params = opt.t, net.params.copy()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(opt._backend, "apply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.step(np.ones_like(net.params))
    assert opt.t == before
    np.testing.assert_array_equal(net.params, params)


def test_a_rate_beyond_float32_is_refused_for_a_float32_model():
    net = MLP((3, 2), dtype="float32", random_state=0)
    with pytest.raises(ValueError, match="lr=1e[+]39 is beyond the range of float32"):
        Adam(net.params, lr=1e39)
    opt = Adam(net.params)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        opt.lr = 1e39
    Adam(MLP((3, 2), random_state=0).params, lr=1e39)  # representable in float64


@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "adadelta", "adam"])
def test_eps_zero_is_refused_since_it_divides_zero_by_zero(name):
    """Adam with eps=0 on a zero gradient gave 0/0 in a direct step."""
    from microdl.optim import make_optimizer

    net = MLP((3, 2), random_state=0)
    with pytest.raises(ValueError, match="eps must be a finite number in \\(0, inf"):
        make_optimizer(name, net.params, eps=0.0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_lbfgs_holds_the_kernels_blas_at_one_thread_for_its_whole_run_in_scipy(backend):
    """SciPy's L-BFGS-B calls the kernels' BLAS between kernel calls; left at its threads, they spun against
    Numba's after each call (an iteration on digits: 9-11 ms instead of 1.2-1.6). Inside the run, between
    kernel calls too (a callback runs there), it is at one thread; after the fit, as it was."""
    from microdl.optim import LBFGS

    X, y = _problem()
    seen = []

    class Watch:
        def on_epoch_end(self, epoch, history, model, optimizer):
            seen.append(_kernel_blas_threads())
            return False

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _kernel_blas_threads()
        net = MLP((64, 16, 2), random_state=0, backend=backend)
        fit(net, LBFGS(net.params), X, y, epochs=3, callbacks=[Watch()])
        after = _kernel_blas_threads()
    assert len(seen) == 3 and all(n == 1 for counts in seen for n in counts), seen
    assert after == before and all(n == 2 for n in before)
