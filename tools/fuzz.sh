#!/bin/sh
# Build the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and fuzz each
# one for SECONDS (default 60), two at a time, starting from the committed
# corpus (tests/fuzz/corpus/TARGET) and the shipped specs. Any crash, leak,
# timeout (> 5 s for one input), out-of-memory (> 2 GiB) or sanitizer report
# fails the run and prints the input as hex; copy it into the corpus folder to
# keep it as a regression (docs/security.md §4). Called by tools/test.sh;
# bench/fuzz/run.sh runs longer campaigns (FUZZ_RUNS=N: N executions per
# target instead of a time limit). The random seed is fixed (FUZZ_SEED, default
# 1) so that a CI failure replays the same way here; 0 draws a new one.
#   sh tools/fuzz.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-model cluster hf plan sweep program ckpt}

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Dcuda=disabled \
        -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >/dev/null
fi
for t in $targets; do ninja -C build-fuzz "tests/fuzz/fuzz_$t" >/dev/null; done

export PARASIM_DATA="$PWD" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seeds_of() {
    case $1 in
    model) echo models ;;
    cluster) echo plans/clusters ;;
    hf) echo tests/data/hf ;;
    plan) echo plans ;;
    sweep) echo plans/sweeps ;;
    *) echo ;;
    esac
}

fuzz_one() {
    t=$1
    mkdir -p "$work/$t/new" "$work/$t/seeds"
    # libFuzzer reads corpus folders flat: gather the seed files into one
    for f in $(find $(seeds_of "$t") tests/fuzz/corpus/"$t" -type f 2>/dev/null); do
        cp "$f" "$work/$t/seeds/$(echo "$f" | tr / _)"
    done
    start=$(date +%s)
    if build-fuzz/tests/fuzz/fuzz_"$t" "$work/$t/new" "$work/$t/seeds" \
        -dict=tests/fuzz/spec.dict $limit -seed="${FUZZ_SEED:-1}" -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb=2048 \
        -max_len=65536 -artifact_prefix="$work/$t/" -print_final_stats=1 \
        >"$work/$t/log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
        echo "fuzz $t: $runs executions in $(($(date +%s) - start)) s, no crash"
    else
        echo "fuzz $t: FAILED"
        grep -E "^fuzz:|ERROR|SUMMARY|runtime error|Test unit written" "$work/$t/log" | head -20
        for a in "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-*; do
            [ -f "$a" ] || continue
            echo "input $(basename "$a") ($(wc -c <"$a") bytes), as hex:"
            od -An -tx1 -v "$a" | head -64
        done
        return 1
    fi
}

if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=$seconds"; fi
status=0
set -- $targets
while [ $# -gt 0 ]; do
    a=$1; shift
    if [ $# -gt 0 ]; then
        b=$1; shift
        fuzz_one "$a" & pa=$!
        fuzz_one "$b" || status=1
        wait $pa || status=1
    else
        fuzz_one "$a" || status=1
    fi
done
[ $status -eq 0 ] && echo "fuzz: no crash, leak, hang or sanitizer report ($limit per target)"
exit $status
