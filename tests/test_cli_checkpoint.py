"""A model you can ship from the command line (issue 22): ``microdl train --save`` writes a checkpoint that
carries its preprocessing and data schema, ``microdl predict`` gives predictions in the original units and
labels and refuses a file whose columns do not match, ``microdl train --resume`` continues bit-identically;
``train`` without ``--lr`` uses the optimizer's preset rate and says so."""

import csv
import json

import numpy as np
import pytest

from microdl.cli import main
from microdl.datasets import load_dataset, read_data
from microdl.io import load, save


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    """Prices in the hundreds, features on different scales: a model that forgot its scaling is far off."""
    rng = np.random.default_rng(0)
    area, rooms = rng.uniform(50, 250, 240), rng.integers(1, 7, 240).astype(float)
    price = 2.5 * area + 30 * rooms + 100 + rng.normal(0, 10, 240)
    path = tmp_path_factory.mktemp("houses") / "houses.csv"
    return _write_csv(path, ["area", "rooms", "price"], [[repr(a), repr(r), repr(p)] for a, r, p in
                                                         zip(area.tolist(), rooms.tolist(), price.tolist())])


@pytest.fixture(scope="module")
def animals(tmp_path_factory):
    """String class labels."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "cat", "dog")
    path = tmp_path_factory.mktemp("animals") / "animals.csv"
    return _write_csv(path, ["a", "b", "c", "kind"], [[*map(repr, row), k] for row, k in zip(X.tolist(), labels)])


def _read_column(path_or_text, from_text=False):
    lines = (path_or_text if from_text else open(path_or_text).read()).splitlines()
    rows = list(csv.reader(lines))
    return rows[0], [r[0] for r in rows[1:]]


def test_predict_reproduces_the_training_rows_in_original_units(houses, tmp_path, capsys):
    model_path, out = tmp_path / "m.npz", tmp_path / "preds.csv"
    assert main(["train", "--data", str(houses), "--target", "price", "--epochs", "25", "--save", str(model_path),
                 "--quiet"]) == 0
    assert main(["predict", "--model", str(model_path), "--data", str(houses), "--out", str(out)]) == 0
    header, values = _read_column(out)
    predicted = np.array([float(v) for v in values])
    assert header == ["price"] and predicted.shape == (240,)
    # the in-process model on the same split: the training rows' predictions, bit for bit
    from sklearn.model_selection import train_test_split

    raw = read_data(houses, target="price")
    data = load_dataset(raw, test_size=0.25, random_state=0)
    ckpt = load(model_path)
    expected = data.preprocessing.decode(ckpt.model.predict(data.X_train))[:, 0]
    rows_train, _ = train_test_split(np.arange(240), test_size=0.25, random_state=0)
    np.testing.assert_array_equal(predicted[rows_train], expected)
    # ...in the original units: dollars, not standardised values (issue 22: 120.4 for a house of 506.1)
    r2 = 1 - np.sum((predicted - raw.y) ** 2) / np.sum((raw.y - raw.y.mean()) ** 2)
    assert r2 > 0.95 and abs(np.median(predicted) - np.median(raw.y)) < 0.05 * np.median(raw.y)


def test_predict_gives_string_labels_matching_columns_by_name(animals, tmp_path, capsys):
    model_path = tmp_path / "sub" / "folder" / "m.npz"  # missing folders are created, as compare --out does
    assert main(["train", "--data", str(animals), "--target", "kind", "--epochs", "10", "--save", str(model_path),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(model_path), "--data", str(animals)]) == 0
    header, labels = _read_column(capsys.readouterr().out, from_text=True)
    truth = read_data(animals, target="kind").y
    assert header == ["kind"] and set(labels) <= {"cat", "dog"}
    assert np.mean(np.array(labels) == truth) > 0.9
    # the columns in another order and no target column: the same predictions
    X = read_data(animals, target="kind").X
    reordered = _write_csv(tmp_path / "new.csv", ["c", "a", "b"], [[repr(r[2]), repr(r[0]), repr(r[1])]
                                                                   for r in X.tolist()])
    assert main(["predict", "--model", str(model_path), "--data", str(reordered)]) == 0
    assert _read_column(capsys.readouterr().out, from_text=True)[1] == labels
    # a target column left empty, as in a file of new samples still to label: not read
    blank = _write_csv(tmp_path / "blank.csv", ["a", "b", "c", "kind"], [[*map(repr, r), ""] for r in X.tolist()])
    assert main(["predict", "--model", str(model_path), "--data", str(blank)]) == 0
    assert _read_column(capsys.readouterr().out, from_text=True)[1] == labels


@pytest.mark.parametrize(("header", "named"), [
    (["a", "b", "c", "d"], "the model does not know 'd'"),
    (["a", "b"], "it lacks 'c'"),
    (["a", "b", "colour"], "it lacks 'c'; the model does not know 'colour'"),
])
def test_predict_refuses_columns_that_do_not_match_in_one_line(animals, tmp_path, capsys, header, named):
    model_path = tmp_path / "m.npz"
    assert main(["train", "--data", str(animals), "--target", "kind", "--epochs", "1", "--save", str(model_path),
                 "--quiet"]) == 0
    capsys.readouterr()
    bad = _write_csv(tmp_path / "bad.csv", header, [[1.0] * len(header)])
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--model", str(model_path), "--data", str(bad)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("microdl predict: error: ") and named in err and "the model takes a, b, c" in err


def _format_1_checkpoint(path):
    """A checkpoint as microdl wrote it before the preprocessing was saved (format 1)."""
    from microdl.nn import MLP

    net = MLP((3, 4, 2), random_state=0)
    np.savez(path, meta=np.array(json.dumps({"format": 1, "model": net.config()})), params=net.host_params())
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "nowhere.npz", "--model {p}/nowhere.npz: no such file"),
    (lambda p: _write_csv(p / "data.csv", ["a"], [[1]]), "is not a valid microdl checkpoint"),
    (lambda p: _format_1_checkpoint(p / "old.npz"), "holds no preprocessing"),
    (lambda p: np.savez(p / "future.npz", meta=np.array('{"format": 99}')) or p / "future.npz", "format 99"),
])
def test_predict_refuses_a_file_that_is_not_a_usable_checkpoint(animals, tmp_path, capsys, make, message):
    path = make(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--model", str(path), "--data", str(animals)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and message.format(p=tmp_path) in err, err


def test_a_format_1_checkpoint_still_loads(tmp_path):
    ckpt = load(_format_1_checkpoint(tmp_path / "old.npz"))
    assert ckpt.model.layer_sizes == (3, 4, 2) and ckpt.preprocessing is None and ckpt.training is None


def test_predict_on_a_built_in_dataset_model_takes_an_npz(tmp_path, capsys):
    from sklearn.datasets import load_iris

    model_path = tmp_path / "iris.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "20", "--save", str(model_path), "--quiet"]) == 0
    X, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "x.npz", X=X)
    capsys.readouterr()
    assert main(["predict", "--model", str(model_path), "--data", str(tmp_path / "x.npz")]) == 0
    header, labels = _read_column(capsys.readouterr().out, from_text=True)
    assert header == ["prediction"] and np.mean(np.array(labels, dtype=int) == y) > 0.85
    np.savez(tmp_path / "narrow.npz", X=X[:, :3])
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(model_path), "--data", str(tmp_path / "narrow.npz")])
    assert "has 3 feature columns; the model was trained on 4" in capsys.readouterr().err


# -- resume -------------------------------------------------------------------------------------------------
def _same_run(a, b):
    """Two checkpoints hold the same weights, optimizer state and curves, bit for bit (times aside)."""
    np.testing.assert_array_equal(a.model.params, b.model.params)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["t"] == sb["t"] and sa["hyperparameters"] == sb["hyperparameters"]
    for name in sa["state"]:
        np.testing.assert_array_equal(sa["state"][name], sb["state"][name])
    for key in ("train_loss", "val_loss", "lr", "grad_evals", "samples_seen"):
        assert getattr(a.history, key) == getattr(b.history, key), key
    assert a.training["rng"] == b.training["rng"]


@pytest.mark.parametrize("options", [
    ["--optimizer", "adam"],
    ["--optimizer", "sgd", "--schedule", "exponential", "--validation-fraction", "0.2"],
    ["--optimizer", "rmsprop", "--schedule", "plateau", "--validation-fraction", "0.2", "--batch-size", "8"],
])
def test_resume_continues_bit_identically(tmp_path, monkeypatch, options):
    from microdl.optim import schedules

    # a plateau schedule that acts within a few epochs, so that its saved running state matters
    monkeypatch.setitem(schedules.SCHEDULES, "plateau",
                        lambda: schedules.ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.3))
    n = 3
    one_go, first, resumed = (tmp_path / name for name in ("one.npz", "first.npz", "resumed.npz"))
    common = ["train", "--dataset", "iris", "--quiet", *options]
    assert main([*common, "--epochs", str(2 * n), "--save", str(one_go)]) == 0
    assert main([*common, "--epochs", str(n), "--save", str(first)]) == 0
    assert main(["train", "--resume", str(first), "--epochs", str(n), "--save", str(resumed), "--quiet"]) == 0
    a, b = load(one_go), load(resumed)
    assert a.history.epochs == b.history.epochs == 2 * n
    _same_run(a, b)
    assert not np.array_equal(load(first).model.params, b.model.params)  # it did train on
    if "plateau" in options:
        assert len(set(a.history.lr)) > 2  # the rate was cut more than once, across the break too


def test_resume_saves_back_to_its_checkpoint_and_counts_on(tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "2", "--save", str(path), "--json"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "after 2 epochs, for 3 more" in out and "epoch    3  loss" in out
    assert load(path).history.epochs == 5


@pytest.mark.parametrize(("extra", "message"), [
    (["--lr", "0.1"], "--resume continues the saved run with its own settings, so it takes no --lr"),
    (["--hidden", "8", "--optimizer", "adam"], "takes no --optimizer, --hidden"),
])
def test_resume_refuses_settings_of_its_own(tmp_path, capsys, extra, message):
    path = tmp_path / "m.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--save", str(path), "--quiet"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(path), *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_resume_refuses_other_data_and_a_checkpoint_without_its_run(animals, tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert main(["train", "--data", str(animals), "--target", "kind", "--epochs", "1", "--save", str(path),
                 "--quiet"]) == 0
    rows = list(csv.reader(open(animals)))
    rows[5][0] = "0.5"  # one cell changed
    other = _write_csv(tmp_path / "other.csv", rows[0], rows[1:])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(path), "--data", str(other)])
    assert exc.value.code == 2 and "the training data differs" in capsys.readouterr().err
    from microdl.nn import MLP

    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(tmp_path / "nowhere.npz")])
    assert exc.value.code == 2 and "--resume" in capsys.readouterr().err
    bare = tmp_path / "bare.npz"
    save(bare, MLP((3, 4, 2), random_state=0))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(bare)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "holds no record of its run" in err and len(err.splitlines()) == 1


# -- the default rate ---------------------------------------------------------------------------------------
def test_train_uses_the_preset_rate_and_says_which(animals, capsys):
    from microdl.experiments.tuning import PRESETS

    assert main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "8"]) == 0
    out = capsys.readouterr().out
    digits = PRESETS["digits"]["sgd"]
    assert f"sgd: lr {digits['lr']:.3g} with momentum {digits['momentum']:.3g} (the preset tuned for digits)" in out
    assert "--lr" in out and "microdl sensitivity --dataset digits --optimizers sgd" in out
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lr"] == digits["lr"] and summary["lr_source"] == "the preset tuned for digits"
    # your own data: a preset of the same task, named; a rate you give: no note, your rate
    assert main(["train", "--data", str(animals), "--target", "kind", "--epochs", "1", "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    assert "adam: lr" in out and "no preset for your data: the preset of" in out and "classification" in out
    assert f"microdl sensitivity --data {animals} --target kind --optimizers adam" in out
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--lr", "0.05", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lr"] == 0.05 and summary["lr_source"] == "given"


def test_the_preset_rate_trains_a_good_model_where_torchs_default_did_not(animals, capsys):
    """Issue 22: SGD at torch's 1e-3 gave 0.60 on a separable CSV."""
    for extra in ([], ["--lr", "0.001"]):
        assert main(["train", "--data", str(animals), "--target", "kind", "--epochs", "5", "--json", *extra]) == 0
    preset, torch_default = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert preset["test_accuracy"] >= 0.9 and preset["test_accuracy"] > torch_default["test_accuracy"]
