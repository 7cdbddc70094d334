"""Run ``tests/cuda_sim`` under Numba's CUDA simulator, in one pytest process of its own, and report each file.

The simulator must be switched on before Numba is imported, hence the subprocess; one for all the files (a
process per file spent most of its time importing Numba, SciPy and microdl again). Each file's tests are then
checked here, one test per file, from the run's JUnit XML, so that a failure still names its file. A failure is
never retried: the CUDA results must match the CPU's on every run (an intermittent mismatch here was a race in
the simulator's shared arrays, closed by :func:`microdl._cuda_support.require_cuda`; see
``tests/cuda_sim/test_simulator_shared.py``).
"""

import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

SIM_DIR = pathlib.Path(__file__).parent / "cuda_sim"
SIM_FILES = sorted(p.name for p in SIM_DIR.glob("test_*.py"))

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                                reason="already inside the simulator run")


@pytest.fixture(scope="module")
def simulator_run(tmp_path_factory):
    """The outcome of every test in tests/cuda_sim, by file: ``{file: [(test, problem or None), ...]}``, and the
    run's output."""
    xml = tmp_path_factory.mktemp("cuda_sim") / "junit.xml"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                           "--continue-on-collection-errors", str(SIM_DIR)],
                          env=env, capture_output=True, text=True, timeout=900)
    output = f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert xml.exists(), f"the simulator run wrote no report (status {proc.returncode}):\n{output}"
    outcomes: dict[str, list[tuple[str, str | None]]] = {}
    for case in ET.parse(xml).iter("testcase"):
        # classname is tests.cuda_sim.test_x (.TestClass for a method); a file that failed to import is reported
        # with an empty classname and the module as the name
        parts = f"{case.get('classname', '')}.{case.get('name', '')}".split(".")
        file = next((f"{part}.py" for part in parts if f"{part}.py" in SIM_FILES), "(no file)")
        problem = next((f"{child.tag}: {child.get('message', '')}\n{child.text or ''}" for child in case
                        if child.tag in ("failure", "error")), None)
        outcomes.setdefault(file, []).append((case.get("name", ""), problem))
    return outcomes, proc.returncode, output


def test_the_simulator_run_ends_cleanly(simulator_run):
    outcomes, returncode, output = simulator_run
    unmatched = sorted(set(outcomes) ^ set(SIM_FILES))
    assert not unmatched, f"files without results, or results without a file: {unmatched}\n{output}"
    failed = any(problem for cases in outcomes.values() for _, problem in cases)
    assert returncode == (1 if failed else 0), output  # 2 or more: interrupted, or an internal error


@pytest.mark.parametrize("name", SIM_FILES)
def test_under_cuda_simulator(name, simulator_run):
    outcomes, _, output = simulator_run
    cases = outcomes.get(name, [])
    assert cases, f"no test of {name} ran under the simulator:\n{output}"
    problems = [f"{test}: {problem[-3000:]}" for test, problem in cases if problem]
    assert not problems, f"simulator tests in {name} failed:\n" + "\n".join(problems)
