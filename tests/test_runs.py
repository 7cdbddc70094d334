"""Compiled runs of steps (microdl._runs): the same bits as the loop's Python steps, and used only where they can be.

The oracle is the loop itself with the runs turned off (``config.COMPILED_RUNS = False``): every batch a pass and
a step from Python, whose kernels the rest of the suite checks against the NumPy reference, the naive oracle and
finite differences. A spy on :meth:`CompiledRuns.run` makes sure that the runs did run, so that a comparison of the
loop with itself cannot pass.
"""

import copy

import numpy as np
import pytest
import scipy.sparse as sp

from microdl import config
from microdl._runs import CompiledRuns, compiled_runs
from microdl.nn import MLP
from microdl.optim import SGD, Adam, make_optimizer
from microdl.train import DivergenceWarning, HostBatches, fit
from tests.optim.registry_cases import ALL_OPTIONS, learner_lion


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of CompiledRuns.run."""
    calls = []
    real = CompiledRuns.run

    def run(self, k0, k1):
        calls.append((k0, k1))
        return real(self, k0, k1)

    monkeypatch.setattr(CompiledRuns, "run", run)
    return calls


def _data(n=61, d=5, classes=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y % classes


def _both(monkeypatch, spy, make, X, y, **kw):
    """Fit two copies of a model, with the runs off and on; the models, optimizers and histories."""
    out = []
    for on in (False, True):
        monkeypatch.setattr(config, "COMPILED_RUNS", on)
        net, opt = make()
        spy.clear()
        history = fit(net, opt, X, y, **copy.deepcopy(kw))  # (a RandomState is drawn from: each fit its own)
        assert bool(spy) == on, "the compiled runs must run exactly when they are on"
        out.append((net, opt, history))
    return out


def _assert_same_bits(a, b):
    (net_a, opt_a, h_a), (net_b, opt_b, h_b) = a, b
    np.testing.assert_array_equal(net_a.params, net_b.params)
    np.testing.assert_array_equal(net_a.grads, net_b.grads)
    assert opt_a.t == opt_b.t
    assert sorted(opt_a.state) == sorted(opt_b.state)
    for key in opt_a.state:
        np.testing.assert_array_equal(opt_a.state[key], opt_b.state[key])
    assert h_a.train_loss == h_b.train_loss and h_a.train_penalty == h_b.train_penalty
    assert h_a.grad_evals == h_b.grad_evals and h_a.samples_seen == h_b.samples_seen
    assert h_a.stop_reason == h_b.stop_reason


# 61 rows in batches of 4: 15 full batches and a last one of 1; 5 epochs are 80 steps, past the flush at 64.
MINI = [(name, cls, hyper) for name, cls, hyper in ALL_OPTIONS if not cls.full_batch]


@pytest.mark.parametrize(("name", "cls", "hyper"), MINI, ids=[c[0] for c in MINI])
def test_runs_give_the_loops_bits_for_every_optimizer_with_every_state_buffer(monkeypatch, spy, name, cls, hyper):
    X, y = _data()

    def make():
        net = MLP((5, 6, 3), alpha=0.1, random_state=0)
        return net, make_optimizer(name, net.params, **hyper)

    a, b = _both(monkeypatch, spy, make, X, y, epochs=5, batch_size=4, random_state=0)
    _assert_same_bits(a, b)
    assert b[1].t == 80


@pytest.mark.parametrize("shuffle", ["generator", "random_state", "none"])
def test_runs_give_the_loops_bits_in_float32_whatever_the_order(monkeypatch, spy, shuffle):
    """float32 (the scalars rounded to it), no L2 term, plain SGD (its momentum buffer not allocated: a None in
    the kernel's arguments), each of the loop's three ways of ordering the rows (NOTE [random streams])."""
    X, y = _data(dtype=np.float32)
    kw = {"generator": {"random_state": 3}, "random_state": {"random_state": np.random.RandomState(3)},
          "none": {"shuffle": False}}[shuffle]
    for opt_cls, hyper in ((SGD, {"lr": 0.1}), (Adam, {"lr": 0.01, "eps_on": "v"})):

        def make(opt_cls=opt_cls, hyper=hyper):
            net = MLP((5, 6, 3), dtype="float32", activation="tanh", random_state=0)
            return net, opt_cls(net.params, **hyper)

        a, b = _both(monkeypatch, spy, make, X, y, epochs=5, batch_size=4, **kw)
        _assert_same_bits(a, b)


@pytest.fixture
def lion():
    """examples/custom_optimizer.py: a learner's own optimizer, in its own file."""
    with learner_lion("learner_lion_runs") as module:
        yield module


def test_runs_give_the_loops_bits_for_a_learners_optimizer_and_an_activation_that_keeps_z(monkeypatch, spy, lion):
    """A host function that takes no array (one call per step: NOTE [scalars of many steps]) and an activation
    whose derivative needs the pre-activation (the block with Z)."""
    Lion = lion.Lion
    assert not Lion.scalars_take_arrays
    X, y = _data(seed=1)

    def make():
        net = MLP((5, 7, 3), activation="gelu", random_state=1)
        return net, Lion(net.params, lr=1e-3)

    a, b = _both(monkeypatch, spy, make, X, y, epochs=3, batch_size=5, random_state=1)
    _assert_same_bits(a, b)


def test_a_divergence_inside_a_run_is_replayed_to_the_same_last_good_state(monkeypatch, spy):
    """The run stops at the first bad loss, as the loop does, and the loop's replay in Python (NOTE [finite or
    told]) finds the same state: the runs and the Python steps give the same bits."""
    X, y = _data(n=120)

    def make():
        net = MLP((5, 6, 3), random_state=0)
        return net, SGD(net.params, lr=1e6, momentum=0.5)

    with pytest.warns(DivergenceWarning):
        a, b = _both(monkeypatch, spy, make, X, y, epochs=20, batch_size=4, random_state=0)
    assert b[2].diverged and "restored" in b[2].stop_reason
    _assert_same_bits(a, b)
    assert np.isfinite(b[0].params).all()


def test_the_runs_stop_at_each_call_boundary_and_count_the_steps(monkeypatch, spy):
    """Runs of at most config.RUN_WORK units of work: an epoch of 16 batches is cut into several calls, and
    the optimizer's step count and the losses still come out as the loop's."""
    X, y = _data()
    monkeypatch.setattr(config, "RUN_WORK", 5 * 4 * 45)  # (4 rows + 1) × 45 parameters × 5: five steps a call

    def make():
        net = MLP((5, 5, 3), random_state=0)
        return net, Adam(net.params, lr=0.01)

    a, b = _both(monkeypatch, spy, make, X, y, epochs=2, batch_size=4, random_state=0)
    _assert_same_bits(a, b)
    assert spy == [(0, 16), (0, 16)]  # one run per epoch, cut into calls inside it
    assert b[1].t == 32


@pytest.mark.parametrize("case", ["clip_norm", "clip_value", "sample_weight", "dropout", "sparse", "full_batch",
                                  "numpy_backend", "threaded_step", "own_step", "several_blocks"])
def test_the_loop_steps_in_python_where_a_run_cannot_do_what_it_does(monkeypatch, spy, case):
    X, y = _data()
    kw = {"epochs": 1, "batch_size": 4, "random_state": 0}
    net_kw = {}
    opt_cls = Adam
    if case == "clip_norm":
        kw["clip_norm"] = 1.0
    elif case == "clip_value":
        kw["clip_value"] = 0.5
    elif case == "sample_weight":
        kw["sample_weight"] = np.linspace(0.5, 1.5, len(y))
    elif case == "dropout":
        net_kw["dropout"] = 0.2
    elif case == "sparse":
        X = sp.csr_matrix(np.where(X > 0, X, 0.0))
    elif case == "full_batch":
        kw["batch_size"] = None
    elif case == "numpy_backend":
        net_kw["backend"] = "numpy"
    elif case == "threaded_step":  # an optimizer step large enough for the threads
        monkeypatch.setattr(config, "MIN_PARALLEL_ELEMENTS", 16)
    elif case == "several_blocks":  # batches large enough to be cut into row blocks
        monkeypatch.setattr(config, "MIN_BLOCK_ROWS", 1)
        monkeypatch.setattr(config, "MIN_BLOCK_WORK", 1)
        monkeypatch.setattr("microdl.nn.mlp._num_threads", lambda: 2)
    else:

        class OwnStep(Adam):  # a subclass whose step does more than the rule: the runs would skip it
            def step(self, grads):
                super().step(grads)

        opt_cls = OwnStep
    net = MLP((5, 6, 3), random_state=0, **net_kw)
    h = fit(net, opt_cls(net.params, lr=0.01), X, y, **kw)
    assert spy == [] and h.epochs == 1


def test_compiled_runs_says_none_for_device_batches_and_for_lbfgs():
    from microdl.optim import LBFGS

    X, y = _data()
    net = MLP((5, 6, 3), random_state=0)
    Xc, Y = net._as_data(X, y)
    batches = HostBatches(net, Xc, Y, None, 4)
    assert compiled_runs(batches, LBFGS(net.params), clipping=False) is None
    assert isinstance(compiled_runs(batches, Adam(net.params), clipping=False), CompiledRuns)

    class Other:  # any other device's batches (the GPU's)
        model = net

    assert compiled_runs(Other(), Adam(net.params), clipping=False) is None


def test_scalars_that_a_float64_row_cannot_carry_keep_the_python_steps():
    """A learner's scalars holding an integer (a float64 row carries one exactly only up to 2**53): the loop."""
    from typing import NamedTuple

    class IntScalars(NamedTuple):
        lr: float
        t: int

    class Counted(SGD):
        def _scalars(self):
            return IntScalars(self._dtype.type(self.lr), int(self.t))

    X, y = _data()
    net = MLP((5, 6, 3), random_state=0)
    batches = HostBatches(net, *net._as_data(X, y), None, 4)
    assert compiled_runs(batches, Counted(net.params, lr=0.1), clipping=False) is None
    assert compiled_runs(batches, SGD(net.params, lr=0.1), clipping=False) is not None


def test_the_runs_flush_subnormal_state_at_the_loops_steps(monkeypatch, spy):
    """Adam's state for the weights of an input column that is 0 in every row starts subnormal and gets no
    gradient: the flush after step 64 must zero it in the runs as in the loop (NOTE [subnormal state])."""
    X, y = _data(dtype=np.float32)
    X[:, 0] = 0.0

    def make():
        net = MLP((5, 6, 3), dtype="float32", random_state=0)
        opt = Adam(net.params, lr=0.01)
        for key in ("m", "v"):
            opt.state[key][...] = np.float32(3e-39)  # below float32's smallest normal, 1.18e-38
        return net, opt

    a, b = _both(monkeypatch, spy, make, X, y, epochs=5, batch_size=4, random_state=0)
    _assert_same_bits(a, b)
    first_row = b[1].state["m"][: 6]  # W[1]'s row of input 0: its gradient is 0 at every step
    assert b[1].t == 80 and np.all(first_row == 0)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_the_kernels_run_at_their_addresses_are_typed_as_the_run_function_passes_their_arguments(activation):
    """The run function calls the block and the rule's kernel at plain addresses, which carry no signature (NOTE
    [kernels by their address]): the overloads whose addresses it is given must be typed exactly as Numba's own
    inference types the tuples it passes them, or the call would read its arguments wrongly."""
    from numba import njit, typeof
    from numba.core import types

    X, y = _data(dtype=np.float32)
    net = MLP((5, 6, 4, 3), dtype="float32", activation=activation, alpha=0.1, random_state=0)
    opt = Adam(net.params, lr=0.01, amsgrad=activation == "gelu")
    batches = HostBatches(net, *net._as_data(X, y), None, 4)
    batches.set_order(np.arange(len(y))[::-1].copy())
    runs = compiled_runs(batches, opt, clipping=False)
    args = runs.arguments(0, 2, opt._scalar_rows(2))
    fresh = njit(error_model="numpy")(runs.fn.py_func)  # compiled here, so that its types can be read
    signature = tuple(typeof(a) for a in args)
    fresh.compile(signature)
    typemap = fresh.overloads[signature].type_annotation.typemap
    passed = {t for t in typemap.values() if isinstance(t, types.BaseTuple)}
    assert any(tuple(t.types) == runs.block_signature for t in passed), (runs.block_signature, passed)
    assert any(tuple(t.types) == runs.step_signature for t in passed), (runs.step_signature, passed)
    # and the run gives the loop's losses for those two batches
    assert runs.fn(*args) == -1 and runs.done[0] == 2 and np.isfinite(batches.losses[:2]).all()


def test_a_ctrl_c_the_moment_a_run_returns_keeps_the_step_count_with_the_weights(monkeypatch, spy):
    """Python raises a signal's exception at the first bytecode after a compiled call returns: the optimizer's
    step count must still count the steps the call took, as Optimizer.step keeps it in step with the weights."""
    X, y = _data()
    real = config.kernel_call()

    class StoppedOnExit:
        def __enter__(self):
            return real.__enter__()

        def __exit__(self, *exc):
            real.__exit__(*exc)
            raise KeyboardInterrupt

    monkeypatch.setattr(config, "kernel_call", StoppedOnExit)
    net = MLP((5, 6, 3), random_state=0)
    opt = Adam(net.params, lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        fit(net, opt, X, y, epochs=3, batch_size=4, random_state=0)
    monkeypatch.undo()
    assert spy and opt.t == 16  # the whole first epoch, in one call
    ref = MLP((5, 6, 3), random_state=0)
    ref_opt = Adam(ref.params, lr=0.01)
    monkeypatch.setattr(config, "COMPILED_RUNS", False)
    fit(ref, ref_opt, X, y, epochs=1, batch_size=4, random_state=0)
    assert ref_opt.t == opt.t
    np.testing.assert_array_equal(net.params, ref.params)


def test_a_rule_without_scalars_and_an_alpha_changed_by_a_callback_give_the_loops_bits(monkeypatch, spy):
    """A learner's rule whose scalars are an empty NamedTuple; and an L2 term switched on by a callback after the
    first epoch, which the run function built without it must hand back to the loop."""
    from typing import NamedTuple

    from microdl.optim import Optimizer

    class NoScalars(NamedTuple):
        pass

    def no_scalars(dtype: np.dtype, t: int, lr: float) -> NoScalars:
        return NoScalars()

    def unit_step(theta, g, s: NoScalars):
        return (theta - g,)

    class UnitStep(Optimizer):
        update, scalars, state_names = unit_step, no_scalars, ()

        def __init__(self, params, *, backend="cpu", lr=1.0):
            super().__init__(params, backend=backend, hyperparameters={"lr": lr})

    class SwitchOnL2:
        def on_epoch_end(self, epoch, history, model, optimizer):
            model.alpha = 0.5
            return False

    X, y = _data()
    for make_opt, callbacks in ((lambda p: UnitStep(p), []), (lambda p: SGD(p, lr=0.1), [SwitchOnL2()])):

        def make(make_opt=make_opt):
            net = MLP((5, 6, 3), random_state=0)
            return net, make_opt(net.params)

        a, b = _both(monkeypatch, spy, make, X, y, epochs=3, batch_size=4, random_state=0, callbacks=callbacks)
        _assert_same_bits(a, b)
        if callbacks:
            assert len(spy) == 1 and b[0].alpha == 0.5  # epoch 1 compiled; epochs 2 and 3, with L2, in Python
