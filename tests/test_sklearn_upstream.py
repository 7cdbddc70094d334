"""scikit-learn's own MLP test file, run against microdl's estimators.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is copied into a temporary folder with
its one import swapped (``from sklearn.neural_network import`` becomes ``from microdl.sklearn import``) and run
by pytest in a subprocess. Every test of public behaviour must pass; the tests listed in :data:`PRIVATE` read
scikit-learn's private internals, which microdl does not reproduce, and must fail (so that the list stays true).
"""

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sklearn

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"

#: Tests that read scikit-learn's private implementation, with the reason.
PRIVATE = {
    "test_gradient": "calls scikit-learn's private backprop helpers (_forward_pass, _loss_grad_lbfgs, _unpack); "
                     "microdl's gradients are checked by finite differences in tests/nn",
    "test_learning_rate_warmstart": "reads _optimizer.learning_rate, scikit-learn's private SGDOptimizer "
                                    "(microdl's solver is a torch-style optimizer with .lr)",
    "test_adaptive_learning_rate": "reads _optimizer.learning_rate, scikit-learn's private SGDOptimizer",
}

#: scikit-learn's conftest parametrizes ``global_random_seed`` (42 unless SKLEARN_TESTS_GLOBAL_RANDOM_SEED says
#: otherwise); the copied file runs outside scikit-learn's tree, so this conftest gives it the default seed.
CONFTEST = '''
def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", [42])
'''


@pytest.mark.slow
def test_scikit_learn_test_mlp_passes_with_the_import_swapped(tmp_path):
    text = SOURCE.read_text(encoding="utf-8")
    swapped = text.replace("from sklearn.neural_network import", "from microdl.sklearn import")
    assert swapped.count("from microdl.sklearn import") == 1, "scikit-learn's test file imports its MLP differently"
    (tmp_path / "test_mlp.py").write_text(swapped, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    report = tmp_path / "report.xml"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                             "test_mlp.py"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    outcomes: dict[str, set[str]] = {}
    passed = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name").split("[")[0]
        status = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        if status == "skipped":
            assert "pandas" in next(iter(case)).get("message", ""), (case.get("name"), "skipped for no pandas only")
        passed += status == "passed"
        outcomes.setdefault(name, set()).add(status)
    failing = {name for name, statuses in outcomes.items() if statuses & {"failure", "error"}}
    assert failing == set(PRIVATE), (failing ^ set(PRIVATE), result.stdout[-4000:])
    assert outcomes["test_fit"] == outcomes["test_early_stopping_stratified"] == {"passed"}
    assert outcomes["test_mlp_vs_poisson_glm_equivalent"] == {"passed"}
    # scikit-learn 1.9's file: 59 cases, of which 3 private and 2 need pandas (in the test extra)
    has_pandas = importlib.util.find_spec("pandas") is not None
    assert passed >= (56 if has_pandas else 54), (passed, result.stdout[-4000:])
