#!/bin/sh
# run.sh — calibrate this machine, run the standing accuracy suite on it, and regenerate
# docs/accuracy-local.md (tables) and docs/accuracy-local-memory.png (the strategy figure);
# never edit those by hand (docs/runtime.md §9a).
#
#   1. mpirun -np 2 parasim calibrate --plan plans/tiny-1m-cpu.yaml --set batch.seq=128
#      --gpus-per-node 4 -o OUT/cluster.yaml: the kernels at the suite's model and micro-batch
#      (one rank's, no parallelism: the cases split it by tp, cp, ep and pp themselves); 4:
#      the 4-rank cases run oversubscribed on 2 cores, their times reported, not held to the
#      model
#   2. every line of bench/validate/suite.txt: mpirun -np RANKS parasim validate PLAN
#      --set cluster=OUT/cluster.yaml ... (peak memory per rank, bytes per collective,
#      step time and op kinds, measured against predicted), at 4 x 128 tokens a micro-batch
#   3. memory per device of tiny-10m under DP, ZeRO-1/2/3, TP and PP on 1, 2 and 4 ranks,
#      predicted and measured (the ZeRO paper's figure; TP stops at 2: 2 kv heads)
#   4. bench/validate/report.py writes the document from OUT's CSVs, gnuplot the figure
#
# usage: sh bench/validate/run.sh [BUILD_DIR] [--dry-run]
#   --dry-run: check every suite line and figure point with `parasim plan` (valid plans, the
#   right rank counts) and print the commands, running nothing (the meson test
#   validate_suite does this)
# Takes about 4 minutes on the 2-core VM; run it on idle cores (other load inflates the
# measured times). OUT is bench/validate/out/ (git-ignored).
set -u
cd "$(dirname "$0")/../.." || exit 2
B=build
DRY=0
for a in "$@"; do
    case $a in
    --dry-run) DRY=1 ;;
    -*) echo "usage: sh bench/validate/run.sh [BUILD_DIR] [--dry-run]"; exit 2 ;;
    *) B=$a ;;
    esac
done
P=$B/parasim
[ -x "$P" ] || { echo "run.sh: no $P (build first: ninja -C $B)"; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OUT=bench/validate/out
# overlap.dp false: the CPU runtime's data-parallel collectives are blocking MPI calls (no
# collective runs beside compute), as overlap.pp false says its receives copy on the receiver
COMMON="--set batch.seq=128 --set overlap.dp=false"
failed=0

# one case: NAME RANKS PLAN SETS...
case_run() {
    name=$1 np=$2 plan=$3
    shift 3
    if [ $DRY = 1 ]; then
        "$P" plan "$plan" $COMMON "$@" >/dev/null 2>"$T/err" ||
            { echo "$name: not a valid plan:"; cat "$T/err"; failed=1; return; }
        gpus=$("$P" plan "$plan" $COMMON "$@" --format json | python3 -c \
            'import json, sys; print(json.load(sys.stdin)["plan"]["gpus"])')
        [ "$gpus" = "$np" ] || { echo "$name: the plan has $gpus GPUs, the line says $np"; failed=1; }
        echo "mpirun -np $np $P validate $plan --set cluster=$OUT/cluster.yaml $COMMON $*"
        return
    fi
    mkdir -p "$OUT/$name"
    mpirun -np "$np" --oversubscribe "$P" validate "$plan" --set cluster="$OUT/cluster.yaml" \
        $COMMON "$@" --out-dir "$OUT/$name" --csv "$OUT/$name/result.csv" >"$OUT/$name/log.txt" 2>&1
    rc=$?
    sed -n '/^plan  *ranks/{n;p}' "$OUT/$name/log.txt" | sed "s/^[^ ]*/$name/"
    [ $rc -le 1 ] || failed=1 # 1: over a tolerance (the report shows it); more: broken
}

T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
if [ $DRY = 0 ]; then
    rm -rf "$OUT" && mkdir -p "$OUT" || exit 2
    echo "== calibrate (2 ranks)"
    mpirun -np 2 --oversubscribe "$P" calibrate --plan plans/tiny-1m-cpu.yaml \
        --set batch.seq=128 --gpus-per-node 4 -o "$OUT/cluster.yaml" \
        >"$OUT/calibrate.txt" 2>&1 ||
        { cat "$OUT/calibrate.txt"; exit 1; }
    tail -1 "$OUT/calibrate.txt"
fi

echo "== the suite (bench/validate/suite.txt)"
grep -v '^#' bench/validate/suite.txt | grep -v '^ *$' >"$T/suite"
while read -r name np plan rest; do
    # shellcheck disable=SC2086 # the overrides split into words
    case_run "$name" "$np" "$plan" $rest </dev/null
done <"$T/suite"

echo "== memory per device by strategy (tiny-10m, 1 x 64 tokens a micro-batch)"
F="--set model=tiny-10m --set batch.micro=1 --set batch.seq=64 --set train.data=synthetic --set overlap.dp=false"
for n in 1 2 4; do
    for s in dp zero1 zero2 zero3 tp pp; do
        [ $n = 1 ] && [ $s != dp ] && continue # one rank: every strategy is the same
        [ $n = 4 ] && [ $s = tp ] && continue  # tiny-10m has 2 kv heads
        case $s in
        dp) set -- --set parallel.dp=$n --set parallel.zero=0 --set batch.global=$n ;;
        zero*) set -- --set parallel.dp=$n --set parallel.zero=${s#zero} --set batch.global=$n ;;
        tp) set -- --set parallel.dp=1 --set parallel.tp=$n --set parallel.zero=0 --set batch.global=1 ;;
        pp) set -- --set parallel.dp=1 --set parallel.pp=$n --set parallel.zero=0 --set batch.global=$n
            [ $n = 4 ] && set -- "$@" --set "pipeline.layers=[2,2,1,1]" ;;
        esac
        COMMON_SAVE=$COMMON
        COMMON=""
        case_run "fig-$s-$n" "$n" plans/tiny-10m-cpu.yaml --set gpus=$n $F "$@"
        COMMON=$COMMON_SAVE
    done
done

if [ $DRY = 1 ]; then
    [ $failed = 0 ] && echo "run.sh --dry-run: every case is a valid plan"
    exit $failed
fi
echo "== docs/accuracy-local.md"
python3 bench/validate/report.py "$OUT" docs/accuracy-local.md docs/accuracy-local-memory || failed=1
exit $failed
