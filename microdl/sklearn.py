"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor` on microdl's own parts.

They are thin: the network is a :class:`microdl.nn.MLP`, the solver an optimizer of :mod:`microdl.optim`, and
training is one call of :func:`microdl.train.fit`. What this module adds is scikit-learn's contract around them:
input validation, label encoding, the ``learning_rate`` options, the ``tol``/``n_iter_no_change`` stopping rule
(a callback), early stopping on a held-out score, ``warm_start``, ``partial_fit`` and the fitted attributes.

Parameter names and defaults follow ``sklearn.neural_network.MLPClassifier`` wherever the meaning is the same,
so an estimator can replace scikit-learn's in existing code::

    >>> from sklearn.datasets import load_iris
    >>> from microdl.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), solver="rmsprop", max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True

NOTE [where we differ from scikit-learn]
* ``solver`` offers gd (full batch), sgd, adam, adamw, adagrad, rmsprop and adadelta, and no lbfgs. Each
  follows ``torch.optim``'s formulas (see :mod:`microdl.optim`). In particular the sgd momentum buffer excludes
  the learning rate (scikit-learn keeps a velocity that includes it; the two differ once the rate changes), and
  Adam adds ε to the bias-corrected √v̂ (scikit-learn adds it to the uncorrected √v).
* ``learning_rate_init=None`` picks a rate that suits the solver (:data:`DEFAULT_LEARNING_RATES`); for sgd and
  adam that is scikit-learn's 0.001.
* ``learning_rate`` ('constant', 'invscaling', 'adaptive') applies to every solver, not only sgd.
* Weights start uniform Glorot, or He for relu and leaky_relu (:meth:`microdl.nn.MLP.initialize`), with zero
  intercepts; scikit-learn draws intercepts too and uses a smaller bound for 'logistic'.
* ``early_stopping`` splits off a stratified validation set for every single-output classifier (scikit-learn
  stratifies only binary targets).
* For multi-output regression ``loss_curve_`` is ½ Σ over outputs of the squared error, where scikit-learn
  reports the mean over outputs; the gradients are the same.
* ``n_iter_`` counts the epochs of the last call of ``fit`` or ``partial_fit``, as in scikit-learn, and the
  ``ConvergenceWarning`` fires whenever a call of ``fit`` runs all ``max_iter`` epochs without meeting the
  stopping rule (scikit-learn's comparison with the cumulated ``n_iter_`` misses it after a warm start).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6

    def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


from microdl.nn import MLP
from microdl.optim import make_optimizer
from microdl.optim.schedules import LRSchedule
from microdl.train import DivergenceWarning, fit

__all__ = ["MLPClassifier", "MLPRegressor", "SOLVERS", "DEFAULT_LEARNING_RATES"]

SOLVERS = ("gd", "sgd", "adam", "adamw", "adagrad", "rmsprop", "adadelta")
#: The learning rate each solver uses when ``learning_rate_init`` is None: scikit-learn's 0.001 for sgd and
#: adam (and adamw and rmsprop, as in Keras), torch's defaults for adagrad and adadelta (whose rate only scales
#: the step; 1.0 is the paper's), and 0.01 for full-batch gd, which takes one step per epoch.
DEFAULT_LEARNING_RATES = {"gd": 0.01, "sgd": 0.001, "adam": 0.001, "adamw": 0.001, "adagrad": 0.01,
                          "rmsprop": 0.001, "adadelta": 1.0}
#: scikit-learn's activation names, and microdl's own, mapped to microdl's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh",
                "relu": "relu", "leaky_relu": "leaky_relu"}
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn's names of the output activations.
_OUT_ACTIVATION = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity"}


