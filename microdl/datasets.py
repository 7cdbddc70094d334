"""Datasets by name, or your own from arrays or a file, standardised and split reproducibly.

Every dataset comes back as a :class:`Dataset` with a stratified (classification) train/test split whose
features are standardised with the *training* mean and standard deviation; regression targets are
standardised the same way (``y_mean`` and ``y_scale`` undo it). The built-in datasets are scikit-learn's
``load_*`` and ``make_*`` (nothing is downloaded). Your own data goes through the same split and
standardisation:

* :func:`read_data` reads a CSV file with a header (``target`` names the label column) or an ``.npz`` file
  holding ``X`` and ``y``; :func:`from_arrays` takes arrays. Both return :class:`RawData`, the samples before
  the split, checked: a bad file gets a ``ValueError`` that names the problem, with the line and column where
  that helps.
* :func:`load_dataset` splits and standardises a built-in dataset by name, or a :class:`RawData`.

The task (classification or regression) of your own data is inferred from the targets (:func:`infer_task`)
unless you give it.

>>> from microdl.datasets import from_arrays, load_dataset
>>> import numpy as np
>>> raw = from_arrays(np.arange(40.0).reshape(20, 2), np.arange(20) % 2)
>>> raw.task, load_dataset(raw, random_state=0).X_train.shape
('classification', (15, 2))
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from microdl._validation import MAX_SEED, check_choice, check_int, check_real

__all__ = ["Dataset", "RawData", "Preprocessing", "DATASETS", "TASKS", "load_dataset", "list_datasets", "read_data",
           "read_features", "from_arrays", "infer_task", "MAX_INFERRED_CLASSES"]

TASKS = ("classification", "regression")

#: Integer-valued targets with at most this many distinct values are taken as class labels; more, as numbers
#: to predict (diabetes' integer targets have 214 distinct values). Strings are always class labels.
MAX_INFERRED_CLASSES = 20


def _bundled(loader_name: str) -> Callable[[int | None, int], tuple[np.ndarray, np.ndarray]]:
    def load(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader_name)(return_X_y=True)

    return load


def _generated(maker_name: str, default_n: int, **kwargs: Any) -> Callable[[int | None, int], tuple]:
    def make(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        n = default_n if n_samples is None else n_samples
        return getattr(sklearn.datasets, maker_name)(n_samples=n, random_state=seed, **kwargs)

    return make


#: name -> (task, source, description)
DATASETS: dict[str, tuple[str, Callable, str]] = {
    "iris": ("classification", _bundled("load_iris"), "iris flowers, 3 classes"),
    "wine": ("classification", _bundled("load_wine"), "wine cultivars, 3 classes"),
    "breast_cancer": ("classification", _bundled("load_breast_cancer"), "tumour diagnosis, 2 classes"),
    "digits": ("classification", _bundled("load_digits"), "8x8 handwritten digits, 10 classes"),
    "diabetes": ("regression", _bundled("load_diabetes"), "disease progression after one year"),
    "moons": ("classification", _generated("make_moons", 1000, noise=0.2), "two interleaving half circles"),
    "circles": ("classification", _generated("make_circles", 1000, noise=0.1, factor=0.5),
                "a circle inside a circle"),
    "classification": ("classification",
                       _generated("make_classification", 2000, n_features=20, n_informative=10, n_classes=3),
                       "make_classification, 20 features, 3 classes"),
    "regression": ("regression", _generated("make_regression", 2000, n_features=20, n_informative=10, noise=10.0),
                   "make_regression, 20 features, noise 10"),
}


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """How :func:`load_dataset` turned raw samples into a :class:`Dataset`'s, and how to do it again for new
    samples (:meth:`transform`) and to turn a model's predictions back into labels or units (:meth:`decode`):
    what a saved model needs to be used on new data (``microdl train --save``, ``microdl predict``).

    ``transform`` computes ``(X / x_scale - x_mean) / x_std`` in float64, as the split did, so the training
    rows come out with the same bits. ``feature_names`` and ``target`` are the CSV's column names (None for
    data without names); ``classes`` holds the original label of each class index.
    """

    task: str
    x_scale: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    classes: np.ndarray | None = None
    y_mean: float = 0.0
    y_scale: float = 1.0
    feature_names: tuple[str, ...] | None = None
    target: str | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_mean.shape[0])

    def transform(self, X: Any, dtype: Any = "float64") -> np.ndarray:
        """Standardise raw samples ``X`` (samples × features) as the training data was."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have {self.n_features} feature columns; got shape {X.shape}")
        return ((X / self.x_scale - self.x_mean) / self.x_std).astype(dtype)

    def decode(self, predictions: np.ndarray) -> np.ndarray:
        """A model's predictions (class indices, or standardised values) as original labels or values."""
        predictions = np.asarray(predictions)
        if self.task == "classification":
            return self.classes[predictions]
        return predictions.astype(np.float64) * self.y_scale + self.y_mean


