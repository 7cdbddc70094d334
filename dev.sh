#!/usr/bin/env bash
# Set-up and the two main jobs on a fresh machine (only python3 with venv and pip is needed):
#   bash dev.sh demo   create .venv, install microdl, compare the six optimizers on digits (microdl compare):
#                      prints the table, writes curves.png, summary.csv and history.json to microdl-compare/
#   bash dev.sh test   create .venv, install microdl with its test extras, run the whole test suite
# Extra arguments go to `microdl compare` (demo) or to pytest (test).
# VENV names the virtual environment (default .venv); DEV_INSTALL=none runs in it as it is, without installing
# (CI installs a wheel there first).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
DEV_INSTALL=${DEV_INSTALL:-editable}

install() {  # $1: extras, e.g. "[test]"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  if [ "$DEV_INSTALL" = none ]; then
    return
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".$1"
}

case "${1:-}" in
  demo)
    install ""
    shift
    exec "$VENV/bin/microdl" compare "$@"
    ;;
  test)
    install "[test]"
    shift
    set +e
    "$VENV/bin/python" -m pytest "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then
      echo "dev.sh: pytest collected no tests; failing" >&2
      exit 1
    fi
    exit "$rc"
    ;;
  *)
    echo "usage: bash dev.sh demo|test [args...]" >&2
    exit 2
    ;;
esac
