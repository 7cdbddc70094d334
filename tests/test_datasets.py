"""Datasets by name, and your own from a CSV file, an .npz file or arrays: standardised, reproducibly split,
with clear errors naming the line and column of a bad cell."""

import re

import numpy as np
import pytest

from microdl.datasets import (
    DATASETS,
    MAX_INFERRED_CLASSES,
    from_arrays,
    infer_task,
    list_datasets,
    load_dataset,
    read_data,
)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_loads_standardised(name):
    d = load_dataset(name, random_state=0)
    assert d.X_train.shape[1] == d.X_test.shape[1] == d.n_features
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-10)
    std = d.X_train.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-10) | (std == 0))
    assert len(d.X_test) == pytest.approx(0.25 * (len(d.X_train) + len(d.X_test)), abs=1)
    if d.task == "classification":
        assert d.y_train.dtype == np.int64 and set(np.unique(d.y_train)) == set(range(d.n_classes))
        assert d.loss == "cross_entropy" and d.n_outputs == d.n_classes
    else:
        assert d.loss == "squared_error" and d.n_outputs == 1
        assert abs(d.y_train.mean()) < 1e-6 and d.y_train.std() == pytest.approx(1, rel=1e-6)


def test_split_is_reproducible_and_stratified():
    a, b = load_dataset("wine", random_state=3), load_dataset("wine", random_state=3)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    c = load_dataset("wine", random_state=4)
    assert not np.array_equal(a.X_train, c.X_train)
    full = np.bincount(np.concatenate([a.y_train, a.y_test])) / (len(a.y_train) + len(a.y_test))
    np.testing.assert_allclose(np.bincount(a.y_test) / len(a.y_test), full, atol=0.05)


def test_dtype_and_generated_size():
    d = load_dataset("moons", n_samples=200, dtype="float32")
    assert d.X_train.dtype == np.float32 and len(d.X_train) + len(d.X_test) == 200


def test_list_datasets():
    rows = {r["name"]: r for r in list_datasets()}
    assert set(rows) == set(DATASETS)
    assert rows["digits"]["n_samples"] == 1797 and rows["digits"]["n_features"] == 64
    assert rows["digits"]["n_classes"] == 10 and rows["diabetes"]["task"] == "regression"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, "unknown dataset 'mnist'"),
        ({"name": "iris", "test_size": 0}, "test_size"),
        ({"name": "iris", "test_size": 1.5}, "test_size"),
        ({"name": "moons", "n_samples": 3}, "n_samples must be >= 10"),
        ({"name": "iris", "random_state": -1}, "random_state"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(**kwargs)


# -- your own data ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("y", "task"), [
    (np.array(["cat", "dog", "cat"]), "classification"),
    (np.array([True, False]), "classification"),
    (np.array([0, 1, 2, 1]), "classification"),
    (np.array([0.0, 1.0, 1.0]), "classification"),  # whole numbers written as floats
    (np.arange(20), "classification"),  # MAX_INFERRED_CLASSES distinct whole numbers: still classes
    (np.arange(21), "regression"),  # one more: numbers to predict (diabetes' targets are whole numbers too)
    (np.array([0.5, 1.0, 2.0]), "regression"),
])
def test_infer_task_table(y, task):
    assert MAX_INFERRED_CLASSES == 20
    assert infer_task(y) == task


def test_diabetes_targets_would_be_inferred_as_regression():
    from sklearn.datasets import load_diabetes

    assert infer_task(load_diabetes().target) == "regression"


def _write_iris_csv(path, sep=","):
    from sklearn.datasets import load_iris

    iris = load_iris()
    with open(path, "w") as f:
        f.write(sep.join(["sepal length", "sepal width", "species", "petal length", "petal width"]) + "\n")
        for row, label in zip(iris.data, iris.target_names[iris.target]):
            cells = [repr(float(v)) for v in row]
            f.write(sep.join([*cells[:2], label, *cells[2:]]) + "\n")
        f.write("\n")  # a trailing blank line is fine
    return iris


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_a_csv_file_gives_the_same_split_and_standardisation_as_the_builtin_dataset(tmp_path, sep):
    iris = _write_iris_csv(tmp_path / "flowers.csv", sep)
    raw = read_data(tmp_path / "flowers.csv", target="species")
    assert (raw.name, raw.task, raw.n_samples) == ("flowers", "classification", 150)
    mine, builtin = load_dataset(raw, random_state=3), load_dataset("iris", random_state=3)
    np.testing.assert_array_equal(mine.X_train, builtin.X_train)  # same rows, same order, same scaling
    np.testing.assert_array_equal(mine.X_test, builtin.X_test)
    np.testing.assert_array_equal(mine.y_train, builtin.y_train)  # class names sort as 0, 1, 2 do
    assert list(mine.classes) == list(iris.target_names) and mine.n_classes == 3