@dataclass
class Dataset:
    """A standardised train/test split. ``y`` holds class indices 0..n_classes-1 or standardised values.

    ``classes`` (classification) holds the original label of each class index, so that ``classes[y]`` gives
    the labels back; ``y * y_scale + y_mean`` gives regression targets back in their units.
    """

    name: str
    task: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    y_mean: float = 0.0
    y_scale: float = 1.0
    classes: np.ndarray | None = None
    #: how the samples were standardised and labelled, to do it again on new data
    preprocessing: Preprocessing | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else 1

    @property
    def loss(self) -> str:
        """The MLP loss that fits the task."""
        return "cross_entropy" if self.task == "classification" else "squared_error"


@dataclass(frozen=True, eq=False)
class RawData:
    """Samples before the split: ``X`` (float64, samples × features, finite) and ``y`` (class labels of any
    kind, or finite numbers), checked by :func:`from_arrays`. ``source`` says where they came from.

    Build it with :func:`from_arrays` or :func:`read_data`, not directly; :func:`load_dataset` splits it.
    """

    name: str
    task: str
    X: np.ndarray
    y: np.ndarray
    source: str = "arrays"
    #: the names of X's columns and of the target (a CSV's header), if known
    feature_names: tuple[str, ...] | None = None
    target: str | None = None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


