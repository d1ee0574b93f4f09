#!/bin/sh
# vs_torch.sh — the CPU runtime's training-step time against PyTorch's, same
# model, same batch, same thread count.
#
# usage: sh bench/vs_torch.sh BUILD_DIR [THREADS] [ROUNDS]
#
#   BUILD_DIR  a meson build directory holding parasim (ninja -C BUILD_DIR parasim)
#   THREADS    compute threads for both sides (default: all online cores)
#   ROUNDS     rounds, each running parasim and PyTorch once (default 3)
#
# environment: STEPS (timed steps per run, default 10), WARMUP (untimed steps
# per run before them, default 2), PLAN (default plans/tiny-10m-cpu.yaml),
# PYTHON (default /usr/bin/python3; it must have torch).
#
# The model shape and the batch are not written here: `parasim plan --format
# json` resolves them from the plan (batch: plans/tiny-10m-cpu.yaml) and its
# model (models/tiny-10m.yaml), and they are passed to bench/torch_step.py;
# the two sides' parameter counts and tokens per step are checked to agree.
#
# Each round runs both sides (the first side alternates between rounds, so a
# drift in machine load hits both alike), each a fresh process doing
# WARMUP + STEPS full steps (forward, backward, AdamW) of which the first
# WARMUP are not counted: parasim's step 1 allocates the optimizer states, as
# torch's first step does (torch_step.py --warmup). A side's time in a round
# is the median of its STEPS timed steps; the result is the median over the
# rounds. ratio = parasim ms / torch ms: <= 1.0 means parasim is at least as
# fast. Needs torch (python3-torch), which CI does not install: the bench is
# run by hand. Both sides use the system OpenBLAS; OMP_NUM_THREADS and
# OPENBLAS_NUM_THREADS are set to THREADS for both, and OMP_WAIT_POLICY to
# PASSIVE unless set: torch runs its elementwise ops in OpenMP and its GEMMs
# in OpenBLAS's own pthread pool, and with OpenMP's default spin-wait its idle
# OpenMP threads take the cores from the GEMM threads (Debian torch 1.13 on 2
# cores: 2 threads ~1.9 s/step, slower than 1 thread; PASSIVE ~1.0 s). parasim
# measured the same either way.
set -eu

usage() {
    echo "usage: sh bench/vs_torch.sh BUILD_DIR [THREADS] [ROUNDS]" >&2
    exit 2
}
die() {
    echo "vs_torch.sh: $*" >&2
    exit 1
}
is_count() {
    case $1 in '' | *[!0-9]* | 0*) return 1 ;; *) return 0 ;; esac
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
BUILD=$1
CORES=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
THREADS=${2:-$CORES}
ROUNDS=${3:-3}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
is_count "$THREADS" || die "THREADS: expected a positive integer, found \"$THREADS\""
is_count "$ROUNDS" || die "ROUNDS: expected a positive integer, found \"$ROUNDS\""
is_count "$STEPS" || die "STEPS: expected a positive integer, found \"$STEPS\""
is_count "$WARMUP" || die "WARMUP: expected a positive integer (parasim's step 1 allocates the optimizer states), found \"$WARMUP\""

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARASIM=$BUILD/parasim
[ -x "$PARASIM" ] || die "$PARASIM: not found or not executable (build it: ninja -C $BUILD parasim)"
PARASIM=$(cd "$(dirname "$PARASIM")" && pwd)/parasim
PLAN=${PLAN:-plans/tiny-10m-cpu.yaml}
PY=${PYTHON:-/usr/bin/python3}
command -v "$PY" >/dev/null 2>&1 || die "$PY: no such Python (set PYTHON)"
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    die "PyTorch is not installed for $PY (the baseline needs it: apt-get install python3-torch, or set PYTHON to a Python that has torch); nothing was measured"
fi

# single rank: no mpirun; Open MPI refuses root unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vs_torch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

cd "$ROOT"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# the model shape and batch, as parasim reads them
"$PARASIM" plan "$PLAN" --format json -o "$TMP/plan.json" >"$TMP/plan.log" 2>&1 ||
    { cat "$TMP/plan.log" >&2; die "parasim plan $PLAN failed"; }
SHAPE=$("$PY" - "$TMP/plan.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
m, b, p = d["model"], d["plan"]["batch"], d["plan"]
bad = []
if p["gpus"] != 1: bad.append("gpus %d (need 1)" % p["gpus"])
if b["micro"] != b["global"]: bad.append("micro %d != global %d" % (b["micro"], b["global"]))
if m["tied_embeddings"] or m["norm"] != "rmsnorm" or m["mlp"] != "swiglu" or m["position"] != "rope":
    bad.append("not the Llama shape torch_step.py builds")
if m["head_dim"] * m["heads"] != m["hidden"]: bad.append("head_dim * heads != hidden")
if bad: sys.exit("plan: " + "; ".join(bad))
print(m["layers"], m["hidden"], m["heads"], m["kv_heads"], m["ffn_hidden"], m["vocab"],
      b["global"], b["seq"], m["params"], m["name"])
EOF
) || die "$PLAN: cannot compare it with bench/torch_step.py"
# shellcheck disable=SC2086 # split the fields on purpose (numbers and a name)
set -- $SHAPE
L=$1 H=$2 NH=$3 KV=$4 F=$5 V=$6 B=$7 S=$8 NPARAM=$9
shift 9
MODEL=$1

