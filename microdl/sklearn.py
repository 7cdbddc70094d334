"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor` on microdl's own parts.

Code written for ``sklearn.neural_network.MLPClassifier`` or ``MLPRegressor`` keeps working, and gives the same
numbers, when only the import changes::

    >>> from sklearn.datasets import load_iris
    >>> from microdl.sklearn import MLPClassifier        # was: from sklearn.neural_network import ...
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True

The estimators are thin: the network is a :class:`microdl.nn.MLP` (one flat parameter buffer, hand-written
backprop), the solver an optimizer of :mod:`microdl.optim` and training one call of :func:`microdl.train.fit`.
What this module adds is scikit-learn's contract around them: its parameters (declared with scikit-learn's
``_parameter_constraints``), input validation, label encoding, the ``learning_rate`` options, the
``tol``/``n_iter_no_change`` stopping rule and early stopping (a callback of ``fit``), ``warm_start``,
``partial_fit`` and the fitted attributes.

NOTE [same random stream, same model]
    For solvers 'sgd', 'adam' and 'lbfgs' the estimators reproduce scikit-learn 1.9's training run, not only its
    interface. They draw from ``check_random_state(random_state)`` exactly as scikit-learn does, in the same
    order: the initial weights and intercepts (``MLP(init="sklearn")``: per layer W then b, uniform in
    ±√(f/(fan_in + fan_out)), f = 2 for 'logistic' and 6 otherwise), then the early-stopping split
    (``train_test_split`` on the same arrays, stratified for binary targets only), then one permutation of the
    previous epoch's order per epoch (NOTE [random streams] in :mod:`microdl.train`). The update rules are
    scikit-learn's too: Adam adds ε to √v (``Adam(eps_on="v")``), and SGD's momentum, which microdl keeps in
    torch's convention (a buffer b without the rate, θ ← θ − γ b) while scikit-learn keeps a velocity
    v = −γ b that includes it, is made to match when the rate changes by rescaling b by γ_old/γ_new between
    epochs ('invscaling', 'adaptive'). With float64 data, ``loss_curve_`` then equals scikit-learn's to 1e-14
    relative over 50 epochs and the weights to 1e-14 (measured on iris, digits, binary, multilabel, multi-output
    and Poisson problems; the tests ask for 1e-6), so cross-validated scores are identical. In float32 the two
    round differently (BLAS against microdl's kernels): 1e-7 relative over 50 epochs on digits.

NOTE [where we differ from scikit-learn]
    Each remaining difference of public behaviour, with its reason:

    * Additions. ``solver`` also offers gd (full-batch SGD), adamw, adagrad, rmsprop and adadelta, with
      ``torch.optim``'s formulas (:mod:`microdl.optim`); ``activation`` also 'sigmoid' (= 'logistic') and
      'leaky_relu'; the parameters ``device`` ('cpu' or 'cuda') and ``dtype``; ``loss_curve_`` for 'lbfgs' (the
      loss at each iterate; scikit-learn records none).
    * ``learning_rate_init=None`` (the default) means the solver's own rate, :data:`DEFAULT_LEARNING_RATES`:
      scikit-learn's 0.001 for sgd and adam, and a rate that suits each added solver (0.001 would barely move
      adadelta, whose rate only scales the step). ``get_params()`` shows None where scikit-learn shows 0.001.
    * ``learning_rate`` applies to sgd as in scikit-learn and is ignored by adam (scikit-learn's Adam ignores it
      too; 'adaptive' then stops as 'constant' does). The added solvers apply it as sgd does, momentum kept in
      torch's convention (microdl's own behaviour: scikit-learn has no such solvers).
    * An estimator with ``solver='lbfgs'`` has no ``partial_fit`` (``hasattr`` is False). scikit-learn 1.9's
      classifier agrees; its regressor exposes one by mistake (its ``available_if`` test passes the method
      instead of calling it), and a call runs a whole L-BFGS fit of ``max_iter`` iterations.
    * L-BFGS on multi-output squared error: scikit-learn hands SciPy the loss averaged over outputs with the
      gradient of their sum, an inconsistent pair that misleads the line search; microdl hands it the loss and
      gradient of the sum, so the iterates differ there (``loss_`` and ``loss_curve_`` are reported on
      scikit-learn's scale). On issue 13's three-target problem the final loss differs by 7% after 20
      iterations and 2.5% after 200, the training R² by 5e-4 and 1e-5. Single-output and classification runs
      take scikit-learn's path.
    * Rounding. microdl's kernels sum in another order than NumPy's BLAS, so results agree to float rounding, not
      bit for bit. The stochastic solvers keep that (1e-14 after 50 epochs), but L-BFGS can amplify it on an
      ill-conditioned problem: on diabetes (hidden (100,), 200 iterations) the losses agree to 1e-12 for 50
      evaluations and 2e-9 for 100, then part (8% by the end; cross-validated R² −0.2445 against −0.2447).
    * L-BFGS in float32 computes in float32; scikit-learn's moves to float64 after its first evaluation (SciPy
      hands back float64 iterates) and returns float64 ``coefs_``.
    * Divergence. microdl never trains on with NaN weights (NOTE [finite or told] in :mod:`microdl.train`): the
      first non-finite loss stops the run and the last finite weights are restored, with a
      :class:`~microdl.train.DivergenceWarning`. Without early stopping ``fit`` then raises the ValueError
      "Solver produced non-finite parameter weights. The input data may contain large values and need to be
      preprocessed." (scikit-learn's text, followed by what happened) where scikit-learn raises the same error
      after ``max_iter`` epochs of NaN, leaving NaN ``coefs_``. With early stopping the diverged epoch is
      recorded with a NaN loss and a NaN validation score and the best epoch's weights are restored, as in
      scikit-learn, which instead runs on to ``max_iter`` epochs recording NaN.
    * A warm-start ``fit`` with early stopping that never beats the previous best restores the previous best
      weights; scikit-learn returns its last weights there (its best copy aliases the live arrays).
    * Negative ``sample_weight`` values are refused (scikit-learn accepts them, and its loss is then unbounded
      below), and so are negative targets with ``loss='poisson'`` (scikit-learn trains on them with a NaN loss).
    * ``coefs_`` and ``intercepts_`` are views into the flat buffer (host copies with ``device='cuda'``). They
      are assignable, as a whole list or item by item (``clf.coefs_[0] = W``), and ``predict``/``partial_fit``
      then use the new values, but each array must keep its layer's shape: the architecture is fixed by
      ``hidden_layer_sizes``. Other list operations (``append``, ``del``) do not change the network, nor does
      assigning ``n_layers_`` or ``out_activation_`` (scikit-learn's ``predict`` reads them). As in
      scikit-learn, lists assigned to an unfitted estimator are what ``partial_fit`` or a ``warm_start`` fit
      trains from; a cold ``fit`` starts afresh.
    * The too-few-members error of early stopping's stratified split is scikit-learn's (it names the encoded
      column, ``['True']``), followed by the user's labels.
    * Losses are computed from the logits (log-sum-exp), where scikit-learn clips probabilities to
      [eps, 1 − eps]: the two differ only for a sample whose predicted probability of its true class is below
      2.2e-16 (float64), which scikit-learn caps at a loss of 36.04.

NOTE [beyond scikit-learn]
    What scikit-learn's users asked for and its MLP never gave them, each off by default, so that an estimator
    built with scikit-learn's parameters alone trains exactly as above: ``class_weight`` (the classifier);
    ``validation_loss_curve_`` beside ``validation_scores_`` whenever early stopping holds out a split, and
    ``early_stopping_metric='loss'`` to stop on it; ``history_``, the :class:`~microdl.train.History` of
    :func:`microdl.train.fit` (time, rate, gradient evaluations and losses of every epoch); ``lr_schedule``,
    ``clip_grad_norm``, ``clip_grad_value``, ``callbacks`` and ``progress``, which are ``fit``'s own schedule,
    clipping, callbacks and progress bar; and ``dropout`` on the hidden layers. They are checked when ``fit``
    starts, before any work, and combinations that cannot mean one thing are refused: ``lr_schedule`` with a
    ``learning_rate`` other than 'constant' (both would set the rate), and with 'lbfgs' ``lr_schedule``,
    clipping or ``dropout`` (L-BFGS has no rate, and its line search needs the true, deterministic gradient).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6

    def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


from microdl._validation import check_int
from microdl.nn import MLP, choose_backend
from microdl.nn.layout import layer_views
from microdl.optim import make_optimizer, optimizer_entry
from microdl.optim.lbfgs import LBFGS
from microdl.optim.registry import registered
from microdl.optim.schedules import SCHEDULES, LRSchedule, make_schedule
from microdl.train import DivergenceWarning, History, fit

__all__ = ["MLPClassifier", "MLPRegressor", "SOLVERS", "DEFAULT_LEARNING_RATES"]

#: scikit-learn's own three solvers, first in every list of solvers.
_SKLEARN_SOLVERS = ("lbfgs", "sgd", "adam")


class _Solvers(Sequence):
    """The solver names, derived from the optimizer registry at every use: scikit-learn's three, then every other
    registered optimizer in display order (one registered after import included)."""

    def _names(self) -> tuple[str, ...]:
        names = [e.name for e in registered()]
        return tuple([n for n in _SKLEARN_SOLVERS if n in names] + [n for n in names if n not in _SKLEARN_SOLVERS])

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(self._names())


class _DefaultLearningRates(Mapping):
    """Each solver's rate when ``learning_rate_init`` is None, derived from the registry: the entry's
    ``default_lr`` (for the built-ins: scikit-learn's 0.001 for sgd and adam, and a rate that suits each added
    solver), else the optimizer's own default ``lr``. A solver without a rate (lbfgs) has none."""

    def _rates(self) -> dict[str, float]:
        return {e.name: e.default_lr if e.default_lr is not None else e.lr_default for e in registered()
                if e.takes_lr}

    def __getitem__(self, name: str) -> float:
        return self._rates()[name]

    def __iter__(self) -> Any:
        return iter(self._rates())

    def __len__(self) -> int:
        return len(self._rates())

    def __repr__(self) -> str:
        return repr(self._rates())


class _SolverOptions(StrOptions):
    """``solver``'s constraint, read from the registry when the parameters are validated (at fit), so that a
    solver registered after import is accepted; listed in :data:`SOLVERS`' order."""

    def __init__(self) -> None:
        super().__init__(set())

    @property
    def options(self) -> Any:
        return dict.fromkeys(SOLVERS).keys()  # ordered, and a set for scikit-learn's checks

    @options.setter
    def options(self, value: Any) -> None:
        pass  # always the registry's


#: The solver names (a live view of the optimizer registry, :func:`microdl.optim.register_optimizer`).
SOLVERS: Sequence[str] = _Solvers()
#: Each solver's learning rate when ``learning_rate_init`` is None (a live view of the registry).
DEFAULT_LEARNING_RATES: Mapping[str, float] = _DefaultLearningRates()
#: scikit-learn's optimizer parameters as the optimizers' hyperparameters; the registry says which solver takes
#: which (``estimator_params``).
_OPTIMIZER_PARAMS = {
    "momentum": lambda est: {"momentum": float(est.momentum)},
    "nesterovs_momentum": lambda est: {"nesterov": bool(est.nesterovs_momentum and est.momentum > 0)},
    "beta_1": lambda est: {"betas": (float(est.beta_1), float(est.beta_2))},
    "beta_2": lambda est: {"betas": (float(est.beta_1), float(est.beta_2))},
    # with it, Adam's ε goes where scikit-learn puts it (NOTE [same random stream, same model])
    "epsilon": lambda est: {"eps": float(est.epsilon)},
}
#: The training record a user may set with assigned weights (NOTE [weights assigned before a fit]).
_RECORD = ("n_iter_", "t_", "loss_curve_", "best_loss_", "_no_improvement_count", "validation_scores_",
           "best_validation_score_", "validation_loss_curve_", "best_validation_loss_")
#: Where microdl's documentation is published (``bash dev.sh docs`` builds it); the estimators' HTML
#: representation links to their entry on its API page, through scikit-learn's ``_doc_link_*`` attributes.
DOCS_URL = "https://microdl.readthedocs.io/en/latest/"
#: scikit-learn's activation names that differ from microdl's; every registered activation is accepted too.
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}


