"""How much the report runs: datasets, seeds and budgets of every experiment, and :data:`QUICK` for previews."""

from __future__ import annotations

from dataclasses import dataclass

from microdl.experiments.tuning import LR_GRID

__all__ = ["ReportSettings", "QUICK"]


@dataclass(frozen=True)
class ReportSettings:
    """Datasets, seeds and budgets of every experiment.

    ``seeds`` are the evaluation seeds of every comparison (at least five, so that each effect has an
    interval); ``tune_seeds`` are different seeds on which learning rates are picked, so that no comparison is
    judged on the runs that chose its rates. ``focus`` is the dataset of the single-dataset experiments (GD vs
    SGD, width, sensitivity, noise, combinations); it must be one of ``datasets``.
    """

    # six optimizers on many problems (wide)
    datasets: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits", "moons", "diabetes", "regression")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tune_seeds: tuple[int, ...] = (100,)
    epochs: int = 30
    batch_size: int = 32
    hidden: tuple[int, ...] = (64,)
    lr_grid: tuple[float, ...] = LR_GRID
    focus: str = "digits"
    #: rates tried where an experiment picks its own (drift, noisy and sparse, combinations)
    tune_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
    # GD against SGD
    sgd_epochs: int = 20
    gd_epochs: int = 200
    # wider networks
    widths: tuple[int, ...] = (16, 64, 256, 1024)
    width_optimizers: tuple[str, ...] = ("sgd", "adagrad", "adadelta", "adam")
    width_epochs: int = 10
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
    restarts: int = 30
    teacher: tuple[int, int, int] = (2, 4, 100)
    restart_steps: int = 1000
    # dataset size and streaming
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
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
    datasets=("iris", "diabetes"), seeds=(0, 1, 2, 3, 4), tune_seeds=(100,), epochs=4,
    lr_grid=(1e-3, 1e-2, 1e-1, 1.0), focus="iris", tune_grid=(1e-3, 1e-2, 0.1, 1.0), sgd_epochs=3, gd_epochs=10,
    widths=(4, 16),
    width_epochs=3, sens_epochs=3, batch_sizes=(8, 32), noise_batch_sizes=(32,), noise_steps=10, noise_warm=1,
    step_time_params=10_000, step_time_rounds=5, starts=60, steps_2d=300, restarts=6, teacher=(2, 3, 60),
    restart_steps=200, sizes=(1_000, 4_000), stream_chunks=20, stream_chunk=128, drift_segments=3,
    drift_steps=60, sparse_features=100, sparse_samples=400, sparse_epochs=2, noisy_steps=60, combine_epochs=10)
