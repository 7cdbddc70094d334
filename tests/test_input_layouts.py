"""Any input layout trains as an aligned C-ordered copy does (NOTE [aligned input] in microdl._validation):
the same bits, and one copy at the boundary where one is needed, never one per batch.

Misaligned arrays are what Dask and pickle protocol 5 hand a worker; here they are made directly, as a view one
byte into a buffer.
"""

import numpy as np
import pytest

import microdl.train
from microdl._validation import as_kernel_array
from microdl.nn import MLP
from microdl.optim import Adam
from microdl.train import fit


def misaligned(a):
    buf = bytearray(a.nbytes + 1)
    out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def strided(a):
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
    wide[:, ::2] = a
    return wide[:, ::2]


def read_only(a):
    out = a.copy()
    out.flags.writeable = False
    return out


def npy_mmap(a, folder):
    np.save(folder / "X.npy", a)
    return np.load(folder / "X.npy", mmap_mode="r")


def raw_memmap(a, folder):
    m = np.memmap(folder / "X.bin", dtype=a.dtype, mode="w+", shape=a.shape)
    m[...] = a
    m.flush()
    return np.memmap(folder / "X.bin", dtype=a.dtype, mode="r", shape=a.shape)


LAYOUTS = {
    "misaligned": lambda a, folder: misaligned(a),
    "strided": lambda a, folder: strided(a),
    "fortran": lambda a, folder: np.asfortranarray(a),
    "read_only": lambda a, folder: read_only(a),
    "npy_mmap": npy_mmap,
    "memmap": raw_memmap,
    "float64": lambda a, folder: a.astype(np.float64),
    "big_endian": lambda a, folder: a.astype(a.dtype.newbyteorder(">")),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)
    return X, y


def _fit(X, y, batch_size, sample_weight=None, loss="cross_entropy"):
    net = MLP((12, 16, 3 if loss == "cross_entropy" else 2), loss=loss, dtype="float32", random_state=0)
    fit(net, Adam(net.params, lr=1e-2), X, y, epochs=3, batch_size=batch_size, random_state=0,
        sample_weight=sample_weight)
    return net.params


@pytest.mark.parametrize("batch_size", [32, None], ids=["shuffled_batches", "full_batch"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_trains_to_the_same_bits_as_an_aligned_copy(data, tmp_path, layout, batch_size):
    X, y = data
    A = LAYOUTS[layout](X, tmp_path)
    assert np.array_equal(np.asarray(A, dtype=np.float32), X)
    np.testing.assert_array_equal(_fit(A, y, batch_size), _fit(X, y, batch_size))


def test_misaligned_targets_and_weights_train_to_the_same_bits(data):
    X, _ = data
    Y = np.stack([X[:, 0] - X[:, 1], X[:, 2] * X[:, 3]], axis=1)
    w = np.linspace(0.5, 2.0, len(X)).astype(np.float32)
    expected = _fit(X, Y, 32, sample_weight=w, loss="squared_error")
    got = _fit(misaligned(X), misaligned(Y), 32, sample_weight=misaligned(w), loss="squared_error")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", ["aligned", *LAYOUTS])
@pytest.mark.parametrize("batch_size", [32, None], ids=["shuffled_batches", "full_batch"])
def test_training_reads_one_aligned_c_ordered_array_for_every_batch(data, tmp_path, monkeypatch, layout, batch_size):
    """Every batch the kernels get, and every array a shuffled batch is gathered from, is aligned and
    C-ordered and is one and the same array all fit long: X is copied at most once, at the boundary (an
    aligned C-ordered float32 X not at all). ``np.take`` on a misaligned X copied the whole of it per batch."""
    X, y = data
    A = X if layout == "aligned" else LAYOUTS[layout](X, tmp_path)
    gathered_from, batches = [], []
    gather = microdl.train._gather

    def recording_gather(a, *args, **kwargs):
        if a.ndim == 2 and a.shape[1] == X.shape[1]:
            gathered_from.append(a)
        return gather(a, *args, **kwargs)

    batch_pass = MLP._batch_loss_and_grad

    def recording_pass(self, Xb, Yb, wb):
        batches.append(Xb)
        return batch_pass(self, Xb, Yb, wb)

    monkeypatch.setattr(microdl.train, "_gather", recording_gather)
    monkeypatch.setattr(MLP, "_batch_loss_and_grad", recording_pass)
    # the loop's Python steps, which these spies see (the compiled runs read the same HostBatches.X, and give the
    # same bits: tests/test_runs.py and the test above)
    monkeypatch.setattr(microdl.config, "COMPILED_RUNS", False)
    _fit(A, y, batch_size)
    assert len(batches) == (3 * 10 if batch_size else 3)
    sources = gathered_from if batch_size else [b.base if b.base is not None else b for b in batches]
    assert len(sources) == len(batches)
    assert all(a.flags.aligned and a.flags.c_contiguous and a.dtype == np.float32 for a in sources + batches)
    assert all(a is sources[0] for a in sources), "X was copied more than once"
    if layout in ("aligned", "read_only", "npy_mmap", "memmap"):  # read in place, never copied
        assert np.shares_memory(sources[0], A)


def test_as_kernel_array_copies_only_what_it_must(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert as_kernel_array(X, np.float32) is X
    m = npy_mmap(X, tmp_path)
    view = as_kernel_array(m, np.float32)
    assert type(view) is np.ndarray and np.shares_memory(view, m)
    for name in ("misaligned", "strided", "fortran", "float64", "big_endian"):
        A = LAYOUTS[name](X, tmp_path)
        out = as_kernel_array(A, np.float32)
        assert out.flags.aligned and out.flags.c_contiguous and out.dtype == np.float32, name
        assert not np.shares_memory(out, A) and np.array_equal(out, X), name
