"""Every script in examples/ runs to the end, in its quick mode (MICRODL_QUICK=1), as ``python script.py``
would run it in a folder of its own (tests/one_interpreter.py: all of them in one fresh interpreter)."""

from pathlib import Path

import pytest

from tests.one_interpreter import run_in_one_interpreter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
# These register a formula or an optimizer, which the scripts after them would see (and a registered formula
# rebuilds the kernels): they run last, so that the others run on microdl as shipped.
REGISTERING = ["custom_optimizer.py", "custom_activation.py"]

# script -> a line its output must contain (scripts not listed only have to succeed)
EXPECTED = {
    "train_one_model.py": "test accuracy",
    "compare_optimizers.py": "picked lr",
    "gd_vs_sgd.py": "per epoch",
    "custom_schedule.py": "WarmupThenHalve(warmup=3, every=8)",
    "own_data.py": "houses: 300 samples, 2 features, task regression",
    "custom_optimizer.py": "MLPClassifier(solver='lion'): training accuracy",
    "custom_activation.py": "the compiled kernels and the textbook pass agree",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    order = [s for s in SCRIPTS if s not in REGISTERING] + [s for s in REGISTERING if s in SCRIPTS]
    jobs = []
    for script in order:
        cwd = root / script.removesuffix(".py")
        cwd.mkdir()
        jobs.append({"name": script, "path": str(EXAMPLES / script), "cwd": str(cwd),
                     "env": {"MPLBACKEND": "Agg", "MICRODL_QUICK": "1", "MICRODL_OUT": str(cwd / "out")}})
    return run_in_one_interpreter(jobs, root)


def test_the_learner_examples_exist():
    assert set(EXPECTED) <= set(SCRIPTS) and set(REGISTERING) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, runs):
    result = runs[script]
    assert result["error"] is None, f"{result['error']}\n{result['stderr'][-3000:]}"
    assert EXPECTED.get(script, "") in result["stdout"]