class _Registered(StrOptions):
    """``StrOptions`` read from a registry at each check, so that a name registered after this module was
    imported (``microdl.nn.register_activation``) is accepted too."""

    def __init__(self, names: Any) -> None:
        self._names = names
        super().__init__(set(names()))

    @property
    def options(self) -> set:
        return set(self._names())

    @options.setter
    def options(self, value: set) -> None:  # (StrOptions.__init__ assigns it; the registry is the source)
        pass

    def __str__(self) -> str:  # in the registry's order, the same in every run
        return f"a str among {{{', '.join(map(repr, self._names()))}}}"


def _activation_options() -> list:
    from microdl.nn import activation_names

    return [*_ACTIVATION_ALIASES, *activation_names()]


def _schedule_names() -> list:
    """``lr_schedule``'s names: :data:`microdl.optim.SCHEDULES`' keys and torch's class names for them."""
    return [*SCHEDULES, *(cls.__name__ for cls in SCHEDULES.values())]


def _regression_losses() -> list:
    from microdl.nn import get_loss, loss_names

    return [name for name in loss_names() if get_loss(name).targets in ("real", "non_negative")]
#: scikit-learn's final check of a fit, word for word (the estimators add what happened after it).
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and need "
               "to be preprocessed.")


class _LearningRate(LRSchedule):
    """scikit-learn's ``learning_rate`` options as a schedule that :func:`microdl.train.fit` applies before
    every epoch: the initial rate times ``scale``.

    * 'constant': scale stays 1.
    * 'invscaling': after each epoch, scale = 1 / (t + 1)^power_t with t the samples seen over all calls
      (``t_``): scikit-learn's ``iteration_ends``, which counts samples rather than epochs.
    * 'adaptive': the stopping rule divides scale by 5 where the other options would stop
      (:meth:`trigger_stopping`, scikit-learn's rule).

    It lives as long as the solver: ``partial_fit`` keeps it, ``fit`` starts a fresh one.
    """

    def __init__(self, kind: str, power_t: float) -> None:
        self.kind, self.power_t, self.scale = kind, power_t, 1.0

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr * self.scale

    def iteration_ends(self, samples_seen: int) -> None:
        if self.kind == "invscaling":
            self.scale = 1.0 / (samples_seen + 1) ** self.power_t

    def trigger_stopping(self, msg: str, lr: float, verbose: Any) -> bool:
        """scikit-learn's decision once training stops improving: stop, or (adaptive) divide the rate by 5
        until it is at most 1e-6. ``lr`` is the current rate. Returns True to stop."""
        if self.kind != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if lr <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.scale /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {lr / 5.0:f}")
        return False


class _EpochSchedule(LRSchedule):
    """The user's ``lr_schedule`` as the estimators apply it: stepped over every epoch the solver has run, so
    that ``partial_fit``'s one-epoch calls move along it as a ``fit`` would, and fed the last epoch's monitored
    loss (the validation loss with early stopping, else the training loss) for :class:`ReduceLROnPlateau`.
    :func:`microdl.train.fit` asks it for each epoch's rate; the estimator's record tells it each epoch's end."""

    def __init__(self, schedule: LRSchedule) -> None:
        self.schedule, self.epoch, self.metric = schedule, 0, None

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return self.schedule.lr_at(self.epoch, base_lr, self.metric)

    def epoch_ends(self, metric: float) -> None:
        self.epoch += 1
        self.metric = metric


