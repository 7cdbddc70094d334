"""Helpers shared by the benchmarks: a best-of-N timer, machine facts and Markdown tables.

The machines these run on are shared and noisy, so every benchmark reports the *minimum* over repeats and
compares against a peer measured in the same run, as a ratio.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any


def time_best(fn: Callable[[], Any], *, repeat: int = 5, number: int = 1, warmup: int = 1) -> float:
    """Seconds per call of ``fn``: the minimum over ``repeat`` rounds of ``number`` calls, after warm-up."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def machine_info() -> dict[str, Any]:
    """CPU count, Python and library versions, for the header of a benchmark report."""
    import numba
    import numpy

    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": numpy.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(), "machine": platform.machine()}
    try:
        import sklearn

        info["scikit-learn"] = sklearn.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a Markdown table; floats get 3 significant digits."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return "–" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def print_report(title: str, rows: Sequence[dict[str, Any]], how: str, info: dict[str, Any],
                 out: str | None = None) -> str:
    """Print a benchmark's Markdown report: ``## title``, the table, and one line saying how it was measured
    (``how``), on what (``info``, :func:`machine_info` and any versions) and under what load (the 1-minute load
    average at the end, since a shared machine is the usual source of noise); also write it to ``out``."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = "\n".join([f"## {title}", "", markdown_table(rows), "",
                        f"{how} {', '.join(f'{k} {v}' for k, v in info.items())}; 1-minute load average "
                        f"{load:.2f} at the end.", ""])
    print(report)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(report)
    return report
