"""``microdl report``: every claim of the optimisation article put to a measurement, with a verdict.

The article (``optimization-techniques.md``: GD, SGD, Adam, Adagrad, RMSprop and AdaDelta, with advantages
and disadvantages for each) makes 31 claims (:data:`CLAIMS`). Each is tied to one experiment, designed so
that the claim could come out either way, and decided by a rule fixed before it runs
(:data:`~microdl.experiments.report.verdicts.RULES`): the measured effect, with a 95% interval over seeds or
restarts, against a threshold. The verdict is **supported**, **not supported** or **depends** (the interval
straddles the threshold, or a claim's parts disagree).

The package, one module per experiment (each runs, returns plain results, decides its claims and draws its
figure):

* :mod:`~.wide` — six optimizers on seven datasets at tuned and default rates (quick convergence, GD's
  slowness, the conclusion);
* :mod:`~.gd_sgd` — GD against SGD per epoch and per second;
* :mod:`~.sensitivity` — the width of each optimizer's good learning-rate range, SGD's batch size, Adagrad's
  divergences;
* :mod:`~.noise` — SGD's steps one by one;
* :mod:`~.width` — Adagrad and AdaDelta as the network widens;
* :mod:`~.landscape` — local minima on 2-D test functions and a realisable teacher–student network;
* :mod:`~.scale` — time and memory to a target as the data grows, and a ``partial_fit`` stream;
* :mod:`~.drift` — a target that switches;
* :mod:`~.noisy_sparse` — Zipf-sparse inputs and small-batch noise;
* :mod:`~.combine` — GD with momentum, a schedule and clipping;
* :mod:`~.code` — statements, state, hyperparameters and step time of each rule.

and around them :mod:`~.claims` (the claims), :mod:`~.settings` (budgets, :data:`QUICK`), :mod:`~.stats`
(intervals), :mod:`~.verdicts` (the rules, as pure functions), :mod:`~.problems` (problems with known answers),
:mod:`~.markup` and :mod:`~.writer` (the Markdown and HTML) and :mod:`~.driver` (:func:`make_report`).
"""

from microdl.experiments.report.claims import CLAIMS, Claim
from microdl.experiments.report.driver import EXPERIMENTS, Report, make_report
from microdl.experiments.report.settings import QUICK, ReportSettings
from microdl.experiments.report.verdicts import RULES, Verdict, verdict_counts

__all__ = ["make_report", "Report", "ReportSettings", "QUICK", "CLAIMS", "Claim", "RULES", "Verdict",
           "verdict_counts", "EXPERIMENTS"]
