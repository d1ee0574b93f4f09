#!/bin/sh
# accuracy.sh — regenerate docs/accuracy.md (never edited by hand) from
# bench/accuracy/template.md and bench/calibrate + bench/fit_efficiency.py on
# every file in bench/published/. Deterministic; writes atomically.
#
# usage: sh bench/accuracy.sh [BUILD_DIR]          (default: build)
#        sh bench/accuracy.sh --check [BUILD_DIR]  exit 1 when docs/accuracy.md is not what the tree gives
set -eu
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
build=$(cd "${1:-build}" && pwd)
[ -x "$build/bench/calibrate" ] || { echo "accuracy.sh: no $build/bench/calibrate (build first)" >&2; exit 2; }
tmp=$(mktemp docs/.accuracy.md.XXXXXX)
trap 'rm -f "$tmp"' EXIT
python3 bench/accuracy/generate.py "$build" bench/accuracy/template.md > "$tmp"
if [ $check = 1 ]; then
    if cmp -s "$tmp" docs/accuracy.md; then exit 0; fi
    echo "accuracy.sh: docs/accuracy.md differs from what the tree gives; run sh bench/accuracy.sh" >&2
    diff -u docs/accuracy.md "$tmp" | head -40 >&2 || true
    exit 1
fi
chmod 644 "$tmp"
mv "$tmp" docs/accuracy.md
trap - EXIT
