"""Compiled runs of training steps: many batches' passes and optimizer steps in one call of compiled code.

NOTE [compiled runs of steps]
    :func:`microdl.train.fit` takes a step as two kernel calls, the batch's pass and the optimizer's step, with
    Python around them: gathering the batch, the gradient's checks, the step's scalars, the loss check. With
    small batches that Python is most of a step: at batch 1 on digits (64-64-10, Adam, float32), 20-26 µs a step,
    of which the two kernels take about 6; JAX's jitted epoch took 5.6-8.7 µs a step (issue 20). So where a batch
    is one row block (:func:`microdl.nn._cpu.n_blocks_for`) and the optimizer's step runs on the calling thread,
    the loop hands the batches of an epoch to :meth:`CompiledRuns.run`, which runs them in calls of one compiled
    function, each a run of at most :data:`microdl.config.RUN_WORK` units of work (about 10 ms, so that Ctrl-C
    and the fork gate still get a say between calls). For each batch it does what the loop's step does, in the
    same order, with the same compiled code:

    * copies the batch's rows of X and Y into the buffers the loop gathers shuffled rows into (the same bits;
      rows in order too, which the loop reads in place, so that the block sees one type of array whatever the
      input's flags: a read-only X would be a second signature of the block);
    * calls the compiled block of :mod:`microdl.nn._cpu` (the one the loop's pass calls for one block), then the
      L2 term's range sum if ``alpha`` is not 0;
    * stores the batch's loss and penalty as the loop does (``data + penalty`` and ``penalty``, in float64);
    * calls the rule's serial kernel (:func:`microdl.optim._cpu.kernels_for`) with the step's scalars, rebuilt
      from a row of the array :meth:`microdl.optim.Optimizer._scalar_rows` filled for the whole run (NOTE
      [scalars of many steps] in :mod:`microdl.optim.rules`), as the same typed tuple the loop passes, so the
      kernel is the very overload the loop calls; and flushes the subnormal state after every 64th step;
    * stops after the first batch whose loss is not finite or beyond the dtype's range, as the loop does.

    So a run gives the loop's bits, step for step (``tests/test_runs.py`` checks it for every optimizer, for each
    way of ordering the rows, with L2 and without, a last, smaller batch and the flush), and the loop's replay after a
    divergence (NOTE [finite or told] in :mod:`microdl.train`), which steps in Python, finds the same states.
    Everything the compiled function does not do keeps the Python loop: sample weights, dropout, clipping,
    sparse X, several row blocks (large batches, where the per-step Python is small beside the pass), an
    optimizer step on the threads (65,536 parameters or more), an optimizer that overrides ``step``, and
    ``microdl.config.COMPILED_RUNS = False``.

    The function is generated from the rule's number of state buffers and the types of its scalars, with or
    without the L2 term, and calls the block, the rule's kernel and the L2 term's range sum by their addresses
    (NOTE [kernels by their address]): a first fit with the compiled kernels compiles one more function, 0.6 s
    (measured, digits, Adam, numba 0.68; the loop's own kernels took 4.3 s), once per machine for each such
    variant and each type of X (a read-only X is one more), which the disk cache then keeps.
"""

from __future__ import annotations

import sys
from types import FunctionType
from typing import Any

import numpy as np
from llvmlite import ir
from numba import typeof
from numba.core import types
from numba.extending import intrinsic

from microdl import config
from microdl._cache import checked_jit
from microdl.nn import _cpu, losses
from microdl.optim import base
from microdl.optim._cpu import _flush_subnormal
from microdl.optim.base import Optimizer
from microdl.optim.rules import smallest_normal

__all__ = ["CompiledRuns", "compiled_runs"]

_l2_penalty = checked_jit(nogil=True)(losses.l2_penalty)


def _kinds(scalars: tuple) -> tuple[str, ...] | None:
    """How each of a step's scalars is typed in the kernel's tuple (``"b"`` a flag, else a NumPy type's name),
    or None when one is of a type a row of float64 cannot carry exactly."""
    kinds = []
    for value in scalars:
        if isinstance(value, (bool, np.bool_)):
            kinds.append("b")
        elif isinstance(value, np.floating) and value.dtype in (np.float32, np.float64):
            kinds.append(value.dtype.name)
        elif isinstance(value, float):
            kinds.append("float64")
        else:  # an integer (exact only to 2**53) or anything else: the loop steps in Python
            return None
    return tuple(kinds)


