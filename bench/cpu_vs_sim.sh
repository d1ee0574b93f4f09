#!/bin/sh
# Predicted vs measured step time of the CPU runtime (docs/runtime.md §9).
#
#   sh bench/cpu_vs_sim.sh BUILD_DIR [PLAN] [STEPS]
#
# Runs PLAN (default plans/tiny-1m-cpu.yaml, on synthetic tokens) with 1 and 2
# ranks and every ZeRO stage, one thread per rank (the local-cpu cluster spec
# describes one core per rank), and prints the median measured step time
# (steps 2..STEPS) next to the replay's prediction for the same program.
# nccl-tests style: header lines start with '#'.
set -eu
build=${1:?usage: sh bench/cpu_vs_sim.sh BUILD_DIR [PLAN] [STEPS]}
plan=${2:-plans/tiny-1m-cpu.yaml}
steps=${3:-6}
parasim=$build/parasim
[ -x "$parasim" ] || { echo "cpu_vs_sim: no $parasim (build first)" >&2; exit 1; }
cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# plan $plan, synthetic tokens, $steps steps, 1 thread per rank, $cores cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "# ranks  zero   measured(s)  predicted(s)   error"
for ranks in 1 2; do
    [ "$ranks" -le "$cores" ] || continue
    for zero in 0 1 2 3; do
        mpirun -np "$ranks" --oversubscribe "$parasim" run "$plan" --set gpus="$ranks" \
            --set parallel.dp="$ranks" --set parallel.zero="$zero" --set train.data=synthetic \
            --threads 1 --steps "$steps" --quiet -o "$tmp/p.json"
        python3 - "$tmp/p.json" "$ranks" "$zero" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
m = statistics.median(s["seconds"] for s in d["steps"][1:])
p = d["steps"][1]["predicted_seconds"]
print("%7s %5s %13.4f %13.4f %+7.1f%%" % (sys.argv[2], sys.argv[3], m, p, 100 * (p - m) / m))
PY
    done
done
