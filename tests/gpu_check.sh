#!/bin/sh
# gpu_check.sh BUILD_DIR — bench/gpu-check.sh runs to its table on this build (without
# rebuilding): exit 0, one row per step, each ok, skipped or "not run" with its reason
# (on a machine without a GPU: devices none, the GPU steps skipped, the prediction ok).
set -u
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT
log=$out/log
OUT=$out/o GPU_CHECK_NO_BUILD=1 sh bench/gpu-check.sh "$1" >"$log" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$log"; echo "FAIL: gpu-check.sh exited $rc"; exit 1; }
table=$(sed -n '/^step  *result  *figure$/,$p' "$log")
for step in devices "cross-backend tests" "GEMM and copy rates" prediction "1B bf16 training run"; do
    echo "$table" | grep -q "^$step  *\(ok\|none\|skipped\|not run\) " ||
        { cat "$log"; echo "FAIL: no row for \"$step\" in the table"; exit 1; }
done
echo "$table" | grep -q "^prediction  *ok  *[0-9]* tok/s, MFU [0-9.]*%, peak [0-9.]* GiB$" ||
    { echo "$table"; echo "FAIL: the prediction row"; exit 1; }
for f in devices.txt backend_ops.txt rates.txt plan.txt plan.json run.txt; do
    [ -s "$out/o/$f" ] || { echo "FAIL: $f not kept"; exit 1; }
done
echo "$table"
