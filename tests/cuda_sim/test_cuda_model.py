"""DeviceNet: an MLP with device="cuda" gives the CPU model's loss, gradients and outputs.

Runs under Numba's CUDA simulator (tests/test_cuda_simulator.py sets NUMBA_ENABLE_CUDASIM=1) or, with
MICRODL_REAL_GPU=1, on a real GPU (scripts/gpu_check.sh), where the CuPy and torch interop tests run too.
"""

import os
import pickle

import numpy as np
import pytest

REAL_GPU = os.environ.get("MICRODL_REAL_GPU") == "1"
if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or REAL_GPU):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or MICRODL_REAL_GPU=1", allow_module_level=True)

from numba import cuda  # noqa: E402

from microdl import config  # noqa: E402
from microdl.cuda import model as device_model  # noqa: E402
from microdl.nn import MLP  # noqa: E402


def data(loss, m=7, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n_in))
    if loss == "cross_entropy":
        y = rng.integers(0, n_out, m)
    elif loss == "binary_cross_entropy":
        y = (rng.uniform(size=(m, n_out)) > 0.5).astype(float)
    else:
        y = rng.normal(size=(m, n_out))
    return X, y, rng.uniform(0.2, 2.0, m)


def pair(**kwargs):
    return MLP(**kwargs), MLP(**kwargs, device="cuda")


CASES = [  # (hidden activation, loss, alpha, hidden widths, parameters)
    ("relu", "cross_entropy", 0.0, (4,), {}),
    ("leaky_relu", "cross_entropy", 0.3, (4, 3), {"activation_params": {"negative_slope": 0.2}}),
    ("tanh", "binary_cross_entropy", 0.1, (4,), {}),
    ("sigmoid", "squared_error", 0.0, (6,), {}),
    ("identity", "squared_error", 0.5, (), {}),
    ("gelu", "huber", 0.1, (4, 3), {"loss_params": {"delta": 0.3}}),
    ("silu", "absolute_error", 0.0, (4,), {}),
    ("elu", "poisson", 0.0, (4, 3), {"activation_params": {"alpha": 0.5}}),
]


