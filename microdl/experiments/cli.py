"""The experiment commands of the ``microdl`` tool: ``compare``, ``sensitivity`` and ``report``.

:func:`microdl.cli.build_parser` calls :func:`add_commands` with its subparsers. Names, seeds and budgets are
checked while parsing, so a typo exits with status 2 and a message naming the option, before anything runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from microdl._format import format_seconds
from microdl.cli import (
    add_data_options,
    check_hidden_memory,
    fraction,
    positive_float,
    positive_int,
    read_data_option,
)

__all__ = ["add_commands", "EXECUTORS"]

#: What ``--executor`` takes (the first is the default): joblib's backends and a Dask cluster, as
#: :func:`microdl.experiments.runs.execute` takes them.
EXECUTORS = ("loky", "threading", "dask")


# -- argparse types ----------------------------------------------------------------------------------------
def _checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a checker that raises ValueError or TypeError."""
    def parse(text: str) -> Any:
        try:
            return check(text)
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = getattr(check, "__name__", "value")
    return parse


def _dataset_list(text: str) -> tuple[str, ...]:
    from microdl.experiments.runs import check_datasets

    return check_datasets(text)


def _optimizer_list(text: str) -> tuple[str, ...]:
    from microdl.experiments.runs import check_optimizers

    return check_optimizers(text)


def _swept_optimizer_list(text: str) -> tuple[str, ...]:
    """Optimizers whose learning rate can be swept: L-BFGS has none."""
    from microdl.experiments.runs import takes_lr

    names = _optimizer_list(text)
    no_rate = [name for name in names if not takes_lr(name)]
    if no_rate:
        raise ValueError(f"{', '.join(no_rate)} has no learning rate to sweep (its line search picks each step)")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    """``N`` (seeds 0..N-1) or a comma list of seeds (``0,5,7``; ``7,`` is the single seed 7)."""
    from microdl.experiments.runs import check_seeds

    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) == 1:
            return check_seeds(int(parts[0]))
        return check_seeds([int(p) for p in parts if p])
    except ValueError as exc:
        if "invalid literal" in str(exc):
            raise ValueError(f"must be a number of seeds or a comma list of seeds; got {text!r}") from None
        raise


def _budget(text: str) -> Any:
    from microdl.experiments.runs import parse_budget

    return parse_budget(text)


def _lr_pair(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"must be OPTIMIZER=RATE, such as adam=0.003; got {text!r}")
    (name,) = _optimizer_list(name)
    from microdl.experiments.runs import takes_lr

    if not takes_lr(name):
        raise ValueError(f"{name} has no learning rate (its line search picks each step)")
    try:
        return name, positive_float(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"the rate of {name} {exc}") from None


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(positive_int(p) for p in text.split(",") if p.strip())


def _percent(text: str) -> float:
    value = positive_float(text.rstrip("%"))
    if value >= 1000:
        raise argparse.ArgumentTypeError(f"must be a percentage below 1000, got {text!r}")
    return value / 100.0


def _add_execution(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument("--jobs", type=positive_int, default=1,
                   help="runs at a time (default 1, which also gives the cleanest wall-clock numbers)")
    g.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="what runs them: joblib's loky (default: local processes) or threading backend, or a Dask "
                        "cluster (dask, needs microdl[dask])")
    # NOTE [--backend is the optimizer kernels]: these commands called the executor --backend, a name that
    # train gives the optimizer kernels; the old spelling still works here, where it can mean nothing else.
    g.add_argument("--backend", choices=EXECUTORS, default=None, dest="old_backend", help=argparse.SUPPRESS)
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler address, such as tcp://10.0.0.5:8786 (with --executor dask; without it a "
                        "local cluster is started)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_execution(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    # ValueError: microdl.cli.main prints "microdl <command>: error: ..." and exits with status 2
    if args.old_backend is not None:
        if args.executor is not None and args.executor != args.old_backend:
            raise ValueError(f"--backend {args.old_backend} and --executor {args.executor} disagree; give "
                             "--executor only (--backend is its old name here)")
        print(f"{parser.prog}: --backend is deprecated here; use --executor {args.old_backend} (--backend names the "
              "optimizer kernels, in microdl train)", file=sys.stderr)
        args.executor = args.old_backend
    args.executor = args.executor or EXECUTORS[0]
    if args.scheduler is not None and args.executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if args.executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:  # dask is optional: only runs.py imports it
            raise ValueError('--executor dask needs dask.distributed, which is not installed: '
                             'pip install "microdl[dask]"')


