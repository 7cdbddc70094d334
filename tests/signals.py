"""A helper shared by the tests of how ``microdl train`` stops on a signal (tests/test_cli.py, Ctrl-C;
tests/test_reliability.py, SIGHUP)."""

import os
import subprocess
import sys
from pathlib import Path


def train_stopped_by(signum: int, path: Path) -> tuple[int, str]:
    """Run ``microdl train --save path`` in a child process, send it ``signum`` once it is training, and give its
    exit status and standard error."""
    proc = subprocess.Popen([sys.executable, "-m", "microdl", "train", "--dataset", "digits", "--epochs", "100000",
                             "--save", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:  # wait until it trains
            if line.startswith("epoch "):
                break
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stderr
