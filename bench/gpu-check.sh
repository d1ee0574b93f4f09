#!/bin/sh
# gpu-check.sh — everything parasim checks on a GPU, in one run of a few minutes, for a
# machine lent for a short time (an H200): build with CUDA for sm_90 (unless a build is
# given), then
#   1. parasim devices                       the device, its memory, CUDA/cuBLAS/NCCL versions
#   2. tests/test_backend_ops                every CUDA kernel against its CPU twin
#   3. bench/gpu_rates                       cuBLAS bf16 GEMM rates over Llama 3.2 1B's shapes
#                                            and device-copy bandwidth, against dgx-h200.yaml
#   4. parasim plan                          the prediction for the 1-GPU bf16 1B run
#   5. parasim run --backend cuda            that run, measured (tokens/s, MFU, memory)
# and prints a short table last. Each step's output is kept under OUT (default
# gpu-check-out/, or $OUT where the device tool sets it). A step that needs a GPU and
# finds none says "skipped" with the reason; the script fails (exit 1) only when a step
# that could run fails. Steps are each held to a time limit, so the whole stays under 8
# minutes after the build.
#
# usage: sh bench/gpu-check.sh [BUILD_DIR]    (default: build-gpu, set up when missing;
#        GPU_CHECK_NO_BUILD=1 takes BUILD_DIR as built: the meson test gpu_check does)
set -u
cd "$(dirname "$0")/.." || exit 2
B=${1:-build-gpu}
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT" || exit 2
PATH=/usr/local/cuda/bin:$PATH
export PATH
start=$(date +%s)

if [ "${GPU_CHECK_NO_BUILD:-0}" = 1 ]; then
    [ -x "$B/parasim" ] || { echo "gpu-check: no parasim in $B"; exit 2; }
elif [ ! -f "$B/build.ninja" ]; then
    echo "== build: meson setup $B -Dcuda=enabled (sm_90)"
    meson setup "$B" -Dcuda=enabled --buildtype=release >"$OUT/setup.log" 2>&1 ||
        { tail -20 "$OUT/setup.log"; echo "gpu-check: meson setup failed ($OUT/setup.log)"; exit 1; }
fi
if [ "${GPU_CHECK_NO_BUILD:-0}" != 1 ]; then
    echo "== build: ninja -C $B"
    ninja -C "$B" >"$OUT/build.log" 2>&1 ||
        { tail -30 "$OUT/build.log"; echo "gpu-check: the build failed ($OUT/build.log)"; exit 1; }
fi
built=$(date +%s)

rows=""
failed=0
# row STEP RESULT FIGURE: one line of the final table
row() { rows="$rows$(printf '%-22s %-9s %s' "$1" "$2" "$3")
"; }
# run_step NAME LIMIT_S LOG CMD...: the command's exit status (124: over its limit)
run_step() {
    name=$1 limit=$2 log=$3
    shift 3
    echo "== $name: $*"
    timeout "$limit" "$@" >"$OUT/$log" 2>&1
    rc=$?
    cat "$OUT/$log"
    return $rc
}

run_step devices 60 devices.txt "$B/parasim" devices
rc=$?
dev=$(grep -m1 -i 'device 0\|^  0' "$OUT/devices.txt" | sed 's/^ *//' | cut -c1-60)
if [ $rc -eq 0 ]; then row devices ok "${dev:-see devices.txt}"
else row devices none "$(tail -1 "$OUT/devices.txt" | cut -c1-70)"; fi

run_step "cross-backend tests" 180 backend_ops.txt "$B/tests/test_backend_ops"
rc=$?
n_ok=$(grep -c ' ok$' "$OUT/backend_ops.txt")
n_fail=$(grep -c 'FAIL' "$OUT/backend_ops.txt")
case $rc in
0) row "cross-backend tests" ok "$n_ok checks within tolerance" ;;
77) row "cross-backend tests" skipped "$(cut -c7-80 "$OUT/backend_ops.txt" | head -1)" ;;
*) row "cross-backend tests" FAIL "$n_fail failed, rc $rc (backend_ops.txt)"; failed=1 ;;
esac

run_step "GEMM and copy rates" 180 rates.txt "$B/bench/gpu_rates" models/llama3.2-1b.yaml \
    plans/clusters/dgx-h200.yaml 8192 -o "$OUT/rates.csv"
rc=$?
case $rc in
0)
    best=$(awk -F, '$1 == "gemm" && $8 > m { m = $8 } END { printf "%.0f", m / 1e12 }' "$OUT/rates.csv")
    copy=$(awk -F, '$1 == "copy" && $8 > m { m = $8 } END { printf "%.0f", m / 1e9 }' "$OUT/rates.csv")
    row "GEMM and copy rates" ok "bf16 GEMM up to $best TFLOP/s; d2d copy up to $copy GB/s (rates.csv)" ;;
77) row "GEMM and copy rates" skipped "$(cut -c7-80 "$OUT/rates.txt" | head -1)" ;;
*) row "GEMM and copy rates" FAIL "rc $rc (rates.txt)"; failed=1 ;;
esac

PLAN=plans/llama3.2-1b-1xh200.yaml
if run_step prediction 60 plan.txt "$B/parasim" plan "$PLAN" &&
    "$B/parasim" plan "$PLAN" --format json -o "$OUT/plan.json" >/dev/null 2>&1; then
    pred=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m, t = d["memory"], d["time"]
print("%.0f tok/s, MFU %.1f%%, peak %.2f GiB" % (t["tokens_per_s"], 100 * t["mfu"], m["total"] / 2**30))
' "$OUT/plan.json")
    row prediction ok "$pred"
else
    row prediction FAIL "parasim plan $PLAN (plan.txt)"
    failed=1
fi

run_step "1B bf16 training run" 300 run.txt "$B/parasim" run "$PLAN" --backend cuda --steps 20 \
    -o "$OUT/run-profile.json"
rc=$?
if [ $rc -eq 0 ]; then row "1B bf16 training run" ok "$(grep -m1 'tokens/s' "$OUT/run.txt" | cut -c1-70)"
elif grep -q 'CUDA executor is not built yet' "$OUT/run.txt"; then
    row "1B bf16 training run" "not run" "the CUDA executor does not run training steps yet"
else row "1B bf16 training run" FAIL "rc $rc (run.txt)"; failed=1; fi

end=$(date +%s)
echo
echo "# gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ): build $((built - start)) s, checks $((end - built)) s; logs in $OUT/"
printf '%-22s %-9s %s\n' step result figure
printf '%s' "$rows"
exit $failed
