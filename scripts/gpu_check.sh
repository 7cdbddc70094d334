#!/usr/bin/env bash
# The real-GPU check of microdl's CUDA device, in one command from the repository root of a machine with an
# NVIDIA GPU:
#
#   bash scripts/gpu_check.sh
#
# 1. makes microdl importable: an editable install without dependencies when numba, numba-cuda, NumPy, SciPy,
#    scikit-learn and pytest are already there (no network needed); else from wheels in $WHEELS
#    (pip install --no-index); else pip install -e '.[test,cuda]' from the index;
# 2. runs the CUDA tests of tests/cuda_sim on the GPU, WITHOUT the simulator (MICRODL_REAL_GPU=1), plus
#    tests/test_cuda_unavailable.py;
# 3. runs python -m benchmarks.gpu --quick (a few minutes on a data-centre GPU).
#
# Everything is printed, and also written to $OUT/gpu_check.log (with $OUT/gpu_benchmark.md and .json) when
# $OUT is set. PYTHON picks the interpreter (default: python3). Exit status: non-zero if a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:-}
LOG=/dev/null
if [ -n "$OUT_DIR" ]; then
  mkdir -p "$OUT_DIR"
  LOG="$OUT_DIR/gpu_check.log"
  : >"$LOG"
fi
status=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, tee to the log, remember a failure
  local name=$1 limit=$2
  shift 2
  echo "=== $name: $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$LOG"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

unset NUMBA_ENABLE_CUDASIM  # the point is the real device
step "gpu" 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

missing=$("$PYTHON" - <<'EOF'
import importlib.util
print(" ".join(m for m in ("numba", "numba_cuda", "numpy", "scipy", "sklearn", "pytest")
               if importlib.util.find_spec(m) is None))
EOF
)
if [ -z "$missing" ]; then
  echo "=== install: microdl alone (its dependencies are there)" | tee -a "$LOG"
  "$PYTHON" -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tee -a "$LOG" ||
    echo "(the editable install failed; PYTHONPATH is used instead)" | tee -a "$LOG"
elif [ -n "${WHEELS:-}" ]; then
  step "install" 600 "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" -e '.[cuda]' pytest
else
  echo "missing: $missing; installing from the package index" | tee -a "$LOG"
  step "install" 900 "$PYTHON" -m pip install -q -e '.[test,cuda]'
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step "versions" 120 "$PYTHON" -c "import sys, numpy, numba, numba_cuda; from numba import cuda; \
print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__, \
'numba-cuda', numba_cuda.__version__); print(cuda.get_current_device().name, cuda.gpus)"

export MICRODL_REAL_GPU=1  # tests/conftest.py then collects tests/cuda_sim, which runs on the device
step "cuda tests" 900 "$PYTHON" -m pytest -q -p no:cacheprovider --durations=10 tests/cuda_sim
unset MICRODL_REAL_GPU
step "unavailable tests" 300 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda_unavailable.py

bench_args=(--quick)
[ -n "$OUT_DIR" ] && bench_args+=(--out "$OUT_DIR/gpu_benchmark.md" --json "$OUT_DIR/gpu_benchmark.json")
step "benchmark" 900 "$PYTHON" -m benchmarks.gpu "${bench_args[@]}"

echo "=== gpu_check: $([ "$status" -eq 0 ] && echo OK || echo FAILED)" | tee -a "$LOG"
exit "$status"
