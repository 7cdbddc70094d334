"""fit() with device="cuda" against the CPU loop: same seed, initialisation, data order and dtype (float64)
give the same history and weights to float tolerance after several epochs.

n = 13 samples in batches of 5 (two full batches and a partial one), tiny launch shapes. Runs under Numba's
CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with MICRODL_REAL_GPU=1, on a
real GPU (scripts/gpu_check.sh).
"""

import math
import os
import warnings

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from numba import cuda  # noqa: E402

from microdl.nn import MLP  # noqa: E402
from microdl.optim import make_optimizer  # noqa: E402
from microdl.train import DivergenceWarning, EarlyStopping, fit  # noqa: E402


def problem(loss="cross_entropy", n=13, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 6, 5))
    if loss == "cross_entropy":
        y = rng.integers(0, 3, n + 6)
    elif loss == "binary_cross_entropy":
        y = (rng.uniform(size=(n + 6, 3)) > 0.5).astype(float)
    else:
        y = rng.normal(size=(n + 6, 3))
    return X[:n], y[:n], X[n:], y[n:]


def fit_one(device, optimizer, hyper, X, y, *, model_kw=None, make_callbacks=list, **fit_kw):
    """Train a fresh model (same seed on both devices); return (history, host params, optimizer)."""
    model = MLP(**{"layer_sizes": (5, 4, 3), "random_state": 1, **(model_kw or {})}, device=device)
    opt = make_optimizer(optimizer, model.params, backend="cuda" if device == "cuda" else "cpu", **hyper)
    history = fit(model, opt, X, y, callbacks=make_callbacks(), **fit_kw)
    return history, model.host_params(), opt


def fit_both(*args, **kwargs):
    return fit_one("cpu", *args, **kwargs), fit_one("cuda", *args, **kwargs)


def assert_same_run(cpu, gpu, rtol=1e-10):
    (h_cpu, p_cpu, _), (h_gpu, p_gpu, _) = cpu, gpu
    assert h_gpu.epochs == h_cpu.epochs
    for name in ("train_loss", "val_loss", "val_metric", "lr"):
        np.testing.assert_allclose(getattr(h_gpu, name), getattr(h_cpu, name), rtol=rtol, atol=1e-13, err_msg=name)
    assert h_gpu.grad_evals == h_cpu.grad_evals and h_gpu.samples_seen == h_cpu.samples_seen
    assert (h_gpu.stop_reason, h_gpu.diverged, h_gpu.best_epoch) == (h_cpu.stop_reason, h_cpu.diverged,
                                                                     h_cpu.best_epoch)
    assert all(b >= a for a, b in zip(h_gpu.wall_time, h_gpu.wall_time[1:]))
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("optimizer, hyper", [
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("adam", {"lr": 0.02}),
])
def test_minibatch_fit_matches_the_cpu(optimizer, hyper):
    X, y, X_val, y_val = problem()
    cpu, gpu = fit_both(optimizer, hyper, X, y, epochs=4, batch_size=5, random_state=3, validation_data=(X_val, y_val),
                        model_kw={"alpha": 0.1})
    assert_same_run(cpu, gpu)
    assert gpu[0].grad_evals == [3, 6, 9, 12]  # 13 samples in batches of 5, 5 and 3
    np.testing.assert_allclose(gpu[2].state_dict()["state"]["m" if optimizer == "adam" else "b"],
                               cpu[2].state_dict()["state"]["m" if optimizer == "adam" else "b"], rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "squared_error"])
def test_weighted_unshuffled_clipped_fit_matches_the_cpu(loss):
    """Sample weights, batches as row slices (no shuffle), clipping by norm and value, a schedule."""
    X, y, X_val, y_val = problem(loss)
    w = np.random.default_rng(4).uniform(0.2, 2.0, 13)
    cpu, gpu = fit_both("rmsprop", {"lr": 0.01, "momentum": 0.5}, X, y, epochs=3, batch_size=5, shuffle=False,
                        sample_weight=w, clip_norm=0.5, clip_value=0.2, schedule="cosine",
                        validation_data=(X_val, y_val),
                        model_kw={"loss": loss, "activation": "tanh", "layer_sizes": (5, 4, 4, 3), "alpha": 0.2})
    assert_same_run(cpu, gpu)


def test_full_batch_gd_matches_the_cpu():
    X, y, _, _ = problem()
    cpu, gpu = fit_both("gd", {"lr": 0.5}, X, y, epochs=3, random_state=0)
    assert_same_run(cpu, gpu)
    assert gpu[0].grad_evals == [1, 2, 3]


def test_validation_fraction_and_early_stopping_match_the_cpu():
    X, y, _, _ = problem(n=16)
    cpu, gpu = fit_both("adam", {"lr": 0.3}, X, y, epochs=5, batch_size=4, random_state=5, validation_fraction=0.25,
                        make_callbacks=lambda: [EarlyStopping(patience=1)])
    assert_same_run(cpu, gpu)
    assert gpu[0].stop_reason == "early_stopping"


def test_budget_stops_like_the_cpu():
    X, y, _, _ = problem()
    cpu, gpu = fit_both("sgd", {"lr": 0.1}, X, y, epochs=5, batch_size=5, random_state=0, max_grad_evals=4)
    assert_same_run(cpu, gpu)
    assert gpu[0].stop_reason == "max_grad_evals" and gpu[0].epochs == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator's overflowing NumPy scalars