def _source(name: str, n_state: int, kinds: tuple[str, ...], with_l2: bool) -> tuple[str, int]:
    """The source of a run function for a rule with ``n_state`` state buffers and scalars typed ``kinds``, with
    the L2 term or without (the loop adds it only where ``alpha`` is not 0, and its range sum is 0.3 s of a first
    compile), and the line of this file it is filed under (so that a traceback shows the lines that write it)."""
    state = "".join(f", x{k}" for k in range(n_state))
    h = "".join(f"H[j, {i}] != 0.0, " if kind == "b" else f"np.{kind}(H[j, {i}]), " for i, kind in enumerate(kinds))
    flush = "".join(f"            if x{k} is not None:\n                flush(x{k}, tiny)\n" for k in range(n_state))
    l2 = ("        sum_sq = call_float64(sum_range_at, (grads, block_grads, first, params, layout, alpha, scale,\n"
          "                                             first, first, grads.size))\n"
          "        penalty = l2_penalty(alpha, scale, sum_sq)\n") if with_l2 else ""
    line = sys._getframe().f_lineno + 2  # the generated lines start at the next line's string
    source = (
        f"def {name}(block_at, step_at, sum_range_at, X, Y, order, batch, k0, k1, bx, by, no_w, params, layout,\n"
        f"        A, Z, D, grads, block_grads, per_sample, act, act_p, loss, loss_p, alpha, H, t0, tiny, limit,\n"
        f"        losses, penalties, done, yes, no{state}):\n"
        f"    n = X.shape[0]\n"
        f"    first = k0 - k0\n"  # 0, typed as the other ints (a literal 0 would be typed apart)
        f"    for k in range(k0, k1):\n"
        f"        lo = k * batch\n"
        f"        hi = min(lo + batch, n)\n"
        f"        m = hi - lo\n"
        f"        for r in range(m):\n"  # element by element: a row slice's assignment compiles its shape
        f"            i = lo + r\n"  # check's error message, 2.5 s of a first compile
        f"            if order.shape[0] > 0:\n"
        f"                i = order[i]\n"
        f"            for c in range(X.shape[1]):\n"
        f"                bx[r, c] = X[i, c]\n"
        f"            for c in range(Y.shape[1]):\n"
        f"                by[r, c] = Y[i, c]\n"
        f"        Xb = bx[:m]\n"
        f"        Yb = by[:m]\n"
        f"        scale = 1.0 / m\n"
        f"        data = call_float64(block_at, (first, m, Xb, Yb, no_w, scale, params, layout, A, Z, None, D, grads,\n"
        f"                                       per_sample, act, act_p, loss, loss_p, yes, no)) * scale\n"
        f"        penalty = 0.0\n"
        f"{l2}"
        f"        losses[k] = data + penalty\n"
        f"        penalties[k] = penalty\n"
        f"        j = k - k0\n"
        f"        call_none(step_at, (params, grads, ({h}){state}))\n"
        f"        done[0] = j + 1\n"
        f"        if (t0 + j + 1) % base.FLUSH_EVERY == 0:\n"
        f"{flush}"
        f"            pass\n"
        f"        if not abs(losses[k]) <= limit:\n"
        f"            return k\n"
        f"    return -1\n"
    )
    return source, line


_RUNS: dict[tuple, Any] = {}


def _run_function(n_state: int, kinds: tuple[str, ...], with_l2: bool) -> Any:
    """The compiled run function for a rule of ``n_state`` state buffers and scalars typed ``kinds``, with the L2
    term or without, made once (NOTE [kernels by their address])."""
    key = (n_state, kinds, with_l2)
    fn = _RUNS.get(key)
    if fn is None:
        # e.g. run_3_dddddddddbbb: Adam's three buffers, nine float64 scalars and three flags (NumPy's type codes)
        name = f"run_{n_state}_{''.join('b' if k == 'b' else np.dtype(k).char for k in kinds)}{'_l2' * with_l2}"
        source, line = _source(name, n_state, kinds, with_l2)
        # (the module, not its constant: the checked cache then covers base.py, where FLUSH_EVERY is set)
        namespace = {"__name__": __name__, "np": np, "base": base, "call_float64": _call_float64,
                     "call_none": _call_none, "l2_penalty": _l2_penalty, "flush": _flush_subnormal}
        exec(compile("\n" * (line - 1) + source, __file__, "exec"), namespace)
        py_func: FunctionType = namespace[name]
        py_func.__doc__ = "A run of training steps, compiled (written by microdl._runs._source)."
        fn = _RUNS[key] = checked_jit(nogil=True, error_model="numpy")(py_func)
    return fn


