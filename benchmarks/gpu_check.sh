#!/usr/bin/env bash
# The GPU check: one script for a fresh GPU machine, under 8 minutes.
#
#   bash benchmarks/gpu_check.sh [LOG_DIR]
#
# 1. makes sure CuPy (the wheel for this machine's CUDA) and a CUDA build of torch are there,
#    installing them with pip when they are not (skipped with a message on an offline machine
#    that lacks them);
# 2. installs edugrad from this checkout (no dependencies pulled: numpy is already there);
# 3. runs tests/test_cuda.py (every primitive, every op of the op table, training steps and the
#    no-host-copy promise on "cuda");
# 4. runs the training benchmark on cuda, edugrad on CuPy (eager and edugrad.jit) against
#    PyTorch CUDA;
# 5. trains the default MNIST CNN (eager, then --jit) and the default GPT (2,000 steps) with
#    --device cuda;
# and prints a summary of the five. Every step's full output goes to LOG_DIR (default: a temp
# folder), and the script goes on past a failing step so that one run shows everything.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR=${1:-$(mktemp -d)}
mkdir -p "$LOG_DIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
declare -A RESULT

step() {  # step NAME COMMAND...: run it, log it, remember pass/fail and the last line
    local name=$1; shift
    echo "=== $name: $*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$LOG_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    RESULT[$name]="rc=$rc, $((SECONDS - start)) s: $(grep -v '^\s*$' "$LOG_DIR/$name.log" | tail -n 1)"
}

echo "=== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
CUDA_MAJOR=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -n 1)
$PY --version

if ! $PY -c "import cupy; cupy.cuda.runtime.getDeviceCount()" 2>/dev/null; then
    echo "=== CuPy missing: pip install cupy-cuda${CUDA_MAJOR:-12}x"
    $PY -m pip install --quiet "cupy-cuda${CUDA_MAJOR:-12}x" || echo "could not install CuPy"
fi
if ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "=== no CUDA build of torch: pip install torch (for the comparison column only)"
    $PY -m pip install --quiet torch || echo "could not install torch; the benchmark shows edugrad alone"
fi
$PY -c "import cupy, numpy; print('cupy', cupy.__version__, '| numpy', numpy.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())"
$PY -c "import torch; print('torch', torch.__version__, '| cuda available:', torch.cuda.is_available())" || true

echo "=== install edugrad from this checkout"
$PY -m pip install --quiet --no-deps --no-build-isolation -e . || exit 1

step tests $PY -m pytest tests/test_cuda.py -q -rf -p no:cacheprovider --maxfail=50
step bench $PY benchmarks/bench_training.py --device cuda --rounds 5 --steps 20 --jit
step mnist $PY applications/learn_mnist.py --device cuda --quiet --no-plot --save ""
step mnist_jit $PY applications/learn_mnist.py --device cuda --quiet --no-plot --save "" --jit
step gpt $PY applications/learn_gpt.py --device cuda --quiet --save "" \
    --plot "$LOG_DIR/gpt_curves.png" --length 600

echo
echo "=== summary (logs in $LOG_DIR)"
for name in tests bench mnist mnist_jit gpt; do
    echo "$name: ${RESULT[$name]:-not run}"
done
grep -A 6 "^model" "$LOG_DIR/bench.log" | head -n 16
