#!/bin/sh
# Set up as tools/setup.sh does, then run the whole test suite twice: on the
# release build, and on a debug build with AddressSanitizer + UndefinedBehavior-
# Sanitizer, then fuzz every input reader for a bounded time (tools/fuzz.sh,
# clang + libFuzzer). Tests that need a GPU are reported as skipped where there
# is none.
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then PATH=/usr/local/cuda/bin:$PATH; export PATH; fi

meson test -C build --print-errorlogs

if [ ! -f build-asan/build.ninja ]; then
    # -O1: ASan's recommended level; every check stays, and compute runs 1.8x
    # faster than at -O0 (the kernels suite: 2.45 s -> 1.35 s). Not -O2: GCC's
    # -O2 warnings under the sanitizers are false alarms (format-truncation).
    meson setup build-asan --buildtype=debug -Doptimization=1 -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=true
fi
ninja -C build-asan
meson test -C build-asan --print-errorlogs
sh tools/fuzz.sh "${FUZZ_SECONDS:-30}"
# one closing line for both builds (set -e: reached only when nothing failed)
count() { cat build/meson-logs/testlog.json build-asan/meson-logs/testlog.json | grep -c "\"result\": \"$1\"" || true; }
echo "test: all suites passed (release and ASan+UBSan builds, then 7 fuzz targets)"
echo "tests: $(count OK) passed, $(count FAIL) failed, $(count SKIP) skipped"