def _rescale_momentum(optimizer: Any, factor: float) -> None:
    """b ← factor · b for an SGD momentum buffer on either device (NOTE [same random stream, same model])."""
    b = optimizer.state["b"]
    if isinstance(b, np.ndarray):
        b *= factor
    else:  # a CUDA device array: once per epoch, so a round trip through the host is cheap enough
        host = b.copy_to_host()
        host *= factor
        b.copy_to_device(host)


class _StochasticRecord:
    """The :func:`microdl.train.fit` callback of the stochastic solvers: scikit-learn's per-epoch record and
    stopping rule (the body of its epoch loop after the batches, in its order).

    After each epoch it appends to ``loss_curve_`` (on scikit-learn's scale), updates the no-improvement count
    on the training loss or the validation score, lets the schedule see the samples seen (invscaling), and once
    the count exceeds ``n_iter_no_change`` stops or lowers the rate. For 'sgd' it then rescales the momentum
    buffer to the next epoch's rate.
    """

    def __init__(self, estimator: _BaseMLP, n_train: int, validation: tuple | None) -> None:
        self.est, self.n_train, self.validation = estimator, n_train, validation
        self.schedule: _LearningRate = estimator._schedule
        self.user_schedule: _EpochSchedule | None = estimator._user_schedule
        self.base_lr = estimator._learning_rate_init()
        # (a user's lr_schedule keeps torch's convention: the buffer is not rescaled, as torch's schedulers do)
        self.rescale = (estimator.solver == "sgd" and "b" in estimator._optimizer.state
                        and self.user_schedule is None)
        self.stopped: str | bool = False  # the stopping rule's message once it stops training

    def on_epoch_end(self, epoch: int, history: Any, model: MLP, optimizer: Any) -> bool:
        est = self.est
        est.n_iter_ += 1
        est.loss_ = est._sklearn_loss(history.train_loss[-1], history.train_penalty[-1])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_:d}, loss = {est.loss_:.8f}")
        val_loss = None
        if self.validation is not None:  # fit measured it on the split (validation_data); on scikit-learn's scale
            val_loss = est._sklearn_loss(history.val_loss[-1], model.penalty(self.validation[0].shape[0]))
        est._update_no_improvement_count(self.validation, val_loss)
        if self.validation is not None:  # the History says what validation_scores_ says (scikit-learn's score)
            history.val_metric[-1] = est.validation_scores_[-1]
        self.schedule.iteration_ends(est.t_)
        if self.user_schedule is not None:
            self.user_schedule.epoch_ends(history.val_loss[-1] if self.validation is not None
                                          else history.train_loss[-1])

        if est._no_improvement_count > est.n_iter_no_change:
            what = ("Training loss" if self.validation is None else "Validation loss"
                    if est.early_stopping_metric == "loss" else "Validation score")
            msg = (f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change:d} consecutive "
                   "epochs.")
            if self.schedule.trigger_stopping(msg, optimizer.lr, est.verbose):
                self.stopped = msg
                return True
            est._no_improvement_count = 0
        if self.rescale:
            next_lr = self.base_lr * self.schedule.scale
            if next_lr != optimizer.lr:
                _rescale_momentum(optimizer, optimizer.lr / next_lr)
        return False


class _LbfgsRecord:
    """The :func:`microdl.train.fit` callback of 'lbfgs': the loss at each iterate into ``loss_curve_``."""

    def __init__(self, estimator: _BaseMLP) -> None:
        self.est = estimator

    def on_epoch_end(self, epoch: int, history: Any, model: MLP, optimizer: Any) -> bool:
        self.est.loss_curve_.append(self.est._sklearn_loss(history.train_loss[-1], history.train_penalty[-1]))
        return False


class _LayerArrays(list):
    """``coefs_`` or ``intercepts_``: scikit-learn's list of per-layer arrays, whose items are views into the
    model's flat buffer and whose item assignment (``clf.coefs_[0] = W``) writes into it."""

    def __init__(self, estimator: _BaseMLP, which: int) -> None:
        super().__init__(estimator._layer_arrays(which))
        self._estimator, self._which = estimator, which

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            raise TypeError("assign the layers one at a time (coefs_[i] = W) or the whole list (coefs_ = [...])")
        index = range(len(self))[index]
        self._estimator._write_layer(self._which, index, value)
        super().__setitem__(index, self._estimator._layer_arrays(self._which)[index])

    def __reduce__(self) -> tuple:
        return list, (list(self),)  # a copy or a pickle is a plain list of arrays, as in scikit-learn


