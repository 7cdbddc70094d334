#!/usr/bin/env bash
# Set-up and the two main jobs on a fresh machine (only python3 with venv and pip is needed):
#   bash dev.sh demo   create .venv, install microdl, train an MLP on the digits dataset
#   bash dev.sh test   create .venv, install microdl with its test extras, run the whole test suite
# Extra arguments after "test" go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

install() {  # $1: extras, e.g. "[test]"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".$1"
}

case "${1:-}" in
  demo)
    install ""
    shift
    exec "$VENV/bin/microdl" train --dataset digits --optimizer sgd --epochs 30 --batch-size 32 --hidden 64 \
      --lr 0.05 --seed 0 "$@"
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