# NOTE [kernels by their address]
#     The run function calls the block of the passes, the rule's kernel and the L2 term's range sum at their addresses:
#     those of the C wrappers Numba compiles beside every overload (``llvm_cfunc_wrapper_name``), of the overloads the
#     loop calls, passed as plain integers and called through :func:`_call_float64` and :func:`_call_none`. Called as
#     dispatchers, their code would be linked into the run function's module, and LLVM would optimise the whole module
#     again: compiling the run function took 1.9 s with both linked and 1.1 s with neither (measured, a fresh cache,
#     digits, Adam, float64, L2; numba 0.68). By address it is compiled once per number of state buffers and types of
#     scalars, whatever the rule and the registered formulas, and cached on disk like any other kernel, and it calls the
#     very code the loop calls. Numba's own first-class functions (``CompileResultWAP``) do the same, but type and unbox
#     each one from Python at every call: 65 µs a call of the run function, a tenth of an epoch of digits at batch 200;
#     an integer costs nothing. What an integer does not carry is the callee's signature, so :class:`CompiledRuns` takes
#     the address of the overload typed from the very buffers the run function passes (``tests/test_runs.py`` checks
#     that the types agree). Linked, the range sum (compiled with ``reassoc``) could also be optimised otherwise than
#     the loop's own build, and add its squares in another order. A C wrapper cannot raise: an exception in the callee
#     would be printed and lost. The callees raise none: their arithmetic is what the rules and formulas may hold
#     (``+ - * /``, comparisons, ``np.sqrt``, ``np.exp`` ...; no ``raise``: NOTE [typed scalars] in
#     microdl.optim.rules and docs/extend-model.md), and the rule's serial kernel and the block are compiled with
#     NumPy's error model, where a division by zero gives inf or NaN, which the loss check stops at.


def _caller(return_type: Any) -> Any:
    """An intrinsic ``call(address, args)``: the C wrapper at ``address`` called with the tuple ``args``, its
    result of ``return_type`` (NOTE [kernels by their address])."""

    @intrinsic
    def call(typingctx: Any, address: Any, args: Any) -> Any:
        if not (isinstance(address, types.Integer) and isinstance(args, types.BaseTuple)):
            return None

        def codegen(context: Any, builder: Any, signature: Any, llargs: Any) -> Any:
            at, values = llargs
            argument_types = [context.get_value_type(t) for t in args.types]
            fnty = ir.FunctionType(context.get_value_type(return_type), argument_types)
            fn = builder.inttoptr(at, fnty.as_pointer())
            out = builder.call(fn, [builder.extract_value(values, i) for i in range(len(args.types))])
            return context.get_dummy_value() if return_type == types.none else out

        return return_type(address, args), codegen

    return call


_call_float64, _call_none = _caller(types.float64), _caller(types.none)

_ADDRESSES: dict[tuple, tuple[int, Any]] = {}


def _address(kernel: Any, key: tuple, args: tuple) -> tuple[int, tuple]:
    """The address of the C wrapper of the kernel's overload for these arguments (loaded from the disk cache, or
    compiled: the loop calls the same one; NOTE [kernels by their address]); kept under ``key``, which must tell
    apart every signature ``args`` can have (typing 20 arguments cost about 0.5 ms a fit). Returns the address and
    the signature."""
    found = _ADDRESSES.get((kernel, key))
    if found is None:
        signature = tuple(typeof(a) for a in args)
        kernel.compile(signature)
        overload = kernel.overloads[signature]  # (kept alive by the dispatcher, as its code is)
        at = overload.library.get_pointer_to_function(overload.fndesc.llvm_cfunc_wrapper_name)
        found = _ADDRESSES[kernel, key] = (at, signature)
    return found