def _check_out(args: argparse.Namespace, writer: str) -> None:
    """Refuse a bad --out before any run (NOTE [how the CLI fails] in microdl.cli)."""
    from microdl.experiments.comparison import check_output_folder

    check_output_folder(args.out, writer, "--out")


def _execution(args: argparse.Namespace) -> dict[str, Any]:
    return {"jobs": args.jobs, "backend": args.executor, "scheduler": args.scheduler,
            "progress": False if args.no_progress else None}


# -- compare -----------------------------------------------------------------------------------------------
def _add_compare(sub: Any) -> None:
    from microdl.cli import add_plugin_option
    from microdl.experiments.comparison import DEFAULT_EPOCHS, DEFAULT_TARGET, RATES
    from microdl.experiments.runs import SIX_OPTIMIZERS
    from microdl.optim import available_optimizers

    p = sub.add_parser("compare", help="compare optimizers across datasets and seeds", description=(
        "Train the same MLP with each optimizer on each dataset, once per seed (same initialisation, split and "
        "batch order for every optimizer of a seed). Prints a table per dataset (final train/test loss and "
        "accuracy or R², epochs and time to a target loss, divergences) and writes curves.png, summary.csv, "
        "summary.txt and history.json to --out. With no options: the six optimizers of the article on digits "
        "with 3 seeds, each at the learning rate tuned once for digits (--rates)."))
    p.add_argument("--dataset", type=_checked(_dataset_list), action="append", metavar="NAME[,NAME...]",
                   help="dataset(s); repeat or give a comma list (default: digits)")
    add_data_options(p, repeat=True)
    add_plugin_option(p)
    others = [n for n in available_optimizers(takes_lr=True) if n not in SIX_OPTIMIZERS]
    p.add_argument("--optimizers", type=_checked(_optimizer_list), default=SIX_OPTIMIZERS, metavar="LIST",
                   help=f"comma list of optimizers (default: {','.join(SIX_OPTIMIZERS)}; also {', '.join(others)}, "
                        "and lbfgs: full-batch L-BFGS, which has no learning rate and takes --epochs as its "
                        "iteration limit; --plugin adds your own)")
    p.add_argument("--seeds", type=_checked(_seeds), default=(0, 1, 2), metavar="N|LIST",
                   help="number of seeds (0..N-1) or a comma list of seeds (default: 3)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"epochs per run (default {DEFAULT_EPOCHS}); a cap with a grad_evals or time budget")
    p.add_argument("--budget", type=_checked(_budget), default=None, metavar="KIND:N",
                   help="epochs:N, grad_evals:N or time:SECONDS (training time, evaluation excluded)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="mini-batch size (default 32; gd and lbfgs: full)")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[64], metavar="N",
                   help="hidden layer widths (default: 64)")
    p.add_argument("--lr", type=_checked(_lr_pair), action="append", default=[], metavar="OPTIMIZER=RATE",
                   help="learning rate of one optimizer (repeatable); the others come from --rates")
    p.add_argument("--rates", choices=RATES, default="auto",
                   help="where the other learning rates come from: auto (default) = the rates tuned once for a "
                        "built-in dataset, tuned on a validation split for your own data; tuned = tune them now "
                        "on a validation split of the training data; torch = torch.optim's defaults")
    p.add_argument("--tune", action="store_true", help="the same as --rates tuned")
    p.add_argument("--target-fraction", type=fraction, default=DEFAULT_TARGET, metavar="F",
                   help="the target loss is this fraction of the way from the initial loss to the best final loss "
                        f"(default {DEFAULT_TARGET})")
    p.add_argument("--out", default="microdl-compare", metavar="DIR",
                   help="output folder (default microdl-compare); replaced as a whole, so it must be new or an "
                        "earlier compare output")
    _add_execution(p)
    p.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from microdl.experiments.comparison import WRITER, compare

    _check_execution(args, parser)
    _check_out(args, WRITER)
    check_hidden_memory(args.hidden, batch_size=args.batch_size, jobs=args.jobs)
    if args.epochs is not None and args.budget is not None and args.budget.kind == "epochs" \
            and args.budget.value != args.epochs:
        raise ValueError("--epochs and --budget epochs:N disagree; give one of them")
    if args.tune and args.rates not in ("auto", "tuned"):
        raise ValueError(f"--tune contradicts --rates {args.rates}; give one of them")
    own = read_data_option(args, parser)
    datasets = own or [name for group in (args.dataset or [("digits",)]) for name in group]
    tic = time.perf_counter()
    result = compare(datasets, args.optimizers, args.seeds, epochs=args.epochs, budget=args.budget,
                     batch_size=args.batch_size, hidden=args.hidden, lrs=dict(args.lr),
                     rates="tuned" if args.tune else args.rates, target=args.target_fraction, **_execution(args))
    paths = result.save(args.out)
    print(result.format_tables())
    if result.tuning:
        print(_tuning_note(result))
    print(f"\n{len(result.runs)} runs in {format_seconds(time.perf_counter() - tic)}; wrote "
          f"{', '.join(str(p) for p in paths.values())}")
    _print_timing_note(result.runs, parser)
    return 0


def _print_timing_note(runs: list[dict[str, Any]], parser: argparse.ArgumentParser) -> None:
    """Name the runs whose time per epoch jumped while they ran (NOTE [a run whose time jumped] in
    microdl._format), so that their times are not read as the optimizer's."""
    from microdl._format import JUMP_FACTOR, step_times, timing_jumped

    jumped = [r for r in runs
              if timing_jumped(step_times([math.nan if t is None else t for t in r["wall_time"][1:]]))]
    if not jumped:
        return
    names = [f"{r.get('dataset', '')} {r['optimizer']}" + (f" lr {r['lr']:.3g}" if r.get("lr") else "")
             + f" seed {r['seed']}" for r in jumped]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    print(f"{parser.prog}: note: in {len(jumped)} of {len(runs)} runs the slowest tenth of the epochs took more "
          f"than {JUMP_FACTOR:g}× the median epoch ({', '.join(names[:3])}{more}): the machine got busy while they "
          "ran, so their times say more about the load than about the optimizer; rerun on a quiet machine",
          file=sys.stderr)


def _tuning_note(result: Any) -> str:
    lines = ["tuned hyperparameters (consensus of the tuning seeds; per-seed choices in history.json):"]
    for dataset, picks in result.tuning.items():
        for o, t in picks.items():
            values = ", ".join(f"{k} {v:.3g}" for k, v in t["hyper"].items())
            edge = f"; best on an edge: {', '.join(t['on_edge'])}" if t["on_edge"] else ""
            lines.append(f"  {dataset}: {o}: {values} ({t['trials']} trials + defaults, {t['rounds']} round(s){edge})")
    return "\n".join(lines)


# -- sensitivity -------------------------------------------------------------------------------------------
def _add_sensitivity(sub: Any) -> None:
    from microdl.experiments.runs import SIX_OPTIMIZERS
    from microdl.experiments.sweep import DEFAULT_SWEEP_EPOCHS

    p = sub.add_parser("sensitivity", help="sweep the learning rate (and SGD's batch size)", description=(
        "Train each optimizer at every learning rate of a log grid (SGD also at several batch sizes) on a "
        "validation split of the training data, plot the final validation loss against the learning rate "
        "(sensitivity.png) and report the width, in decades, of the range of rates within --within percent of "
        "the best."))
    p.add_argument("--dataset", type=_checked(_dataset_list), default=None, metavar="NAME",
                   help="dataset (default digits)")
    add_data_options(p)
    p.add_argument("--optimizers", type=_checked(_swept_optimizer_list), default=SIX_OPTIMIZERS, metavar="LIST",
                   help=f"comma list of optimizers with a learning rate (default: {','.join(SIX_OPTIMIZERS)})")
    p.add_argument("--seeds", type=_checked(_seeds), default=(0, 1), metavar="N|LIST",
                   help="number of seeds or a comma list (default: 2)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"epochs per run (default {DEFAULT_SWEEP_EPOCHS})")
    p.add_argument("--budget", type=_checked(_budget), default=None, metavar="KIND:N",
                   help="epochs:N, grad_evals:N or time:SECONDS instead of --epochs")
    p.add_argument("--batch-size", type=positive_int, default=32, help="batch size of the others (default 32)")
    p.add_argument("--sgd-batch-sizes", type=_checked(_int_list), default=(8, 32, 128), metavar="LIST",
                   help="SGD's batch sizes (default 8,32,128)")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[64], metavar="N", help="hidden widths")
    p.add_argument("--within", type=_percent, default=0.10, metavar="PERCENT",
                   help="tolerance of the flat range, in percent of the best loss (default 10)")
    p.add_argument("--out", default="microdl-sensitivity", metavar="DIR",
                   help="output folder (default microdl-sensitivity)")
    _add_execution(p)
    p.set_defaults(run=_run_sensitivity)


def _run_sensitivity(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from microdl.experiments.sweep import WRITER, sensitivity

    _check_execution(args, parser)
    _check_out(args, WRITER)
    check_hidden_memory(args.hidden, batch_size=args.batch_size, jobs=args.jobs)
    own = read_data_option(args, parser)
    if args.dataset is not None and len(args.dataset) != 1:
        raise ValueError("sensitivity takes one --dataset")
    if args.epochs is not None and args.budget is not None:
        raise ValueError("give --epochs or --budget, not both")
    tic = time.perf_counter()
    source = own[0] if own else (args.dataset or ("digits",))[0]
    result = sensitivity(source, args.optimizers, args.seeds, epochs=args.epochs, budget=args.budget,
                         batch_size=args.batch_size, batch_sizes=args.sgd_batch_sizes, hidden=args.hidden,
                         within=args.within, **_execution(args))
    paths = result.save(args.out)
    print(result.format_table())
    print(f"\n{len(result.runs)} runs in {format_seconds(time.perf_counter() - tic)}; wrote "
          f"{', '.join(str(p) for p in paths.values())}")
    _print_timing_note(result.runs, parser)
    return 0


# -- report ------------------------------------------------------------------------------------------------
def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="test the optimisation article's claims and write a report", description=(
        "Put each of the optimisation article's 31 claims to a measurement (six optimizers, every relevant "
        "hyperparameter tuned, on a set of problems, "
        "learning-rate and batch-size sweeps, SGD's steps one by one, wider networks, local minima on 2-D "
        "functions and a teacher-student network, time and memory as the data grows and a partial_fit stream, a "
        "switching target, Zipf-sparse inputs and small-batch noise, GD with momentum/schedule/clipping, the "
        "rules' own code) and write report.html (figures beside verdicts), report.md and results.json, each "
        "verdict with its rule, 95% interval and how many of the report's independent replications agreed."))
    p.add_argument("--out", default="report", metavar="DIR", help="output folder (default report)")
    p.add_argument("--seed", type=_checked(_seed), default=0, metavar="N",
                   help="derive every evaluation and tuning seed from N (default 0); two different N are two "
                        "independent replications of the report")
    p.add_argument("--quick", action="store_true", help="tiny budgets (seconds; for tests and previews)")
    _add_execution(p)
    p.set_defaults(run=_run_report)


def _seed(text: str) -> int:
    """A non-negative integer seed."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be a non-negative integer; got {text!r}") from None
    if value < 0:
        raise ValueError(f"must be a non-negative integer; got {text!r}")
    return value


def _run_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from microdl.experiments.report import make_report

    _check_execution(args, parser)  # make_report checks --out first thing, before any experiment
    tic = time.perf_counter()
    report = make_report(args.out, quick=args.quick, seed=args.seed, **_execution(args))
    print(report.summary_text())
    print(f"\nreport written to {Path(args.out) / 'report.md'} and {Path(args.out) / 'report.html'} "
          f"in {format_seconds(time.perf_counter() - tic)}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``compare``, ``sensitivity`` and ``report`` to the ``microdl`` subparsers."""
    _add_compare(sub)
    _add_sensitivity(sub)
    _add_report(sub)
