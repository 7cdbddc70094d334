"""One element of an update, for any rule: load it from every buffer, apply the rule, store the results.

The compiled backends (:mod:`microdl.optim._cpu`, :mod:`microdl.optim._cuda`) loop over the elements and call,
per element, the function :func:`element_update` writes for a rule: for Adam (state ``m``, ``v``, ``v_max``)
it is::

    def adam_at(i, theta, g, h, state):
        m, v, v_max = state[0], state[1], state[2]
        s = AdamScalars(*h)
        theta[i], m_, v_, v_max_ = rule(theta[i], g[i], load(m, i, g[i]), load(v, i, g[i]),
                                        load(v_max, i, g[i]), s)
        store(m, i, m_)
        store(v, i, v_)
        store(v_max, i, v_max_)

It is written from the rule's state names, so one generator serves every rule, the built-ins and a learner's
own alike; the backend compiles it together with the rule (``numba.njit(inline="always")`` on the CPU,
``cuda.jit(device=True)`` on the GPU, plain Python under the CUDA simulator). The rule receives scalars only
(one element of each buffer, and the NamedTuple ``s`` of the step's scalars, rebuilt here from the plain
tuple ``h`` that the kernel was given: NOTE [plain tuple at the kernel boundary] in
:mod:`microdl.optim.rules`).

An optional state buffer whose option is off is passed as ``None`` (NOTE [optional state]): :func:`load`
gives the rule ``g[i]`` as a stand-in value, which it ignores, and :func:`store` stores nothing. Each backend
compiles the two for its target so that the choice is made from the buffer's *type*, when the kernel is
compiled: the loop has no per-element test, still vectorises, and the unused buffer costs no memory traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any


def load(x, i, stand_in):
    """``x[i]``, or ``stand_in`` where the buffer ``x`` is not allocated (``None``)."""
    return stand_in if x is None else x[i]


def store(x, i, value):
    """``x[i] = value``, or nothing where the buffer ``x`` is not allocated (``None``)."""
    if x is not None:
        x[i] = value


def element_update(rule: Callable, Scalars: type, state_names: tuple[str, ...], *, load: Any, store: Any,
                   packed: bool) -> FunctionType:
    """The per-element update ``<rule>_at(i, theta, g, h, ...)`` of ``rule`` (already compiled for the target),
    with ``load``/``store`` for the target. ``packed``: the state buffers come as one tuple ``state`` (the CPU
    loop takes them as ``*state``); otherwise one argument each (the CUDA kernels)."""
    names = [f"{n}_" for n in state_names]  # never a name of the generated code's own (i, theta, g, h, s)
    new = [f"{n}new" for n in names]
    head = f"def {rule.__name__}_at(i, theta, g, h, state):\n" if packed else \
        f"def {rule.__name__}_at(i, theta, g, h{''.join(', ' + n for n in names)}):\n"
    # state[k], not ``a, b = state``: Numba's tuple unpacking lost the stores into the unpacked arrays (0.68)
    lines = [*(f"    {n} = state[{k}]\n" for k, n in enumerate(names) if packed),
             "    s = Scalars(*h)\n",
             f"    theta[i], {''.join(n + ', ' for n in new)}= rule(theta[i], g[i], "
             f"{''.join(f'load({n}, i, g[i]), ' for n in names)}s)\n",
             *(f"    store({n}, i, {m})\n" for n, m in zip(names, new))]
    namespace = {"Scalars": Scalars, "rule": rule, "load": load, "store": store}
    source = head + "".join(lines)
    exec(compile(source, f"<microdl: per-element update of {rule.__module__}.{rule.__qualname__}>", "exec"),
         namespace)
    fn = namespace[f"{rule.__name__}_at"]
    fn.__source__ = source  # for a reader: the code above, as written for this rule
    return fn
