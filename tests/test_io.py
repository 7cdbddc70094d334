"""Checkpoints lose nothing: parameters, optimizer state and step count, history; a save killed midway leaves
the previous checkpoint whole; a malformed file gets one clear ValueError."""

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from microdl.datasets import load_dataset
from microdl.io import load, save
from microdl.nn import MLP
from microdl.optim import OPTIMIZERS, make_optimizer
from microdl.train import fit
from tests.signals import ctrl_c_as_at_a_terminal


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_from_checkpoint_is_bit_identical(tmp_path, name):
    data = load_dataset("iris", random_state=0)
    options = {"adam": {"amsgrad": True}, "rmsprop": {"centered": True, "momentum": 0.5},
               "sgd": {"momentum": 0.9, "nesterov": True}}.get(name, {})

    def run(net, opt, seed):
        return fit(net, opt, data.X_train, data.y_train, epochs=2, batch_size=16, random_state=seed)

    straight = MLP((4, 6, 3), alpha=0.01, random_state=1)
    rate = {} if name == "lbfgs" else {"lr": 0.01}  # L-BFGS has no learning rate
    opt = make_optimizer(name, straight.params, **rate, **options)
    run(straight, opt, 0)
    run(straight, opt, 1)

    first = MLP((4, 6, 3), alpha=0.01, random_state=1)
    opt1 = make_optimizer(name, first.params, **rate, **options)
    history = run(first, opt1, 0)
    path = tmp_path / "ckpt.npz"
    save(path, first, opt1, history)
    ckpt = load(path)
    assert ckpt.model.config() == first.config()
    np.testing.assert_array_equal(ckpt.model.params, first.params)
    assert ckpt.optimizer.t == opt1.t and ckpt.optimizer.hyperparameters == opt1.hyperparameters
    for key, value in opt1.state.items():
        np.testing.assert_array_equal(ckpt.optimizer.state[key], value)
    assert ckpt.history == history
    run(ckpt.model, ckpt.optimizer, 1)
    np.testing.assert_array_equal(ckpt.model.params, straight.params)


def test_model_only_checkpoint_and_errors(tmp_path):
    net = MLP((3, 2), loss="squared_error", dtype="float32", random_state=0)
    save(tmp_path / "m.npz", net)
    ckpt = load(tmp_path / "m.npz")
    assert ckpt.optimizer is None and ckpt.history is None and ckpt.model.params.dtype == np.float32
    np.testing.assert_array_equal(ckpt.model.params, net.params)
    other = MLP((3, 2), random_state=0)
    with pytest.raises(ValueError, match="bound to model.params"):
        save(tmp_path / "x.npz", net, make_optimizer("adam", other.params))
    np.savez(tmp_path / "bad.npz", meta=np.array('{"format": 99}'))
    with pytest.raises(ValueError, match="not a microdl checkpoint"):
        load(tmp_path / "bad.npz")


