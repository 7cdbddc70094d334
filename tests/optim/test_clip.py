"""microdl.optim.clip: by norm and by value, against hand-worked values and torch.nn.utils, and the checks that
keep its kernels inside the buffer."""

import math

import numpy as np
import pytest

from microdl.optim import clip_grad_norm, clip_grad_value


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_clip_grad_norm(dtype):
    g = np.array([3.0, 4.0], dtype=dtype)
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0, rel=1e-12)  # the norm before clipping
    np.testing.assert_allclose(g, np.array([0.6, 0.8]) * 5 / (5 + 1e-6), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert g.dtype == dtype

    g = np.array([3.0, 4.0], dtype=dtype)
    assert clip_grad_norm(g, 10.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # below max_norm: untouched

    rng = np.random.default_rng(0)
    g = rng.normal(size=37).astype(dtype)
    norm = np.linalg.norm(g.astype(np.float64))
    assert clip_grad_norm(g, 0.5) == pytest.approx(norm, rel=1e-6 if dtype == np.float32 else 1e-13)
    assert np.linalg.norm(g.astype(np.float64)) == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_accumulates_in_float64():
    g = np.full(4, 1e30, dtype=np.float32)  # squares overflow float32
    assert clip_grad_norm(g, 1.0) == pytest.approx(2e30, rel=1e-6)
    np.testing.assert_allclose(g, 0.5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_clip_grad_value(dtype):
    g = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 1.0], dtype=dtype)
    assert clip_grad_value(g, 1.0) is None
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.25, 1.0, 1.0])
    assert g.dtype == dtype


def test_a_strided_view_is_clipped_in_place():
    # clipping a view is well defined (every element it shows, and no other), so views are accepted
    buf = np.array([3.0, 100.0, 4.0, 100.0])
    assert clip_grad_norm(buf[::2], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(buf, [0.6 * 5 / (5 + 1e-6), 100.0, 0.8 * 5 / (5 + 1e-6), 100.0], rtol=1e-14)
    clip_grad_value(buf[1::2], 2.0)
    np.testing.assert_allclose(buf[1::2], [2.0, 2.0])


@pytest.mark.parametrize("clip", [clip_grad_norm, clip_grad_value], ids=["norm", "value"])
@pytest.mark.parametrize(
    ("grads", "limit", "error", "match"),
    [(np.ones(3), 0.0, ValueError, "must be a finite number in \\(0"), (np.ones(3), -1.0, ValueError, "in \\(0"),
     (np.ones(3), math.nan, ValueError, "finite"), (np.ones(3), True, TypeError, "real number"),
     (np.ones(3), "1", TypeError, "real number"),
     (np.ones(3, dtype=np.int64), 1.0, TypeError, "grads must be float32 or float64"),
     (np.ones((3, 2)), 1.0, ValueError, "grads must be a flat 1-D buffer"),
     ([1.0, 2.0], 1.0, TypeError, "grads must be a NumPy array"),
     (np.frombuffer(b"\0" * 24), 1.0, ValueError, "grads must be writeable")],
    ids=["zero", "negative", "nan", "bool", "str", "int-grads", "2d-grads", "list-grads", "read-only"],
)
def test_clip_rejects_invalid_arguments(clip, grads, limit, error, match):
    with pytest.raises(error, match=match):
        clip(grads, limit)


# -- against torch.nn.utils -------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm, torch):
    g = np.random.default_rng(0).normal(size=37)
    t = torch.tensor(g)
    t.grad = torch.tensor(g)
    expected_norm = float(torch.nn.utils.clip_grad_norm_([t], max_norm))
    norm = clip_grad_norm(g, max_norm)
    assert math.isclose(norm, expected_norm, rel_tol=1e-13)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-13)


def test_clip_grad_value_matches_torch(torch):
    g = np.random.default_rng(1).normal(size=37) * 3
    t = torch.tensor(g)
    t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_([t], 1.5)
    clip_grad_value(g, 1.5)
    np.testing.assert_array_equal(g, t.grad.numpy())