def test_divergence_ends_in_the_cpus_last_finite_state():
    """NOTE [finite or told]: the GPU sees the losses once per epoch, then replays the epoch up to the last
    finite state, so it ends where the CPU loop (which sees each loss at once) ends, optimizer state included."""
    X, y, _, _ = problem("squared_error")
    args = ("sgd", {"lr": 0.5, "momentum": 0.5}, X, y * 1e3)
    kw = dict(epochs=20, batch_size=5, random_state=0, model_kw={"loss": "squared_error", "activation": "identity"})
    with pytest.warns(DivergenceWarning, match="the last good weights and optimizer state"):
        h_gpu, p_gpu, opt_gpu = fit_one("cuda", *args, **kw)
    with pytest.warns(DivergenceWarning):
        h_cpu, p_cpu, opt_cpu = fit_one("cpu", *args, **kw)
    assert h_gpu.diverged and h_cpu.diverged and np.all(np.isfinite(p_gpu))
    assert h_gpu.stop_reason == h_cpu.stop_reason and h_gpu.epochs == h_cpu.epochs
    np.testing.assert_allclose(h_gpu.train_loss, h_cpu.train_loss, rtol=1e-10)
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-10)
    np.testing.assert_allclose(opt_gpu.state["b"].copy_to_host(), opt_cpu.state["b"], rtol=1e-10)
    assert opt_gpu.t == opt_cpu.t


def test_fit_reads_device_training_data_in_place(monkeypatch):
    """fit() takes device arrays (how CuPy arrays and torch CUDA tensors arrive): X and the validation X are
    used as they are, with no copy; y and sample_weight are copied to the host to be checked and encoded. The
    run is the host-data run."""
    from microdl.cuda import model as device_model

    X, y, X_val, y_val = problem()
    w = np.random.default_rng(2).uniform(0.5, 1.5, 13)
    host = fit_one("cuda", "adam", {"lr": 0.02}, X, y, epochs=2, batch_size=5, random_state=0, sample_weight=w,
                   validation_data=(X_val, y_val))
    X_dev, X_val_dev = cuda.to_device(X), cuda.to_device(X_val)
    used = []
    to_device = device_model.DeviceNet.to_device
    monkeypatch.setattr(device_model.DeviceNet, "to_device",
                        lambda self, a: used.append((a, to_device(self, a))) or used[-1][1])
    dev = fit_one("cuda", "adam", {"lr": 0.02}, X_dev, cuda.to_device(y), epochs=2, batch_size=5, random_state=0,
                  sample_weight=cuda.to_device(w), validation_data=(X_val_dev, cuda.to_device(y_val)))
    assert any(a is X_dev and out is X_dev for a, out in used)
    assert any(a is X_val_dev and out is X_val_dev for a, out in used)
    assert_same_run(host, dev, rtol=0)


def test_device_data_errors_name_the_problem():
    X, y, _, _ = problem()
    model = MLP((5, 4, 3), device="cuda")
    opt = make_optimizer("sgd", model.params, backend="cuda")
    with pytest.raises(ValueError, match="validation_fraction needs host data"):
        fit(model, opt, cuda.to_device(X), y, validation_fraction=0.2)
    with pytest.raises(ValueError, match="4 features"):
        fit(model, opt, cuda.to_device(np.ascontiguousarray(X[:, :4])), y)
    with pytest.raises(ValueError, match="samples but y has"):
        fit(model, opt, cuda.to_device(X), y[:5])
    cpu_model = MLP((5, 4, 3))
    with pytest.raises(TypeError, match="CUDA device array.*device='cuda'"):
        fit(cpu_model, make_optimizer("sgd", cpu_model.params), cuda.to_device(X), y)
    with pytest.raises(TypeError, match="CUDA device array"):
        cpu_model.forward(cuda.to_device(X))


def test_loss_and_grad_on_device_X_matches_host_X():
    X, y, _, _ = problem()
    model = MLP((5, 4, 3), random_state=1, device="cuda")
    loss = model.loss_and_grad(X, y)
    grads = model.grads.copy_to_host()
    assert model.loss_and_grad(cuda.to_device(X), cuda.to_device(y)) == loss
    np.testing.assert_array_equal(model.grads.copy_to_host(), grads)


def test_float32_fit_tracks_the_cpu():
    X, y, X_val, y_val = problem()
    cpu, gpu = fit_both("adam", {"lr": 0.02}, X, y, epochs=3, batch_size=5, random_state=3,
                        validation_data=(X_val, y_val), model_kw={"dtype": "float32"})
    assert all(math.isfinite(v) for v in gpu[0].train_loss)
    np.testing.assert_allclose(gpu[0].train_loss, cpu[0].train_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu[1], cpu[1], rtol=1e-3, atol=1e-5)


def test_no_warning_on_a_healthy_run():
    X, y, _, _ = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_both("sgd", {"lr": 0.05}, X, y, epochs=2, batch_size=5, random_state=0)


def test_zero_weight_batches_and_a_changed_alpha_match_the_cpu():
    """A batch whose weights are all 0 contributes nothing on both devices (no NaN, no false divergence), and an
    alpha changed between fits (as the estimators do) is the one both devices train with."""
    X, y, _, _ = problem()
    w = np.ones(len(y))
    w[5:10] = 0.0  # the second batch of 5, unshuffled
    runs = []
    for device in ("cpu", "cuda"):
        model = MLP((5, 4, 3), alpha=0.1, random_state=1, device=device)
        opt = make_optimizer("sgd", model.params, backend="cuda" if device == "cuda" else "cpu", lr=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DivergenceWarning)
            h1 = fit(model, opt, X, y, epochs=2, batch_size=5, shuffle=False, sample_weight=w)
            model.alpha = 2.0
            h2 = fit(model, opt, X, y, epochs=2, batch_size=5, shuffle=False, sample_weight=w)
        runs.append((h1.train_loss + h2.train_loss, model.host_params()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-10)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-10, atol=1e-12)
