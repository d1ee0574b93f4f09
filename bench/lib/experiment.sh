# bench/lib/experiment.sh — what the experiment scripts (bench/quant/run.sh,
# bench/distill/run.sh) share; sourced, not run. Each function is used by both.
#
#   split_corpus DIR WORK    concatenate the regular files of DIR (the fortunes:
#                            *.dat indexes, dot files and symbolic links left out)
#                            in byte order of their names, as `parasim run` reads a
#                            directory (runtime/rt_data.c); the first 90% of the
#                            bytes become WORK/train.txt, the last 10% (a
#                            contiguous tail) WORK/heldout.txt. Prints one line.
#   json_num KEY FILE        the first number that follows "KEY": in FILE
#   doc_block FILE TAG BLOCK replace the lines between <!-- TAG:begin --> and
#                            <!-- TAG:end --> of FILE (the markers included) by the
#                            file BLOCK, or append BLOCK when the markers are
#                            missing; atomically (a temporary beside FILE, then mv)
#   machine_line             "Linux x86_64, 2 cores (CPU model)"
#   as_root_mpi              let mpirun run as root (the README's set-up does)
#   experiment_start NAME    what both scripts do first, with their $parasim, $corpus and
#                            $keep: check the binary, the corpus and mpirun (exit 2 with
#                            the reason), as_root_mpi, make $work ($WORK, or a new
#                            directory NAME.XXXXXX under TMPDIR, removed at exit unless
#                            --keep), start the clock of `elapsed` ("12 s"), and split the
#                            corpus into $train and $heldout

split_corpus() {
    _all=$2/corpus.txt
    : >"$_all"
    _files=0
    for _f in "$1"/*; do
        case ${_f##*/} in *.dat) continue ;; esac
        [ -f "$_f" ] && [ ! -L "$_f" ] || continue
        cat "$_f" >>"$_all"
        _files=$((_files + 1))
    done
    _total=$(wc -c <"$_all" | tr -d ' ')
    _held=$((_total / 10))
    head -c $((_total - _held)) "$_all" >"$2/train.txt"
    tail -c "$_held" "$_all" >"$2/heldout.txt"
    rm -f "$_all"
    echo "corpus: $1, $_files files, $_total bytes: training $((_total - _held)) bytes, held out the last $_held"
}

json_num() {
    sed -n 's/.*"'"$1"'" *: *\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p' "$2" | head -1
}

doc_block() {
    _tmp=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX")
    if [ -f "$1" ] && grep -q "^<!-- $2:begin -->\$" "$1" && grep -q "^<!-- $2:end -->\$" "$1"; then
        awk -v block="$3" -v b="<!-- $2:begin -->" -v e="<!-- $2:end -->" '
            $0 == b { while ((getline l < block) > 0) print l; skip = 1; next }
            $0 == e { skip = 0; next }
            !skip { print }' "$1" >"$_tmp"
    else
        { [ -f "$1" ] && cat "$1" && echo; cat "$3"; } >"$_tmp"
    fi
    chmod 644 "$_tmp"
    mv "$_tmp" "$1"
}

machine_line() {
    _m="$(uname -sm), $(nproc) cores"
    _cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
    [ -n "$_cpu" ] && _m="$_m ($_cpu)"
    echo "$_m"
}

as_root_mpi() {
    if [ "$(id -u)" = 0 ]; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
    fi
}

experiment_start() {
    [ -x "$parasim" ] || { echo "run.sh: no $parasim (build first: ninja -C build)" >&2; exit 2; }
    [ -d "$corpus" ] || { echo "run.sh: no corpus directory $corpus (Debian package fortunes)" >&2; exit 2; }
    command -v mpirun >/dev/null || { echo "run.sh: mpirun not found" >&2; exit 2; }
    as_root_mpi
    work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")}
    mkdir -p "$work"
    trap '[ "$keep" = 0 ] && [ -z "${WORK:-}" ] && rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM
    start=$(date +%s)
    split_corpus "$corpus" "$work"
    train=$work/train.txt heldout=$work/heldout.txt
}

elapsed() { echo "$(($(date +%s) - start)) s"; }