# -- the task ----------------------------------------------------------------------------------------------
def infer_task(y: np.ndarray) -> str:
    """``"classification"`` or ``"regression"``, judged from the targets alone.

    Labels that are not numbers (strings, booleans) are classes; numbers with a fractional part are values to
    predict; whole numbers are classes if there are at most :data:`MAX_INFERRED_CLASSES` distinct ones.

    >>> infer_task(np.array(["cat", "dog"])), infer_task(np.array([0.5, 1.0])), infer_task(np.array([0, 1, 2]))
    ('classification', 'regression', 'classification')
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        return "classification"
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        return "regression"
    return "classification" if np.unique(y).size <= MAX_INFERRED_CLASSES else "regression"


# -- your own data -----------------------------------------------------------------------------------------
def from_arrays(X: Any, y: Any, *, task: str | None = None, name: str = "arrays", source: str = "arrays",
                feature_names: list[str] | None = None) -> RawData:
    """Check ``X`` and ``y`` and return them as :class:`RawData`, ready for :func:`load_dataset`.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Real numbers, no NaN or infinity.
    y : array of shape (n_samples,)
        Class labels (numbers or strings) or, for regression, finite numbers.
    task : {"classification", "regression"}, optional
        Inferred by :func:`infer_task` when not given.
    name : str
        The name results are labelled with.
    source, feature_names
        Where the data came from, and the column names, used in error messages.

    Raises
    ------
    ValueError
        Naming the problem: a shape, a NaN or infinity (with its row and column), a regression target that is
        not a number, fewer than 2 samples, a class with fewer than 2 samples.
    """
    if task is not None:
        check_choice("task", task, TASKS)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{source}: X must be 2-D (samples x features); got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{source}: X must hold numbers; got dtype {X.dtype}")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        column = feature_names[col] if feature_names else f"{col}"
        raise ValueError(f"{source}: X holds {X[row, col]} at row {row}, column {column} ({len(bad)} such "
                         f"value{'s' if len(bad) > 1 else ''}); remove or fill them first")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{source}: y must be 1-D (one target per sample); got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{source}: X has {X.shape[0]} samples but y has {y.shape[0]}")
    if X.shape[0] < 2:
        raise ValueError(f"{source}: has {X.shape[0]} sample{'' if X.shape[0] == 1 else 's'}; a train/test split "
                         "needs at least 2")
    if X.shape[1] == 0:
        raise ValueError(f"{source}: X has no feature columns")
    if y.dtype.kind == "f":
        bad_y = np.flatnonzero(~np.isfinite(y))
        if bad_y.size:
            raise ValueError(f"{source}: y holds {y[bad_y[0]]} at row {int(bad_y[0])}; remove or fill it first")
    inferred = task is None
    task = infer_task(y) if task is None else task
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{source}: a regression target must be numbers; y has dtype {y.dtype}")
        y = y.astype(np.float64)
    else:
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError(f"{source}: class labels must be whole numbers or strings; y holds fractions "
                             "(for numbers to predict, use task='regression')")
        labels, counts = np.unique(y, return_counts=True)
        if labels.size < 2:
            raise ValueError(f"{source}: y has a single class ({labels.tolist()[0]!r}); classification needs at "
                             "least 2")
        if counts.min() < 2:
            rare = labels[counts < 2].tolist()  # Python values, so that the message says 7, not np.int64(7)
            how = " (inferred: whole numbers with few distinct values)" if inferred else ""
            raise ValueError(
                f"{source}: class {rare[0]!r} has 1 sample ({len(rare)} class{'es' if len(rare) > 1 else ''} "
                f"with fewer than 2); the stratified split needs at least 2 per class. The task is "
                f"classification{how}; for numbers to predict, use task='regression' (--task regression)")
    return RawData(name, task, X, y, source, None if feature_names is None else tuple(feature_names))


def read_data(path: str | os.PathLike, *, target: str | None = None, task: str | None = None) -> RawData:
    """Read your own data from a CSV or ``.npz`` file, checked, as :class:`RawData` for :func:`load_dataset`.

    Parameters
    ----------
    path : str or path
        ``*.csv`` (also ``*.tsv``, ``*.txt``): a header line with the column names, then one sample per line;
        every column but ``target`` is a feature and must be a number (comma, semicolon or tab separated).
        ``*.npz`` (``numpy.savez``): an array ``X`` (samples × features) and the targets ``y``.
    target : str
        The CSV column that holds the targets (required for CSV); for ``.npz``, the array that holds them
        (default ``"y"``).
    task : {"classification", "regression"}, optional
        Inferred by :func:`infer_task` when not given.

    Raises
    ------
    ValueError
        Naming the problem and, for CSV, the line and column: a missing target column, a non-numeric or empty
        cell, NaN, a single row, a class with fewer than 2 samples, an ``.npz`` without ``X``.

    >>> data = load_dataset(read_data("houses.csv", target="price"), random_state=0)   # doctest: +SKIP
    """
    path = Path(path)
    if task is not None:
        check_choice("task", task, TASKS)
    try:
        is_file, exists = path.is_file(), path.exists()
    except OSError as exc:  # a name too long to look up (ENAMETOOLONG): a bad value, not a failed read
        raise ValueError(f"{str(path)[:80]}...: {exc.strerror}") from None
    if not is_file:
        raise ValueError(f"{path}: no such file" if not exists else f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, y, names = _read_npz(path, target or "y")
    elif suffix in (".csv", ".tsv", ".txt"):
        try:
            X, y, names = _read_csv(path, target)
        except UnicodeDecodeError:  # the codec's message names neither the file nor the line, and its offset
            raise ValueError(f"{path}, line {_first_non_utf8_line(path)}: not UTF-8 text; save the file as UTF-8 "
                             "CSV") from None  # counts from the start of a read buffer, not of the file
    else:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; give a .csv file with a header or an .npz "
                         "file holding X and y")
    raw = from_arrays(X, y, task=task, name=path.stem, source=str(path), feature_names=names)
    return replace(raw, target=target or "y")


def read_features(path: str | os.PathLike, preprocessing: Preprocessing) -> np.ndarray:
    """The raw feature columns of new samples to predict, from a CSV or ``.npz`` file, in the order the model
    was trained on (float64, samples × features).

    A CSV is matched by column name when the training data had names (columns may come in any order; the
    target column may be there or not, and is ignored); an ``.npz`` (or a CSV for a model trained without
    names) by the number of columns. Raises ``ValueError`` with one line naming the columns that are missing
    or that the model does not know, and the other problems :func:`read_data` names.
    """
    path = Path(path)
    try:
        is_file, exists = path.is_file(), path.exists()
    except OSError as exc:
        raise ValueError(f"{str(path)[:80]}...: {exc.strerror}") from None
    if not is_file:
        raise ValueError(f"{path}: no such file" if not exists else f"{path} is not a file")
    names, n = preprocessing.feature_names, preprocessing.n_features
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X = _read_npz(path, None)[0]
        header = None
    elif suffix in (".csv", ".tsv", ".txt"):
        try:
            X, _, header = _read_csv(path, preprocessing.target, target_optional=True)
        except UnicodeDecodeError:
            raise ValueError(f"{path}, line {_first_non_utf8_line(path)}: not UTF-8 text; save the file as UTF-8 "
                             "CSV") from None
    else:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; give a .csv file with a header or an .npz "
                         "file holding X")
    if header is not None and names is not None:
        missing = [c for c in names if c not in header]
        unknown = [c for c in header if c not in names]
        if missing or unknown:
            said = ([f"it lacks {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"the model does not know {', '.join(map(repr, unknown))}"] if unknown else [])
            raise ValueError(f"{path} does not have the columns the model was trained on: {'; '.join(said)} (the "
                             f"model takes {', '.join(names)}" + (f", and the target {preprocessing.target}"
                                                                  if preprocessing.target else "") + ")")
        X = X[:, [header.index(c) for c in names]]
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{path}: X must be a 2-D array of numbers; got shape {X.shape} of {X.dtype}")
    if X.shape[1] != n:
        raise ValueError(f"{path} has {X.shape[1]} feature columns; the model was trained on {n}")
    if X.shape[0] == 0:
        raise ValueError(f"{path} has no samples")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise ValueError(f"{path}: X holds {X[row, col]} at row {row}, column {names[col] if names else col}; "
                         "remove or fill it first")
    return X


def _read_npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray | None, None]:
    """``X`` and the ``target`` array of an ``.npz`` archive (only ``X`` when ``target`` is None)."""
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle, and suggest loading it unsafely
        raise ValueError(f"{path} is not an .npz archive (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(f"{path} is not an .npz archive (np.load read a single array)")
            keys = sorted(archive.files)
            for key in ("X", target) if target is not None else ("X",):
                if key not in keys:
                    how = f"X=X, {target}=y" if target is not None else "X=X"
                    raise ValueError(f"{path} holds no array {key!r} (it holds: {', '.join(keys) or 'nothing'}); "
                                     f"save it with numpy.savez(path, {how})")
            return archive["X"], None if target is None else archive[target], None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} could not be read as an .npz archive: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is not a readable .npz archive ({exc})") from None


def _first_non_utf8_line(path: Path) -> int:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]  # lines end in \n, \r\n or a lone \r, as for the csv reader
        return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    return 1  # not reached: the caller saw a decoding error


def _read_csv(path: Path, target: str | None, *, target_optional: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Parse row by row straight into a float64 buffer: a million-row file took about 20 times its data's size
    as lists of strings, a string array and its stripped copy; this takes the data's size, plus the labels.
    With ``target_optional`` (new samples to predict), a file without the target column is all features, a
    single sample is enough, and no labels are returned."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        head = fh.readline()
        if not head.strip():
            raise ValueError(f"{path} is empty: a CSV needs a header line with the column names, then the samples")
        try:
            dialect: Any = csv.Sniffer().sniff(head, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        fh.seek(0)
        reader = csv.reader(fh, dialect)
        header = [name.strip() for name in next(reader)]
        duplicated = sorted({n for n in header if header.count(n) > 1})
        if duplicated:
            raise ValueError(f"{path}, line 1: the column name {duplicated[0]!r} appears more than once")
        if target is None and not target_optional:
            raise ValueError(f"{path}: name the target column (target=..., --target COLUMN); the columns are "
                             f"{', '.join(header)}")
        if target not in header and not target_optional:
            raise ValueError(f"{path} has no column {target!r}; its columns are {', '.join(header)}")
        t = header.index(target) if target in header else None
        features = [name for k, name in enumerate(header) if k != t]
        values = array("d")
        labels: list[str] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue  # blank lines, the trailing one above all
                if len(row) != len(header):
                    raise ValueError(f"{path}, line {reader.line_num}: {len(row)} cells, but the header has "
                                     f"{len(header)} columns")
                cells = row if t is None else row[:t] + row[t + 1:]
                try:
                    values.extend(map(float, cells))
                except ValueError:
                    _raise_bad_cell(f"{path}, line {reader.line_num}", cells, features)
                labels.append("" if t is None else row[t].strip())
                lines.append(reader.line_num)
        except csv.Error as exc:  # a cell beyond the field limit, a NUL byte, ...
            raise ValueError(_csv_error(path, reader.line_num, exc, header, dialect)) from None
    if not labels:
        raise ValueError(f"{path} has a header but no samples")
    if len(labels) == 1 and not target_optional:
        raise ValueError(f"{path} has a single sample (line {lines[0]}); a train/test split needs at least 2")
    X = np.frombuffer(values, dtype=np.float64).reshape(len(labels), len(features))
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(k) for k in bad[0])
        text = _cell_text(path, dialect, lines[i], j if t is None else j + (j >= t))
        where = f"{path}, line {lines[i]}, column {features[j]!r}"
        if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ValueError(f"{where}: the cell is {text.strip()!r}; remove or fill missing values first")
        raise ValueError(f"{where}: {text.strip()!r} is beyond the range of a float64 number")
    if t is None or target_optional:  # samples to predict: whatever the target column holds is not read
        return X, None, features
    for k, label in enumerate(labels):
        if not label:
            raise ValueError(f"{path}, line {lines[k]}, column {target!r}: the target is empty")
    return X, _parse_labels(path, labels, lines, target), features


def _parse_labels(path: Path, labels: list[str], lines: list[int], target: str) -> np.ndarray:
    """Whole numbers as exact integers (labels above 2**53 merged as floats, issue 21 case 15), beyond int64
    by their text; other numbers as floats, "3.0" being the class 3; anything else as class names."""
    try:
        whole = [int(label) for label in labels]
    except ValueError:
        whole = None
    if whole is not None:
        if all(-(2**63) <= v < 2**63 for v in whole):
            return np.array(whole, dtype=np.int64)
        return np.array(labels)  # classes named by their digits: no float could tell them apart
    try:
        y = np.array([float(label) for label in labels])
    except ValueError:
        return np.array(labels)  # class names
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"{path}, line {lines[bad[0]]}, column {target!r}: the target is {labels[bad[0]]!r}")
    if np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53):
        y = y.astype(np.int64)  # "3" and "3.0" are the same class
    return y


def _raise_bad_cell(where: str, cells: list[str], features: list[str]) -> None:
    """Raise naming the first cell of a row that is empty or not a number."""
    for name, cell in zip(features, cells):
        value = cell.strip()
        if not value:
            raise ValueError(f"{where}, column {name!r}: the cell is empty; every feature must be a number")
        try:
            float(value)
        except ValueError:
            raise ValueError(f"{where}, column {name!r}: {value!r} is not a number; every column but the target "
                             "must hold numbers (encode categories as numbers first)") from None
    raise AssertionError("no bad cell found")  # pragma: no cover - only called when there is one


def _cell_text(path: Path, dialect: Any, line: int, column: int) -> str:
    """The text of one cell, read again (only for an error message)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, dialect)
        for row in reader:
            if reader.line_num == line:
                return row[column]
    return ""  # pragma: no cover - the caller read that line


