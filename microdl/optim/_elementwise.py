"""One element of an update, for any rule: load it from every buffer, apply the rule, store the results.

The compiled backends (:mod:`microdl.optim._cpu`, :mod:`microdl.optim._cuda`) loop over the elements and call,
per element, the function :func:`element_update` writes for a rule. For Adam (state ``m``, ``v``, ``v_max``) it
is::

    def adam_at(i, theta, g, h, m_, v_, v_max_):
        if m_ is None:
            m_i = g[i]
        else:
            m_i = m_[i]
        ...                                        (the same for v_ and v_max_)
        s = AdamScalars(*h)
        theta[i], m_new, v_new, v_max_new = rule(theta[i], g[i], m_i, v_i, v_max_i, s)
        if m_ is None:
            pass
        else:
            m_[i] = m_new
        ...

It is written from the rule's state names, so one generator serves every rule, the built-ins and a learner's
own alike; the backend compiles it together with the rule (``numba.njit(inline="always")`` on the CPU,
``cuda.jit(device=True)`` on the GPU, plain Python under the CUDA simulator). It takes the rule's own state
buffers and no more, and so does each backend's loop around it (written once per backend, for any number of
buffers: NOTE [kernel arguments] in :mod:`microdl.optim._cpu`). The rule receives scalars only (one element of
each buffer, and the NamedTuple ``s`` of the step's scalars, rebuilt here from the plain tuple ``h`` that the
kernel was given: NOTE [plain tuple at the kernel boundary] in :mod:`microdl.optim.rules`).

An optional state buffer whose option is off is passed as ``None`` (NOTE [optional state]): the rule then gets
``g[i]`` as a stand-in value, which it ignores, and nothing is stored. Numba compiles a separate specialisation
for a ``None`` argument and prunes each ``is None`` branch at compile time (one test per branch: a compound
condition such as ``a is None and b is None`` is not pruned), so the loop has no per-element test, still
vectorises, and the unused buffer costs no memory traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType

#: The most state buffers a rule may have. Six, so that a kernel takes at most nine arguments (θ, g, the scalars
#: and the state): Numba's dispatcher types up to ten in its fast path, and a call with eleven cost twice as much
#: (measured, numba 0.68: 0.8 us against 1.3-2.1 us per call of an empty kernel).
MAX_STATE = 6


def element_update(rule: Callable, Scalars: type, state_names: tuple[str, ...]) -> FunctionType:
    """The per-element update ``<rule>_at(i, theta, g, h, <one argument per state buffer>)`` of ``rule``
    (compiled for the target already, or plain Python)."""
    names = [f"{n}_" for n in state_names]  # never a name of the generated code's own (i, theta, g, h, s)
    lines = [f"def {rule.__name__}_at(i, theta, g, h{''.join(', ' + n for n in names)}):\n"]
    for n in names:
        lines += [f"    if {n} is None:\n", f"        {n}i = g[i]\n", "    else:\n", f"        {n}i = {n}[i]\n"]
    lines += ["    s = Scalars(*h)\n",
              f"    theta[i], {''.join(f'{n}new, ' for n in names)}= rule(theta[i], g[i], "
              f"{''.join(f'{n}i, ' for n in names)}s)\n"]
    for n in names:
        lines += [f"    if {n} is None:\n", "        pass\n", "    else:\n", f"        {n}[i] = {n}new\n"]
    source = "".join(lines)
    namespace = {"Scalars": Scalars, "rule": rule}
    exec(compile(source, f"<microdl: per-element update of {rule.__module__}.{rule.__qualname__}>", "exec"),
         namespace)
    fn = namespace[f"{rule.__name__}_at"]
    fn.__source__ = source  # for a reader: the code above, as written for this rule
    return fn