def test_npz_and_arrays_give_the_same_dataset_and_regression_is_standardised(tmp_path):
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    for raw in (read_data(tmp_path / "d.npz"), from_arrays(X, y, name="d")):
        assert raw.task == "regression"
        mine, builtin = load_dataset(raw, random_state=1, dtype="float32"), load_dataset("diabetes", random_state=1,
                                                                                          dtype="float32")
        np.testing.assert_array_equal(mine.X_train, builtin.X_train)
        np.testing.assert_array_equal(mine.y_test, builtin.y_test)
        assert (mine.y_mean, mine.y_scale) == (builtin.y_mean, builtin.y_scale)
    np.savez(tmp_path / "t.npz", X=X, price=y)
    assert read_data(tmp_path / "t.npz", target="price", task="regression").task == "regression"
    np.savez(tmp_path / "c.npz", X=X[:40], y=np.arange(40) % 2)
    assert read_data(tmp_path / "c.npz").task == "classification"
    assert read_data(tmp_path / "c.npz", task="regression").task == "regression"  # overridden


def _csv(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("a,b,y\n1,2,0\n3,4,1\n", {"target": "label"}, "has no column 'label'; its columns are a, b, y"),
    ("a,b,y\n1,2,0\n3,4,1\n", {}, "name the target column"),
    ("a,b,y\n1,2,0\n3,x,1\n1,2,1\n", {"target": "y"}, "line 3, column 'b': 'x' is not a number"),
    ("a,b,y\n1,2,0\n3,,1\n1,2,1\n", {"target": "y"}, "line 3, column 'b': the cell is empty"),
    ("a,b,y\n1,2,0\n3,4,1\nnan,2,1\n", {"target": "y"}, "line 4, column 'a': the cell is 'nan'"),
    ("a,b,y\n1,2,0\n3,4,\n", {"target": "y"}, "line 3, column 'y': the target is empty"),
    ("a,b,y\n1,2,0\n3,4\n", {"target": "y"}, "line 3: 2 cells, but the header has 3 columns"),
    ("a,b,y\n1,2,0\n", {"target": "y"}, "has a single sample (line 2)"),
    ("a,b,y\n", {"target": "y"}, "has a header but no samples"),
    ("", {"target": "y"}, "is empty"),
    ("a,a,y\n1,2,0\n", {"target": "y"}, "line 1: the column name 'a' appears more than once"),
    ("a,y\n1,0\n2,0\n3,1\n4,1\n5,2\n", {"target": "y"}, "class 2 has 1 sample"),
    ("a,y\n1,cat\n2,dog\n3,dog\n", {"target": "y", "task": "regression"}, "a regression target must be numbers"),
    ("a,y\n1,0.5\n2,nan\n3,1\n", {"target": "y"}, "line 3, column 'y': the target is 'nan'"),
])
def test_bad_csv_files_get_errors_naming_line_and_column(tmp_path, text, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        read_data(_csv(tmp_path, text), **kwargs)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(("a,y\n" + "1,cafe\n" * 5000 + "2,th\u00e9\n").encode("latin-1"))  # past the first read
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 5002: not UTF-8 text")):
        read_data(path, target="y")
    for newline in ("\r", "\r\n"):  # old Mac "CSV (Macintosh)" exports end lines in a lone CR
        path.write_bytes(newline.join(["a,y", "1,cafe", "2,th\u00e9", ""]).encode("latin-1"))
        with pytest.raises(ValueError, match=re.escape(f"{path}, line 3: not UTF-8 text")):
            read_data(path, target="y")


def test_a_class_with_one_sample_suggests_regression(tmp_path):
    path = _csv(tmp_path, "a,y\n" + "".join(f"{k},{k % 5 + (k == 0) * 7}\n" for k in range(12)))
    with pytest.raises(ValueError, match="class 7 has 1 sample.*inferred.*--task regression"):
        read_data(path, target="y")
    assert read_data(path, target="y", task="regression").task == "regression"


def test_bad_npz_and_other_files(tmp_path):
    np.savez(tmp_path / "noX.npz", x=np.ones((3, 2)), y=np.arange(3))
    with pytest.raises(ValueError, match=r"holds no array 'X' \(it holds: x, y\)"):
        read_data(tmp_path / "noX.npz")
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    with pytest.raises(ValueError, match="holds no array 'y'"):
        read_data(tmp_path / "noy.npz")
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0, 2.0], [3.0, np.nan], [1.0, 1.0]]), y=[0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="X holds nan at row 1, column 1"):
        read_data(tmp_path / "nan.npz")
    np.savez(tmp_path / "one.npz", X=np.ones((1, 2)), y=[0.5])
    with pytest.raises(ValueError, match="has 1 sample; a train/test split needs at least 2"):
        read_data(tmp_path / "one.npz")
    np.savez(tmp_path / "flat.npz", X=np.ones(4), y=np.arange(4))
    with pytest.raises(ValueError, match="X must be 2-D"):
        read_data(tmp_path / "flat.npz")
    (tmp_path / "junk.npz").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match="is not an .npz archive") as exc:
        read_data(tmp_path / "junk.npz")
    assert "unsafely" not in str(exc.value)
    (tmp_path / "data.xlsx").write_text("")
    with pytest.raises(ValueError, match="unknown file type '.xlsx'"):
        read_data(tmp_path / "data.xlsx")
    with pytest.raises(ValueError, match="no such file"):
        read_data(tmp_path / "missing.csv", target="y")


