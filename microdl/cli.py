"""The ``microdl`` command-line tool.

``microdl train`` trains one MLP on a named dataset or your own file (``--data``) and prints per-epoch progress
and the final train and test loss and score; ``--save`` writes a checkpoint with the preprocessing that
``microdl predict`` needs to give predictions in the original units and labels, and ``--resume`` continues a saved
run exactly; ``microdl datasets`` lists the datasets; ``microdl explore`` writes the explorable page
(:mod:`microdl.explore`). The experiment commands
(``compare``, ``sensitivity``, ``report``) are added by :mod:`microdl.experiments.cli`. Every command has
``--help``. ``python -m microdl`` is the same tool.

NOTE [how the CLI fails]
A command fails with one line on stderr, never a traceback, unless the traceback is a bug's:

* bad options and bad values (also those only the library can judge, such as a malformed data file, and a
  missing CUDA GPU or package): status 2, before any training, prefixed by the subcommand; argparse's usage
  block is left to ``--help`` (:class:`Parser`);
* output paths (``--save``, ``--out``) are checked before any training, so a typo never costs a run; missing
  folders above them are created when the output is written, alike for files and folders;
* options are never abbreviated (``--epoch`` is an error, not ``--epochs``), and each name means one thing:
  ``--backend`` the optimizer kernels, ``--executor`` what runs the experiments' many runs;
* an OS error while reading or writing (a full disk): status 1;
* a diverged ``train`` (fit's verdict, or ``compare``'s blow-up rule): status 1, one line saying why, and no
  checkpoint written, so a good one already at ``--save`` stays;
* Ctrl-C: status 130, also while the modules load or a kernel compiles (NOTE [a stop Python swallowed] in
  :mod:`microdl.config`); files are written atomically (:mod:`microdl._files`), so whatever was there before
  is intact; SIGTERM (``kill``, ``docker stop``, Kubernetes) and SIGHUP (a closed terminal) stop a command
  the same way (joblib's workers stopped, temporary files removed), with status 143 and 129;
* a reader that closed the pipe (``microdl train | head``): status 141, as for a shell tool killed by
  SIGPIPE, and silence, since whoever would read a message has gone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from microdl._format import format_seconds

__all__ = ["main", "build_parser", "Parser", "positive_int", "positive_float", "non_negative_float", "fraction",
           "add_data_options", "read_data_option", "check_hidden_memory"]

#: Modules that add subcommands with ``add_commands(subparsers)``.
_COMMAND_MODULES = ("microdl.experiments.cli",)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**32 - 1] (what NumPy's RandomState and scikit-learn take)."""
    from microdl._validation import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def name_value(text: str) -> tuple[str, float]:
    """argparse type: ``NAME=VALUE`` with a finite number, for a formula's parameter."""
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name.isidentifier() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be NAME=NUMBER, got {text!r}")
    return name, number


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


# -- networks that cannot fit in memory (train, compare, sensitivity) ------------------------------------------
#: Copies of the parameter buffer that a fit holds at least: the parameters, their gradient, up to three
#: optimizer state buffers, and the last good state kept for a divergence (parameters and state again).
_BUFFERS_PER_FIT = 8


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_hidden_memory(hidden: Sequence[int], *, batch_size: int = 32, itemsize: int = 8, jobs: int = 1) -> None:
    """Refuse, before anything is allocated, hidden widths whose network cannot fit in the memory available:
    ValueError naming ``--hidden`` and the memory it needs (a lower bound: one input and one output, the
    buffers a fit keeps, the activations of a batch), so that ``--hidden 200000 200000`` is one line, not a
    MemoryError traceback after the data was loaded (issue 21, case 12)."""
    sizes = [1, *hidden, 1]
    n_params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    need = jobs * itemsize * (_BUFFERS_PER_FIT * n_params + 2 * batch_size * sum(hidden))
    available = _available_memory()
    if available is not None and need > available:
        runs = f" ({jobs} runs at a time)" if jobs > 1 else ""
        raise ValueError(f"--hidden {' '.join(map(str, hidden))}: the network has at least {n_params:.3g} "
                         f"parameters and needs at least {_gib(need)} of memory to train{runs}, more than the "
                         f"{_gib(available)} available; use narrower layers")


def _gib(n: int) -> str:
    return f"{n / 2**40:.3g} TiB" if n >= 2**40 else f"{n / 2**30:.3g} GiB"


