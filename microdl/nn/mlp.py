"""The multi-layer perceptron, with hand-written forward and backward passes over one flat buffer.

Conventions
-----------
* Samples are rows. Layer ``l`` maps ``A[l-1]`` (m × fan_in) to ``A[l] = f(A[l-1] @ W[l] + b[l])``; W[l] is
  fan_in × fan_out, b[l] has fan_out entries.
* All weights and biases live in one contiguous 1-D array :attr:`MLP.params`, in the order W[1], b[1], W[2],
  b[2], ... (:mod:`microdl.nn.layout`); :attr:`MLP.weights` and :attr:`MLP.biases` are views into it. Gradients
  live in :attr:`MLP.grads` with the same layout, and backprop writes straight into its views
  :attr:`MLP.dL_dW` and :attr:`MLP.dL_db`. An optimizer step is then one elementwise kernel over one array.
* The loss is the weighted mean of the per-sample losses of :mod:`microdl.nn.losses` plus the L2 penalty
  ``alpha / (2 Σw) Σ_l ||W[l]||²`` on weights only (scikit-learn's convention; biases are not penalised).

Backprop, in the names used below (⊙ is the elementwise product, m the batch size)::

    D[L]     = dL/dZ[L], the loss's delta              (w ⊙ (A[L] − Y) / Σw for a canonical loss pair)
    dL/dW[l] = A[l−1]ᵀ D[l] + (α/Σw) W[l]
    dL/db[l] = Σ_rows D[l]
    D[l−1]   = (D[l] W[l]ᵀ) ⊙ f'(Z[l−1])              (activations.py)

:mod:`microdl.nn.reference` is this, line for line, in plain NumPy: read it first (``backend="numpy"`` trains on
it). Otherwise the passes run in the kernels of :mod:`microdl.nn._cpu` (the batch cut into row blocks, one per
thread, NOTE [row blocks] there) or, for ``device="cuda"``, of :mod:`microdl.cuda`.

NOTE [the NumPy backend for small fits]
    A fresh process pays for the compiled kernels before their first pass: importing Numba, setting up its CPU
    target and loading the kernels from the disk cache took 0.44 s of CPU time with a warm cache (the median of 7
    pairs of fresh processes fitting digits once, ``backend="numba"`` against ``"numpy"``, issue 20), and compiling
    them about 3 s with an empty one; a user's first fit of a small problem was more than 95 % of that. The NumPy
    backend (:mod:`microdl.nn.reference`, with the array forms of the formulas: NOTE [array forms] in
    :mod:`microdl.nn.activations`) needs no compiled code, and costs more per batch instead: about 80 µs per batch
    and 0.1-0.2 ns per sample and parameter more than the kernels (Adam on digits, BLAS on one thread, batches of
    1, 32 and 200 rows, hidden layers of 64, 100 and 512; the kernels took 2.1 ms an epoch at batch 200 and
    hidden 100, the NumPy backend 3.7 ms, scikit-learn 14.5 ms). So :func:`choose_backend` counts a fit's work as
    epochs × (samples × parameters + batches × :data:`NUMPY_BATCH_WORK`), 400,000 units a batch (80 µs over
    0.2 ns), and takes NumPy up to :data:`NUMPY_MAX_WORK`, 2.2e9 units (0.44 s over 0.2 ns): where the NumPy
    backend is done before the kernels would be loaded. Digits' default network then trains on NumPy for up to
    about 130 epochs of batch 200. The choice is made from the planned fit alone, never from what the process has
    loaded already, so the same fit runs on the same backend everywhere; the estimators
    (``backend='auto'``, their default) and ``microdl train`` (``--backend auto``) make it, and say which they
    took (``backend_``; the model's repr). Both backends compute the same thing and agree to rounding; the NumPy
    one computes in float64 whatever the model's dtype (the reference pass's rule), and holds NumPy's BLAS at one
    thread during each pass, as the kernels hold theirs during each call (a BLAS thread pool on a loaded machine
    made its epochs 4 to 30 times slower; :class:`microdl.nn._blas.single_threaded_numpy_blas`). Importing
    :mod:`microdl.nn`, :mod:`microdl.optim`, :mod:`microdl.train` or :mod:`microdl.sklearn` imports no Numba:
    the kernels are imported by the first model built on them.

NOTE [workspaces]
    A pass needs buffers for every layer's activations and deltas. Training uses the model's own workspace,
    sized for the largest batch and reused, so a step allocates nothing. Prediction and evaluation use a
    workspace per thread, so that several threads can call :meth:`MLP.forward`, :meth:`MLP.predict` and
    :func:`microdl.train.evaluate_loss` on one model at the same time and each gets its own answer.
    Training one model from two threads at once is refused (:func:`microdl.train.fit`); ``loss_and_grad``
    writes the model's one gradient buffer and is not meant to be called concurrently either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse import issparse

from microdl import config
from microdl._validation import (
    check_choice,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
    check_X,
    check_Y,
)
from microdl.nn import formulas, losses, reference
from microdl.nn._blas import single_threaded_numpy_blas
from microdl.nn.activations import activation_parameters, get_activation
from microdl.nn.layout import layer_shapes, layer_views, layout_table, n_params
from microdl.nn.losses import get_loss, loss_parameters

__all__ = ["MLP", "INITS", "BACKENDS", "choose_backend", "fit_work", "NUMPY_MAX_WORK", "NUMPY_BATCH_WORK"]

INITS = ("auto", "glorot", "he", "sklearn")
#: Who runs the passes on the CPU: Numba's compiled kernels, or the NumPy code of :mod:`microdl.nn.reference`
#: (NOTE [the NumPy backend for small fits]).
BACKENDS = ("numba", "numpy")

#: The most work for which :func:`choose_backend` picks the NumPy backend, in samples × parameters: the time a
#: fresh process needs to load the compiled kernels, divided by what the NumPy backend costs more per sample and
#: parameter (NOTE [the NumPy backend for small fits]).
NUMPY_MAX_WORK = 2_200_000_000
#: What one batch costs the NumPy backend more than the compiled kernels (its Python calls, the temporaries), in
#: the same units of work (NOTE [the NumPy backend for small fits]).
NUMPY_BATCH_WORK = 400_000


def fit_work(n_params: int, n_samples: int, epochs: int, batch_size: int | None = None) -> int:
    """The work of a fit as :func:`choose_backend` counts it: ``epochs`` × (``n_samples`` × ``n_params`` +
    batches × :data:`NUMPY_BATCH_WORK`), with batches of ``batch_size`` rows (None: the full batch)."""
    batches = 1 if batch_size is None or n_samples == 0 else -(-n_samples // min(batch_size, n_samples))
    return epochs * (n_samples * n_params + batches * NUMPY_BATCH_WORK)


def choose_backend(layer_sizes: Sequence[int], n_samples: int, epochs: int, batch_size: int | None = None,
                   activation: str = "relu", loss: str = "cross_entropy", device: str = "cpu") -> str:
    """The backend that finishes a fit of ``epochs`` passes over ``n_samples`` rows in batches of ``batch_size``
    (None: the full batch) soonest, counting the time a fresh process needs to load the compiled kernels:
    ``"numpy"`` while its work (:func:`fit_work`) is at most :data:`NUMPY_MAX_WORK` and the activation and the
    loss have array forms, ``"numba"`` otherwise (NOTE [the NumPy backend for small fits]). A pure function of
    its arguments, so that the same fit makes the same choice in every process.

    >>> choose_backend((64, 100, 10), n_samples=1797, epochs=10, batch_size=200)
    'numpy'
    >>> choose_backend((64, 100, 10), n_samples=1797, epochs=200, batch_size=200)
    'numba'
    """
    sizes = _check_layer_sizes(layer_sizes)
    n_samples, epochs = check_int("n_samples", n_samples, 0), check_int("epochs", epochs, 0)
    batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)
    act, out = get_activation(activation), get_loss(loss)
    has_arrays = None not in (act.f_array, act.df_array, out.value_array, out.delta_array)
    small = fit_work(n_params(sizes), n_samples, epochs, batch_size) <= NUMPY_MAX_WORK
    return "numpy" if check_choice("device", device, ("cpu", "cuda")) == "cpu" and has_arrays and small else "numba"


# The compiled passes and Numba's thread count, imported by the first model that runs on them, so that a model on
# the NumPy backend imports no Numba (NOTE [the NumPy backend for small fits]).
_cpu: Any = None
_num_threads: Any = None


#: The NumPy backend computes as the kernels do, without floating-point warnings: a loss or a weight that overflows
#: is the training loop's to report, once (NOTE [finite or told] in microdl.train).
_QUIET = {"over": "ignore", "invalid": "ignore", "divide": "ignore", "under": "ignore"}


def _load_kernels() -> None:
    global _cpu, _num_threads
    if _cpu is None:
        from numba import get_num_threads

        from microdl.nn import _cpu as module

        _cpu, _num_threads = module, get_num_threads


class _Workspace:
    """Activations, deltas and per-sample losses of a pass, for up to ``capacity`` rows (NOTE [workspaces])."""

    def __init__(self, model: MLP, with_deltas: bool) -> None:
        self.model, self.with_deltas = model, with_deltas
        self.capacity = 0
        self.block_grads = np.empty((0, model.n_params), dtype=model.dtype)

    def reserve(self, m: int) -> None:
        """Hold at least ``m`` rows (grows only; no allocation afterwards)."""
        if m <= self.capacity:
            return
        widths, dtype = self.model.layer_sizes[1:], self.model.dtype
        self.A = tuple(np.empty((m, w), dtype=dtype) for w in widths)  # outputs of layers 1..L
        # pre-activations, only for an activation whose f' needs them (None otherwise: NOTE [two blocks] in
        # microdl.nn._cpu); a forward-only pass writes them over its outputs, since no backward pass reads them
        self.Z: tuple[np.ndarray, ...] | None = None
        if self.model._keep_z:
            self.Z = tuple(np.empty((m, w), dtype=dtype) for w in widths) if self.with_deltas else self.A
        # dL/dZ of layers 1..L; a forward-only workspace never writes them and keeps none
        self.D = tuple(np.empty((m if self.with_deltas else 0, w), dtype=dtype) for w in widths)
        self.per_sample = np.empty(m, dtype=dtype)
        self.capacity = m

    def blocks(self, m: int) -> int:
        """Row blocks for a pass of ``m`` rows (NOTE [row blocks] in :mod:`microdl.nn._cpu`); grows the gradient
        buffers of blocks 1.. when the thread count has grown."""
        model = self.model
        n_blocks = _cpu.n_blocks_for(m, model._n_weights, _num_threads(), self.with_deltas)
        if self.with_deltas and n_blocks - 1 > self.block_grads.shape[0]:
            self.block_grads = np.empty((n_blocks - 1, model.n_params), dtype=model.dtype)
        return n_blocks


class MLP:
    """A fully connected network with hand-written backprop over one flat parameter buffer.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_inputs, hidden_1, ..., n_outputs)``; at least an input and an output size, all positive.
    activation : str, default "relu"
        Hidden-layer activation, a name registered in :mod:`microdl.nn.activations`: "identity", "relu",
        "leaky_relu", "tanh", "sigmoid", "elu", "gelu", "silu", or one of your own
        (:func:`~microdl.nn.register_activation`).
    loss : str, default "cross_entropy"
        Loss, a name registered in :mod:`microdl.nn.losses`, which fixes the output activation:
        "cross_entropy" (softmax), "binary_cross_entropy" (sigmoid), "squared_error", "huber",
        "absolute_error" (identity), "poisson" (exp), or one of your own (:func:`~microdl.nn.register_loss`).
    alpha : float, default 0
        L2 penalty on the weights (not the biases), scaled as in scikit-learn.
    init : {"auto", "glorot", "he", "sklearn"}, default "auto"
        Uniform Glorot (bound √(6/(fan_in+fan_out))) or He (bound √(6/fan_in)) initialisation of the weights,
        biases at zero; ``"auto"`` picks He for relu and leaky_relu, Glorot otherwise. ``"sklearn"`` is
        scikit-learn's scheme, draw for draw: per layer, W then b from U(±√(f/(fan_in+fan_out))) with f = 2 for
        sigmoid and 6 otherwise (an int ``random_state`` seeds a ``RandomState``, as in scikit-learn).
    dtype : {"float64", "float32"}, default "float64"
        Precision of parameters, gradients and activations.
    random_state : int, numpy Generator, RandomState or None
        Seed of the initialisation.
    device : {"cpu", "cuda"}, default "cpu"
        ``"cuda"`` keeps parameters, gradients and activations on the GPU and runs forward and backward as
        Numba CUDA kernels (:mod:`microdl.cuda`); :attr:`params` and :attr:`grads` are then device arrays.
    activation_params, loss_params : dict or None
        Parameters of the activation and the loss, by name, the rest at their defaults: ``{"negative_slope":
        0.01}`` for leaky_relu, ``{"alpha": 1.0}`` for elu, ``{"delta": 1.0}`` for huber.
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs forward and backward through the textbook code of :mod:`microdl.nn.reference` (CPU
        only): no compiled code to load, so a fresh process starts at once, and slower per batch than the
        kernels (NOTE [the NumPy backend for small fits]; :func:`choose_backend` picks one for a planned fit);
        also the code to read and step through in a debugger. Both give the same numbers to rounding.
    dropout : float or sequence of float, default 0
        Inverted dropout of the hidden layers' outputs: each unit is dropped with probability p (0 ≤ p < 1) and
        the kept ones scaled by 1/(1−p), in training passes only (:meth:`loss_and_grad`, ``fit``); prediction and
        evaluation never drop. One rate for every hidden layer, or one per hidden layer. The masks are drawn from
        the model's own random stream, seeded by ``random_state``, so the same seed gives the same fit; 0 (the
        default) runs the passes without any dropout code.

    Examples
    --------
    >>> import numpy as np
    >>> from microdl.nn import MLP
    >>> net = MLP((4, 8, 3), random_state=0)
    >>> X, y = np.ones((5, 4)), np.array([0, 1, 2, 1, 0])
    >>> loss = net.loss_and_grad(X, y)   # fills net.grads
    >>> net.grads.shape == net.params.shape
    True
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu", loss: str = "cross_entropy",
                 alpha: float = 0.0, init: str = "auto", dtype: Any = "float64", random_state: Any = None,
                 device: str = "cpu", activation_params: dict[str, float] | None = None,
                 loss_params: dict[str, float] | None = None, backend: str = "numba",
                 dropout: float | Sequence[float] = 0.0) -> None:
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        self.dropout = _check_dropout(dropout, len(self.layer_sizes) - 2)
        self.activation = get_activation(activation).name
        self.loss = get_loss(loss).name
        self.activation_params = activation_parameters(self.activation, activation_params)
        self.loss_params = loss_parameters(self.loss, loss_params)
        self.output_activation = get_loss(self.loss).output
        self.alpha = check_real("alpha", alpha, 0.0)
        self.init = check_choice("init", init, INITS)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64; got {dtype!r}")
        self.device = check_choice("device", device, ("cpu", "cuda"))
        self.backend = check_choice("backend", backend, BACKENDS)
        if self.backend == "numpy" and self.device == "cuda":
            raise ValueError("backend='numpy' runs on the CPU; use device='cpu' with it")

        # One flat buffer for all parameters, one of the same layout for the gradients, and views into both.
        self.n_params = n_params(self.layer_sizes)
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.weights, self.biases = layer_views(self.params, self.layer_sizes)
        self.dL_dW, self.dL_db = layer_views(self.grads, self.layer_sizes)
        self.initialize(random_state)
        # the masks' own stream, drawn after the weights so that they are the same with and without dropout
        self._dropout_rng = _dropout_stream(random_state) if any(self.dropout) else None
        self._setup()

    def _setup(self) -> None:
        """What the kernels need besides the buffers, the workspaces and the locks; the device, if any."""
        act, loss = get_activation(self.activation), get_loss(self.loss)
        self._activation_code, self._loss_code = act.code, loss.code
        self._keep_z = not act.from_output
        # the parameter vectors p as the kernels take them (NOTE [parameters as a tuple] in microdl.nn.formulas)
        self._activation_p = formulas.as_parameters([self.activation_params[k] for k in act.params])
        self._loss_p = formulas.as_parameters([self.loss_params[k] for k in loss.params])
        self._layout = layout_table(self.layer_sizes)
        self._n_weights = sum(fan_in * fan_out for fan_in, fan_out in layer_shapes(self.layer_sizes))
        self._no_X = np.empty((0, self.layer_sizes[0]), dtype=self.dtype)
        self._no_Y = np.empty((0, 0), dtype=self.dtype)
        self._no_w = np.empty(0, dtype=self.dtype)
        self._train = _Workspace(self, with_deltas=True)
        self._local = threading.local()  # a forward-only workspace per thread (NOTE [workspaces])
        self._fit_lock = threading.Lock()
        self._masks: tuple[np.ndarray, ...] = ()  # the dropout masks' buffer (NOTE [dropout] in microdl.nn._cpu)
        self._device_net = None
        if self.backend == "numba":
            _load_kernels()
        if self.device == "cuda":
            from microdl.cuda.model import DeviceNet  # imports numba.cuda only now

            # Moves params and grads (and the views into them) to the GPU; see microdl.cuda.model.
            self._device_net = DeviceNet(self)

    # -- set-up --------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    def initialize(self, random_state: Any = None) -> None:
        """Draw new weights (and, for ``init="sklearn"``, biases) as the class docstring says, in place."""
        if self.init == "sklearn":
            # scikit-learn's _init_coef: for each layer, W then b from U(±√(factor/(fan_in + fan_out))), factor 2
            # for the logistic activation and 6 otherwise, drawn from a RandomState (an int seed gives
            # RandomState(seed), as sklearn.utils.check_random_state does).
            rng = (np.random.RandomState(check_int("random_state", random_state, 0))
                   if isinstance(random_state, Integral) else check_random_state(random_state))
            factor = 2.0 if self.activation == "sigmoid" else 6.0
            for W, b in zip(self.weights, self.biases):
                bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
                W[...] = rng.uniform(-bound, bound, W.shape)
                b[...] = rng.uniform(-bound, bound, b.shape)
            return
        rng = check_random_state(random_state)
        use_he = self.init == "he" or (self.init == "auto" and self.activation in ("relu", "leaky_relu"))
        for W, b in zip(self.weights, self.biases):
            fan_in, fan_out = W.shape
            bound = np.sqrt(6.0 / fan_in) if use_he else np.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = 0.0

    def _workspace(self) -> _Workspace:
        """This thread's forward-only workspace (NOTE [workspaces])."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = _Workspace(self, with_deltas=False)
        return ws

    # -- forward and backward ------------------------------------------------------------------------------
    # Both run in the kernels of microdl.nn._cpu, one row block per thread. Sparse X is the one case that
    # needs SciPy here: its products with W[1] (forward) and with D[1] (backward) are done outside the kernel.
    def _run(self, X: Any, Y: np.ndarray, w: np.ndarray | None, ws: _Workspace, with_grad: bool,
             masks: tuple[np.ndarray, ...] | None = None) -> tuple[float, float, int]:
        """Run the kernel over validated, model-dtype ``X`` (dense or CSR) and ``Y`` (or an empty Y for no
        loss) in workspace ``ws``, with the dropout ``masks`` of :meth:`_dropout_factors` if given; return
        (Σ w_i ℓ_i, 1/Σw, n_blocks)."""
        m = X.shape[0]
        ws.reserve(m)
        n_blocks = ws.blocks(m)
        sparse = issparse(X)
        if not sparse and not X.flags.c_contiguous:  # the kernels' products need row-major blocks
            X = np.ascontiguousarray(X)
        if not Y.flags.c_contiguous:
            Y = np.ascontiguousarray(Y)
        total_weight = m if w is None else float(np.sum(w, dtype=np.float64))
        scale = 1.0 / total_weight if total_weight > 0 else 0.0  # a batch of zero weights contributes nothing
        args = (self._no_X if sparse else X, Y, self._no_w if w is None else w, scale, self.params, self._layout,
                ws.A, ws.Z, masks, ws.D, self.grads, ws.block_grads, ws.per_sample, m, n_blocks, self._activation_code,
                self._activation_p, self._loss_code, self._loss_p, with_grad, sparse)
        passes = _cpu.kernels()
        with _cpu.single_threaded_blas(), config.kernel_call():  # NOTE [fork while a kernel runs]
            if sparse:
                ws.A[0][:m] = X @ self.weights[0]
            if n_blocks == 1:
                sum_wl = passes.serial(*args)
            elif config.use_threads():  # NOTE [threading layer] in microdl.config
                sum_wl = config.run_parallel(passes.parallel, *args)
            else:  # the same blocks, one after the other
                sum_wl = passes.sequential(*args)
        if sparse and with_grad:
            self.dL_dW[0][...] = X.T @ ws.D[0][:m]
        return sum_wl, scale, n_blocks

    def _batch_loss_and_grad(self, X: Any, Y: np.ndarray, w: np.ndarray | None = None,
                             keep: tuple[np.ndarray, ...] | None = None) -> tuple[float, float]:
        """(data loss Σwℓ/Σw, L2 penalty) of one batch, and its gradient into :attr:`grads`, for validated,
        model-dtype ``X`` and 2-D ``Y``, with dropout if the model has it (masks drawn now, or the boolean
        ``keep`` masks given). The batch loss is their sum."""
        masks = self._dropout_factors(X.shape[0], keep) if self._dropout_rng is not None or keep is not None else None
        if self.backend == "numpy":
            return self._reference_loss_and_grad(X, Y, w, masks)
        sum_wl, scale, n_blocks = self._run(X, Y, w, self._train, with_grad=True, masks=masks)
        penalty = 0.0
        if self.alpha or n_blocks > 1:
            # Add up the blocks' gradients and the L2 term (α/Σw) W; the penalty itself is α/(2Σw) Σ‖W‖².
            skip_below = self.weights[0].size if issparse(X) else 0  # dL/dW[1] of sparse X is whole already
            args = (self.grads, self._train.block_grads, n_blocks - 1, self.params, self._layout, self.alpha, scale,
                    skip_below, n_blocks)
            if n_blocks == 1:
                sum_sq = _cpu.sum_blocks_serial(*args)
            elif config.use_threads():
                sum_sq = config.run_parallel(_cpu.sum_blocks, *args)
            else:
                sum_sq = _cpu.sum_blocks_sequential(*args)
            penalty = losses.l2_penalty(self.alpha, scale, sum_sq)
        return float(sum_wl * scale), float(penalty)

    def _reference_loss_and_grad(self, X: Any, Y: np.ndarray, w: np.ndarray | None,
                                 masks: tuple[np.ndarray, ...] | None = None) -> tuple[float, float]:
        """:meth:`_batch_loss_and_grad` through the textbook pass (``backend="numpy"``)."""
        m = X.shape[0]
        with single_threaded_numpy_blas(), np.errstate(**_QUIET):
            loss, dL_dW, dL_db = reference.loss_and_grad(self, X, Y, w, None if masks is None else
                                                         [M[:m] for M in masks])
            for view, g in zip(self.dL_dW + self.dL_db, dL_dW + dL_db):
                view[...] = g  # (a float32 model: an overflowing gradient becomes inf, as in the kernels)
        penalty = self.penalty(X.shape[0] if w is None else float(np.sum(w, dtype=np.float64)))
        return loss - penalty, penalty

    def _loss_and_grad(self, X: Any, Y: np.ndarray, w: np.ndarray | None = None,
                       keep: tuple[np.ndarray, ...] | None = None) -> float:
        """Loss and gradients (into :attr:`grads`) for validated, model-dtype ``X`` and 2-D ``Y``."""
        data, penalty = self._batch_loss_and_grad(X, Y, w, keep)
        return data + penalty

    def _dropout_factors(self, m: int, keep: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, ...]:
        """The dropout masks of a training pass of ``m`` rows as factors, 1/(1−p) for a kept unit and 0 for a
        dropped one, one (capacity, width) array per hidden layer, of which rows 0..m−1 are set: drawn from the
        model's dropout stream (a unit is kept when its uniform draw is ≥ p), or from the boolean ``keep``
        masks. The buffer is reused from batch to batch (NOTE [dropout] in :mod:`microdl.nn._cpu`)."""
        if not self._masks or self._masks[0].shape[0] < m:
            self._masks = tuple(np.empty((m, w), dtype=self.dtype) for w in self.layer_sizes[1:-1])
        for l, (buf, p) in enumerate(zip(self._masks, self.dropout)):
            M = buf[:m]
            if keep is not None:
                np.multiply(keep[l], 1.0 / (1.0 - p), out=M)
            elif p == 0:
                M.fill(1.0)
            else:
                self._dropout_rng.random(out=M, dtype=self.dtype)
                np.greater_equal(M, p, out=M, casting="unsafe")  # 1 kept, 0 dropped
                M *= 1.0 / (1.0 - p)
        return self._masks

    def _evaluate(self, X: Any, Y: np.ndarray | None,
                  with_outputs: bool = False) -> tuple[float, np.ndarray | None]:
        """Loss on a whole validated dataset (the mean ℓ plus the penalty once; NaN without ``Y``) and, with
        ``with_outputs``, the outputs; in chunks of ``config.EVAL_CHUNK`` rows, in this thread's workspace.
        The gradient buffer is not touched."""
        if self._device_net is not None:
            return self._device_net.evaluate(X, Y, with_outputs)
        if self.backend == "numpy":
            with single_threaded_numpy_blas(), np.errstate(**_QUIET):
                loss, out = reference.evaluate(self, X, Y)
            return loss, out.astype(self.dtype) if with_outputs else None
        n, chunk = X.shape[0], config.EVAL_CHUNK
        out = np.empty((n, self.layer_sizes[-1]), dtype=self.dtype) if with_outputs else None
        ws = self._workspace()
        sum_wl = 0.0
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            sum_wl += self._run(X[lo:hi], self._no_Y if Y is None else Y[lo:hi], None, ws, with_grad=False)[0]
            if with_outputs:
                out[lo:hi] = ws.A[-1][: hi - lo]
        loss = np.nan if Y is None else float(sum_wl) / n + self.penalty(n)
        return loss, out

    def penalty(self, total_weight: float) -> float:
        """The L2 term α/(2Σw) Σ_l ‖W[l]‖² of a batch whose sample weights sum to ``total_weight``."""
        if not self.alpha:
            return 0.0
        params = self.host_params() if self._device_net is not None else self.params
        sum_sq = 0.0
        for fan_in, fan_out, off_W, _ in self._layout:
            W = params[off_W : off_W + fan_in * fan_out]
            sum_sq += float(np.dot(W, W))
        return losses.l2_penalty(self.alpha, 1.0 / total_weight if total_weight > 0 else 0.0, sum_sq)

    # -- public surface ------------------------------------------------------------------------------------
    def _as_input(self, X: Any, name: str = "X") -> Any:
        """X checked as the passes take it: a CUDA model's :meth:`DeviceNet.as_input` reads device arrays in
        place (shape only: a NaN scan would cost a pass and a sync); otherwise :func:`check_X`."""
        if self._device_net is not None:
            return self._device_net.as_input(X, name)
        return check_X(X, self.layer_sizes[0], self.dtype, name)

    def _as_data(self, X: Any, y: Any, names: tuple[str, str] = ("X", "y")) -> tuple[Any, np.ndarray]:
        """X checked (:meth:`_as_input`) and y encoded (:meth:`encode_targets`), with as many rows each."""
        X = self._as_input(X, names[0])
        Y = self.encode_targets(y, name=names[1])
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"{names[0]} has {X.shape[0]} samples but {names[1]} has {Y.shape[0]}")
        return X, Y

    def forward(self, X: Any) -> np.ndarray:
        """Network outputs for ``X`` (dense or SciPy sparse; with ``device="cuda"`` also a device array, read in
        place): class probabilities (softmax or sigmoid), regression values or Poisson means, as a host array.
        Thread-safe (NOTE [workspaces])."""
        return self._evaluate(self._as_input(X), None, with_outputs=True)[1]

    def forward_device(self, X: Any) -> Any:
        """Network outputs left on the GPU (``device="cuda"`` only), for host or device ``X``.

        Returns a Numba device array; it speaks ``__cuda_array_interface__``, so ``cupy.asarray(out)`` or
        ``torch.as_tensor(out, device="cuda")`` take it without a copy.
        """
        if self._device_net is None:
            raise ValueError("forward_device needs a model built with device='cuda'; forward returns host outputs")
        return self._device_net.forward_device(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class indices (a loss on classes: ``cross_entropy``), 0/1 indicators (on probabilities:
        ``binary_cross_entropy``) or values."""
        out = self.forward(X)
        targets = get_loss(self.loss).targets
        if targets == "classes":
            return out.argmax(axis=1)
        if targets == "probabilities":
            return (out > 0.5).astype(np.int64)
        return out

    def encode_targets(self, y: Any, name: str = "y") -> np.ndarray:
        """Targets as the 2-D float array the loss expects (one-hot for 1-D class labels with cross_entropy)."""
        return check_Y(y, self.layer_sizes[-1], self.loss, self.dtype, name)

    def loss_and_grad(self, X: Any, y: Any, sample_weight: Any = None, dropout_mask: Any = None) -> float:
        """Return the loss on ``(X, y)`` and write its gradient into :attr:`grads`: a training pass, with
        dropout if the model has it.

        Parameters
        ----------
        X : array or SciPy sparse matrix of shape (m, n_inputs)
            With ``device="cuda"``, also a device array (``__cuda_array_interface__``), read in place.
        y : array
            ``cross_entropy``: class indices of shape (m,) or probabilities of shape (m, n_outputs) whose rows
            sum to 1; ``binary_cross_entropy``: 0/1 (or probabilities) of shape (m, n_outputs), or (m,) with
            one output; ``squared_error``: values of shape (m, n_outputs), or (m,) with one output;
            ``poisson``: non-negative values, shaped as for ``squared_error``.
        sample_weight : array of shape (m,), optional
            Non-negative weights with a positive sum.
        dropout_mask : sequence of bool arrays, optional
            The dropout masks to use instead of drawing new ones, one per hidden layer, of shape (m, width), True
            for a kept unit (scaled by 1/(1−p) of its layer): a fixed mask, for a gradient check.

        ``y`` and ``sample_weight`` may also be device arrays; they are copied to the host to be checked.
        """
        X, Y = self._as_data(X, y)
        w = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        keep = None if dropout_mask is None else self._check_dropout_mask(dropout_mask, X.shape[0])
        if self._device_net is not None:
            return self._device_net.loss_and_grad(X, Y, w, keep)
        return self._loss_and_grad(X, Y, w, keep)

    def _check_dropout_mask(self, masks: Any, m: int) -> tuple[np.ndarray, ...]:
        widths = self.layer_sizes[1:-1]
        if isinstance(masks, np.ndarray) or not isinstance(masks, Sequence) or len(masks) != len(widths):
            raise TypeError(f"dropout_mask must be a sequence of {len(widths)} boolean arrays, one per hidden "
                            f"layer; got {type(masks).__name__}")
        out = []
        for l, (mask, width) in enumerate(zip(masks, widths)):
            mask = np.asarray(mask)
            if mask.dtype != np.bool_:
                raise TypeError(f"dropout_mask[{l}] must be a boolean array (True keeps a unit); got {mask.dtype}")
            if mask.shape != (m, width):
                raise ValueError(f"dropout_mask[{l}] must have shape {(m, width)}; got {mask.shape}")
            out.append(mask)
        return tuple(out)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("activation_params", self.activation_params),
                                                      ("loss_params", self.loss_params)) if v)
        extra += ", backend='numpy'" if self.backend == "numpy" else ""
        extra += f", dropout={self._dropout_arg()!r}" if any(self.dropout) else ""
        return (f"MLP(layer_sizes={self.layer_sizes}, activation={self.activation!r}, loss={self.loss!r}, "
                f"alpha={self.alpha}, dtype={self.dtype.name!r}{extra})")

    # -- copies ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The constructor arguments (without ``random_state``), for saving and cloning."""
        config = {"layer_sizes": list(self.layer_sizes), "activation": self.activation, "loss": self.loss,
                  "alpha": self.alpha, "init": self.init, "dtype": self.dtype.name, "device": self.device}
        # (only when they say something, so that checkpoints of plain models read as before)
        if self.activation_params:
            config["activation_params"] = dict(self.activation_params)
        if self.loss_params:
            config["loss_params"] = dict(self.loss_params)
        if self.backend != "numba":
            config["backend"] = self.backend
        if any(self.dropout):
            config["dropout"] = self._dropout_arg()
        return config

    def _dropout_arg(self) -> float | list[float]:
        """:attr:`dropout` as the constructor takes it: one rate if all layers share it."""
        return self.dropout[0] if len(set(self.dropout)) == 1 else list(self.dropout)

    def host_params(self) -> np.ndarray:
        """A host copy of :attr:`params` (on either device)."""
        if self._device_net is not None:
            return self.params.copy_to_host()
        return self.params.copy()

    def set_params(self, values: Any) -> None:
        """Overwrite :attr:`params` with ``values`` (a finite host array of the same size), on either device."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != (self.n_params,):
            raise ValueError(f"params must have shape ({self.n_params},); got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("params must be finite; got NaN or infinity")
        if self._device_net is not None:
            self.params.copy_to_device(values)
        else:
            self.params[...] = values

    def __getstate__(self) -> dict[str, Any]:
        state = {"config": self.config(), "params": self.host_params()}
        if self._dropout_rng is not None:  # so that a copy goes on drawing the same masks
            state["dropout_stream"] = self._dropout_rng.bit_generator.state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        self.set_params(state["params"])
        if "dropout_stream" in state and self._dropout_rng is not None:
            self._dropout_rng.bit_generator.state = state["dropout_stream"]

    # -- torch's names: state_dict / load_state_dict ---------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """The parameters by name, as ``torch.nn.Module.state_dict()`` gives them: an ordered mapping from
        ``"weights.0"``, ``"biases.0"``, ``"weights.1"``, ... (the attribute paths of :attr:`weights` and
        :attr:`biases`, layer by layer) to host copies of W[l] (fan_in × fan_out, microdl's orientation: torch's
        ``Linear.weight`` is its transpose) and b[l]. Copies: changing them leaves the model alone.

        >>> net = MLP((3, 4, 2), random_state=0)
        >>> list(net.state_dict())
        ['weights.0', 'biases.0', 'weights.1', 'biases.1']
        >>> net.state_dict()["weights.0"].shape
        (3, 4)
        """
        weights, biases = layer_views(self.host_params(), self.layer_sizes)
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for layer, (W, b) in enumerate(zip(weights, biases)):
            state[f"weights.{layer}"] = W.copy()
            state[f"biases.{layer}"] = b.copy()
        return state

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> _IncompatibleKeys:
        """Copy named parameters into the model, as ``torch.nn.Module.load_state_dict`` does.

        Every entry is checked before anything is written, so a refused call leaves the model unchanged: the
        shape must be the layer's (also with ``strict=False``, as in torch), the values real numbers (a float
        array of another precision is cast to the model's dtype, as torch's ``copy_`` does; integers, booleans,
        complex numbers and objects are refused) and finite.

        Parameters
        ----------
        state_dict : mapping of str to array-like
            As :meth:`state_dict` gives it (on either device; the arrays are host arrays).
        strict : bool, default True
            Require exactly the keys of :meth:`state_dict`; with False, load the keys that match and return the
            others.

        Returns
        -------
        NamedTuple with fields ``missing_keys`` and ``unexpected_keys`` (lists of str), as torch's.

        >>> a, b = MLP((3, 4, 2), random_state=0), MLP((3, 4, 2), random_state=1)
        >>> b.load_state_dict(a.state_dict())
        _IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        >>> bool((a.params == b.params).all())
        True
        """
        from collections.abc import Mapping

        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to arrays (as MLP.state_dict() gives); got "
                            f"{type(state_dict).__name__}")
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"strict must be True or False; got {strict!r}")
        expected = self.state_dict()
        missing = [key for key in expected if key not in state_dict]
        unexpected = [key for key in state_dict if key not in expected]
        if strict and (missing or unexpected):
            raise ValueError(f"Error(s) in loading state_dict for MLP{self.layer_sizes}: missing keys {missing}, "
                           f"unexpected keys {unexpected}; load_state_dict(..., strict=False) loads the keys that "
                           "match")
        params = self.host_params()
        weights, biases = layer_views(params, self.layer_sizes)
        views = {f"{name}.{layer}": view for name, arrays in (("weights", weights), ("biases", biases))
                 for layer, view in enumerate(arrays)}
        values = {}
        for key in expected:
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            if value.dtype.kind != "f":
                raise TypeError(f"state_dict[{key!r}] must hold floating-point numbers; got dtype {value.dtype}")
            if value.shape != expected[key].shape:
                raise ValueError(f"state_dict[{key!r}] has shape {value.shape}; this model's is "
                                 f"{expected[key].shape} (MLP{self.layer_sizes}; weights are fan_in × fan_out)")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state_dict[{key!r}] holds NaN or infinity")
            values[key] = value
        for key, value in values.items():
            views[key][...] = value
        self.set_params(params)
        return _IncompatibleKeys(missing, unexpected)


def _check_dropout(dropout: Any, n_hidden: int) -> tuple[float, ...]:
    """The dropout rate of each hidden layer, from one rate for all or a sequence of one per layer."""
    if isinstance(dropout, (str, bytes)) or not isinstance(dropout, (Real, np.floating, np.integer, Sequence,
                                                                      np.ndarray)):
        raise TypeError(f"dropout must be a number or a sequence of one per hidden layer; got {dropout!r}")
    if isinstance(dropout, (Sequence, np.ndarray)):
        rates = list(dropout)
        if len(rates) != n_hidden:
            raise ValueError(f"dropout needs one rate per hidden layer ({n_hidden}); got {len(rates)}")
    else:
        rate = check_real("dropout", dropout, 0.0, 1.0, high_open=True)
        if rate and not n_hidden:
            raise ValueError(f"dropout applies to hidden layers, and this network has none; got dropout={rate}")
        rates = [rate] * n_hidden
    return tuple(check_real(f"dropout[{k}]" if isinstance(dropout, (Sequence, np.ndarray)) else "dropout", p, 0.0,
                            1.0, high_open=True) for k, p in enumerate(rates))


def _dropout_stream(random_state: Any) -> np.random.Generator:
    """The dropout masks' random stream: from an int seed, a Generator of its own keyed by the seed (the
    weights' stream is untouched); from a Generator or RandomState, one seeded by a draw from it; from None,
    fresh entropy."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return np.random.default_rng([int(random_state), 0x64726F70])  # ("drop")
    rng = check_random_state(random_state)
    seed = rng.integers(2**63) if isinstance(rng, np.random.Generator) else rng.randint(2**31)
    return np.random.default_rng(int(seed))

def _check_layer_sizes(layer_sizes: Any) -> tuple[int, ...]:
    if isinstance(layer_sizes, (str, bytes)):
        raise TypeError(f"layer_sizes must be a sequence of positive integers; got {layer_sizes!r}")
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise TypeError(f"layer_sizes must be a sequence of positive integers; got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size; got {sizes}")
    return tuple(check_int(f"layer_sizes[{k}]", s, 1) for k, s in enumerate(sizes))


class _IncompatibleKeys(NamedTuple):
    """What :meth:`MLP.load_state_dict` did not match (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]
