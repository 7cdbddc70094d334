"""A helper shared by the tests that run user-facing scripts and snippets (tests/test_examples.py,
tests/test_readme.py): run them one after another in ONE fresh interpreter, each as ``__main__`` in a namespace,
folder, ``sys.argv`` and environment of its own, and give each one's output and exception.

Starting Python and importing NumPy, SciPy, scikit-learn, Numba and microdl costs seconds; paid once per script,
it was most of these tests' time. What a script leaves in the process (a registered activation or optimizer) is
seen by the scripts after it, so a caller that runs such a script puts it last.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

# Runs in the child: argv[1] is a JSON list of jobs, argv[2] the JSON file for the results.
_RUNNER = r"""
import contextlib, io, json, os, runpy, sys, traceback

spec, out_file = sys.argv[1:]
jobs = json.load(open(spec, encoding="utf-8"))
env, path0, results = dict(os.environ), sys.path[0], {}
for job in jobs:
    os.environ.clear()
    os.environ.update(env, **job["env"])
    os.chdir(job["cwd"])
    script = job.get("path")
    sys.argv = [script or "-c"]
    sys.path[0] = os.path.dirname(script) if script else ""  # as `python script.py` and `python -c` set it
    out, err, error = io.StringIO(), io.StringIO(), None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if script:
                runpy.run_path(script, run_name="__main__")
            else:
                exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:  # sys.exit(0) is a success, as it is for a script of its own
        if exc.code not in (None, 0):
            error = f"SystemExit({exc.code!r})"
    except BaseException:
        error = traceback.format_exc()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    results[job["name"]] = {"stdout": out.getvalue(), "stderr": err.getvalue(), "error": error}
sys.path[0] = path0
json.dump(results, open(out_file, "w", encoding="utf-8"))
"""


class Job(TypedDict, total=False):
    name: str  # the key of its result
    path: str  # a script to run as `python path` would, or
    code: str  # code to run as `python -c code` would
    cwd: str
    env: dict[str, str]  # added to the environment for this job only


class Result(TypedDict):
    stdout: str
    stderr: str
    error: str | None  # the traceback of the exception that ended it, or None if it ran to the end


def run_in_one_interpreter(jobs: list[Job], workdir: Path, timeout: float = 600) -> dict[str, Result]:
    """Run ``jobs`` in order in one child interpreter and give ``{name: result}``; the child's own failure (a
    crash, a timeout) fails the caller with its output."""
    spec, out = workdir / "jobs.json", workdir / "results.json"
    spec.write_text(json.dumps([{"env": {}, **job} for job in jobs]), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(spec), str(out)], cwd=workdir, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0 and out.exists(), f"the interpreter running {[j['name'] for j in jobs]} ended " \
                                                  f"with status {proc.returncode}:\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text(encoding="utf-8"))
