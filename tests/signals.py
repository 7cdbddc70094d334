"""Helpers shared by the tests that stop a child process with a signal: how ``microdl train`` stops
(tests/test_cli.py, Ctrl-C; tests/test_reliability.py, SIGHUP), and a child that must see Ctrl-C."""

import os
import signal
import subprocess
import sys
from pathlib import Path


def train_stopped_by(signum: int, path: Path) -> tuple[int, str]:
    """Run ``microdl train --save path`` in a child process, send it ``signum`` once it is training, and give its
    exit status and standard error."""
    proc = subprocess.Popen([sys.executable, "-m", "microdl", "train", "--dataset", "digits", "--epochs", "100000",
                             "--save", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        for line in proc.stdout:  # wait until it trains
            if line.startswith("epoch "):
                break
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stderr


def ctrl_c_as_at_a_terminal() -> None:
    """``preexec_fn`` for a child that must stop on SIGINT as it would at a terminal, wherever pytest runs: a
    shell starts a background job (``pytest ... &``) with SIGINT ignored, its children inherit that, and Python
    installs its KeyboardInterrupt handler only over the default action; the child then ignores Ctrl-C and the
    test waits out its timeout."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
