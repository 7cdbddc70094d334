#!/usr/bin/env bash
# Set-up and the two main jobs on a fresh machine (only python3 with venv and pip is needed):
#   bash dev.sh demo   create .venv, install microdl, compare the six optimizers on digits (microdl compare):
#                      prints the table, writes curves.png, summary.csv and history.json to microdl-compare/
#   bash dev.sh test   create .venv, install microdl with its test extras, run the whole test suite
#   bash dev.sh docs   create .venv, install microdl with its docs extra, build the documentation into
#                      docs/_build/html from scratch with warnings as errors (-W, nitpicky -n: every cross-reference
#                      must resolve), running the gallery's examples, then check its internal links offline
# Extra arguments go to `microdl compare` (demo), to pytest (test) or to sphinx-build (docs).
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
  docs)
    install "[docs]"
    shift
    rm -rf docs/_build docs/api docs/auto_examples docs/optimizers/generated docs/_gen
    MPLBACKEND=Agg "$VENV/bin/python" -m sphinx -b html -n -W --keep-going -j 1 "$@" docs docs/_build/html
    "$VENV/bin/python" docs/check_links.py docs/_build/html
    echo "dev.sh: the documentation is in docs/_build/html/index.html"
    ;;
  *)
    echo "usage: bash dev.sh demo|test|docs [args...]" >&2
    exit 2
    ;;
esac