class _LearningRate(LRSchedule):
    """scikit-learn's ``learning_rate`` options, as a schedule that :func:`microdl.train.fit` applies before
    every epoch: the optimizer's initial rate times ``scale``, which :meth:`epoch_ended` updates.

    * 'constant': scale stays 1.
    * 'invscaling': after each epoch, scale = 1 / (t + 1)^power_t with t the samples seen so far (``t_``),
      scikit-learn's rule, which counts samples rather than epochs.
    * 'adaptive': the stopping callback divides scale by 5 where the other options would stop.

    It lives as long as the optimizer: ``partial_fit`` keeps it, ``fit`` starts a fresh one.
    """

    def __init__(self, kind: str, power_t: float) -> None:
        self.kind, self.power_t, self.scale = kind, power_t, 1.0

    def lr_at(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr * self.scale

    def epoch_ended(self, samples_seen: int) -> None:
        if self.kind == "invscaling":
            self.scale = 1.0 / (samples_seen + 1) ** self.power_t


class _Bookkeeping:
    """The :func:`microdl.train.fit` callback that keeps scikit-learn's per-epoch record and stopping rule.

    After each epoch it appends to ``loss_curve_`` (and ``validation_scores_``), counts epochs without an
    improvement of at least ``tol`` (of the training loss, or of the validation score with early stopping), and
    once that count exceeds ``n_iter_no_change`` either stops training or, with ``learning_rate='adaptive'``,
    divides the learning rate by 5 (stopping once it is at most 1e-6). With early stopping it also keeps a
    copy of the best weights, which the estimator restores at the end.
    """

    def __init__(self, estimator: _BaseMLP, schedule: _LearningRate, n_train: int, validation: tuple | None):
        self.est, self.schedule, self.n_train, self.validation = estimator, schedule, n_train, validation
        self.stopped = False
        self.best_params: np.ndarray | None = None

    def on_epoch_end(self, epoch: int, history: Any, model: MLP, optimizer: Any) -> bool:
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = history.train_loss[-1]
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if self.validation is not None:
            score = est._score_encoded(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_params = model.host_params()
        else:
            improved = est.loss_ <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, est.loss_)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        self.schedule.epoch_ended(est.t_)

        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
            if self.schedule.kind == "adaptive" and optimizer.lr > 1e-6:
                self.schedule.scale /= 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{msg} Setting learning rate to {optimizer.lr / 5.0:f}")
                return False
            if est.verbose:
                print(msg + (" Learning rate too small." if self.schedule.kind == "adaptive" else "") + " Stopping.")
            self.stopped = True
            return True
        return False


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share; see :class:`MLPClassifier` for the parameters."""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float | None = None, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10, device: str = "cpu",
                 dtype: Any = "auto") -> None:
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
        self.device = device
        self.dtype = dtype

    # -- fitted weights, as views -------------------------------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices W[l] of shape (fan_in, fan_out): views into the model's flat parameter buffer, so
        they change as training continues and writing into them changes the model (host copies when
        ``device='cuda'``)."""
        return self._weights(0)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors b[l]: views into the flat parameter buffer, like :attr:`coefs_`."""
        return self._weights(1)

    def _weights(self, which: int) -> list[np.ndarray]:
        model = getattr(self, "_model", None)
        if model is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first.")
        if model.device == "cpu":
            return list(model.weights if which == 0 else model.biases)
        from microdl.nn.mlp import _layer_views

        shapes = list(zip(model.layer_sizes[:-1], model.layer_sizes[1:]))
        return _layer_views(model.host_params(), shapes)[which]

    # -- parameter checks (in fit, never in __init__) ----------------------------------------------------
    def _check_params(self) -> None:
        def real(name: str, low: float, high: float = np.inf, low_open: bool = False, high_open: bool = False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite real number; got {v!r}")
            if (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
                raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}"
                                 f"{')' if high_open else ']'}; got {v!r}")

        def integer(name: str, low: int):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")

        def choice(name: str, choices: Any):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {v!r}")

        self._hidden_sizes()
        choice("activation", tuple(_ACTIVATIONS))
        choice("solver", SOLVERS)
        choice("learning_rate", _LEARNING_RATES)
        choice("device", ("cpu", "cuda"))
        real("alpha", 0.0)
        if self.learning_rate_init is not None:
            real("learning_rate_init", 0.0, low_open=True)
        real("power_t", 0.0)
        integer("max_iter", 1)
        real("tol", 0.0)
        real("momentum", 0.0, 1.0)
        real("validation_fraction", 0.0, 1.0, low_open=True, high_open=True)
        real("beta_1", 0.0, 1.0, high_open=True)
        real("beta_2", 0.0, 1.0, high_open=True)
        real("epsilon", 0.0, low_open=True)
        integer("n_iter_no_change", 1)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            integer("batch_size", 1)
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if not (isinstance(self.dtype, str) and self.dtype == "auto"):
            try:
                ok = np.dtype(self.dtype) in (np.float32, np.float64)
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(f"dtype must be 'auto', 'float32' or 'float64'; got {self.dtype!r}")

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (Integral, np.integer)) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints; got {sizes!r}") from None
        if any(isinstance(s, bool) or not isinstance(s, (Integral, np.integer)) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}.")
        return [int(s) for s in sizes]

    # -- building the model and its solver ------------------------------------------------------------------
    def _learning_rate_init(self) -> float:
        if self.learning_rate_init is None:
            return DEFAULT_LEARNING_RATES[self.solver]
        return float(self.learning_rate_init)

    def _new_optimizer(self) -> Any:
        hyper: dict[str, Any] = {"lr": self._learning_rate_init()}
        if self.solver in ("gd", "sgd"):
            hyper.update(momentum=float(self.momentum), nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        elif self.solver in ("adam", "adamw"):
            hyper.update(betas=(float(self.beta_1), float(self.beta_2)), eps=float(self.epsilon))
        elif self.solver in ("adagrad", "rmsprop"):
            hyper.update(eps=float(self.epsilon))
        backend = "cuda" if self._model.device == "cuda" else "cpu"
        return make_optimizer(self.solver, self._model.params, backend=backend, **hyper)

    def _initialize(self, n_features: int, n_outputs: int, dtype: np.dtype, rng: np.random.RandomState) -> None:
        """A fresh network, solver and record (the first fit, or a fit without warm_start)."""
        loss = self._loss_for_targets()
        self._model = MLP((n_features, *self._hidden_sizes(), n_outputs), activation=_ACTIVATIONS[self.activation],
                          loss=loss, alpha=float(self.alpha), dtype=dtype, random_state=rng, device=self.device)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self._model.layer_sizes)
        self.out_activation_ = _OUT_ACTIVATION[self._model.output_activation]
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self._optimizer = None

    def _dtype_for(self, X: Any) -> np.dtype:
        if isinstance(self.dtype, str) and self.dtype == "auto":
            return np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        return np.dtype(self.dtype)

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "_model") or not (self.warm_start or incremental)
        X, Y, y_labels = self._validate_input(X, y, incremental, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        rng = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], Y.shape[1], self._dtype_for(X), rng)
        elif self._model.layer_sizes[1:-1] != tuple(self._hidden_sizes()):
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} differs from the fitted network's "
                             f"{self._model.layer_sizes[1:-1]}; warm_start and partial_fit need the same layers")
        if self.early_stopping and self.validation_scores_ is None:  # switched on for a warm start
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        elif not self.early_stopping and self.best_loss_ is None:  # switched off for a warm start
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf
        model = self._model
        model.alpha = float(self.alpha)
        if issparse(X):
            X = X.tocsr()
        X = X.astype(model.dtype, copy=False)
        Y = Y.astype(model.dtype, copy=False)
        if sample_weight is not None:
            sample_weight = sample_weight.astype(model.dtype, copy=False)

        # fit starts a new solver (Adam's moments and the step count reset, as in scikit-learn's warm start);
        # partial_fit keeps the one it has.
        if not incremental or self._optimizer is None:
            self._optimizer = self._new_optimizer()
            self._schedule = _LearningRate(self.learning_rate, float(self.power_t))
        self._optimizer.lr = self._learning_rate_init()

        validation = None
        if self.early_stopping:
            stratify = y_labels if self._stratify() else None
            parts = train_test_split(X, Y, y_labels, *(() if sample_weight is None else (sample_weight,)),
                                     random_state=rng, test_size=self.validation_fraction, stratify=stratify)
            X, X_val, Y, _, _, y_val = parts[:6]
            sw_val = None
            if sample_weight is not None:
                sample_weight, sw_val = parts[6:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size "
                                 "of your dataset.")
            validation = (X_val, y_val, sw_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=3)
            batch_size = min(self.batch_size, n)

        self.n_iter_ = 0
        bookkeeping = _Bookkeeping(self, self._schedule, n, validation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # raised below as an error instead
            history = fit(model, self._optimizer, X, Y, epochs=1 if incremental else self.max_iter,
                          batch_size=batch_size, shuffle=self.shuffle, random_state=rng, sample_weight=sample_weight,
                          schedule=self._schedule, callbacks=[bookkeeping])
        if history.diverged:
            self._optimizer = None  # its state may hold NaN; the next partial_fit starts a fresh one
            raise ValueError("Solver produced non-finite parameter weights: " + history.stop_reason)
        if self.early_stopping and bookkeeping.best_params is not None:
            model.set_params(bookkeeping.best_params)
        if not incremental and not bookkeeping.stopped and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseMLP:
        """Fit the network to ``X`` (array or sparse matrix) and ``y``; ``sample_weight`` weighs each sample's
        loss. With ``warm_start=True`` a fitted estimator continues from its weights, with a new solver."""
        return self._fit(X, y, sample_weight, incremental=False)

    # -- prediction -----------------------------------------------------------------------------------------
    def _raw_output(self, X: Any, validate: bool = True) -> np.ndarray:
        """The network's outputs (probabilities or values), shape (n_samples, n_outputs_)."""
        check_is_fitted(self, "_model")
        if validate:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
        return self._model.forward(X)

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
    """Multi-layer perceptron classifier trained by microdl: scikit-learn's ``MLPClassifier`` with seven solvers,
    float32 end to end, and an optional GPU.

    Binary targets get one logistic output, multiclass targets a softmax over the classes (cross-entropy), and
    multilabel indicator targets one logistic output per label (binary cross-entropy). See the module
    docstring, NOTE [where we differ from scikit-learn], for the few deliberate differences.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Units of each hidden layer.
    activation : {'relu', 'logistic', 'tanh', 'identity', 'sigmoid', 'leaky_relu'}, default 'relu'
        Hidden-layer activation; 'logistic' is scikit-learn's name for 'sigmoid'.
    solver : {'adam', 'adamw', 'sgd', 'gd', 'adagrad', 'rmsprop', 'adadelta'}, default 'adam'
        The optimizer of :mod:`microdl.optim` (``torch.optim``'s rules). 'gd' is full-batch gradient descent
        (``batch_size`` is ignored); 'adamw' uses torch's decoupled weight decay 0.01 on top of ``alpha``.
    alpha : float, default 1e-4
        L2 penalty α/(2 Σw) Σ‖W‖² on the weights (not the intercepts), as in scikit-learn.
    batch_size : int or 'auto', default 'auto'
        Mini-batch size; 'auto' is min(200, n_samples). Larger than n_samples is clipped, with a warning.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default 'constant'
        Schedule of the rate, for every solver: 'invscaling' multiplies it by 1/(t + 1)^power_t after each
        epoch, t being the samples seen; 'adaptive' divides it by 5 whenever training would otherwise stop on
        ``n_iter_no_change``, and stops once it is at most 1e-6.
    learning_rate_init : float or None, default None
        Initial rate; None uses :data:`DEFAULT_LEARNING_RATES` (0.001 for adam and sgd, as in scikit-learn;
        1.0 for adadelta, whose rate only scales the step).
    power_t : float, default 0.5
        Exponent of 'invscaling'.
    max_iter : int, default 200
        Epochs per call of ``fit``.
    shuffle : bool, default True
        Shuffle the samples every epoch.
    random_state : int, RandomState or None
        Seeds the initial weights, the validation split and the shuffling.
    tol : float, default 1e-4
        Smallest improvement of the training loss (or of the validation score with early stopping) that
        counts.
    verbose : bool, default False
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default False
        ``fit`` continues from the fitted weights (with a new solver, as in scikit-learn).
    momentum : float, default 0.9
        Momentum of 'sgd' and 'gd', in torch's convention (the buffer excludes the learning rate).
    nesterovs_momentum : bool, default True
        Nesterov momentum for 'sgd' and 'gd' (when momentum > 0).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for single-output targets), stop when its
        score has not improved by ``tol`` for more than ``n_iter_no_change`` epochs, and restore the weights of
        the best epoch.
    validation_fraction : float, default 0.1
        Fraction held out for early stopping.
    beta_1, beta_2 : float, default 0.9, 0.999
        Decay rates of Adam's (and AdamW's) moment estimates.
    epsilon : float, default 1e-8
        ε in the denominator of adam, adamw, adagrad and rmsprop (adadelta keeps torch's 1e-6 under its roots,
        since its step size scales with √ε).
    n_iter_no_change : int, default 10
        Epochs without improvement tolerated; training stops (or the rate drops) after more than this.
    device : {'cpu', 'cuda'}, default 'cpu'
        Where the network and the solver run.
    dtype : {'auto', 'float32', 'float64'}, default 'auto'
        Precision of the network; 'auto' is float32 for float32 X (at the first fit) and float64 otherwise.

    Attributes
    ----------
    classes_ : ndarray
        The class labels (for multilabel targets, the label indices).
    coefs_, intercepts_ : list of ndarray
        Per-layer weights and biases, views into the network's flat parameter buffer (see :attr:`coefs_`).
    loss_ : float
        Training loss (including the penalty) of the last epoch.
    loss_curve_ : list of float
        Training loss of every epoch, across ``warm_start`` fits and ``partial_fit`` calls.
    best_loss_ : float or None
        Lowest training loss seen (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy of every epoch (None without early stopping).
    best_validation_score_ : float or None
        Best of ``validation_scores_``.
    n_iter_ : int
        Epochs run by the last call of ``fit`` or ``partial_fit``.
    t_ : int
        Training samples seen by the solver, over all calls.
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

    def _loss_for_targets(self) -> str:
        return "cross_entropy" if self._label_binarizer.y_type_ == "multiclass" else "binary_cross_entropy"

    def _stratify(self) -> bool:
        return self._label_binarizer.y_type_ != "multilabel-indicator"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)  # a fresh fit: the classes are those of y
            self.classes_ = self._label_binarizer.classes_
        else:
            if not hasattr(self, "_label_binarizer"):  # the first partial_fit: classes_ came from `classes`
                multilabel = type_of_target(y).startswith("multilabel")
                self._label_binarizer = LabelBinarizer().fit(y if multilabel else self.classes_)
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        Y = self._label_binarizer.transform(y)
        Y = (Y.toarray() if issparse(Y) else Y).astype(X.dtype)
        return X, Y, y

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)``, keeping the solver's state between calls; ``classes`` (all labels that
        will ever appear) is required on the first call."""
        _check_partial_fit_first_call(self, classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _score_encoded(self, X: Any, y: Any, sample_weight: Any) -> float:
        """Accuracy on validated data (the early-stopping score)."""
        return accuracy_score(y, self._labels(self._raw_output(X, validate=False)), sample_weight=sample_weight)

    def _labels(self, out: np.ndarray) -> np.ndarray:
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multilabel targets)."""
        return self._labels(self._raw_output(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes) in the order of ``classes_``."""
        out = self._raw_output(X)
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
    """Multi-layer perceptron regressor trained by microdl: scikit-learn's ``MLPRegressor`` with seven solvers,
    float32 end to end, and an optional GPU.

    The output layer is linear and the loss half the squared error, summed over outputs; targets may have
    several columns. The parameters, attributes and differences from scikit-learn are those of
    :class:`MLPClassifier`, except that there are no classes, ``validation_scores_`` hold R² (averaged over
    outputs) and ``out_activation_`` is 'identity'.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from microdl.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=400, n_features=5, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=400, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.95
    True
    """

    def _loss_for_targets(self) -> str:
        return "squared_error"

    def _stratify(self) -> bool:
        return False

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = (y[:, None] if y.ndim == 1 else y).astype(X.dtype)
        return X, Y, y

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)``, keeping the solver's state between calls."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _score_encoded(self, X: Any, y: Any, sample_weight: Any) -> float:
        """R² on validated data (the early-stopping score); NaN if the predictions are not finite."""
        pred = self._values(self._raw_output(X, validate=False))
        if not np.all(np.isfinite(pred)):
            return np.nan
        return r2_score(y, pred, sample_weight=sample_weight)

    def _values(self, out: np.ndarray) -> np.ndarray:
        return out.ravel() if self.n_outputs_ == 1 else out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._values(self._raw_output(X))