def _partial_fit_available(estimator: _BaseMLP) -> bool:
    return estimator._check_solver()


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share; see :class:`MLPClassifier` for the parameters."""

    # The "?" link of the estimator's HTML repr: its entry on the API page of the module it lives in.
    _doc_link_module = "microdl"
    _doc_link_template = DOCS_URL + "api/generated/{estimator_module}.html#{estimator_module}.{estimator_name}"

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [_Registered(_activation_options)],
        "activation_params": [dict, None],
        "backend": [StrOptions({"auto", "numba", "numpy"})],
        "solver": [_SolverOptions()],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        # scikit-learn's own objects where the options are the same: a set's order, and so the error message
        # listing it, depends on the hash seed of the process that compiled the set literal.
        "learning_rate": _SkMLPRegressor._parameter_constraints["learning_rate"],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), None],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda"})],
        "dtype": [StrOptions({"auto", "float32", "float64"}), Options(type, {np.float32, np.float64}),
                  Options(np.dtype, {np.dtype(np.float32), np.dtype(np.float64)})],
        # beyond scikit-learn, each off by default (NOTE [beyond scikit-learn])
        "early_stopping_metric": [_Registered(lambda: ["score", "loss"])],
        "lr_schedule": [_Registered(_schedule_names), HasMethods(["lr_at"]), None],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "clip_grad_value": [Interval(Real, 0, None, closed="neither"), None],
        "callbacks": [list, tuple, None],
        "progress": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like", None],
    }

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float | None = None, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4, verbose: bool | int = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int | float = 10,
                 max_fun: int = 15000, device: str = "cpu", dtype: Any = "auto",
                 activation_params: dict | None = None, backend: str = "auto", early_stopping_metric: str = "score",
                 lr_schedule: Any = None, clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
                 callbacks: Sequence[Any] | None = None, progress: bool = False, dropout: Any = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.device = device
        self.dtype = dtype
        self.activation_params = activation_params
        self.backend = backend
        self.early_stopping_metric = early_stopping_metric
        self.lr_schedule = lr_schedule
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.callbacks = callbacks
        self.progress = progress
        self.dropout = dropout

    # -- fitted weights: views into the flat buffer, assignable --------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices W[l] of shape (fan_in, fan_out): views into the model's flat parameter buffer (host
        copies when ``device='cuda'``). Assigning the list, or one of its items, writes into the network."""
        assigned = getattr(self, "_assigned_layers", {})
        if getattr(self, "_model", None) is None and 0 in assigned:
            return assigned[0]  # NOTE [weights assigned before a fit]
        return _LayerArrays(self, 0)

    @coefs_.setter
    def coefs_(self, arrays: Any) -> None:
        self._write_layers(0, arrays)

    # NOTE [weights assigned before a fit]: scikit-learn lets a user assign coefs_ and intercepts_ to an unfitted
    # estimator and then train from them (partial_fit, or fit with warm_start), as its test_fit does. Until a
    # network exists, the assigned lists are kept as given (the same objects, so that `est.coefs_[0] = W` fills
    # them in place), and the next such fit builds the network from them.

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors b[l]: views into the flat parameter buffer, assignable like :attr:`coefs_`."""
        assigned = getattr(self, "_assigned_layers", {})
        if getattr(self, "_model", None) is None and 1 in assigned:
            return assigned[1]  # NOTE [weights assigned before a fit]
        return _LayerArrays(self, 1)

    @intercepts_.setter
    def intercepts_(self, arrays: Any) -> None:
        self._write_layers(1, arrays)

    def _fitted_model(self, name: str) -> MLP:
        model = getattr(self, "_model", None)
        if model is None:  # an AttributeError, so hasattr(est, "coefs_") is False, as in scikit-learn
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet, so it has no {name}; "
                                 "call 'fit' first.")
        return model

    def _layer_arrays(self, which: int) -> list[np.ndarray]:
        model = self._fitted_model(("coefs_", "intercepts_")[which])
        if model.device == "cpu":
            return list(model.weights if which == 0 else model.biases)
        return layer_views(model.host_params(), model.layer_sizes)[which]

    def _write_layer(self, which: int, index: int, value: Any) -> None:
        name = ("coefs_", "intercepts_")[which]
        model = self._fitted_model(name)
        fan_in, fan_out = model.layer_sizes[index], model.layer_sizes[index + 1]
        expected = (fan_in, fan_out) if which == 0 else (fan_out,)
        value = np.asarray(value)
        if value.shape != expected:
            raise ValueError(f"{name}[{index}] must have the shape of the fitted network's layer, {expected}; got "
                             f"{value.shape} (the architecture is fixed by hidden_layer_sizes)")
        if model.device == "cpu":
            (model.weights if which == 0 else model.biases)[index][...] = value
        else:
            host = model.host_params()
            layer_views(host, model.layer_sizes)[which][index][...] = value
            model.set_params(host)

    def _write_layers(self, which: int, arrays: Any) -> None:
        name = ("coefs_", "intercepts_")[which]
        if getattr(self, "_model", None) is None:  # NOTE [weights assigned before a fit]
            if not hasattr(self, "_assigned_layers"):
                self._assigned_layers: dict[int, list] = {}
            self._assigned_layers[which] = arrays if isinstance(arrays, list) else list(arrays)
            return
        n_layers = len(self._fitted_model(name).layer_sizes) - 1
        arrays = list(arrays)
        if len(arrays) != n_layers:
            raise ValueError(f"{name} must hold {n_layers} arrays, one per layer; got {len(arrays)}")
        for index, value in enumerate(arrays):
            self._write_layer(which, index, value)

    # -- parameters ---------------------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        """``hidden_layer_sizes`` as a list of ints, checked as scikit-learn's ``_fit`` checks it."""
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [check_int(f"hidden_layer_sizes[{k}]", s, 1) for k, s in enumerate(sizes)]

    def _check_solver(self) -> bool:
        if self.solver == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

    def _learning_rate_init(self) -> float:
        if self.learning_rate_init is None:
            return DEFAULT_LEARNING_RATES[self.solver]
        return float(self.learning_rate_init)

    def _learning_rate_kind(self) -> str:
        # scikit-learn applies learning_rate to sgd only: its Adam ignores it ('adaptive' then stops like
        # 'constant'). microdl's added solvers take it as sgd does.
        return "constant" if self.solver == "adam" else self.learning_rate

    def _dtype_for(self, X: Any) -> np.dtype:
        if isinstance(self.dtype, str) and self.dtype == "auto":
            return np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        return np.dtype(self.dtype)

    # -- beyond scikit-learn (NOTE [beyond scikit-learn]) ---------------------------------------------------------
    def _check_beyond_sklearn(self, hidden: list[int]) -> None:
        """The combinations of microdl's own parameters that cannot work, refused before any work."""
        stochastic = self.solver != "lbfgs"
        if self.lr_schedule is not None:
            if not stochastic:
                raise ValueError("lr_schedule needs a learning rate, and solver='lbfgs' has none (its line search "
                                 "sets each step): use a stochastic solver, or lr_schedule=None")
            if self.learning_rate != "constant":
                raise ValueError(f"learning_rate={self.learning_rate!r} and lr_schedule={self.lr_schedule!r} would "
                                 "both set the rate: use learning_rate='constant' with lr_schedule, or "
                                 "lr_schedule=None with scikit-learn's learning_rate")
        for name in ("clip_grad_norm", "clip_grad_value"):
            if getattr(self, name) is not None and not stochastic:
                raise ValueError(f"{name} applies to the stochastic solvers; solver='lbfgs' needs the true gradient "
                                 "for its line search")
        for k, callback in enumerate(self.callbacks or ()):
            if not callable(getattr(callback, "on_epoch_end", None)):
                raise TypeError(f"callbacks[{k}] ({type(callback).__name__}) has no on_epoch_end(epoch, history, "
                                "model, optimizer) method (microdl.train.Callback)")
        rates = self._dropout_rates(hidden)
        if rates is not None:
            if "dropout" not in inspect.signature(MLP).parameters:
                raise ValueError(f"dropout={self.dropout!r} needs microdl.nn.MLP(dropout=...), which this version "
                                 "of microdl does not have; leave dropout=None")
            if not stochastic:
                raise ValueError("dropout makes every loss evaluation random, which the line search of "
                                 "solver='lbfgs' cannot take: use a stochastic solver")

    def _dropout_rates(self, hidden: list[int] | None = None) -> tuple[float, ...] | None:
        """``dropout`` as one rate per hidden layer, checked; None when it drops nothing (the default)."""
        hidden = self._hidden_sizes() if hidden is None else hidden
        dropout = self.dropout
        if dropout is None:
            return None
        if isinstance(dropout, Real):
            rates = [dropout] * len(hidden)
            if dropout and not hidden:
                raise ValueError(f"dropout={dropout!r} applies to hidden layers, and hidden_layer_sizes="
                                 f"{self.hidden_layer_sizes!r} has none")
        else:
            rates = np.asarray(dropout, dtype=object).ravel().tolist()
            if len(rates) != len(hidden):
                raise ValueError(f"dropout must be one rate, or one per hidden layer ({len(hidden)} for "
                                 f"hidden_layer_sizes={self.hidden_layer_sizes!r}); got {len(rates)}: {dropout!r}")
        for k, rate in enumerate(rates):
            if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 <= rate < 1:
                raise ValueError(f"dropout[{k}] must be a rate in [0, 1); got {rate!r}")
        rates = tuple(float(rate) for rate in rates)
        return rates if any(rates) else None

    def _dropout_argument(self) -> dict[str, Any]:
        """``{'dropout': rates}`` for :class:`microdl.nn.MLP` when some rate is not 0; nothing otherwise, so that
        a network without dropout is built exactly as before."""
        rates = self._dropout_rates()
        if rates is None:
            return {}
        return {"dropout": rates[0] if isinstance(self.dropout, Real) else list(rates)}

    def _new_user_schedule(self) -> _EpochSchedule | None:
        """A fresh copy of ``lr_schedule`` (the parameter itself is never changed: a schedule with state, such as
        ReduceLROnPlateau, starts afresh at every ``fit``), stepped per epoch; None without one."""
        if self.lr_schedule is None:
            return None
        if isinstance(self.lr_schedule, str):
            return _EpochSchedule(make_schedule(self.lr_schedule, epochs=self.max_iter))
        return _EpochSchedule(copy.deepcopy(self.lr_schedule))

    def _record_history(self, history: History) -> None:
        """Append one call's :class:`~microdl.train.History` to ``history_``, which runs over every epoch that
        ``loss_curve_`` does (its cumulative counts continue from the previous call)."""
        total = getattr(self, "history_", None)
        if total is None:  # an estimator fitted before history_ existed
            total = self.history_ = History()
        time0 = total.wall_time[-1] if total.wall_time else 0.0
        evals0 = total.grad_evals[-1] if total.grad_evals else 0
        seen0 = total.samples_seen[-1] if total.samples_seen else 0
        epochs0 = total.epochs
        for name in ("train_loss", "train_penalty", "val_loss", "val_metric", "lr"):
            getattr(total, name).extend(getattr(history, name))
        total.wall_time.extend(time0 + t for t in history.wall_time)
        total.grad_evals.extend(evals0 + g for g in history.grad_evals)
        total.samples_seen.extend(seen0 + k for k in history.samples_seen)
        total.stop_reason, total.diverged = history.stop_reason, history.diverged
        total.best_epoch = None if history.best_epoch is None else epochs0 + history.best_epoch

    # -- building the model and its solver ------------------------------------------------------------------------
    def _new_optimizer(self) -> Any:
        entry = optimizer_entry(self.solver)
        hyper: dict[str, Any] = {"lr": self._learning_rate_init()}
        for param in entry.estimator_params:
            hyper.update(_OPTIMIZER_PARAMS[param](self))
        if "epsilon" in entry.estimator_params and "eps_on" in entry.parameters:
            hyper["eps_on"] = "v"  # scikit-learn's ε placement (NOTE [same random stream, same model])
        backend = "cuda" if self._model.device == "cuda" else "numpy" if self._model.backend == "numpy" else "cpu"
        return make_optimizer(self.solver, self._model.params, backend=backend, **hyper)

    def _initialize(self, n_features: int, n_outputs: int, dtype: np.dtype, n_samples: int, epochs: int,
                    random_state: Any = None) -> None:
        """A fresh network, drawn from ``_random_state`` as scikit-learn draws it, and a fresh record. With
        ``backend='auto'`` the network runs on the backend that :func:`microdl.nn.choose_backend` picks for
        ``epochs`` passes over ``n_samples`` rows; the choice is kept in ``backend_``."""
        sizes = (n_features, *self._hidden_sizes(), n_outputs)
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        self.backend_ = self.backend
        if self.backend == "auto":
            batch_size = None if self.solver == "lbfgs" else 200 if self.batch_size == "auto" else self.batch_size
            self.backend_ = choose_backend(sizes, n_samples, epochs, batch_size, activation, self._loss_for_targets(),
                                           self.device)
        self._model = MLP(sizes, activation=activation,
                          loss=self._loss_for_targets(), alpha=float(self.alpha), init="sklearn", dtype=dtype,
                          random_state=self._random_state if random_state is None else random_state,
                          device=self.device, activation_params=self.activation_params,
                          loss_params=self._loss_params(), backend=self.backend_, **self._dropout_argument())
        self._dropout_built = self._dropout_rates()
        self.history_ = History()
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self._model.layer_sizes)
        self.out_activation_ = self._out_activation()
        self._best_params = self._model.host_params()
        self._optimizer = None
        self.loss_curve_: list[float] = []
        if self.solver != "lbfgs":  # as in scikit-learn, lbfgs has no stopping record
            self._no_improvement_count = 0
            self._reset_stopping_record()

    def _initialize_from_assigned(self, n_features: int, n_outputs: int, dtype: np.dtype, n_samples: int,
                                  epochs: int) -> None:
        """The network from the assigned coefs_ and intercepts_ (NOTE [weights assigned before a fit]).

        As in scikit-learn, nothing is drawn from ``_random_state`` (the shuffles stay scikit-learn's), and the
        record the user set (``n_iter_``, ``t_``, ``loss_curve_``, ``best_loss_``, ...) is kept.
        """
        assigned = self.__dict__.pop("_assigned_layers")
        record = {key: value for key, value in vars(self).items() if key in _RECORD}
        self._initialize(n_features, n_outputs, dtype, n_samples, epochs,
                         random_state=np.random.RandomState(0))  # (the weights are overwritten below)
        vars(self).update(record)
        self._write_layers(0, assigned[0])
        self._write_layers(1, assigned[1])
        self._best_params = self._model.host_params()

    def _reset_stopping_record(self) -> None:
        self._best_epoch = None  # the epoch of _best_params, counted as loss_curve_ counts
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.validation_loss_curve_: list[float] | None = []
            self.best_validation_loss_: float | None = np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.validation_loss_curve_ = None
            self.best_validation_loss_ = None

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        hidden = self._hidden_sizes()
        if self.solver == "lbfgs" and self.device == "cuda":
            raise ValueError("solver='lbfgs' runs on the CPU only (SciPy's L-BFGS-B works on host arrays): use "
                             "device='cpu', or a stochastic solver on the GPU")
        self._check_beyond_sklearn(hidden)
        assigned = getattr(self, "_assigned_layers", {})
        has_weights = hasattr(self, "_model") or len(assigned) == 2
        first_pass = not has_weights or (not self.warm_start and not incremental)
        X, Y, y_labels = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        sample_weight = self._weigh_classes(y_labels, sample_weight, incremental, X.dtype)
        self._random_state = check_random_state(self.random_state)
        epochs = 1 if incremental else self.max_iter  # the planned work, for backend='auto'
        if first_pass:
            self.__dict__.pop("_assigned_layers", None)
            self._initialize(X.shape[1], Y.shape[1], self._dtype_for(X), X.shape[0], epochs)
        elif not hasattr(self, "_model"):
            self._initialize_from_assigned(X.shape[1], Y.shape[1], self._dtype_for(X), X.shape[0], epochs)
        elif self._model.layer_sizes[1:] != (*hidden, Y.shape[1]):
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} and {Y.shape[1]} outputs differ from "
                             f"the fitted network's {self._model.layer_sizes[1:]}; warm_start and partial_fit need "
                             "the same layers")
        elif self._dropout_rates() != getattr(self, "_dropout_built", None):
            raise ValueError(f"dropout={self.dropout!r} differs from the rates the network was built with "
                             f"({getattr(self, '_dropout_built', None)}); warm_start and partial_fit keep the "
                             "network: fit with warm_start=False to build a new one")
        model = self._model
        model.alpha = float(self.alpha)
        if issparse(X):
            X = X.tocsr()
        X = X.astype(model.dtype, copy=False)
        Y = Y.astype(model.dtype, copy=False)
        if sample_weight is not None:
            sample_weight = sample_weight.astype(model.dtype, copy=False)

        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, y_labels, sample_weight, incremental)
        if not np.all(np.isfinite(model.host_params())):  # never expected (NOTE [finite or told]); kept as a guard
            raise ValueError(_NON_FINITE)
        return self

    def _weigh_classes(self, y: np.ndarray, sample_weight: np.ndarray | None, incremental: bool,
                       dtype: np.dtype) -> np.ndarray | None:
        """``sample_weight`` times the weight of each sample's class (the classifier's ``class_weight``)."""
        return sample_weight

    def _fit_lbfgs(self, X: Any, Y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        model = self._model
        optimizer = LBFGS(model.params, max_fun=self.max_fun, tol=float(self.tol))
        if not hasattr(self, "loss_curve_"):  # a warm start from a fit by an older version
            self.loss_curve_ = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # raised below as scikit-learn's error instead
            history = fit(model, optimizer, X, Y, epochs=self.max_iter, sample_weight=sample_weight,
                          callbacks=[_LbfgsRecord(self), *(self.callbacks or ())], progress=self.progress)
        self._record_history(history)
        if history.diverged:
            raise ValueError(f"{_NON_FINITE} {history.stop_reason}")
        result = optimizer.result
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
        self.loss_ = self._sklearn_loss(float(result.fun), model.penalty(total_weight))
        self._optimizer = None

    def _fit_stochastic(self, X: Any, Y: np.ndarray, y_labels: np.ndarray, sample_weight: np.ndarray | None,
                        incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        # fit starts a new solver (Adam's moments and the step count reset, as in scikit-learn's warm start);
        # partial_fit keeps the one it has.
        if not incremental or getattr(self, "_optimizer", None) is None:
            self._optimizer = self._new_optimizer()
            self._schedule = _LearningRate(self._learning_rate_kind(), float(self.power_t))
            self._user_schedule = self._new_user_schedule()
        elif not hasattr(self, "_user_schedule"):  # a solver unpickled from before lr_schedule existed
            self._user_schedule = None
        self._optimizer.lr = self._learning_rate_init()
        if not hasattr(self, "_no_improvement_count"):  # a warm start after solver='lbfgs'
            self._no_improvement_count = 0
        if self.early_stopping and getattr(self, "validation_scores_", None) is None or (
                not self.early_stopping and getattr(self, "best_loss_", None) is None):
            self._reset_stopping_record()  # early_stopping switched for a warm start
            self._best_params = self._model.host_params()
        if self.early_stopping and getattr(self, "validation_loss_curve_", None) is None:  # a record set by hand
            self.validation_loss_curve_, self.best_validation_loss_ = [], np.inf

        validation = None
        if self.early_stopping:
            # scikit-learn stratifies binary targets only, on its encoded boolean column: the same split as on the
            # labels (the classes sort alike), and a too-small class is named as scikit-learn names it ('True').
            stratify = Y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y, y_labels) if sample_weight is None else (X, Y, y_labels, sample_weight)
            try:
                parts = train_test_split(*arrays, random_state=self._random_state,
                                         test_size=self.validation_fraction, stratify=stratify)
            except ValueError as error:
                if "least populated" not in str(error):
                    raise
                labels, counts = np.unique(y_labels, return_counts=True)
                raise ValueError(f"{error} (in the labels of y: {labels[counts < 2].tolist()})") from None
            X, X_val, Y, Y_val, _, y_val = parts[:6]
            sample_weight, sw_val = parts[6:] if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            validation = (X_val, y_val, sw_val)
            validation_data = (X_val, Y_val)  # fit records the validation loss of every epoch on it
        else:
            validation_data = None
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=4)
            batch_size = min(self.batch_size, n)

        self.n_iter_ = 0
        record = _StochasticRecord(self, n, validation)
        history = None
        try:
            with warnings.catch_warnings():
                if not self.early_stopping:
                    warnings.simplefilter("ignore", DivergenceWarning)  # raised below as scikit-learn's error
                history = fit(self._model, self._optimizer, X, Y, epochs=1 if incremental else self.max_iter,
                              batch_size=batch_size, shuffle=self.shuffle, random_state=self._random_state,
                              sample_weight=sample_weight, validation_data=validation_data,
                              schedule=self._schedule if self._user_schedule is None else self._user_schedule,
                              clip_norm=self.clip_grad_norm, clip_value=self.clip_grad_value,
                              callbacks=[record, *(self.callbacks or ())], progress=self.progress)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if history is not None:
            if record.stopped:  # (fit names the callback that stopped it: here, scikit-learn's stopping rule)
                history.stop_reason = f"n_iter_no_change: {record.stopped} Stopping."
            self._record_history(history)
        if history is not None and history.diverged:
            if not self.early_stopping:
                raise ValueError(f"{_NON_FINITE} {history.stop_reason}")
            # scikit-learn's record of a diverged epoch: a NaN loss and a NaN validation score
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = np.nan
            self.loss_curve_.append(np.nan)
            self.validation_scores_.append(np.nan)
            self.validation_loss_curve_.append(np.nan)
        if self.early_stopping:
            self._model.set_params(self._best_params)
            self.history_.best_epoch = getattr(self, "_best_epoch", None)  # whose weights these are
        if (history is not None and not history.diverged and not incremental and not record.stopped
                and history.stop_reason == "max_epochs" and self.n_iter_ == self.max_iter):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                          "hasn't converged yet.", ConvergenceWarning, stacklevel=4)

    def _update_no_improvement_count(self, validation: tuple | None, val_loss: float | None = None) -> None:
        """scikit-learn's rule, comparisons and all (a NaN score counts as an improvement there, and is never
        the best). With ``early_stopping_metric='loss'`` the same rule on the validation loss, where an
        improvement is a decrease by at least ``tol`` and a NaN loss is none."""
        if validation is not None:
            score = self._score(*validation)
            self.validation_scores_.append(score)
            self.validation_loss_curve_.append(val_loss)
            if self.verbose:
                print(f"Validation score: {score:f}")
            by_loss = self.early_stopping_metric == "loss"
            if by_loss:
                if self.verbose:
                    print(f"Validation loss: {val_loss:f}")
                improved = val_loss <= self.best_validation_loss_ - self.tol
            else:
                improved = not score < self.best_validation_score_ + self.tol
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                if not by_loss:
                    self._best_params = self._model.host_params()
                    self._best_epoch = len(self.loss_curve_)
            if val_loss < self.best_validation_loss_:
                self.best_validation_loss_ = val_loss
                if by_loss:
                    self._best_params = self._model.host_params()
                    self._best_epoch = len(self.loss_curve_)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _sklearn_loss(self, loss: float, penalty: float) -> float:
        """microdl's training loss on scikit-learn's scale (the same, except for multi-output squared error)."""
        return float(loss)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseMLP:
        """Fit the network to ``X`` (array or sparse matrix) and ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or values (regression).
        sample_weight : array-like of shape (n_samples,), default None
            Non-negative weights of the samples' losses.

        Returns
        -------
        self
            With ``warm_start=True`` a fitted estimator continues from its weights, with a new solver.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    # -- prediction -----------------------------------------------------------------------------------------
    def _forward_pass_fast(self, X: Any, check_input: bool = True) -> np.ndarray:
        """The network's outputs (probabilities or values), shape (n_samples, n_outputs_)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
        return self._model.forward(X)

    def _score_with_function(self, X: Any, y: Any, sample_weight: Any, score_function: Any) -> float:
        """The early-stopping score, as scikit-learn computes it: NaN if the predictions are not finite."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags

    # -- pickling: the solver is rebuilt around the unpickled model's buffer -------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # (a copy: object.__getstate__ returns __dict__ itself)
        optimizer = state.pop("_optimizer", None)
        state["_optimizer_state"] = None if optimizer is None else optimizer.state_dict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if "_model" in state:
            self._optimizer = None
            if optimizer_state is not None:
                self._optimizer = self._new_optimizer()
                self._optimizer.load_state_dict(optimizer_state)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, the same numbers for its solvers,
    plus five more solvers, float32 end to end and an optional GPU.

    Binary targets get one logistic output, multiclass targets a softmax over the classes (cross-entropy), and
    multilabel indicator targets one logistic output per label (binary cross-entropy). The parameters and
    attributes are scikit-learn's, with its defaults; see the module docstring for NOTE [same random stream, same
    model] and NOTE [where we differ from scikit-learn].

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, or int, default (100,)
        Units of each hidden layer.
    activation : str, default 'relu'
        Hidden-layer activation: scikit-learn's 'relu', 'logistic', 'tanh', 'identity', or any activation
        registered in :mod:`microdl.nn` ('sigmoid' is 'logistic' under microdl's name; 'leaky_relu', 'elu',
        'gelu', 'silu', or your own, :func:`microdl.nn.register_activation`).
    solver : {'adam', 'sgd', 'lbfgs', 'gd', 'adamw', 'adagrad', 'rmsprop', 'adadelta'}, default 'adam'
        'adam', 'sgd' and 'lbfgs' are scikit-learn's (its update rules, its numbers). 'lbfgs' is full-batch
        L-BFGS-B (SciPy) on the flat buffer, CPU only. The others follow ``torch.optim``: 'gd' is full-batch SGD
        (``batch_size`` is ignored); 'adamw' adds torch's decoupled weight decay 0.01 to ``alpha``. Any optimizer
        registered with :func:`microdl.optim.register_optimizer` is a solver too (:data:`SOLVERS`), with its
        own hyperparameters' defaults.
    alpha : float, default 1e-4
        L2 penalty α/(2 Σw) Σ‖W‖² on the weights (not the intercepts), as in scikit-learn.
    batch_size : int or 'auto', default 'auto'
        Mini-batch size of the stochastic solvers; 'auto' is min(200, n_samples). Larger than n_samples is
        clipped, with a warning.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default 'constant'
        Schedule of the rate, for 'sgd' (and the added solvers; scikit-learn's Adam ignores it, and so does
        'adam' here): 'invscaling' sets it to learning_rate_init / (t + 1)^power_t after each epoch, t being the
        samples seen; 'adaptive' divides it by 5 whenever training would otherwise stop on
        ``n_iter_no_change``, and stops once it is at most 1e-6.
    learning_rate_init : float or None, default None
        Initial rate; None is :data:`DEFAULT_LEARNING_RATES` (scikit-learn's 0.001 for 'adam' and 'sgd').
    power_t : float, default 0.5
        Exponent of 'invscaling'.
    max_iter : int, default 200
        Epochs per call of ``fit`` (iterations for 'lbfgs').
    shuffle : bool, default True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the early-stopping split and the shuffling, drawn as scikit-learn draws them.
    tol : float, default 1e-4
        Smallest improvement of the training loss (or of the validation score with early stopping) that
        counts; for 'lbfgs', SciPy's ``gtol`` (largest gradient component).
    verbose : bool or int, default False
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default False
        ``fit`` continues from the fitted weights (with a new solver, as in scikit-learn).
    momentum : float, default 0.9
        Momentum of 'sgd' (and 'gd'), in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov momentum for 'sgd' and 'gd' (when momentum > 0).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for binary targets), stop when its score has
        not improved by ``tol`` for more than ``n_iter_no_change`` epochs, and restore the weights of the best
        epoch. Stochastic solvers only.
    validation_fraction : float, default 0.1
        Fraction held out for early stopping.
    beta_1, beta_2 : float, default 0.9, 0.999
        Decay rates of Adam's (and AdamW's) moment estimates, in [0, 1).
    epsilon : float, default 1e-8
        ε of adam (added to √v, as in scikit-learn), adamw, adagrad and rmsprop (adadelta keeps torch's 1e-6
        under its roots, since its step size scales with √ε).
    n_iter_no_change : int or np.inf, default 10
        Epochs without improvement tolerated; training stops (or the rate drops) after more than this. np.inf
        switches the rule off.
    max_fun : int, default 15000
        'lbfgs' only: the largest number of loss evaluations.
    device : {'cpu', 'cuda'}, default 'cpu'
        Where the network and the solver run ('lbfgs': CPU only).
    dtype : {'auto', 'float32', 'float64'}, default 'auto'
        Precision of the network; 'auto' is float32 for float32 X (at the first fit) and float64 otherwise, as
        scikit-learn does.
    activation_params : dict or None, default None
        Parameters of the activation, by name (``{'alpha': 0.5}`` for 'elu'); the rest at their defaults.
    backend : {'auto', 'numba', 'numpy'}, default 'auto'
        Who runs the network and the solver on the CPU: 'numba' the compiled kernels, 'numpy' the NumPy code
        (:mod:`microdl.nn.reference` and the optimizers' NumPy rules), which needs no compiled code, so a fresh
        process starts at scikit-learn's speed, but runs each epoch slower. 'auto' takes 'numpy' for a small fit
        (``max_iter`` × samples × parameters up to :data:`microdl.nn.NUMPY_MAX_WORK`; one epoch for
        ``partial_fit``) and 'numba' otherwise (:func:`microdl.nn.choose_backend`); the fitted ``backend_`` says
        which. The two give the same numbers to rounding.

    class_weight : dict, 'balanced' or None, default None
        Beyond scikit-learn's MLP (off by default): weights of the classes, ``{label: weight}`` (1 for a label
        not named) or 'balanced' (``n_samples / (n_classes * np.bincount(y))``), multiplied into ``sample_weight``
        as scikit-learn's linear models do (``sklearn.utils.class_weight``). For multilabel targets they weigh
        each label's column and multiply. ``partial_fit`` takes a dict only: 'balanced' needs the whole of y.
    early_stopping_metric : {'score', 'loss'}, default 'score'
        Beyond scikit-learn: what early stopping watches on its validation split. 'score' is scikit-learn's rule
        (accuracy, or R² for the regressor, must rise by ``tol``); 'loss' stops once the validation loss
        (``validation_loss_curve_``) has not fallen by ``tol`` for more than ``n_iter_no_change`` epochs, and
        restores the weights of the epoch with the lowest validation loss. Without ``early_stopping`` there is
        no split, and it has no effect (as ``validation_fraction``).
    lr_schedule : str, LRSchedule or None, default None
        Beyond scikit-learn: a learning-rate schedule of :mod:`microdl.optim.schedules`, applied before each
        epoch: a name of :data:`microdl.optim.SCHEDULES` or torch's class name ('cosine', 'step',
        'CosineAnnealingLR', 'OneCycleLR', ... spanning ``max_iter`` epochs, :func:`microdl.optim.make_schedule`),
        or an instance (``MultiStepLR([30, 60])``, ``LambdaLR(f)``, your own ``LRSchedule``), copied at each
        ``fit``. It scales ``learning_rate_init`` and steps over every epoch the solver has run, ``partial_fit``
        calls included; ``ReduceLROnPlateau`` watches the validation loss with early stopping, else the training
        loss. It replaces scikit-learn's ``learning_rate`` options, so it needs ``learning_rate='constant'``;
        the 'sgd' momentum then keeps torch's convention (not rescaled when the rate changes). Not for 'lbfgs'.
    clip_grad_norm, clip_grad_value : float or None, default None
        Beyond scikit-learn: before each step, scale the gradient down to this global L2 norm
        (``torch.nn.utils.clip_grad_norm_``), or clip each component to ±value
        (``torch.nn.utils.clip_grad_value_``). Not for 'lbfgs'.
    callbacks : list or tuple of callbacks, or None, default None
        Beyond scikit-learn: objects with ``on_epoch_end(epoch, history, model, optimizer)``
        (:class:`microdl.train.Callback`), called after every epoch (every 'lbfgs' iteration) once the
        estimator has recorded it; returning True stops training (without a ConvergenceWarning). ``epoch``
        counts from 1 in each call of ``fit``, ``history`` is that call's :class:`~microdl.train.History`,
        ``model`` the :class:`~microdl.nn.MLP` and ``optimizer`` the solver. :class:`microdl.train.EarlyStopping`
        is one (its 'val_loss' needs ``early_stopping=True``). Not copied: a callback may keep what it sees.
    progress : bool, default False
        Beyond scikit-learn: draw a progress bar over the epochs (tqdm, on a terminal), with the loss and, with
        early stopping, the validation loss. ``verbose`` still prints scikit-learn's lines, exactly.
    dropout : float, sequence of float or None, default None
        Beyond scikit-learn: during training, zero each hidden unit with this probability (one rate for every
        hidden layer, or one per hidden layer), scaling the kept ones by 1/(1 − rate); off at prediction. None
        or 0 builds the network without it. Stochastic solvers only; fixed when the network is built (a
        ``warm_start`` fit or ``partial_fit`` with other rates is refused).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (for multilabel targets, the label indices).
    coefs_, intercepts_ : list of ndarray
        Per-layer weights and biases: views into the network's flat parameter buffer, assignable.
    loss_ : float
        Training loss (including the penalty) of the last epoch, or at the last 'lbfgs' iterate.
    loss_curve_ : list of float
        Training loss of every epoch (every 'lbfgs' iteration), across ``warm_start`` fits and ``partial_fit``.
    best_loss_ : float or None
        Lowest training loss seen (None with early stopping; absent for 'lbfgs').
    validation_scores_ : list of float or None
        Validation accuracy of every epoch (None without early stopping; absent for 'lbfgs').
    best_validation_score_ : float or None
        Best of ``validation_scores_`` (absent for 'lbfgs').
    validation_loss_curve_ : list of float or None
        Beyond scikit-learn: the loss on the early-stopping split after every epoch, aligned with
        ``validation_scores_`` (None without early stopping; absent for 'lbfgs'): the mean loss over the split's
        samples (unweighted: ``sample_weight`` weighs the training loss) plus the L2 penalty α/(2 n_val)‖W‖²,
        on the scale of ``loss_curve_``.
    best_validation_loss_ : float or None
        Beyond scikit-learn: the lowest of ``validation_loss_curve_`` (None without early stopping).
    history_ : microdl.train.History
        Beyond scikit-learn: the record :func:`microdl.train.fit` keeps, over every epoch of ``loss_curve_``
        (across ``warm_start`` fits and ``partial_fit``, a diverged epoch excepted): ``train_loss`` (microdl's
        scale), ``val_loss`` and ``val_metric`` (NaN without early stopping; ``val_metric`` is
        ``validation_scores_``), ``lr``, and the cumulative ``wall_time`` (seconds), ``grad_evals`` (steps, or
        loss evaluations for 'lbfgs') and ``samples_seen``; ``stop_reason`` and ``diverged`` say how the last
        call ended, and with early stopping ``best_epoch`` (from 1) whose weights were restored.
    n_iter_ : int
        Epochs (iterations for 'lbfgs') run by the last call of ``fit`` or ``partial_fit``.
    backend_ : {'numba', 'numpy'}
        Beyond scikit-learn: the backend the network runs on (``backend``, or what 'auto' chose).
    t_ : int
        Training samples seen by the stochastic solvers, over all calls.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has string column names.
    n_layers_ : int
        Layers, counting input and output.
    n_outputs_ : int
    out_activation_ : {'softmax', 'logistic'}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from microdl.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), MLPClassifier(solver="rmsprop", max_iter=50, random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {**_BaseMLP._parameter_constraints,
                                    "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float | None = None, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4, verbose: bool | int = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int | float = 10,
                 max_fun: int = 15000, device: str = "cpu", dtype: Any = "auto",
                 activation_params: dict | None = None, backend: str = "auto", class_weight: Any = None,
                 early_stopping_metric: str = "score", lr_schedule: Any = None, clip_grad_norm: float | None = None,
                 clip_grad_value: float | None = None, callbacks: Sequence[Any] | None = None,
                 progress: bool = False, dropout: Any = None) -> None:
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         device=device, dtype=dtype, activation_params=activation_params, backend=backend,
                         early_stopping_metric=early_stopping_metric, lr_schedule=lr_schedule,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value, callbacks=callbacks,
                         progress=progress, dropout=dropout)
        self.class_weight = class_weight

    def _weigh_classes(self, y: np.ndarray, sample_weight: np.ndarray | None, incremental: bool,
                       dtype: np.dtype) -> np.ndarray | None:
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported for partial_fit (it needs the whole of y): "
                             "compute the weights once with sklearn.utils.class_weight.compute_class_weight and "
                             "pass them as a dict")
        if y.ndim == 1:  # on classes_, so that a partial_fit batch may miss some classes
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            weights = per_class[np.searchsorted(self.classes_, y)]
        else:
            weights = compute_sample_weight(self.class_weight, y)
        weights = weights.astype(dtype)
        return weights if sample_weight is None else sample_weight * weights

    def _loss_for_targets(self) -> str:
        return "cross_entropy" if self._label_binarizer.y_type_ == "multiclass" else "binary_cross_entropy"

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _loss_params(self) -> dict | None:
        return None

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's cases: a first or cold fit defines classes_; a warm start must see the same classes; a
        # later partial_fit may see only some of them (partial_fit made the binarizer on its first call).
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        Y = self._label_binarizer.transform(y)
        Y = (Y.toarray() if issparse(Y) else Y).astype(X.dtype)
        return X, Y, y

    @available_if(_partial_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)``, keeping the solver's state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default None
        classes : array of shape (n_classes,), default None
            Every label that will ever appear; required on the first call.

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer = LabelBinarizer().fit(y if multilabel else self.classes_)
        return self._fit(X, y, sample_weight, incremental=True)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        out = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multilabel targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes) in the order of ``classes_``."""
        check_is_fitted(self)
        out = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, the same numbers for its solvers, plus
    five more solvers, float32 end to end and an optional GPU.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default 'squared_error'
        'squared_error': a linear output and half the squared error; 'poisson': an exp output and the half
        Poisson deviance (targets ≥ 0), as scikit-learn ≥ 1.7. It is the first positional parameter, as in
        scikit-learn. Any registered regression loss is accepted too: 'huber' (torch.nn.HuberLoss),
        'absolute_error' (L1), or your own (:func:`microdl.nn.register_loss`).
    loss_params : dict or None, default None
        Parameters of the loss, by name (``{'delta': 0.5}`` for 'huber').
    hidden_layer_sizes, activation, solver, ... : see :class:`MLPClassifier`
        The same parameters, meanings and defaults, those beyond scikit-learn included (``early_stopping_metric``,
        ``lr_schedule``, ``clip_grad_norm``, ``clip_grad_value``, ``callbacks``, ``progress``, ``dropout``).

    Attributes
    ----------
    loss_, loss_curve_, best_loss_ : float, list, float
        As in :class:`MLPClassifier`. For several outputs with 'squared_error' they are on scikit-learn's scale:
        the squared error averaged over outputs, plus the penalty (the gradient, also scikit-learn's, is that of
        the sum).
    validation_scores_, best_validation_score_
        R² (averaged over outputs) on the early-stopping split.
    validation_loss_curve_, best_validation_loss_, history_
        As in :class:`MLPClassifier`, on the scale of ``loss_curve_``.
    out_activation_ : {'identity', 'exp'}
    coefs_, intercepts_, n_iter_, backend_, t_, n_features_in_, feature_names_in_, n_layers_, n_outputs_
        As in :class:`MLPClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from microdl.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=400, n_features=5, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=500, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        # scikit-learn's losses (squared_error, poisson) and every registered regression loss (huber, ...)
        "loss": [_Registered(_regression_losses)],
        "loss_params": [dict, None],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float | None = None, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int | float = 10, max_fun: int = 15000, device: str = "cpu",
                 dtype: Any = "auto", activation_params: dict | None = None, loss_params: dict | None = None,
                 backend: str = "auto", early_stopping_metric: str = "score", lr_schedule: Any = None,
                 clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
                 callbacks: Sequence[Any] | None = None, progress: bool = False, dropout: Any = None) -> None:
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         device=device, dtype=dtype, activation_params=activation_params, backend=backend,
                         early_stopping_metric=early_stopping_metric, lr_schedule=lr_schedule,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value, callbacks=callbacks,
                         progress=progress, dropout=dropout)
        self.loss = loss
        self.loss_params = loss_params

    def _loss_for_targets(self) -> str:
        return self.loss

    def _out_activation(self) -> str:
        from microdl.nn import get_loss

        return get_loss(self.loss).output

    def _loss_params(self) -> dict | None:
        return self.loss_params

    def _sklearn_loss(self, loss: float, penalty: float) -> float:
        # scikit-learn's squared error is averaged over outputs, microdl's summed: rescale the data part.
        if self.loss == "squared_error" and self.n_outputs_ > 1:
            return float((loss - penalty) / self.n_outputs_ + penalty)
        return float(loss)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = (y[:, None] if y.ndim == 1 else y).astype(X.dtype)
        return X, Y, y

    @available_if(_partial_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)``, keeping the solver's state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        out = self._forward_pass_fast(X, check_input=check_input)
        return out.ravel() if out.shape[1] == 1 else out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)
