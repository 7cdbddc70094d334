"""Experiments on the optimizers: comparisons, learning-rate tuning and sensitivity, and the claims report.

* :func:`compare` — optimizers × datasets × seeds (built-in datasets or your own data) with shared
  initialisation and splits, at hyperparameters tuned for each dataset (:data:`PRESETS`) or tuned on the
  spot; tables, curves, ``summary.csv`` and ``history.json`` (:func:`load_results` reads them back);
* :func:`tune` — every relevant hyperparameter of each optimizer by quasi-random search in stated spaces
  (:func:`search_space`), cross-validated on the training data only (Choi et al. 2019);
* :func:`sensitivity` — final validation loss against the learning rate (and SGD's batch size), and the
  width of the range within X% of the best;
* :func:`make_report` — runs the experiments that test each claim of the optimisation article and writes a
  Markdown and HTML report with figures and verdicts.

Every run is independent (:mod:`microdl.experiments.runs`), so all of these take ``jobs`` and a joblib
``backend`` (``"loky"``, ``"threading"`` or ``"dask"`` with a ``scheduler`` address). The command line is
``microdl compare``, ``microdl sensitivity`` and ``microdl report``.
"""

from microdl.experiments.comparison import CompareResult, compare, load_results, target_loss
from microdl.experiments.report import ReportSettings, make_report
from microdl.experiments.runs import SIX_OPTIMIZERS, Budget, RunSpec, execute, parse_budget, run_one
from microdl.experiments.sweep import SensitivityResult, flat_width, load_sensitivity, sensitivity
from microdl.experiments.tuning import LR_GRID, PRESETS, search_space, tune, tune_lrs

__all__ = ["compare", "CompareResult", "load_results", "target_loss", "tune", "tune_lrs", "search_space", "LR_GRID",
           "PRESETS", "Budget",
           "parse_budget", "RunSpec", "run_one", "execute", "SIX_OPTIMIZERS",
           "sensitivity", "SensitivityResult", "flat_width", "load_sensitivity", "make_report", "ReportSettings"]