run_parasim() { # round
    out=$TMP/parasim.$1.json
    if ! "$PARASIM" run "$PLAN" --backend cpu --threads "$THREADS" --steps $((WARMUP + STEPS)) \
        --quiet -o "$out" >"$TMP/parasim.$1.log" 2>&1; then
        tail -n 20 "$TMP/parasim.$1.log" >&2
        die "parasim run failed (round $1)"
    fi
}
run_torch() { # round
    if ! "$PY" bench/torch_step.py --layers "$L" --hidden "$H" --heads "$NH" --kv-heads "$KV" \
        --ffn "$F" --vocab "$V" --batch "$B" --seq "$S" --threads "$THREADS" --steps "$STEPS" \
        --warmup "$WARMUP" --json >"$TMP/torch.$1.log" 2>&1; then
        tail -n 20 "$TMP/torch.$1.log" >&2
        die "bench/torch_step.py failed (round $1)"
    fi
    tail -n 1 "$TMP/torch.$1.log" >"$TMP/torch.$1.json"
}

echo "vs_torch.sh: $ROUNDS round(s) x (parasim + torch), $THREADS thread(s), $WARMUP + $STEPS steps each; load average $LOAD" >&2
r=1
while [ "$r" -le "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 1 ]; then
        run_parasim "$r"
        run_torch "$r"
    else
        run_torch "$r"
        run_parasim "$r"
    fi
    echo "vs_torch.sh: round $r of $ROUNDS done" >&2
    r=$((r + 1))
done

"$PY" - "$TMP" "$ROUNDS" "$WARMUP" "$STEPS" "$THREADS" "$NPARAM" "$PLAN" "$MODEL" "$LOAD" \
    "$PARASIM" "$CORES" "$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo '?')" <<'EOF'
import json, os, statistics, sys
tmp, rounds, warmup, steps, threads, nparam, plan, model, load, parasim, cores, blaslib = sys.argv[1:]
rounds, warmup, steps, threads, nparam = int(rounds), int(warmup), int(steps), int(threads), int(nparam)
rows = []
for r in range(1, rounds + 1):
    p = json.load(open(os.path.join(tmp, "parasim.%d.json" % r)))
    t = json.load(open(os.path.join(tmp, "torch.%d.json" % r)))
    secs = [s["seconds"] for s in p["steps"][warmup:]]
    if len(secs) != steps:
        sys.exit("vs_torch.sh: round %d: parasim recorded %d timed steps, expected %d" % (r, len(secs), steps))
    if t["params"] != nparam:
        sys.exit("vs_torch.sh: torch's model has %d parameters, parasim's %d: not the same model"
                 % (t["params"], nparam))
    c = t["config"]
    tok = c["batch"] * c["seq"]
    if tok != p["tokens_per_step"]:
        sys.exit("vs_torch.sh: tokens per step differ: parasim %g, torch %d" % (p["tokens_per_step"], tok))
    rows.append((r, statistics.median(secs) * 1e3, t["step_ms_median"], p["threads_per_rank"], t))
t = rows[-1][4]
c = t["config"]
tok = c["batch"] * c["seq"]
pm = statistics.median(x[1] for x in rows)
tm = statistics.median(x[2] for x in rows)
print("# parasim vs PyTorch: one training step (forward + backward + AdamW), fp32, CPU, single process")
print("# plan %s: model %s L=%d h=%d H=%d KVH=%d D=%d f=%d V=%d, %d params; batch %d x seq %d = %d tokens/step"
      % (plan, model, c["layers"], c["hidden"], c["heads"], c["kv_heads"], c["head_dim"], c["ffn"],
         c["vocab"], nparam, c["batch"], c["seq"], tok))
print("# parasim: %s run --threads %d (threads_per_rank %d)" % (parasim, threads, rows[-1][3]))
print("# torch %s: torch.get_num_threads() %d; attention %s" % (t["torch_version"], t["threads"], t["attention"]))
print("# both: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=%d, OMP_WAIT_POLICY=%s; %s cores online;"
      " BLAS %s (torch: %s)" % (threads, os.environ.get("OMP_WAIT_POLICY", "?"), cores, blaslib, t["blas"]))
print("# %d round(s), sides alternating; per run %d timed steps after %d warm-up (parasim: steps 1..%d"
      " ignored; torch: --warmup %d); load average at start %s" % (rounds, steps, warmup, warmup, warmup, load))
print("# ms/step: median of the run's timed steps; last row: median over rounds")
print("#")
print("# %6s %7s %12s %12s %8s %14s %14s" % ("round", "threads", "parasim", "torch", "ratio", "parasim", "torch"))
print("# %6s %7s %12s %12s %8s %14s %14s" % ("", "", "(ms/step)", "(ms/step)", "(p/t)", "(tokens/s)", "(tokens/s)"))
for r, p, tt, _, _ in rows:
    print("  %6d %7d %12.1f %12.1f %8.3f %14.0f %14.0f" % (r, threads, p, tt, p / tt, tok / p * 1e3, tok / tt * 1e3))
print("  %6s %7d %12.1f %12.1f %8.3f %14.0f %14.0f" % ("median", threads, pm, tm, pm / tm, tok / pm * 1e3, tok / tm * 1e3))
print("# ratio = parasim ms / torch ms: %.3f (%s)" % (pm / tm, "parasim at least as fast" if pm <= tm
      else "parasim %.2fx slower" % (pm / tm)))
EOF
