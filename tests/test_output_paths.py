"""Output folders and paths (issue 21, cases 7-8 and 10-11): a folder is replaced only if its manifest says
the same command wrote everything in it, and a path problem is found before the work, not when saving it."""

from __future__ import annotations

import json

import pytest

from microdl.cli import main


def _refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def test_report_never_replaces_a_folder_of_the_users_files(tmp_path, capsys, monkeypatch):
    """Case 7: any .md/.png/.html/.json counted as the report's own, and thesis.md was deleted."""
    import microdl.experiments.report.driver as driver

    monkeypatch.setattr(driver, "Context", lambda *a, **k: pytest.fail("the report started"))
    notes = tmp_path / "mynotes"
    notes.mkdir()
    mine = {"thesis.md": "# my thesis", "settings.json": "{}", "holiday.png": "PNG", "cv.html": "<p>cv</p>"}
    for name, text in mine.items():
        (notes / name).write_text(text)
    err = _refused(["report", "--quick", "--out", str(notes), "--no-progress"], capsys)
    assert err.startswith("microdl report: error: report folder") and "did not write" in err
    assert {p.name: p.read_text() for p in notes.iterdir()} == mine


def test_compare_never_replaces_a_folder_where_it_writes_a_file(tmp_path, capsys, monkeypatch):
    """Case 8: ``trick/curves.png/`` was a folder holding precious.txt; its name matched, and it was deleted."""
    import microdl.experiments.runs as runs

    monkeypatch.setattr(runs, "run_one", lambda spec: pytest.fail("a run started"))
    (tmp_path / "trick" / "curves.png").mkdir(parents=True)
    (tmp_path / "trick" / "curves.png" / "precious.txt").write_text("precious")
    err = _refused(["compare", "--dataset", "iris", "--epochs", "1", "--out", str(tmp_path / "trick"),
                    "--no-progress"], capsys)
    assert "curves.png" in err
    assert (tmp_path / "trick" / "curves.png" / "precious.txt").read_text() == "precious"


def test_a_folder_is_replaced_only_if_its_manifest_lists_everything_unchanged(tmp_path):
    from microdl._files import MANIFEST, atomic_folder, check_replaceable_folder

    out = tmp_path / "out"
    with atomic_folder(out, "microdl compare") as tmp:
        (tmp / "summary.txt").write_text("table")
        (tmp / "figures").mkdir()
        (tmp / "figures" / "a.png").write_bytes(b"png")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["writer"] == "microdl compare"
    assert set(manifest["entries"]) == {"summary.txt", "figures", "figures/a.png"}
    assert check_replaceable_folder(out, "--out", "microdl compare") == out  # its own earlier output
    with pytest.raises(ValueError, match="written by microdl compare, not microdl report"):
        check_replaceable_folder(out, "--out", "microdl report")
    (out / "figures" / "mine.txt").write_text("mine")  # a file added by the user, however deep
    with pytest.raises(ValueError, match="figures/mine.txt"):
        check_replaceable_folder(out, "--out", "microdl compare")
    (out / "figures" / "mine.txt").unlink()
    (out / "summary.txt").write_text("edited by hand")  # an output edited since
    with pytest.raises(ValueError, match=r"summary.txt \(changed since\)"):
        check_replaceable_folder(out, "--out", "microdl compare")
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        check_replaceable_folder(out, "--out", "microdl compare")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_replaceable_folder(empty, "--out", "microdl compare") == empty


def test_compare_replaces_its_own_earlier_output(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1", "--hidden", "4",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- a path problem never costs a run (cases 10-11) ---------------------------------------------------------
def test_train_saves_to_a_legal_name_at_the_file_systems_limit(tmp_path, capsys):
    """Case 10: the temporary name of a legal 249-byte --save exceeded 255 bytes after training."""
    path = tmp_path / ("m" * 245 + ".npz")
    assert len(path.name) == 249
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--hidden", "4", "--quiet", "--save",
                 str(path)]) == 0
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_compare_writes_a_legal_250_byte_out(tmp_path, capsys):
    """Case 11."""
    out = tmp_path / ("o" * 250)
    assert main(["compare", "--dataset", "iris", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1",
                 "--hidden", "4", "--out", str(out), "--no-progress"]) == 0
    assert (out / "summary.csv").exists() and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_name_beyond_the_limit_is_refused_before_any_work(command, tmp_path, capsys, monkeypatch):
    import microdl.experiments.runs as runs
    import microdl.train

    monkeypatch.setattr(microdl.train, "fit", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(runs, "run_one", lambda spec: pytest.fail("a run started"))
    option = "--save" if command == "train" else "--out"
    err = _refused([command, "--dataset", "iris", option, str(tmp_path / ("x" * 300))], capsys)
    assert f"microdl {command}: error: {option}" in err and "300 bytes" in err and "255" in err