class CompiledRuns:
    """The steps of one fit's epochs, run in calls of one compiled function (NOTE [compiled runs of steps]).

    Made by :func:`compiled_runs`, which says whether a fit can use it; :meth:`run` then takes the place of the
    loop's per-batch steps for an epoch, and says at which batch it stopped.
    """

    def __init__(self, batches: Any, optimizer: Optimizer, scalars: tuple, kinds: tuple[str, ...]) -> None:
        model = batches.model
        self.batches, self.optimizer, self.model = batches, optimizer, model
        ws = model._train
        ws.reserve(batches.batch_size)
        if batches._Y is None:
            batches._reserve_gather()
        self.fn = _run_function(len(optimizer._slots), kinds, bool(model.alpha != 0))  # (with_l2, below)
        slots, p_act, p_loss = optimizer._slots, model._activation_p, model._loss_p
        # each kept under what decides its signature: the dtype, the scalars' types, which state buffers are None;
        # the layers, Z or not, the formulas' parameter counts
        self.step, self.step_signature = _address(
            optimizer._kernels.serial, (model.dtype, kinds, tuple(x is None for x in slots)),
            (model.params, model.grads, scalars, *slots))
        self.block, self.block_signature = _address(
            _cpu.kernels().block, (model.dtype, len(ws.A), ws.Z is None, len(p_act), len(p_loss)),
            (0, 1, batches._X, batches._Y, model._no_w, 1.0, model.params, model._layout, ws.A, ws.Z, None, ws.D,
             model.grads, ws.per_sample, model._activation_code, p_act, model._loss_code, p_loss, True, False))
        self.with_l2 = bool(model.alpha != 0)
        self.sum_range = 0  # the L2 term's range sum, called only with it (the loop's sum_blocks_serial)
        if self.with_l2:
            self.sum_range, self.sum_range_signature = _address(
                _cpu._sum_range, (model.dtype,),
                (model.grads, ws.block_grads, 0, model.params, model._layout, float(model.alpha), 1.0, 0, 0,
                 model.grads.size))
        self.steps_per_call = max(1, config.RUN_WORK // (batches.batch_size * model.n_params + model.n_params))
        self.no_order = np.empty(0, dtype=np.intp)
        self.done = np.zeros(1, dtype=np.intp)  # the steps a call has taken, written after each
        dtype = model.dtype
        self.tiny, self.limit = smallest_normal(dtype), float(np.finfo(dtype).max)

    def ready(self) -> bool:
        """Whether a batch is still one row block (the thread count may have changed since the fit began), and
        the L2 term still on or off as the run function was built (a callback may change ``alpha``)."""
        model = self.model
        return (model.alpha != 0) == self.with_l2 and model._train.blocks(self.batches.batch_size) == 1

    def arguments(self, k0: int, k1: int, H: np.ndarray) -> tuple:
        """The run function's arguments for batches ``k0`` to ``k1 - 1`` of this epoch, with the scalars ``H``."""
        b, opt, model = self.batches, self.optimizer, self.model
        ws = model._train
        return (self.block, self.step, self.sum_range, b.X, b.Y, self.no_order if b.order is None else b.order,
                b.batch_size, k0, k1, b._X, b._Y, model._no_w, model.params, model._layout, ws.A, ws.Z, ws.D,
                model.grads, ws.block_grads, ws.per_sample, model._activation_code, model._activation_p,
                model._loss_code, model._loss_p, float(model.alpha), H, opt.t, self.tiny, self.limit, b.losses,
                b.penalties, self.done, True, False, *opt._slots)

    def run(self, k0: int, k1: int) -> int | None:
        """Batches ``k0`` to ``k1 - 1`` of this epoch, each a step; the first whose loss is not finite or beyond
        the dtype's range (its step taken, as the loop takes it), or None."""
        opt = self.optimizer
        k = k0
        while k < k1:
            stop = min(k1, k + self.steps_per_call)
            args = self.arguments(k, stop, opt._scalar_rows(stop - k))
            self.done[0] = 0
            try:
                with _cpu.single_threaded_blas(), config.kernel_call():
                    bad = self.fn(*args)
            finally:  # the steps taken, even if Ctrl-C is raised the moment the call returns (as Optimizer.step)
                opt.t += int(self.done[0])
            if bad >= 0:
                return bad
            k = stop
        return None


def compiled_runs(batches: Any, optimizer: Any, clipping: bool) -> CompiledRuns | None:
    """A :class:`CompiledRuns` for this fit's steps, or None where the loop steps in Python (NOTE [compiled runs
    of steps] lists when)."""
    from microdl.train import HostBatches

    model = getattr(batches, "model", None)
    if not (config.COMPILED_RUNS and type(batches) is HostBatches and model.backend == "numba"
            and model.device == "cpu" and isinstance(optimizer, Optimizer) and optimizer.backend == "cpu"):
        return None
    if (clipping or batches.w is not None or batches._sparse or model._dropout_rng is not None
            or len(batches.bounds) < 2 or type(optimizer).step is not Optimizer.step
            or optimizer.params.size >= config.MIN_PARALLEL_ELEMENTS):
        return None
    t = optimizer.t
    optimizer.t = t + 1  # the scalars of the next step (at t = 0, Adam's bias corrections divide by zero)
    try:
        scalars = tuple(optimizer._scalars())  # a plain tuple, as the loop passes them to the kernel
    finally:
        optimizer.t = t
    kinds = _kinds(scalars)
    if kinds is None:
        return None
    return CompiledRuns(batches, optimizer, scalars, kinds)