def _csv_error(path: Path, line: int, exc: csv.Error, header: list[str], dialect: Any) -> str:
    """One line for the csv module's error, naming the line, and the column of a cell beyond its field limit
    (found by splitting the raw line: the csv module names neither)."""
    limit = csv.field_size_limit()
    if "field larger than field limit" in str(exc):
        column = ""
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for k, raw in enumerate(fh, start=1):
                if k == line:
                    cells = raw.split(dialect.delimiter)
                    long = [j for j, cell in enumerate(cells) if len(cell) > limit and j < len(header)]
                    column = f", column {header[long[0]]!r}" if long else ""
                    break
        return (f"{path}, line {line}{column}: the cell is longer than {limit:,} characters, the csv module's "
                "limit; no number is that long")
    return f"{path}, line {line}: not readable as CSV ({exc})"


# -- splitting ---------------------------------------------------------------------------------------------
def _builtin(name: str, n_samples: int | None, seed: int) -> RawData:
    task, source, _ = DATASETS[name]
    X, y = source(n_samples, seed)
    return RawData(name, task, np.asarray(X, dtype=np.float64), np.asarray(y), f"sklearn {name}")


def load_dataset(name: str | RawData, *, test_size: float = 0.25, random_state: int = 0, dtype: Any = "float64",
                 n_samples: int | None = None) -> Dataset:
    """Split and standardise a built-in dataset (by name) or your own (:class:`RawData`).

    Parameters
    ----------
    name : str or RawData
        One of ``iris, wine, breast_cancer, digits, diabetes, moons, circles, classification, regression``,
        or what :func:`read_data` or :func:`from_arrays` returned.
    test_size : float in (0, 1)
        Fraction held out for testing (stratified by class for classification).
    random_state : int
        Seeds the split (and the generators).
    dtype : float32 or float64
    n_samples : int, optional
        Size of a generated dataset (ignored by the bundled ones and by your own).
    """
    if not isinstance(name, RawData):
        check_choice("dataset", name, DATASETS)
    test_size = check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    if n_samples is not None:
        n_samples = check_int("n_samples", n_samples, 10)
    random_state = check_int("random_state", random_state, 0, MAX_SEED)
    dtype = np.dtype(dtype)
    raw = name if isinstance(name, RawData) else _builtin(name, n_samples, random_state)
    return _split(raw, test_size, random_state, dtype)


