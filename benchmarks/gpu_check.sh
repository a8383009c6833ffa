#!/usr/bin/env bash
# The one prepared GPU check for issue 11: which card and versions, then the measurements in
# order of what they decide, each under its own cap, within one device call. Made for a lent
# GPU machine with JAX (CUDA), optax and NumPy installed but no network: jaxgd runs from this
# checkout through PYTHONPATH.
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh     # logs and JSON land in $OUT
#
# A session's device time is short (15 minutes, machine start included; 10 minutes a
# command), so the script keeps to GPU_BUDGET_S seconds (default 540): a stage starts only if
# its cap still fits, and the last lines list what ran and what was skipped. Run it with the
# device tool's timeout_s=600. BENCH_MODE=smoke tries the whole script in a minute or two on
# any machine (tiny sizes, the fused kernel interpreted).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/jaxgd-gpu}
BUDGET=${GPU_BUDGET_S:-540}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SMOKE=$([ "${BENCH_MODE:-quick}" = smoke ] && echo 1 || echo 0)
DONE=()

# stage NAME CAP_SECONDS LOG COMMAND...: runs COMMAND under `timeout CAP` if it fits the
# budget, its output to the screen and to $OUT/LOG.
stage() {
    local name=$1 cap=$2 log=$3
    shift 3
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt "$cap" ]; then
        DONE+=("$name: skipped ($left s left, cap $cap s)")
        return
    fi
    echo "## $name (cap $cap s, at $SECONDS s)"
    local start=$SECONDS
    timeout "$cap" "$@" 2>&1 | tee "$OUT/$log"
    DONE+=("$name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s (log $log)")
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, optax, numpy; print('jax', jax.__version__, 'optax', optax.__version__, \
'numpy', numpy.__version__, jax.devices())"

if [ "$SMOKE" = 1 ]; then
    KS=(64 256); DIRECT=(2000 8 4 20); FUSED=(--smoke)
else
    KS=(1024 8192 65536); DIRECT=(1000000 32 64 200); FUSED=()
fi
# 1. The fused path (jaxgd.engines.fused) against the scan path through jaxgd.sweep, with their
#    agreement: sgd K = 1,024, 8,192, 65,536 and adam K = 8,192 (the H100 targets).
stage "fused vs scan" 150 fused.log python3 -m benchmarks.fused "${FUSED[@]}" \
    --out "$OUT/fused.json"
# 2. The scan path: µs per step against K with the settings A/B (unroll, snapshots), the host
#    overhead, and the direct engine against a hand-written X·W scan (n = 10⁶, d = 32,
#    K = 64, T = 200). One process and the default device, as a user runs jaxgd.
stage "scan path" 200 scan_path.log python3 -m benchmarks.scan_path --ks "${KS[@]}" \
    --repeats 5 --direct "${DIRECT[@]}" --json "$OUT/scan_path.json"
# 3. The fused kernel's tests, compiled for the device (Triton, Mosaic) instead of
#    interpreted.
[ "$SMOKE" = 1 ] || stage "fused tests" 100 fused_tests.log python3 -m pytest -q -x \
    -p no:cacheprovider tests/core/test_fused.py
# 4. The same scan table with XLA's command buffers off, for their A/B.
stage "scan path, no command buffers" 70 scan_path_no_cb.log env \
    XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_command_buffer=" python3 -m benchmarks.scan_path \
    --ks "${KS[@]}" --repeats 5 --settings default "unroll=8" \
    --json "$OUT/scan_path_no_command_buffers.json"
# 5. The engines, the float64 oracles and the sweep: the tests whose numbers a GPU could change.
[ "$SMOKE" = 1 ] || stage "engine tests" 120 engine_tests.log python3 -m pytest -q -x \
    -p no:cacheprovider tests/core/test_model.py tests/core/test_engine.py \
    tests/core/test_eigen.py tests/core/test_layout.py tests/core/test_references.py \
    tests/core/test_sweep.py
# 6. Scalar layout against arrays, per engine (the choice behind jaxgd.engines.layout.MAX_SCALARS).
stage "layouts" 60 layouts.log python3 -m benchmarks.layouts "${KS[@]:0:2}"
# 7. The main job of the README's quick start (its results folder stays behind).
stage "quick start job" 60 run.log python3 -m jaxgd run --out "$OUT/run" --overwrite
# 8. The whole quick benchmark, if time is left.
stage "quick benchmark" 300 bench.log python3 -m benchmarks.run --mode "${BENCH_MODE:-quick}" \
    --out "$OUT/quick" --overwrite

echo "## gpu_check.sh: $SECONDS s of $BUDGET"
printf '%s\n' "${DONE[@]}"
python3 -m benchmarks.gpu_summary "$OUT"