@pytest.mark.parametrize("activation, loss, alpha, hidden, params", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grad_match_the_cpu(activation, loss, alpha, hidden, params, weighted):
    X, y, w = data(loss)
    if loss == "poisson":
        y = np.abs(y)
    cpu, gpu = pair(layer_sizes=(5, *hidden, 3), activation=activation, loss=loss, alpha=alpha, random_state=1,
                    **params)
    sw = w if weighted else None
    expected = cpu.loss_and_grad(X, y, sample_weight=sw)
    got = gpu.loss_and_grad(X, y, sample_weight=sw)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(gpu.grads.copy_to_host(), cpu.grads, rtol=1e-11, atol=1e-13)
    # the per-layer device views point into the flat device buffer, in the CPU's layout
    for l in range(cpu.n_layers):
        np.testing.assert_allclose(gpu.dL_dW[l].copy_to_host(), cpu.dL_dW[l], rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(gpu.dL_db[l].copy_to_host(), cpu.dL_db[l], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(gpu.forward(X), cpu.forward(X), rtol=1e-12, atol=1e-14)


def test_float32_model_matches_the_cpu_to_float32_precision():
    X, y, w = data("cross_entropy")
    cpu, gpu = pair(layer_sizes=(5, 4, 3), dtype="float32", alpha=0.1, random_state=2)
    assert gpu.loss_and_grad(X, y, w) == pytest.approx(cpu.loss_and_grad(X, y, w), rel=1e-5)
    assert gpu.grads.dtype == np.float32
    np.testing.assert_allclose(gpu.grads.copy_to_host(), cpu.grads, rtol=1e-4, atol=1e-6)


def test_params_live_on_the_device_with_the_cpu_layout():
    cpu, gpu = pair(layer_sizes=(5, 4, 3), random_state=3)
    assert device_model.is_cuda_array(gpu.params) and device_model.is_cuda_array(gpu.grads)
    np.testing.assert_array_equal(gpu.host_params(), cpu.params)
    np.testing.assert_array_equal(gpu.weights[1].copy_to_host(), cpu.weights[1])
    new = np.arange(gpu.n_params, dtype=float) / 100
    gpu.set_params(new)
    np.testing.assert_array_equal(gpu.biases[0].copy_to_host(), new[20:24])  # W[1] is 5×4, then b[1]
    clone = pickle.loads(pickle.dumps(gpu))
    assert clone.device == "cuda"
    np.testing.assert_array_equal(clone.host_params(), new)


def test_forward_in_chunks_with_host_and_device_inputs(monkeypatch):
    monkeypatch.setattr(config, "EVAL_CHUNK", 3)  # 7 rows: chunks of 3, 3 and 1
    X, _, _ = data("cross_entropy")
    cpu, gpu = pair(layer_sizes=(5, 4, 3), random_state=4)
    expected = cpu.forward(X)
    np.testing.assert_allclose(gpu.forward(X), expected, rtol=1e-12)
    np.testing.assert_allclose(gpu.forward(cuda.to_device(X)), expected, rtol=1e-12)  # read in place
    # a float32 device array (cast on the device), and a strided view of a wider one
    X32 = cuda.to_device(X.astype(np.float32))
    np.testing.assert_allclose(gpu.forward(X32), cpu.forward(X.astype(np.float32)), rtol=1e-12)
    wide = np.hstack([X, np.ones((7, 2))])
    np.testing.assert_allclose(gpu.forward(cuda.to_device(wide)[:, :5]), expected, rtol=1e-12)
    out = gpu.forward_device(X)  # stays on the device
    assert device_model.is_cuda_array(out)
    np.testing.assert_allclose(out.copy_to_host(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="device='cuda'"):
        cpu.forward_device(X)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_evaluate_matches_the_whole_batch_loss(monkeypatch):
    """DeviceNet.evaluate_device is microdl.train.evaluate_loss for the device: chunked, the penalty counted
    once."""
    import microdl.train as train

    monkeypatch.setattr(config, "EVAL_CHUNK", 3)
    X, y, _ = data("cross_entropy")
    cpu, gpu = pair(layer_sizes=(5, 4, 3), alpha=0.4, random_state=9)
    Y = cpu.encode_targets(y)
    expected = cpu._loss_and_grad(X, Y)  # one batch of every row; the device evaluates chunks of 3
    out = cuda.device_array((7, 3))
    grads = gpu.grads.copy_to_host()
    assert gpu._device_net.evaluate_device(X, Y, out=out) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(out.copy_to_host(), cpu.forward(X), rtol=1e-12)
    np.testing.assert_array_equal(gpu.grads.copy_to_host(), grads)  # untouched
    assert train.evaluate_loss(gpu, cuda.to_device(X), cuda.to_device(Y)) == pytest.approx(
        train.evaluate_loss(cpu, X, Y), rel=1e-12)


def test_device_inputs_are_checked():
    gpu = MLP((5, 4, 3), device="cuda")
    with pytest.raises(ValueError, match="5"):
        gpu.forward(cuda.to_device(np.ones((2, 4))))
    with pytest.raises(ValueError, match="2-D"):
        gpu.forward(cuda.to_device(np.ones(5)))
    with pytest.raises(ValueError, match="features"):
        gpu.forward(np.ones((2, 4)))  # host input: the CPU path's validation


def test_sparse_input_is_densified():
    sparse = pytest.importorskip("scipy.sparse")
    X, y, _ = data("cross_entropy")
    X[X < 0.3] = 0.0
    cpu, gpu = pair(layer_sizes=(5, 4, 3), random_state=5)
    np.testing.assert_allclose(gpu.forward(sparse.csr_matrix(X)), cpu.forward(X), rtol=1e-12)
    assert gpu.loss_and_grad(sparse.csr_matrix(X), y) == pytest.approx(cpu.loss_and_grad(X, y), rel=1e-12)


def test_initialize_on_the_device():
    cpu, gpu = pair(layer_sizes=(5, 4, 3), random_state=6)
    cpu.initialize(7)
    gpu.initialize(7)
    np.testing.assert_array_equal(gpu.host_params(), cpu.params)


def test_batch_buffers_grow_once_and_are_reused():
    X, y, _ = data("cross_entropy", m=7)
    gpu = MLP((5, 4, 3), device="cuda")
    net = gpu._device_net
    gpu.loss_and_grad(X, y)
    buffers = [id(a) for a in net._A]
    gpu.loss_and_grad(X[:4], y[:4])  # smaller: the same buffers
    assert [id(a) for a in net._A] == buffers and net._capacity == 7


@pytest.mark.skipif(not REAL_GPU, reason="CuPy and torch arrays need a real GPU")
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_foreign_device_arrays_are_read_in_place(library):
    lib = pytest.importorskip(library)
    X, y, _ = data("cross_entropy")
    cpu, gpu = pair(layer_sizes=(5, 4, 3), random_state=8)
    X_dev = lib.asarray(X) if library == "cupy" else lib.as_tensor(X, device="cuda")
    np.testing.assert_allclose(gpu.forward(X_dev), cpu.forward(X), rtol=1e-12)
    out = gpu.forward_device(X_dev)
    back = lib.asarray(out) if library == "cupy" else lib.as_tensor(out, device="cuda")  # no copy either way
    np.testing.assert_allclose(lib.asnumpy(back) if library == "cupy" else back.cpu().numpy(), cpu.forward(X),
                               rtol=1e-12)
    # fit() reads the foreign X in place: the same run as with host data
    from microdl.optim import make_optimizer
    from microdl.train import fit

    runs = []
    for X_fit in (X, X_dev):
        model = MLP((5, 4, 3), random_state=8, device="cuda")
        opt = make_optimizer("adam", model.params, backend="cuda", lr=0.05)
        history = fit(model, opt, X_fit, y, epochs=2, batch_size=3, random_state=0)
        runs.append((history.train_loss, model.host_params()))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    np.testing.assert_array_equal(runs[1][1], runs[0][1])


def test_a_users_activation_and_loss_run_on_the_device():
    """Formulas registered from a user's file (tests/nn/user_formulas.py) are compiled into the CUDA kernels at
    their next launch, and match the CPU."""
    from microdl.nn import activations, formulas, losses
    from tests.nn import user_formulas

    saved = dict(activations._REGISTRY), dict(losses._REGISTRY)
    try:
        user_formulas.register()
        X, y, w = data("squared_error")
        cpu, gpu = pair(layer_sizes=(5, 4, 3), activation="mish", loss="log_cosh", loss_params={"scale": 0.5},
                        alpha=0.1, random_state=1)
        assert gpu.loss_and_grad(X, y, w) == pytest.approx(cpu.loss_and_grad(X, y, w), rel=1e-12)
        np.testing.assert_allclose(gpu.grads.copy_to_host(), cpu.grads, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(gpu.forward(X), cpu.forward(X), rtol=1e-12, atol=1e-14)
    finally:
        for registry, old in zip((activations._REGISTRY, losses._REGISTRY), saved):
            registry.clear()
            registry.update(old)
        formulas.registry_changed()
