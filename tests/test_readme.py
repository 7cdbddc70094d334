"""The README's snippets run as written, every file it names is shipped, and the docs' tour snippets run too.

Python blocks run as ``python -c`` would, all in one fresh interpreter (tests/one_interpreter.py); bash blocks
run in a temporary folder holding a copy of ``examples/`` (the README's paths are relative to a clone), with the
venv's ``microdl`` first on the PATH.
The set-up block (``bash dev.sh ...``) is what CI itself runs, so it is only checked for the commands it names.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.one_interpreter import run_in_one_interpreter

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MPLBACKEND": "Agg", "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_readme_is_short_and_has_its_snippets():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 120, f"the README is {len(lines)} lines: keep it a two-minute read, move detail to docs/"
    assert len(blocks(README, "python")) >= 2 and len(blocks(README, "bash")) >= 2


TOUR = sorted((ROOT / "docs" / "tour").glob("*.md")) + sorted((ROOT / "docs" / "howto").glob("*.md"))
SNIPPETS = [(page, i) for page in TOUR for i, _ in enumerate(blocks(page, "python"))]


@pytest.fixture(scope="module")
def python_runs(tmp_path_factory):
    """The README's Python blocks (each in a folder of its own) and the tour's and how-tos' snippets (in the
    repository's root, as before), each run as ``python -c`` would, all in one fresh interpreter
    (tests/one_interpreter.py)."""
    root = tmp_path_factory.mktemp("snippets")
    jobs = []
    for index, code in enumerate(blocks(README, "python")):
        (root / f"readme-{index}").mkdir()
        jobs.append({"name": f"readme-{index}", "code": code, "cwd": str(root / f"readme-{index}")})
    for page, index in SNIPPETS:
        code = blocks(page, "python")[index]
        if not _needs_a_gpu(code):
            jobs.append({"name": f"{page.name}-{index}", "code": code, "cwd": str(ROOT)})
    return run_in_one_interpreter(jobs, root)


def _needs_a_gpu(code: str) -> bool:
    return 'device="cuda"' in code


def _check(result: dict, code: str, where: str) -> None:
    assert result["error"] is None, f"{where}:\n{code}\n{result['error']}\n{result['stderr'][-3000:]}"


@pytest.mark.parametrize("index", range(len(blocks(README, "python"))))
def test_readme_python_block_runs(index, python_runs):
    _check(python_runs[f"readme-{index}"], blocks(README, "python")[index], "README.md")


def test_readme_bash_blocks_run(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    ran = 0
    for block in blocks(README, "bash"):
        if "dev.sh" in block:  # the set-up commands: CI runs them; here they must name what dev.sh offers
            for command in re.findall(r"bash dev\.sh (\w+)", block):
                assert f"\n  {command})" in (ROOT / "dev.sh").read_text()
            continue
        proc = run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path)
        assert proc.returncode == 0, f"{block}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        ran += 1
    assert ran >= 1


def test_every_file_the_readme_names_is_shipped():
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"\]\(([^)#\s]+)", text))  # Markdown links
    named |= set(re.findall(r"\b((?:examples|docs|microdl|scripts)/[\w./-]*\w)", text))
    # docs/_build/ is what `bash dev.sh docs` writes: the README names it as an output, not a shipped file
    named = {p for p in named if not p.startswith("docs/_build")}
    missing = [p for p in sorted(named) if not p.startswith("http") and not (ROOT / p).exists()]
    assert not missing, f"the README names files that are not in the repository: {missing}"


def test_the_shipped_data_is_what_its_recipe_makes():
    sys.path.insert(0, str(ROOT / "examples" / "data"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    assert (ROOT / "examples" / "data" / "houses.csv").read_text() == generate.houses_csv()
    with np.load(ROOT / "examples" / "data" / "arrays.npz") as shipped:
        for name, array in generate.arrays().items():
            np.testing.assert_array_equal(shipped[name], array)


@pytest.mark.parametrize(("page", "index"), SNIPPETS, ids=[f"{p.stem}-{i}" for p, i in SNIPPETS])
def test_docs_python_snippet_runs(page, index, python_runs):
    code = blocks(page, "python")[index]
    if _needs_a_gpu(code):
        pytest.skip("needs a GPU")
    _check(python_runs[f"{page.name}-{index}"], code, page.name)