def test_from_arrays_checks_and_the_split_needs_a_sample_of_every_class_on_both_sides():
    with pytest.raises(ValueError, match="X has 3 samples but y has 2"):
        from_arrays(np.ones((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="single class"):
        from_arrays(np.ones((3, 2)), [1, 1, 1])
    with pytest.raises(ValueError, match="class labels must be whole numbers or strings"):
        from_arrays(np.ones((3, 2)), [0.5, 1.0, 1.0], task="classification")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        from_arrays(np.ones((3, 2)), [0, 1, 1], task="ranking")
    raw = from_arrays(np.arange(12.0).reshape(6, 2), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="fewer than the 3 classes"):
        load_dataset(raw)  # 2 test samples for 3 classes
    assert load_dataset(raw, test_size=0.5).y_test.size == 3


# -- CSV traps (issue 21, cases 13-15) -------------------------------------------------------------------------
def test_a_cell_beyond_the_csv_modules_field_limit_is_named_by_line_and_column(tmp_path):
    """Case 13: a cell longer than 131,072 characters gave a _csv.Error traceback."""
    import csv

    long_cell = "1" * (csv.field_size_limit() + 10)
    path = _csv(tmp_path, f"a,b,y\n1,2,0\n3,{long_cell},1\n1,2,1\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 3, column 'b': the cell is longer than")):
        read_data(path, target="y")


def test_values_whose_standardisation_would_overflow_are_standardised_safely(tmp_path, recwarn):
    """Case 14: values of 1e308 printed NumPy overflow warnings, then "X contains NaN or infinity"."""
    rows = "\n".join(f"{1e308 * (-1) ** k},{0.85e308 * (k % 3)},{k % 2}" for k in range(40))
    data = load_dataset(read_data(_csv(tmp_path, "a,b,y\n" + rows + "\n"), target="y"), random_state=0)
    assert np.all(np.isfinite(data.X_train)) and np.all(np.isfinite(data.X_test))
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, rtol=1e-12)
    regression = load_dataset(from_arrays(np.arange(40.0)[:, None], 1e308 * np.cos(np.arange(40.0)),
                                          task="regression"), random_state=0)
    assert np.all(np.isfinite(regression.y_train)) and np.isfinite(regression.y_scale)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_standardisation_is_bit_identical_for_ordinary_data():
    """Scaling by a power of two first (the overflow guard) changes no bit of ordinary data."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X_train, _, _, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    expected = (X_train - X_train.mean(axis=0)) / X_train.std(axis=0)
    np.testing.assert_array_equal(load_dataset("wine", random_state=0).X_train, expected)


def test_integer_labels_beyond_2_to_the_53_stay_distinct_classes(tmp_path):
    """Case 15: labels above 2**53 were parsed as floats and two distinct classes merged silently."""
    big = 2**53
    labels = [big, big + 1, big + 2] * 4
    path = _csv(tmp_path, "a,y\n" + "\n".join(f"{k},{label}" for k, label in enumerate(labels)) + "\n")
    raw = read_data(path, target="y")
    assert sorted(set(raw.y.tolist())) == [big, big + 1, big + 2]
    assert load_dataset(raw, test_size=0.5, random_state=0).n_classes == 3
    huge = ["123456789012345678901234567890", "123456789012345678901234567891"] * 3  # beyond int64: by text
    path = _csv(tmp_path, "a,y\n" + "\n".join(f"{k},{label}" for k, label in enumerate(huge)) + "\n", "huge.csv")
    assert len(set(read_data(path, target="y").y.tolist())) == 2
    mixed = _csv(tmp_path, "a,y\n1,3\n2,3.0\n3,4\n4,4\n", "mixed.csv")  # "3" and "3.0" are one class
    assert sorted(set(read_data(mixed, target="y").y.tolist())) == [3, 4]
