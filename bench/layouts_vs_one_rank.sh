#!/bin/sh
# layouts_vs_one_rank.sh — the 10-step loss curve of tests/data/run-tiny.yaml (4 layers) under
# tensor, sequence, context and pipeline parallelism and their combinations, against the
# one-rank run: prints the largest relative loss difference over the steps and each run's
# bytes per collective, measured and predicted (docs/runtime.md §3).
#
# usage: sh bench/layouts_vs_one_rank.sh [BUILD_DIR]   (default build; needs mpirun and python3)
cd "$(dirname "$0")/.." || exit 2
B=${1:-build}
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
S="--steps 10 --threads 1 --quiet --set model.layers=4"
run() { np=$1; name=$2; shift 2
  mpirun -np $np --oversubscribe ./$B/parasim run tests/data/run-tiny.yaml $S --set gpus=$np "$@" -o $T/$name.json >$T/$name.log 2>&1 || { echo "$name FAILED"; tail -3 $T/$name.log; return; }
  python3 - $T/ref.json $T/$name.json "$name" <<'PY'
import json,sys
a=[s["loss"] for s in json.load(open(sys.argv[1]))["steps"]]; b=[s["loss"] for s in json.load(open(sys.argv[2]))["steps"]]
print("%-34s max rel loss diff over 10 steps %.1e" % (sys.argv[3], max(abs(x-y)/x for x,y in zip(a,b))))
for c in json.load(open(sys.argv[2]))["collectives"]:
    print("    %-3s %-15s %5d calls %12d bytes measured %12d predicted" % (c["group"], c["coll"], c["calls"], c["bytes"], c["predicted_bytes"]))
PY
}
mpirun -np 1 ./$B/parasim run tests/data/run-tiny.yaml $S -o $T/ref.json >/dev/null 2>&1
run 2 tp2 --set parallel.tp=2
run 2 tp2-sp --set parallel.tp=2 --set parallel.sp=true
run 2 cp2 --set parallel.cp=2
run 2 pp2-afab --set parallel.pp=2 --set pipeline.schedule=afab
run 2 pp2-1f1b --set parallel.pp=2 --set pipeline.schedule=1f1b
run 2 pp2-zb --set parallel.pp=2 --set pipeline.schedule=zero-bubble
run 2 pp2-interleaved-v2 --set parallel.pp=2 --set pipeline.schedule=interleaved --set pipeline.virtual=2
run 4 dp2-tp2-zero3-sp --set parallel.dp=2 --set parallel.tp=2 --set parallel.zero=3 --set parallel.sp=true
run 8 dp2-tp2-pp2-zero1 --set parallel.dp=2 --set parallel.tp=2 --set parallel.pp=2 --set parallel.zero=1
run 8 tp2-pp2-cp2-zero1 --set parallel.tp=2 --set parallel.pp=2 --set parallel.cp=2 --set parallel.zero=1
run 2 tp2-bf16 --set parallel.tp=2 --set precision=bf16-mixed
