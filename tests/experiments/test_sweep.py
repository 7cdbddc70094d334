"""sensitivity: the flat range by hand, the sweep, its plot, its output written atomically, and clear errors."""

import pytest

from microdl.experiments import flat_width, load_sensitivity, sensitivity
from microdl.experiments.sweep import SensitivityResult


def test_flat_width_by_hand():
    # best at 0.1 (loss 1.0); threshold 1.1. Left: 2.0 at 0.01 -> crossing 0.1 of the way down a decade
    w = flat_width([0.01, 0.1, 1.0], [2.0, 1.0, 1.05], 0.1)
    assert w["best_lr"] == pytest.approx(0.1) and w["threshold"] == pytest.approx(1.1)
    assert w["low"] == pytest.approx(10 ** (-1 - 0.1)) and w["high"] == pytest.approx(1.0)
    assert w["censored"] and w["width"] == pytest.approx(1.1)
    # a diverged neighbour ends the range at the last good point
    w = flat_width([0.01, 0.1, 1.0], [1.5, 1.0, None], 0.1)
    assert w["high"] == pytest.approx(0.1) and not w["censored"]
    assert w["low"] == pytest.approx(10 ** (-1 - 0.2))
    assert flat_width([0.1, 1.0], [None, None], 0.1)["best_lr"] is None


def test_sensitivity_sweep_plot_reload_and_atomic_save(tmp_path, monkeypatch):
    result = sensitivity("iris", ["gd", "sgd", "adam"], seeds=1, epochs=2, hidden=(8,), grid=(1e-3, 1e-1, 10.0),
                         batch_sizes=(16, 64), progress=False)
    labels = [c["label"] for c in result.curves()]
    assert labels == ["gd", "sgd (batch 16)", "sgd (batch 64)", "adam"]
    for c in result.curves():
        assert len(c["val_loss"]) == 3 and c["width"] >= 0
    assert all(r["phase"] == "sensitivity" and "final_val_loss" in r for r in result.runs)
    text = result.format_table()
    assert "width (decades)" in text and "within 10%" in text
    out = tmp_path / "sens"
    result.save(out)
    assert (out / "sensitivity.png").stat().st_size > 0
    assert load_sensitivity(out).curves() == result.curves()

    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(SensitivityResult, "plot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        SensitivityResult(result.config, result.runs[:3]).save(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_sensitivity_bad_options():
    with pytest.raises(ValueError, match="unknown dataset"):
        sensitivity("mnist")
    with pytest.raises(ValueError, match="within must be"):
        sensitivity("iris", within=-0.1)
    with pytest.raises(ValueError, match="epochs or budget"):
        sensitivity("iris", epochs=2, budget="epochs:2")