def _split(raw: RawData, test_size: float, random_state: int, dtype: np.dtype) -> Dataset:
    from sklearn.model_selection import train_test_split

    classification = raw.task == "classification"
    n = raw.n_samples
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise ValueError(f"{raw.source}: test_size={test_size:g} of {n} samples leaves none to train on")
    if classification:
        n_classes = np.unique(raw.y).size
        if min(n_test, n - n_test) < n_classes:
            raise ValueError(f"{raw.source}: {n} samples with test_size={test_size:g} give {n - n_test} train and "
                             f"{n_test} test samples, fewer than the {n_classes} classes; the stratified split "
                             "needs one of each class on both sides")
    X_train, X_test, y_train, y_test = train_test_split(raw.X, raw.y, test_size=test_size, random_state=random_state,
                                                        stratify=raw.y if classification else None)
    x_scale, x_mean, x_std = _standardiser(X_train)
    n_classes, y_mean, y_scale, classes = None, 0.0, 1.0, None
    if classification:
        classes, y_train = np.unique(y_train, return_inverse=True)
        y_test = np.searchsorted(classes, y_test)
        n_classes = len(classes)
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    else:
        scale, mean, std = _standardiser(y_train)
        y_mean, y_scale = float(mean * scale), float(std * scale)
        y_train = ((y_train / scale - mean) / std).astype(dtype)
        y_test = ((y_test / scale - mean) / std).astype(dtype)
    preprocessing = Preprocessing(raw.task, x_scale, x_mean, x_std, classes, y_mean, y_scale, raw.feature_names,
                                  raw.target)
    X_train, X_test = preprocessing.transform(X_train, dtype), preprocessing.transform(X_test, dtype)
    return Dataset(raw.name, raw.task, X_train, X_test, y_train, y_test, n_classes, y_mean, y_scale, classes,
                   preprocessing)


def _standardiser(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scale, mean, std)`` per column of the training data ``a``, such that ``(x / scale - mean) / std``
    standardises ``x``; a constant column gets std 1.

    ``scale`` is the power of two just below the column's largest magnitude: dividing by it is exact, so
    mean and std (and the result) have the same bits as without it, but no sum or square overflows: values of
    1e308 overflowed the plain formula into infinity and NaN (issue 21, case 14)."""
    _, exponent = np.frexp(np.max(np.abs(a), axis=0))
    scale = np.ldexp(1.0, exponent - 1)  # |a| / scale < 2; 2**1023 at most, finite
    scaled = a / scale
    mean, std = scaled.mean(axis=0), scaled.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return scale, mean, std


def list_datasets() -> list[dict[str, Any]]:
    """Name, task, size, features, classes and description of every dataset."""
    rows = []
    for name, (task, source, description) in DATASETS.items():
        X, y = source(None, 0)
        rows.append({"name": name, "task": task, "n_samples": X.shape[0], "n_features": X.shape[1],
                     "n_classes": len(np.unique(y)) if task == "classification" else None,
                     "description": description})
    return rows
