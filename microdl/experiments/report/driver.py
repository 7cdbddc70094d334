"""``make_report``: run every experiment, decide every claim, write the report folder in one piece."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microdl._files import atomic_folder, check_replaceable_folder
from microdl._validation import check_bool
from microdl.experiments.report import (
    code,
    combine,
    drift,
    gd_sgd,
    landscape,
    noise,
    noisy_sparse,
    scale,
    sensitivity,
    wide,
    width,
)
from microdl.experiments.report.claims import CLAIMS
from microdl.experiments.report.context import Context, Experiment, numba_threads
from microdl.experiments.report.settings import QUICK, ReportSettings, replication_settings
from microdl.experiments.report.verdicts import Verdict, stable_verdict, verdict_counts
from microdl.experiments.report.writer import QUICK_BANNER, build_document, write_files

__all__ = ["make_report", "Report", "EXPERIMENTS", "stable_verdicts"]

#: The experiments in the order they run and appear; ``wide`` comes first, since its tuned rates feed the
#: single-dataset experiments after it.
EXPERIMENTS: tuple[Experiment, ...] = (wide, gd_sgd, sensitivity, noise, width, landscape, scale, drift,  # type: ignore[assignment]
                                       noisy_sparse, combine, code)
if not all(isinstance(e, Experiment) for e in EXPERIMENTS):  # pragma: no cover - a module missing a function
    raise ImportError("every experiment module must implement microdl.experiments.report.context.Experiment")
#: Rough share of the full report's time per experiment: the progress bar's weights.
_WEIGHT = {"wide": 40, "gd_sgd": 2, "sensitivity": 19, "noise": 2, "width": 6, "landscape": 5, "scale": 7,
           "drift": 8, "noisy_sparse": 8, "combine": 3, "code": 1}
#: Who wrote a report folder, as its manifest records: a folder holding anything else is never replaced
#: (NOTE [output folders] in microdl._files).
WRITER = "microdl report"


@dataclass
class Report:
    """What :func:`make_report` measured: the settings, every experiment's results, a verdict per claim and
    the run's metadata."""

    settings: ReportSettings
    results: dict[str, Any]
    verdicts: dict[str, Verdict]
    meta: dict[str, Any] = field(default_factory=dict)

    def summary_text(self) -> str:
        """One line per claim: verdict, how many replications agreed, optimizer, claim; then the totals."""
        lines = []
        for c in CLAIMS:
            v = self.verdicts[c.id]
            agreed = f"{round(v.stability * len(v.replications))}/{len(v.replications)}"
            lines.append(f"{v.verdict:14s} {agreed:5s} {c.optimizer:8s}  {c.text}")
        counts = verdict_counts(self.verdicts)
        lines.append("totals: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        if self.meta.get("quick"):
            lines.append(QUICK_BANNER)
        return "\n".join(lines)


def make_report(out_dir: str | Path = "report", *, quick: bool = False, settings: ReportSettings | None = None,
                seed: int = 0, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
                progress: bool | None = None) -> Report:
    """Run every experiment, decide every claim of the article and write the report folder.

    The folder receives ``report.html`` (figures beside verdicts), ``report.md`` (the same, as Markdown), the
    figures and ``results.json`` (every measured number, every rule and verdict). It is built under a
    temporary name and swapped in at the end, so an interrupted run leaves the previous report intact.

    Parameters
    ----------
    out_dir : str or Path
        The report folder: new, or an earlier report's (it is replaced as a whole).
    quick : bool
        Use :data:`QUICK`'s small budgets (well under a minute; the verdicts then mean little).
    settings : ReportSettings, optional
        Full control over problems, budgets and the number of seeds and replications (overrides ``quick``).
    seed : int
        Every evaluation and tuning seed of every replication is derived from it (NOTE [report seeds] in
        :mod:`~.settings`): two different seeds are two independent replications of the whole report.
    jobs, backend, scheduler
        How the many independent training runs execute (:func:`microdl.experiments.runs.execute`). One job
        gives the cleanest timings.
    progress : bool or None
        Progress bars (tqdm): over the experiments, and over each experiment's runs; None shows them only on
        a terminal.

    Examples
    --------
    >>> report = make_report("report", quick=True, progress=False)        # doctest: +SKIP
    >>> print(report.summary_text())                                       # doctest: +SKIP
    """
    from microdl.experiments.runs import check_execution

    check_execution(jobs, backend, scheduler)
    quick = check_bool("quick", quick)
    s = settings if settings is not None else (QUICK if quick else ReportSettings())
    if not isinstance(s, ReportSettings):
        raise TypeError(f"settings must be a ReportSettings; got {type(s).__name__}")
    if s.focus not in s.datasets:
        raise ValueError(f"the focus dataset {s.focus!r} must be one of the datasets {s.datasets}")
    if len(s.seeds) < 2:
        raise ValueError(f"the report needs at least two seeds for its intervals (ten is the standard); "
                         f"got {s.seeds}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if isinstance(s.replications, bool) or not isinstance(s.replications, int) or s.replications < 1:
        raise ValueError(f"replications must be a positive integer; got {s.replications!r}")
    out = check_replaceable_folder(out_dir, "report folder", WRITER)  # NOTE [output folders] in microdl._files
    # the report's own bar is the one shown; the bars of the runs inside an experiment would only clutter it
    execution = {"jobs": jobs, "backend": backend, "scheduler": scheduler, "progress": False}
    # One Numba thread per run when runs go one at a time here (NOTE in context.numba_threads); parallel jobs
    # get their share of the cores from execute().
    threads = 1 if jobs == 1 and backend != "dask" else None
    tic = time.perf_counter()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    figures: dict[str, list[str]] = {}
    with atomic_folder(out, WRITER) as tmp, numba_threads(threads), _bar(progress, s.replications) as bar:
        runs: list[tuple[ReportSettings, dict[str, Any], dict[str, Verdict]]] = []
        for r in range(s.replications):
            # replication r: the whole design under its own seeds; figures come from the first
            sr = replication_settings(s, seed, r)
            ctx = Context(sr, Path(tmp), execution)
            for experiment in EXPERIMENTS:
                weight = _WEIGHT.get(experiment.KEY, 1)
                moved = [0.0]

                def advance(share: float, weight: float = weight, moved: list[float] = moved) -> None:
                    step = min(share * weight, weight - moved[0])
                    moved[0] += step
                    bar.update(step)

                ctx.advance = advance
                bar.set_description(f"report {r + 1}/{s.replications}: {experiment.KEY}")
                t, c = time.perf_counter(), time.process_time()
                ctx.results[experiment.KEY] = experiment.run(ctx)
                if r == 0:
                    figures[experiment.KEY] = experiment.draw(ctx.results, Path(tmp))
                timings[experiment.KEY] = timings.get(experiment.KEY, 0.0) + time.perf_counter() - t
                cpu[experiment.KEY] = cpu.get(experiment.KEY, 0.0) + time.process_time() - c
                advance(1.0)
            judged: dict[str, Verdict] = {}
            for experiment in EXPERIMENTS:
                judged.update(experiment.judge(ctx.results, sr))
            missing = [c.id for c in CLAIMS if c.id not in judged]
            if missing:
                raise RuntimeError(f"claims without a verdict: {missing}")
            runs.append((sr, ctx.results, judged))
        verdicts = stable_verdicts([judged for _, _, judged in runs])
        first_settings, results, _ = runs[0]
        results = {**results, "replications": [
            {"seeds": list(sr.seeds), "tune_seeds": list(sr.tune_seeds), "base": sr.base,
             "verdicts": {k: v.verdict for k, v in judged.items()},
             "parts": {k: [p.to_dict() for p in v.parts] for k, v in judged.items()}} for sr, _, judged in runs]}
        meta = _meta(time.perf_counter() - tic, timings, cpu, jobs, backend, quick and settings is None)
        meta["seed"] = seed
        meta["replications"] = s.replications
        doc = build_document(first_settings, results, verdicts, figures, EXPERIMENTS, meta)
        write_files(Path(tmp), doc, first_settings, results, verdicts, meta)
    return Report(first_settings, results, verdicts, meta)


def stable_verdicts(replications: list[dict[str, Verdict]]) -> dict[str, Verdict]:
    """Per claim, the verdict over the replications (:func:`~.verdicts.stable_verdict`: the majority's, else
    "unstable"), carried by the first replication that reached it (its parts and evidence are shown), with every
    replication's verdict and the share that agreed."""
    out = {}
    for claim in replications[0]:
        each = [rep[claim].verdict for rep in replications]
        verdict, share = stable_verdict(each)
        shown = next((rep[claim] for rep in replications if rep[claim].verdict == verdict), replications[0][claim])
        out[claim] = Verdict(shown.claim, verdict, shown.parts, shown.evidence, list(shown.notes), each, share)
    return out


@contextmanager
def _bar(progress: bool | None, replications: int = 1) -> Iterator[Any]:
    """A tqdm bar over the experiments of every replication, each weighted by its usual share of the time (None:
    only on a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=replications * sum(_WEIGHT.values()), desc="report", leave=False,
               disable=None if progress is None else not progress,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
    try:
        yield bar
    finally:
        bar.close()


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def _meta(seconds: float, timings: dict[str, float], cpu: dict[str, float], jobs: int, backend: str,
          quick: bool) -> dict[str, Any]:
    import numba
    import numpy as np

    import microdl

    return {"commit": _git_commit(), "microdl": microdl.__version__, "numpy": np.__version__,
            "numba": numba.__version__, "python": platform.python_version(), "machine": platform.platform(),
            "cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(), "jobs": jobs, "backend": backend,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": seconds, "timings": timings, "cpu_seconds": cpu, "quick": quick}
