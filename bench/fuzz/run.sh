#!/bin/sh
# A long fuzzing campaign by hand (docs/security.md §4): RUNS executions
# (default 10 million) of each target, two targets at a time, with the same
# build, corpus, dictionary and limits as CI's short run (tools/fuzz.sh).
#   sh bench/fuzz/run.sh [RUNS] [TARGET...]
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-10000000}
[ $# -gt 0 ] && shift
# a new random seed each campaign (FUZZ_SEED=N to repeat one)
FUZZ_RUNS=$runs FUZZ_SEED=${FUZZ_SEED:-0} exec sh tools/fuzz.sh 0 "$@"
