"""How much the report runs: problems, seeds and budgets of every experiment, and :data:`QUICK` for previews.

NOTE [report seeds]
``microdl report --seed N`` derives every seed from N (:func:`replication_settings`): the report replicates its
whole design ``replications`` times, and replication r of seed N draws its evaluation seeds, tuning seeds and
the seeds of every restart, start and stream from the block ``(N * replications + r) * SEED_BLOCK`` onwards, so
no two (N, r) share a seed and two users with different N run independent replications.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from microdl.experiments.report.problem_set import PROBLEMS
from microdl.experiments.tuning import LR_GRID

__all__ = ["ReportSettings", "QUICK", "replication_settings", "SEED_BLOCK"]

#: Seeds reserved for one replication of one report seed (NOTE [report seeds]).
SEED_BLOCK = 100_000


@dataclass(frozen=True)
class ReportSettings:
    """Datasets, seeds and budgets of every experiment.

    ``seeds`` are the evaluation seeds of every comparison (ten, so that a t interval is not much wider than
    the effect's spread); ``tune_seeds`` are different seeds on which hyperparameters are tuned (evaluation seed i
    uses tuning seed i mod their number), so that no comparison is judged on the runs that chose its settings and
    the tuning's noise is inside every interval. ``base`` offsets every seed an experiment draws on its own
    (restarts, starts, streams). ``replications`` is how many times the report runs its whole design under
    independent seeds (NOTE [report seeds]); the settings given are those of one replication. ``focus`` is the
    dataset of the single-dataset experiments (GD vs SGD, width, sensitivity, noise, combinations); it must be one
    of ``datasets``.
    """

    # six optimizers on many problems (wide): problem names of problem_set.PROBLEMS
    datasets: tuple[str, ...] = tuple(PROBLEMS)
    seeds: tuple[int, ...] = tuple(range(10))
    tune_seeds: tuple[int, ...] = (50, 51, 52)
    base: int = 0
    replications: int = 3
    epochs: int = 15
    batch_size: int = 32
    hidden: tuple[int, ...] = (64,)
    # the tuning protocol (microdl.experiments.tuning): trials per optimizer and the epochs of each trial
    trials: int = 8
    tune_epochs: int = 5
    #: the learning-rate sweep of the sensitivity experiment: half-decades from 1e-3 to 10
    lr_grid: tuple[float, ...] = LR_GRID[2:11]
    focus: str = "digits"
    #: rates tried where an experiment picks its own (drift, noisy and sparse, combinations)
    tune_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
    # GD against SGD
    sgd_epochs: int = 20
    gd_epochs: int = 200
    # wider networks
    widths: tuple[int, ...] = (16, 64, 256, 1024)
    width_optimizers: tuple[str, ...] = ("sgd", "adagrad", "adadelta", "adam")
    width_epochs: int = 6
    # learning-rate and batch-size sensitivity
    sens_epochs: int = 12
    batch_sizes: tuple[int, ...] = (8, 32, 128)
    within: float = 0.10
    # SGD's steps one by one
    noise_batch_sizes: tuple[int, ...] = (8, 32, 128)
    noise_steps: int = 60
    noise_warm: int = 10
    # the code itself
    step_time_params: int = 1_000_000
    step_time_rounds: int = 15
    # local minima: 2-D functions and teacher–student restarts
    starts: int = 400
    steps_2d: int = 1500
    #: 40 restarts: 0 of 40 has a Wilson upper bound of 0.088, below the 10% threshold, so the local-minima rules
    #: can come out either way (0 of 30 could not: 0.114)
    restarts: int = 40
    teacher: tuple[int, int, int] = (2, 4, 100)
    restart_steps: int = 1000
    # dataset size and streaming
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    stream_chunks: int = 200
    stream_chunk: int = 256
    # non-stationary target
    drift_segments: int = 5
    drift_steps: int = 250
    # noisy and sparse gradients
    sparse_features: int = 500
    sparse_samples: int = 2000
    sparse_epochs: int = 5
    noisy_steps: int = 400
    # GD combined with momentum, a schedule and clipping
    combine_epochs: int = 60


#: Small budgets: the whole report in well under a minute (tests, previews). Its verdicts mean little.
QUICK = ReportSettings(
    datasets=("iris", "wine", "diabetes"), seeds=(0, 1, 2, 3), tune_seeds=(50, 51), replications=2, trials=2,
    tune_epochs=2, epochs=4,
    lr_grid=(1e-3, 1e-2, 1e-1, 1.0), focus="iris", tune_grid=(1e-3, 1e-2, 0.1, 1.0), sgd_epochs=3, gd_epochs=10,
    widths=(4, 16),
    width_epochs=3, sens_epochs=3, batch_sizes=(8, 32), noise_batch_sizes=(32,), noise_steps=10, noise_warm=1,
    step_time_params=10_000, step_time_rounds=5, starts=60, steps_2d=300, restarts=6, teacher=(2, 3, 60),
    restart_steps=200, sizes=(1_000, 4_000), stream_chunks=20, stream_chunk=128, drift_segments=3,
    drift_steps=60, sparse_features=100, sparse_samples=400, sparse_epochs=2, noisy_steps=60, combine_epochs=10)


def replication_settings(s: ReportSettings, seed: int, replication: int) -> ReportSettings:
    """The settings of replication ``replication`` of report seed ``seed``: the same design, every seed moved
    into its own block (NOTE [report seeds])."""
    base = (seed * s.replications + replication) * SEED_BLOCK
    return replace(s, seeds=tuple(base + k for k in range(len(s.seeds))),
                   tune_seeds=tuple(base + 50_000 + k for k in range(len(s.tune_seeds))), base=base)
