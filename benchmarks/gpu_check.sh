#!/usr/bin/env bash
# The one prepared GPU check: which card and versions, a subset of the tests on the GPU, then the
# quick benchmark. Made for a lent GPU machine with JAX (CUDA), optax, NumPy, PyTorch and
# scikit-learn installed but no network: jaxgd runs from this checkout through PYTHONPATH.
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh     # results land in $OUT/quick/
#
# BENCH_MODE=smoke tries the whole script in seconds (on any machine).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/jaxgd-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, optax, numpy; print('jax', jax.__version__, 'optax', optax.__version__, \
'numpy', numpy.__version__, jax.devices())"
# The fused path (jaxgd.fused) against the scan path through jaxgd.sweep, with their agreement
# (sgd K = 1,024, 8,192, 65,536; adam K = 8,192); then its tests on the device, where the kernel
# is compiled (Triton, Mosaic) rather than interpreted. BENCH_MODE=smoke: tiny, interpreted.
if [ "${BENCH_MODE:-quick}" = smoke ]; then FUSED_FLAGS=--smoke; else FUSED_FLAGS=; fi
timeout "${FUSED_S:-180}" python3 -m benchmarks.fused $FUSED_FLAGS --out "$OUT/fused.json" \
    2>&1 | tee "$OUT/fused.log"
[ "${BENCH_MODE:-quick}" = smoke ] || timeout "${FUSED_TEST_S:-120}" python3 -m pytest -q -x \
    -p no:cacheprovider tests/core/test_fused.py 2>&1 | tail -8
# The main job of the README's quick start, on the GPU (its results folder stays behind).
python3 -m jaxgd run --out /tmp/jaxgd-gpu-run --overwrite 2>&1 | tail -12
# The engines, the float64 oracles and the sweep: the tests whose numbers a GPU could change.
timeout "${TEST_S:-150}" python3 -m pytest -q -x -p no:cacheprovider tests/core/test_model.py \
    tests/core/test_engine.py tests/core/test_eigen.py tests/core/test_layout.py \
    tests/core/test_references.py tests/core/test_sweep.py 2>&1 | tail -8
# Scalar layout against arrays, per engine (the choice behind jaxgd.layout.MAX_SCALARS).
timeout "${LAYOUT_S:-90}" python3 -m benchmarks.layouts 1024 8192 2>&1 | tee "$OUT/layouts.log"
timeout "${BENCH_S:-330}" python3 -m benchmarks.run --mode "${BENCH_MODE:-quick}" \
    --out "$OUT/quick" 2>&1 | tee "$OUT/bench.log"
# --- scan path (issue 11, branch scanfloor): µs per step against K with the settings A/B
# (unroll, snapshots), the host overhead, the direct engine against a hand-written X·W scan
# (n = 10⁶, d = 32, K = 64, T = 200), then the same scan table with XLA's command buffers off
# for their A/B. One process and the default device each, as a user runs jaxgd.
timeout "${SCAN_S:-200}" python3 -m benchmarks.scan_path --ks 1024 8192 65536 --repeats 5 \
    --direct 1000000 32 64 200 --json "$OUT/scan_path.json" 2>&1 | tee "$OUT/scan_path.log"
XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_command_buffer=" timeout "${SCAN_CB_S:-90}" \
    python3 -m benchmarks.scan_path --ks 1024 8192 65536 --repeats 5 \
    --json "$OUT/scan_path_no_command_buffers.json" 2>&1 | tee "$OUT/scan_path_no_cb.log"
# --- end of the scan path block
