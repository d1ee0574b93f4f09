#!/bin/sh
# check_layers.sh — every #include of a sim/ header respects the layers
# (README, Layout): a file may include its own layer and the ones it builds on.
#   base    <- nothing         spec <- base, cost (its checks bound sizes with
#                                      cost's parameter and activation counts)
#   cost    <- base, spec      time <- base, spec, cost
#   sweep   <- ... time        program <- ... time      report <- everything
#   runtime/ <- program, base  kernels/ <- nothing of sim/
# Exit 1 with one line per offending include.
cd "$(dirname "$0")/.." || exit 2
allowed() {
    case "$1" in
    sim/base) echo "base" ;;
    sim/spec | sim/cost) echo "base spec cost" ;;
    sim/time) echo "base spec cost time" ;;
    sim/sweep) echo "base spec cost time sweep" ;;
    sim/program) echo "base spec cost time program" ;;
    sim/report) echo "base spec cost time sweep program report" ;;
    runtime) echo "base program" ;;
    kernels | kernels/*) echo "" ;;
    esac
}
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
bad=0
for dir in sim/base sim/spec sim/cost sim/time sim/sweep sim/program sim/report runtime kernels \
    kernels/cpu; do
    ok=$(allowed "$dir")
    for f in "$dir"/*.c "$dir"/*.h "$dir"/*.cu; do
        [ -f "$f" ] || continue
        grep -n '#include "[a-z]*/' "$f" | while IFS= read -r line; do
            layer=$(echo "$line" | sed 's/.*#include "\([a-z]*\)\/.*/\1/')
            case " $ok " in
            *" $layer "*) ;;
            *) echo "$f:${line%%:*}: includes $layer/, which $dir may not (allowed: ${ok:-none})" ;;
            esac
        done
    done
done >"$out"
if [ -s "$out" ]; then cat "$out"; bad=1; fi
[ "$bad" = 0 ] && echo "layers: every include respects the layers"
exit "$bad"