# -- your own data (train and compare) ---------------------------------------------------------------------
def add_data_options(p: argparse.ArgumentParser, *, repeat: bool = False) -> None:
    """``--data``, ``--target`` and ``--task``: train on your own file instead of a built-in dataset."""
    from microdl.datasets import MAX_INFERRED_CLASSES, TASKS

    g = p.add_argument_group("your own data (instead of --dataset)")
    g.add_argument("--data", metavar="PATH", action="append" if repeat else "store", default=None,
                   help="a CSV file with a header line (name the label column with --target) or an .npz file "
                        "holding X and y" + ("; repeatable" if repeat else ""))
    g.add_argument("--target", metavar="COLUMN", default=None,
                   help="the CSV column to predict (for .npz: the array of targets, default y)")
    g.add_argument("--task", choices=TASKS, default=None,
                   help="override the task inferred from the targets (strings, and whole numbers with at most "
                        f"{MAX_INFERRED_CLASSES} distinct values, are classes)")


def read_data_option(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """The files of ``--data`` read and checked (:func:`microdl.datasets.read_data`); ValueError if bad."""
    paths = args.data if isinstance(args.data, list) else [] if args.data is None else [args.data]
    if not paths:
        if args.target is not None or args.task is not None:
            parser.error("--target and --task go with --data")
        return []
    if getattr(args, "dataset", None):
        parser.error("give --dataset or --data, not both")
    from microdl.datasets import read_data

    return [read_data(path, target=args.target, task=args.task) for path in paths]


# -- train -------------------------------------------------------------------------------------------------
def _add_train(sub: Any) -> None:
    from microdl.datasets import DATASETS
    from microdl.nn import activation_names, loss_names
    from microdl.optim import BACKENDS, OPTIMIZERS, SCHEDULES, available_optimizers, optimizer_entry

    p = sub.add_parser("train", help="train an MLP on a dataset", description=(
        "Train an MLP on one of scikit-learn's datasets, or on your own file (--data), and print the per-epoch "
        "loss and the final train and test loss and accuracy (R² for regression). Exits with status 1 if "
        "training diverged (fit stopped it, or the loss grew more than 1000-fold), and then writes no --save "
        "checkpoint."))
    p.add_argument("--dataset", default=None, choices=list(DATASETS), help="dataset (default: digits)")
    add_data_options(p)
    add_plugin_option(p)
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS),
                   help="optimizer (default: sgd); lbfgs is full-batch L-BFGS (SciPy's L-BFGS-B, CPU only), which "
                        "has no learning rate, so it takes none of --lr, --momentum, --weight-decay, --schedule, "
                        "--clip-norm, --clip-value, --backend, --device cuda")
    p.add_argument("--epochs", type=positive_int, default=30,
                   help="number of epochs (default: 30); for lbfgs the iteration limit (one iteration per epoch)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="mini-batch size (default: 32; gd and lbfgs always use the full batch)")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[64], metavar="N",
                   help="hidden layer widths (default: 64)")
    p.add_argument("--activation", default="relu", choices=list(activation_names()), help="hidden activation")
    p.add_argument("--activation-param", type=name_value, action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the activation (repeatable), e.g. alpha=0.5 for elu")
    p.add_argument("--loss", default=None, choices=list(loss_names()),
                   help="loss (default: cross_entropy for classification, squared_error for regression)")
    p.add_argument("--loss-param", type=name_value, action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the loss (repeatable), e.g. delta=0.5 for huber")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: the optimizer's preset for the dataset, with its other preset "
                        "hyperparameters, as compare uses them; for your own data the median of the presets; "
                        "train says which it used)")
    with_momentum = [n for n in available_optimizers() if optimizer_entry(n).takes_momentum]
    p.add_argument("--momentum", type=non_negative_float, default=None, help=f"momentum ({', '.join(with_momentum)})")
    p.add_argument("--weight-decay", type=non_negative_float, default=None, help="optimizer weight decay")
    p.add_argument("--alpha", type=non_negative_float, default=0.0, help="L2 penalty of the model (default 0)")
    p.add_argument("--schedule", default="constant", choices=list(SCHEDULES), help="learning-rate schedule")
    p.add_argument("--clip-norm", type=positive_float, default=None, help="clip gradients to this global norm")
    p.add_argument("--clip-value", type=positive_float, default=None, help="clip gradient elements to ±value")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping on the validation loss, restoring the best weights")
    p.add_argument("--validation-fraction", type=fraction, default=None,
                   help="hold out this fraction of the training data for validation")
    p.add_argument("--test-size", type=fraction, default=0.25, help="test fraction (default 0.25)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"], help="precision")
    p.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                   help="optimizer backend, the model on the Numba kernels; or auto (the default): the model and the "
                        "optimizer on NumPy for a small run, which then loads no compiled code, and on Numba's "
                        "CPU kernels otherwise (microdl.nn.choose_backend)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the whole training step runs (cuda needs numba-cuda and a GPU)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of initialisation, split and shuffling")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="write a checkpoint (.npz) here, with the preprocessing and column names that microdl "
                        "predict needs (checked before training; missing folders are created; written atomically)")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue the run saved in this checkpoint for --epochs more epochs, on the same data "
                        "with its own settings, exactly as if it had never stopped; saves back to PATH unless "
                        "--save says otherwise")
    p.add_argument("--json", action="store_true", help="print the final summary as strict JSON (null for NaN)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(run=_run_train)


class _PrintEpochs:
    """Callback that prints one line per epoch (through tqdm, so the bar stays intact)."""

    def __init__(self, every: int, first: int = 0) -> None:
        self.every, self.first = every, first  # first: the epochs done before (train --resume)

    def on_epoch_end(self, epoch: int, history: Any, model: Any, optimizer: Any) -> bool:
        if epoch % self.every == 0 or epoch == 1:
            epoch += self.first
            from tqdm.auto import tqdm

            val, lr = history.val_loss[-1], history.lr[-1]
            extra = "" if math.isnan(val) else f"  val_loss {val:.4f}  val_score {history.val_metric[-1]:.4f}"
            rate = "—" if math.isnan(lr) else f"{lr:.3g}"  # NaN: an optimizer without a learning rate (L-BFGS)
            unit = "iteration" if getattr(optimizer, "drives_epochs", False) else "epoch"  # L-BFGS: one per epoch
            tqdm.write(f"{unit} {epoch:4d}  loss {history.train_loss[-1]:.4f}{extra}  lr {rate}  "
                       f"{format_seconds(history.wall_time[-1])}")
        return False


#: The train options that make no sense for L-BFGS, which has no learning rate (its line search picks every
#: step) and runs on the CPU: option name, the one value it may have (its default) and why.
_NOT_FOR_LBFGS = {
    "lr": ("--lr", None, "it has no learning rate: its line search picks each step"),
    "momentum": ("--momentum", None, "it has no momentum: its curvature pairs play that part"),
    "weight_decay": ("--weight-decay", None, "for an L2 penalty use --alpha"),
    "schedule": ("--schedule", "constant", "it has no learning rate to schedule"),
    "clip_norm": ("--clip-norm", None, "its line search needs the true gradient"),
    "clip_value": ("--clip-value", None, "its line search needs the true gradient"),
    "backend": ("--backend", "auto", "it runs SciPy's L-BFGS-B on the CPU"),
    "device": ("--device", "cpu", "it runs on the CPU only: SciPy's L-BFGS-B works on host arrays"),
}


def _check_lbfgs_options(args: argparse.Namespace) -> None:
    """Refuse, in one line naming them, the options that make no sense for L-BFGS (NOTE [how the CLI fails]:
    status 2, before any work)."""
    given = []
    for dest, (option, allowed, why) in _NOT_FOR_LBFGS.items():
        value = getattr(args, dest)
        if value != allowed:
            given.append(f"{option}{'' if allowed is None else ' ' + value} ({why})")  # a choice: name it
    if given:
        raise ValueError("--optimizer lbfgs takes no " + ", ".join(given))


#: What ``train --resume`` takes besides the checkpoint: the rest of the run's settings are the checkpoint's.
_RESUME_TAKES = ("resume", "epochs", "save", "data", "target", "json", "quiet", "plugin")


def _given_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The ``dest`` of every option written in ``argv`` (abbreviations are off, so a token names an option
    exactly, or as ``--option=value``)."""
    given = set()
    for action in parser._actions:
        for option in action.option_strings:
            if any(token == option or token.startswith(option + "=") for token in argv):
                given.add(action.dest)
    return given


def _resume_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """Load the ``--resume`` checkpoint and put its run's settings in ``args``; the checkpoint."""
    from microdl.io import load

    refused = sorted(args.given - set(_RESUME_TAKES))
    if refused:
        options = [a.option_strings[0] for a in parser._actions if a.dest in refused]
        parser.error(f"--resume continues the saved run with its own settings, so it takes no {', '.join(options)} "
                     f"(it takes {', '.join('--' + o for o in _RESUME_TAKES[1:])})")
    if not os.path.isfile(args.resume):
        raise ValueError(f"--resume {args.resume}: no such file")
    ckpt = load(args.resume)
    if ckpt.training is None or ckpt.optimizer is None or ckpt.preprocessing is None:
        raise ValueError(f"--resume {args.resume}: the checkpoint holds no record of its run (it was written by "
                         "microdl.io.save, or by an older microdl); only a checkpoint of microdl train --save "
                         "can be resumed")
    t = ckpt.training
    data = t["data"]
    if data["path"] is not None and "data" not in args.given:
        args.data = data["path"]
    if args.data is not None:
        args.target = args.target if "target" in args.given else data["target"]
        args.task = data["task"]
    else:
        args.dataset = data["dataset"]
    for key in ("test_size", "seed", "dtype"):
        setattr(args, key, data[key])
    for key in ("optimizer", "batch_size", "schedule", "clip_norm", "clip_value", "validation_fraction",
                "patience"):
        setattr(args, key, t["fit"][key])
    args.save = args.save if args.save is not None else args.resume  # continue the same file
    return ckpt


def _preset_rate(optimizer: str, dataset: str | None, task: str) -> tuple[dict[str, Any], str]:
    """The hyperparameters ``train`` uses when no ``--lr`` is given, and where they come from: the preset
    tuned for a built-in dataset (as ``compare`` uses it); for your own data, the preset with the median rate
    among the built-in datasets of the same task (one tuned set, not a mix of medians: a median rate with a
    median momentum from other datasets diverged on a plain regression); torch.optim's default for an optimizer
    that has no preset."""
    from microdl.datasets import DATASETS
    from microdl.experiments.tuning import preset
    from microdl.optim import optimizer_entry

    found = preset(dataset, optimizer)
    if found is not None:
        return found, f"the preset tuned for {dataset}"
    tuned = sorted(((p["lr"], name, p) for name in DATASETS if DATASETS[name][0] == task
                    for p in [preset(name, optimizer)] if p is not None), key=lambda t: (t[0], t[1]))
    if not tuned:
        return {"lr": optimizer_entry(optimizer).lr_default}, "torch.optim's default: no preset for it"
    _, name, hyper = tuned[(len(tuned) - 1) // 2]
    return hyper, (f"no preset for your data: the preset of {name}, the median rate of the {len(tuned)} built-in "
                   f"{task} datasets' presets")


def _data_fingerprint(data: Any) -> str:
    """A digest of the training split, so that ``--resume`` refuses other data."""
    import hashlib

    digest = hashlib.sha256()
    for a in (data.X_train, data.y_train):
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def _continued(old: Any, new: Any) -> Any:
    """One History of a run and its continuation: the cumulative counters of ``new`` go on from ``old``'s."""
    from dataclasses import fields

    for f in fields(old):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if isinstance(before, list):
            if f.name in ("wall_time", "grad_evals", "samples_seen") and before:
                after = [before[-1] + x for x in after]
            setattr(new, f.name, before + after)
    if new.best_epoch is not None:
        new.best_epoch += old.epochs
    return new


def _schedule(name: str, done: Any, more: int, saved: dict[str, Any] | None) -> Any:
    """The schedule of ``train``: built for the whole run (the ``done`` History's epochs + ``more``), going on
    from the epoch after ``done``'s with the running state ``saved`` by the run it continues (ReduceLROnPlateau's
    best loss and counters) and the loss that run monitored last, so that a resumed run takes the rates an
    unbroken one would."""
    from microdl.optim.schedules import LRSchedule, make_schedule

    schedule = make_schedule(name, epochs=done.epochs + more)
    if saved:
        schedule.load_state_dict({k: v for k, v in saved.items() if k.startswith("_")})
    if not done.epochs:
        return schedule
    offset = done.epochs
    # what fit passes as the monitor: the last validation loss if there is validation data, else the train loss
    last = done.val_loss[-1] if not math.isnan(done.val_loss[-1]) else done.train_loss[-1]

    class Continued(LRSchedule):
        def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
            return schedule.lr_at(epoch + offset, base_lr, last if epoch == 0 and metric is None else metric)

        def state_dict(self) -> dict[str, Any]:
            return schedule.state_dict()

    return Continued()


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import numpy as np

    from microdl.datasets import load_dataset
    from microdl.experiments.runs import BLOW_UP_FACTOR, blew_up
    from microdl.nn import MLP, choose_backend, get_loss
    from microdl.optim import available_optimizers, make_optimizer, optimizer_entry
    from microdl.train import DivergenceWarning, EarlyStopping, History, evaluate_loss, fit, score, split_validation

    ckpt = _resume_settings(args, parser) if args.resume is not None else None
    lbfgs = args.optimizer == "lbfgs"
    if lbfgs and ckpt is None:
        _check_lbfgs_options(args)
    hyper: dict[str, Any] = {}
    if args.lr is not None:
        hyper["lr"] = args.lr
    if args.momentum is not None:
        if not optimizer_entry(args.optimizer).takes_momentum:
            takes = [n for n in available_optimizers() if optimizer_entry(n).takes_momentum]
            parser.error(f"--momentum applies to {', '.join(takes)}, not {args.optimizer}")
        hyper["momentum"] = args.momentum
    if args.weight_decay is not None:
        hyper["weight_decay"] = args.weight_decay
    if args.patience is not None and args.validation_fraction is None:
        args.validation_fraction = 0.1
    backend, device = args.backend, args.device
    if device == "cuda" or backend == "cuda":  # either one says "on the GPU": the parameters and the update
        if backend not in ("auto", "cpu", "cuda"):  # must live in the same place, so one implies the other
            parser.error(f"--device cuda needs the cuda optimizer backend, not --backend {backend}")
        backend = device = "cuda"
    from microdl._files import check_writable_file, strict_json

    if ckpt is None:  # a resumed model's size is known to fit: it was trained
        check_hidden_memory(args.hidden, batch_size=args.batch_size, itemsize=np.dtype(args.dtype).itemsize)
    if args.save is not None:
        check_writable_file(args.save, "--save")
    own = read_data_option(args, parser)
    source = own[0] if own else (args.dataset or "digits")
    data = load_dataset(source, test_size=args.test_size, random_state=args.seed, dtype=args.dtype)
    fingerprint = _data_fingerprint(data)
    rate_note, lr_source = None, "given" if args.lr is not None else None
    if ckpt is not None:
        if fingerprint != ckpt.training["data"]["fingerprint"]:
            raise ValueError(f"--resume {args.resume}: the training data differs from the data the checkpoint was "
                             f"trained on ({source if isinstance(source, str) else source.source}); resume on the "
                             "same data")
        model, optimizer, done = ckpt.model, ckpt.optimizer, ckpt.history
        loss = model.loss
        if not lbfgs:
            optimizer.lr = ckpt.training["fit"]["base_lr"]  # the schedule's base (the last epoch's rate was saved)
        rng = np.random.default_rng()
        rng.bit_generator.state = ckpt.training["rng"]  # the shuffling stream where the run left it
        lr_source = ckpt.training.get("lr_source")
    else:
        loss = args.loss or data.loss
        if (get_loss(loss).targets == "classes") != (get_loss(data.loss).targets == "classes"):
            parser.error(f"--loss {loss} does not fit {data.name}, a {data.task} task (its loss is {data.loss})")
        if args.lr is None and not lbfgs:
            preset, lr_source = _preset_rate(args.optimizer, None if own else source, data.task)
            hyper = {**preset, **hyper}  # what the user gave wins
            shown = ", ".join(f"{k} {_figures(v)}" for k, v in hyper.items() if k != "lr")
            how = (f"microdl sensitivity --data {args.data} --target {args.target}" if own
                   else f"microdl sensitivity --dataset {source}") + f" --optimizers {args.optimizer}"
            rate_note = (f"{args.optimizer}: lr {hyper['lr']:.3g}{' with ' + shown if shown else ''} ({lr_source}); "
                         f"set --lr to choose another, and see which rates work with `{how}`")
        sizes = (data.n_features, *args.hidden, data.n_outputs)
        model_backend = "numba"
        if backend == "auto":  # NOTE [the NumPy backend for small fits] in microdl.nn.mlp
            model_backend = choose_backend(sizes, data.X_train.shape[0], args.epochs,
                                           None if lbfgs else args.batch_size, args.activation, loss, device)
            backend = "numpy" if model_backend == "numpy" and not lbfgs else "cpu"  # (L-BFGS: SciPy's, on the host)
        model = MLP(sizes, activation=args.activation, loss=loss, alpha=args.alpha, dtype=args.dtype,
                    random_state=args.seed, device=device, activation_params=dict(args.activation_param),
                    loss_params=dict(args.loss_param), backend=model_backend)
        optimizer = make_optimizer(args.optimizer, model.params, backend=backend, **hyper)
        done = History()
        rng = np.random.default_rng(args.seed)  # as fit(random_state=seed) makes it: kept to save its state
    base_lr = None if lbfgs else float(optimizer.lr)
    # The validation split is drawn here, from a stream of its own seeded as fit would seed it, so that a resumed
    # run holds out the same rows; the shuffling then draws from `rng` (NOTE [random streams] in microdl.train).
    X_fit, Y_fit = data.X_train, model.encode_targets(data.y_train)
    validation_data = None
    if args.validation_fraction is not None:
        split_rng = rng if ckpt is None else np.random.default_rng(args.seed)
        X_fit, Y_fit, X_val, Y_val = split_validation(X_fit, Y_fit, args.validation_fraction, split_rng,
                                                      stratify=loss == "cross_entropy")
        validation_data = (X_val, Y_val)
    schedule = None if lbfgs else _schedule(args.schedule, done, args.epochs,
                                            ckpt.training.get("schedule_state") if ckpt else None)
    callbacks: list[Any] = []
    talk = not args.quiet and not args.json
    if talk:
        print(f"{data.name}: {data.X_train.shape[0]} train / {data.X_test.shape[0]} test samples, "
              f"{data.n_features} features, {data.task}; {model!r}; {optimizer!r}")
        if rate_note:
            print(rate_note)
        if ckpt is not None:
            print(f"resuming {args.resume} after {done.epochs} {'iterations' if lbfgs else 'epochs'}, for "
                  f"{args.epochs} more")
        callbacks.append(_PrintEpochs(every=max(1, args.epochs // 30), first=done.epochs))
    if args.patience is not None:
        callbacks.append(EarlyStopping(patience=args.patience))
    with np.errstate(over="ignore", invalid="ignore"):
        initial_loss = evaluate_loss(model, data.X_train, data.y_train)  # for the blow-up rule below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # said once, in the summary and the line below
        history = fit(model, optimizer, X_fit, Y_fit, epochs=args.epochs, batch_size=args.batch_size,
                      random_state=rng, validation_data=validation_data, schedule=schedule,
                      clip_norm=args.clip_norm, clip_value=args.clip_value, callbacks=callbacks,
                      progress=talk and args.epochs >= 10)
    history = _continued(done, history)

    Y_train, Y_test = model.encode_targets(data.y_train), model.encode_targets(data.y_test)
    metric = "accuracy" if data.task == "classification" else "r2"
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's loss may overflow: reported as null
        summary = {
            "dataset": data.name, "optimizer": args.optimizer, "lr": base_lr, "lr_source": lr_source,
            "epochs": history.epochs,
            "stop_reason": history.stop_reason,
            "train_loss": evaluate_loss(model, data.X_train, Y_train),
            "test_loss": evaluate_loss(model, data.X_test, Y_test),
            f"train_{metric}": score(model, data.X_train, Y_train), f"test_{metric}": score(model, data.X_test, Y_test),
            "wall_time_s": history.wall_time[-1] if history.wall_time else 0.0,
        }
    finite_model = bool(np.all(np.isfinite(model.host_params())))
    # Trust no single signal: fit's verdict, weights that are not finite, and compare's rule for a run that blew
    # up without overflowing yet (NOTE [a diverged run] in microdl.experiments.runs).
    losses = [initial_loss, *history.train_loss[done.epochs:]]
    blown = blew_up(losses, [summary["train_loss"], summary["test_loss"]])
    diverged = bool(history.diverged) or not finite_model or blown
    summary["diverged"] = diverged
    notes = []
    if diverged:
        # the reason without fit's Python-level advice: with --json it is not printed anywhere else on stderr
        if history.diverged:
            why = history.stop_reason.removeprefix("diverged: ").split(". Try ")[0]
        elif finite_model and all(math.isfinite(v) for v in [*losses, summary["train_loss"], summary["test_loss"]]):
            peak = max(*losses, summary["train_loss"], summary["test_loss"])
            why = f"the loss grew from {initial_loss:.4g} to {peak:.4g}, more than {BLOW_UP_FACTOR:g} times"
        else:
            why = "the final loss or weights are not finite"
        notes.append(f"training diverged: {why}; try " + ("standardised inputs or a larger --alpha" if lbfgs
                                                           else "a smaller --lr or --clip-norm"))
    if args.save is not None:
        summary["saved"] = None
        if diverged:  # a diverged model is no model to keep, and must not replace one that is
            notes.append(f"nothing saved to {args.save}: training diverged"
                         + (" (the file already there was left as it was)" if os.path.exists(args.save) else ""))
        else:
            from microdl.io import save

            training = {
                "data": {"dataset": None if own else source, "path": os.path.abspath(args.data) if own else None,
                         "target": args.target, "task": args.task, "test_size": args.test_size, "seed": args.seed,
                         "dtype": args.dtype, "fingerprint": fingerprint},
                "fit": {"optimizer": args.optimizer, "batch_size": args.batch_size, "schedule": args.schedule,
                        "clip_norm": args.clip_norm, "clip_value": args.clip_value,
                        "validation_fraction": args.validation_fraction, "patience": args.patience,
                        "base_lr": base_lr},
                "lr_source": lr_source,
                "rng": rng.bit_generator.state,
                "schedule_state": None if schedule is None else strict_json(schedule.state_dict()),
            }
            save(args.save, model, optimizer, history, preprocessing=data.preprocessing, training=training)
            summary["saved"] = args.save
    if args.json:
        print(json.dumps(strict_json(summary), allow_nan=False))
    else:
        print(f"final  train loss {_number(summary['train_loss'])}  test loss {_number(summary['test_loss'])}  "
              f"train {metric} {_number(summary[f'train_{metric}'])}  test {metric} "
              f"{_number(summary[f'test_{metric}'])}  "
              f"({history.epochs} {'iterations' if lbfgs else 'epochs'}, {format_seconds(summary['wall_time_s'])}, "
              f"stop: {history.stop_reason})")
    for note in notes:
        print(f"microdl train: {note}", file=sys.stderr)
    return 1 if diverged else 0


# -- predict -----------------------------------------------------------------------------------------------
def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with a model saved by microdl train --save", description=(
        "Load a checkpoint written by microdl train --save and print the predictions for the samples of --data, "
        "in the original labels (classification) or units (regression), one per line under a header, as CSV; "
        "--out writes them to a file instead. The features are standardised as the training data was, and a CSV "
        "is matched to the model by column name (in any order; the target column may be there or not). A file "
        "whose columns do not match the model's is refused, naming the columns."))
    p.add_argument("--model", required=True, metavar="PATH", help="a checkpoint written by microdl train --save")
    p.add_argument("--data", required=True, metavar="PATH",
                   help="a CSV file with a header line (the model's feature columns) or an .npz file holding X")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the predictions (CSV) here instead of printing them (missing folders are created; "
                        "written atomically)")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import csv
    import io

    from microdl._files import atomic_file, check_writable_file
    from microdl.datasets import read_features
    from microdl.io import load

    if args.out is not None:
        check_writable_file(args.out, "--out")
    if not os.path.isfile(args.model):
        raise ValueError(f"--model {args.model}: no such file")
    ckpt = load(args.model, backend="cpu")  # predicting needs no GPU
    prep = ckpt.preprocessing
    if prep is None:
        raise ValueError(f"--model {args.model} holds no preprocessing (feature scaling, column names, labels): it "
                         "was written by microdl.io.save without it, or by an older microdl; save the model with "
                         "microdl train --save")
    X = read_features(args.data, prep)
    predictions = prep.decode(ckpt.model.predict(prep.transform(X, ckpt.model.dtype)))
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    columns = [prep.target or "prediction"] if predictions.ndim == 1 else [
        f"{prep.target or 'prediction'}_{k}" for k in range(predictions.shape[1])]
    writer.writerow(columns)
    # repr: the shortest text that reads back as the same float; labels as the training file wrote them
    writer.writerows([[repr(float(v)) if prep.task == "regression" else str(v)] for v in predictions]
                     if predictions.ndim == 1 else [[repr(float(v)) for v in row] for row in predictions])
    if args.out is None:
        sys.stdout.write(text.getvalue())
    else:
        with atomic_file(args.out, "w") as fh:
            fh.write(text.getvalue())
        print(f"wrote {len(predictions)} predictions to {args.out}")
    return 0


# -- datasets ----------------------------------------------------------------------------------------------
def _add_datasets(sub: Any) -> None:
    p = sub.add_parser("datasets", help="list the built-in datasets",
                       description="List the datasets microdl can load by name, with size and task. Your own "
                                   "data goes in with --data PATH (a CSV with a header, or an .npz with X and y).")
    p.set_defaults(run=_run_datasets)


def _run_datasets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from microdl.datasets import list_datasets

    print(f"{'name':16s} {'task':15s} {'samples':>8s} {'features':>8s} {'classes':>7s}  description")
    for row in list_datasets():
        classes = "-" if row["n_classes"] is None else str(row["n_classes"])
        print(f"{row['name']:16s} {row['task']:15s} {row['n_samples']:8d} {row['n_features']:8d} {classes:>7s}  "
              f"{row['description']}")
    return 0


# -- explore ------------------------------------------------------------------------------------------------
def _add_explore(sub: Any) -> None:
    from microdl.explore import DEFAULT_OPTIMIZERS, FUNCTIONS

    p = sub.add_parser("explore", help="write the explorable: six optimizers side by side, in one offline page",
                       description=(
                           "Run every optimizer over a grid of its settings on five 2-D test functions and on a "
                           "small MLP, and write DIR/index.html: one self-contained page (needs the explore extra, "
                           "pip install microdl[explore]) with a rate slider and the defining hyperparameter per "
                           "optimizer, that opens from a file with no network."))
    p.add_argument("--out", default="explore", metavar="DIR", help="output folder (default explore)")
    p.add_argument("--optimizers", default=",".join(DEFAULT_OPTIMIZERS), metavar="NAMES",
                   help="comma-separated names registered in microdl.optim.OPTIMIZERS, your own included "
                        "(default: the six classic ones)")
    p.add_argument("--functions", default=None, metavar="NAMES",
                   help=f"comma-separated test functions (default all: {', '.join(FUNCTIONS)})")
    p.add_argument("--steps", type=positive_int, default=150, help="steps per run (default 150)")
    p.add_argument("--lrs-per-decade", type=positive_int, default=2, help="rates per decade (default 2)")
    p.add_argument("--mlp-epochs", type=int, default=30, help="epochs of each MLP run; 0: no MLP view (default 30)")
    p.add_argument("--backend", choices=("cpu", "numpy"), default="cpu",
                   help="the optimizers' backend: Numba kernels or the NumPy reference (default cpu)")
    p.set_defaults(run=_run_explore)


def _run_explore(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import time

    from microdl._files import check_writable_folder
    from microdl.explore import precompute, write_page
    from microdl.explore.page import require_bokeh

    try:
        require_bokeh()  # before any work: the page cannot be written without it
    except ImportError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    check_writable_folder(args.out)
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    functions = None if args.functions is None else [n.strip() for n in args.functions.split(",") if n.strip()]
    tic = time.perf_counter()
    explorable = precompute(functions, names, steps=args.steps, lrs_per_decade=args.lrs_per_decade,
                            mlp_epochs=args.mlp_epochs, backend=args.backend)
    path = write_page(args.out, explorable)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB: {explorable.n_settings} settings, "
          f"{explorable.n_runs} runs) in {format_seconds(time.perf_counter() - tic)}; open it in a browser")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse's parser with errors in one line (NOTE [how the CLI fails]); subcommands' parsers are of this
    class too, and :attr:`commands` finds them by name."""

    commands: dict[str, argparse.ArgumentParser]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no silent abbreviations: argparse would take --epoch for --epochs, and --data for --dataset where a
        # command had no --data (issue 22); subcommands' parsers are built by this class too
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


# -- plugins ------------------------------------------------------------------------------------------------
def add_plugin_option(p: argparse.ArgumentParser) -> None:
    """``--plugin FILE.py`` (repeatable): a Python file to import first, which registers optimizers of its own
    (:func:`microdl.optim.register_optimizer`); :func:`main` imports it before the choices are built."""
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import this Python file first, for the optimizers it registers (repeatable)")


def _load_plugins(argv: Sequence[str] | None) -> None:
    """Import every ``--plugin`` file named in ``argv`` before the parser lists the optimizers."""
    from microdl.plugins import load_plugin

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--plugin", action="append", default=[])
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    for path in known.plugin:
        load_plugin(path)


def build_parser() -> Parser:
    """The argument parser with every subcommand."""
    from microdl import __version__

    parser = Parser(prog="microdl", description=(
        "microdl: a Numba-accelerated MLP with hand-written backprop and six optimizers."))
    parser.add_argument("--version", action="version", version=f"microdl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_predict(sub)
    _add_datasets(sub)
    _add_explore(sub)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    parser.commands = sub.choices
    return parser


def _number(x: float) -> str:
    """Four decimals, or four significant digits for a number too large for them (a diverged loss)."""
    return f"{x:.4f}" if abs(x) < 1e6 else f"{x:.4g}"


def _figures(value: Any) -> str:
    """A hyperparameter in three significant figures (a tuple such as Adam's betas, each)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{x:.3g}" for x in value) + ")"
    return f"{value:.3g}"


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CUDA driver's messages span several)."""
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status (NOTE [how the CLI fails])."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the command's modules load, before it has a name and a handler
        sys.stderr.write("microdl: interrupted\n")
        return 130


def _main(argv: Sequence[str] | None) -> int:
    from microdl._cuda_support import CudaUnavailableError

    try:
        _load_plugins(argv)
    except ValueError as exc:
        sys.stderr.write(f"microdl: error: {_one_line(exc)}\n")
        return 2
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    parser = parser.commands[args.command]  # its errors name the subcommand
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.given = _given_options(parser, sys.argv[1:] if argv is None else list(argv))
    command = parser.prog
    from microdl._files import Stopped, stop_signals_as_exceptions

    try:
        with stop_signals_as_exceptions():
            status = args.run(args, parser)
        sys.stdout.flush()  # a pipe is block-buffered: a closed reader shows up here, not at interpreter exit
        return status
    except (ValueError, TypeError, CudaUnavailableError) as exc:  # bad values that only the library can judge
        parser.exit(2, f"{command}: error: {_one_line(exc)}\n")
    except BrokenPipeError:
        # Python would report the same error again when it flushes stdout at exit: point stdout at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Stopped as exc:  # SIGTERM or SIGHUP: as Ctrl-C, with the shell's status of that signal
        parser.exit(128 + exc.signum, f"{command}: stopped by {exc}; files written before were left as they were\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{command}: interrupted; files written before were left as they were\n")
    except OSError as exc:  # a full disk, a file that went away: not a bug, so no traceback
        parser.exit(1, f"{command}: error: {_one_line(exc)}\n")
    except MemoryError as exc:  # what check_hidden_memory could not foresee (the data, other processes)
        parser.exit(1, f"{command}: error: out of memory ({_one_line(exc) or 'MemoryError'})\n")
    return 1  # pragma: no cover - parser.exit never returns


if __name__ == "__main__":
    sys.exit(main())