# -- crash safety ----------------------------------------------------------------------------------------------
_SAVER = """
import sys
import numpy as np
from microdl.io import save
from microdl.nn import MLP

model = MLP((1000, 4000, 1000), random_state=0)   # 8 million parameters: 64 MB, a save takes a while
print("saving", flush=True)
for k in range(1000):
    model.params[0] = k
    save(sys.argv[1], model)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path, how):
    path = tmp_path / "ckpt.npz"
    old = MLP((3, 4, 2), random_state=1)
    save(path, old)
    child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True,
                             preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        assert child.stdout.readline().strip() == "saving"
        time.sleep(0.4)  # inside the first save, or a later one: every save overwrites the same path
        assert child.poll() is None
        child.send_signal(how)
        child.wait(timeout=60)
    finally:
        child.kill()
    ckpt = load(path)  # the old small model, or a whole new big one: never a torn file
    if ckpt.model.layer_sizes == old.layer_sizes:
        np.testing.assert_array_equal(ckpt.model.params, old.params)
    else:
        assert ckpt.model.params.size == 1000 * 4000 + 4000 + 4000 * 1000 + 1000
    if how == signal.SIGINT:  # Ctrl-C cleans up after itself; SIGKILL cannot, but never touches the target
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]


# -- malformed files -------------------------------------------------------------------------------------------
def _checkpoint_with(tmp_path, meta=None, **arrays):
    net = MLP((3, 2), random_state=0)
    good = {"format": 1, "model": net.config()}
    path = tmp_path / "c.npz"
    np.savez(path, **({} if meta is False else {"meta": np.array(json.dumps(good if meta is None else meta))}),
             **({"params": net.params} | arrays))
    return path


def _optimizer_meta():
    net = MLP((3, 2), random_state=0)
    opt = make_optimizer("adam", net.params)
    state = opt.state_dict()
    return {"format": 1, "model": net.config(), "optimizer": {
        "name": "Adamax", "hyperparameters": state["hyperparameters"], "t": 0, "backend": "numpy",
        "state": sorted(state["state"])}}


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: _checkpoint_with(p, meta=[1, 2]), "its meta is list, not a JSON object"),
    (lambda p: _checkpoint_with(p, meta="a string"), "its meta is str"),
    (lambda p: _checkpoint_with(p, meta={"format": 1}), "its meta has no 'model' entry"),
    (lambda p: _checkpoint_with(p, meta={"format": 1, "model": [3, 2]}), "its 'model' entry is list"),
    (lambda p: _checkpoint_with(p, meta={"format": 1, "model": {"layer_sizes": [3, 2], "colour": 1}}), "colour"),
    (lambda p: _checkpoint_with(p, meta=False), "it has no 'meta' entry"),
    (lambda p: _checkpoint_with(p, params=np.ones(3)), "params"),
    (lambda p: _checkpoint_with(p, meta=_optimizer_meta()), "unknown optimizer 'Adamax'"),
])
def test_malformed_checkpoints_raise_one_clear_value_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))} is not a valid microdl checkpoint: .*"
                                         f"{re.escape(message)}"):
        load(path)


def test_null_meta_random_bytes_truncated_archives_and_npy_files(tmp_path):
    net = MLP((3, 2), random_state=0)
    path = tmp_path / "c.npz"
    np.savez(path, meta=np.array("null"), params=net.params)
    with pytest.raises(ValueError, match="its meta is NoneType, not a JSON object"):
        load(path)
    (tmp_path / "junk.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="junk.npz is not a valid microdl checkpoint: it is not an .npz") as exc:
        load(tmp_path / "junk.npz")
    assert "unsafely" not in str(exc.value) and "pickle" not in str(exc.value)
    save(path, MLP((30, 20, 2), random_state=0))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.npz is not a valid microdl checkpoint"):
            load(tmp_path / "cut.npz")
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ValueError, match="not a valid microdl checkpoint"):
        load(tmp_path / "a.npy")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load(tmp_path / "missing.npz")


@pytest.mark.parametrize(("args", "message"), [
    ((None,), "model must be an MLP of microdl; got NoneType"),
    (("net",), "model must be an MLP of microdl; got str"),
    ((MLP((2, 2)), "adam"), "optimizer must be an optimizer of microdl; got str"),
    ((MLP((2, 2)), None, {"train_loss": []}), "history must be a History of microdl; got dict"),
])
def test_save_refuses_what_is_not_a_model_optimizer_or_history(tmp_path, args, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        save(tmp_path / "x.npz", *args)
    assert list(tmp_path.iterdir()) == []


# -- hostile and foreign checkpoints (issue 21, cases 16-18) ---------------------------------------------------
def _claiming(tmp_path, sizes):
    """A small checkpoint whose meta claims ``sizes`` while its params array is that of a 3-2 network."""
    net = MLP((3, 2), random_state=0)
    meta = {"format": 1, "model": net.config() | {"layer_sizes": sizes}}
    return _checkpoint_with(tmp_path, meta=meta)


@pytest.mark.parametrize("sizes", [[1_000_000, 1_000_000, 2], [10_000, 10_000, 2]])
def test_metadata_claiming_a_huge_model_is_refused_before_any_allocation(tmp_path, sizes, monkeypatch):
    """Case 16: claimed layer sizes of 1e6 raised MemoryError (7.28 TiB); of 1e4, first allocated and filled
    100 M random weights. Now the sizes are checked against the params array's header first."""
    import microdl.io

    path = _claiming(tmp_path, sizes)
    assert path.stat().st_size < 4096
    monkeypatch.setattr(microdl.io, "MLP", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))} is not a valid microdl checkpoint: .*"
                                         "parameters"):
        load(path)


def _npz_with_raw_member(path, name, header, payload=b""):
    """An .npz whose member ``name`` has a hand-written .npy header (what np.savez cannot write)."""
    import zipfile

    net = MLP((3, 2), random_state=0)
    meta = json.dumps({"format": 1, "model": net.config()})
    buf = __import__("io").BytesIO()
    np.lib.format.write_array(buf, np.array(meta))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.npy", buf.getvalue())
        raw = __import__("io").BytesIO()
        np.lib.format.write_array_header_1_0(raw, header)
        zf.writestr(f"{name}.npy", raw.getvalue() + payload)
    return path


def test_an_array_header_claiming_more_than_the_file_holds_is_refused(tmp_path):
    """Case 17: a params.npy whose header declares 2e11 elements raised MemoryError."""
    path = _npz_with_raw_member(tmp_path / "c.npz", "params",
                                {"descr": "<f8", "fortran_order": False, "shape": (200_000_000_000,)})
    with pytest.raises(ValueError, match=f"{re.escape(str(path))} is not a valid microdl checkpoint: .*params.*"
                                         "200000000000"):
        load(path)


CPU_ONLY_LOAD = """
    import sys, warnings, json
    sys.modules["numba_cuda"] = None      # numba-cuda not installed
    import importlib.util
    real_find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name.startswith("numba_cuda") else real_find_spec(name, *a)
    from microdl.io import load
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ck = load(sys.argv[1])
    print(json.dumps({"device": ck.model.device, "backend": ck.optimizer.backend,
                      "warnings": [str(w.message) for w in caught]}))
    ck = load(sys.argv[1], backend="cpu")
    print(ck.model.device, ck.optimizer.backend, float(ck.model.params.sum()))
"""


def test_a_gpu_checkpoint_loads_on_a_cpu_only_machine(tmp_path):
    """Case 18: a checkpoint of a device="cuda" model raised CudaUnavailableError, even with backend="cpu".
    Run with no numba-cuda and no simulator."""
    import os

    net = MLP((3, 4, 2), random_state=0)
    opt = make_optimizer("adam", net.params)
    path = tmp_path / "gpu.npz"
    save(path, net, opt)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["model"]["device"], meta["optimizer"]["backend"] = "cuda", "cuda"  # as a GPU run writes it
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", CPU_ONLY_LOAD.replace("\n    ", "\n"), str(path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    info = json.loads(first)
    assert info["device"] == "cpu" and info["backend"] == "cpu"
    assert len(info["warnings"]) == 1 and "CUDA" in info["warnings"][0] and "CPU" in info["warnings"][0]
    assert second.split()[:2] == ["cpu", "cpu"] and float(second.split()[2]) == pytest.approx(float(net.params.sum()))
