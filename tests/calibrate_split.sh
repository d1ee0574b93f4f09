#!/bin/sh
# calibrate_split.sh — bench/calibrate's summary on a tiny synthetic file: every
# row is counted (a row that does not load is a failure, exit 1), the fitted and
# held-out sets and each family get the mean and max |error| of their own rows
# (recomputed here from --tsv), and fit_efficiency.py --lofo leaves a family out.
# usage: calibrate_split.sh CALIBRATE
set -eu
cal=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
m='model: {layers: 2, hidden: 256, heads: 4, vocab: 1024, seq: 512}'
row() { printf '  - name: %s\n    %s\n    %s\n    parallel: {dp: 8}\n    gpus: 8\n    global_batch: 16\n    recompute: %s\n    published: {step_time_s: %s}\n' "$1" "$2" "$m" "$3" "$4"; }
{
    printf 'cluster: dgx-a100\nuse: fit\nfamily: megatron-ptdp\ncases:\n'
    row a 'family: megatron-ptdp' none 0.01
    row b 'family: megatron-ptdp' none 0.02
    row c 'use: held_out' none 0.04
    row d 'family: nemo' none 0.03
    row e 'use: held_out' bogus 0.05
} > "$tmp/split.yaml"
rc=0
"$cal" "$tmp/split.yaml" > "$tmp/out" || rc=$?
[ $rc = 1 ] || { echo "expected exit 1 (a row failed), got $rc"; exit 1; }
"$cal" --tsv "$tmp/split.yaml" > "$tmp/tsv" || true
grep -q '^# all files: 5 rows, 1 failed to load$' "$tmp/out" || { cat "$tmp/out"; echo "row count"; exit 1; }
grep -q 'e .*FAILED TO LOAD: .*case.recompute' "$tmp/out" || { echo "failed row not printed"; exit 1; }
# expected mean/max |error| per (set, family) from the TSV rows, as calibrate prints them
awk -F'\t' 'NR > 1 && $6 == "ok" { e = $10 < 0 ? -$10 : $10
        k[$3 " (all)"] += e; n[$3 " (all)"]++; if (e > x[$3 " (all)"]) x[$3 " (all)"] = e
        k[$3 " " $4] += e; n[$3 " " $4]++; if (e > x[$3 " " $4]) x[$3 " " $4] = e }
    END { for (s in k) printf "%s %d %.1f%% %.1f%%\n", s, n[s], 100 * k[s] / n[s], 100 * x[s] }' \
    "$tmp/tsv" | sort > "$tmp/want"
grep -E '^# (fit|held_out) ' "$tmp/out" | awk '$5 != "-" { print $2, $3, $4, $5, $6 }' | sort > "$tmp/got"
# same sets, counts and figures (to the last printed digit: the TSV keeps 6 decimals)
paste -d' ' "$tmp/want" "$tmp/got" | tr -d '%' | awk '{ d1 = $4 - $9; d2 = $5 - $10
    if ($1 != $6 || $2 != $7 || $3 != $8 || d1 > 0.1 || d1 < -0.1 || d2 > 0.1 || d2 < -0.1) bad = 1 }
    END { exit bad }' || { diff "$tmp/want" "$tmp/got"; exit 1; }
[ "$(wc -l < "$tmp/got")" = 5 ] || { cat "$tmp/got"; echo "expected 5 set/family lines"; exit 1; }
grep -q '^# held_out  (all) .*(1 failed to load)$' "$tmp/out" || { echo "held-out failure not counted"; exit 1; }
# leave one family out: megatron-ptdp is refitted without its two rows (nemo's one row remains);
# nemo without its row leaves megatron-ptdp's two
python3 "$root/bench/fit_efficiency.py" --lofo "$(dirname "$cal")/.." "$tmp/split.yaml" > "$tmp/lofo"
grep -q '^megatron-ptdp	2	3	.*dgx-a100: e_max [0-9.]*, d_half [0-9.]* (1 rows)$' "$tmp/lofo" || { cat "$tmp/lofo"; exit 1; }
grep -q '^nemo	1	1	.*(2 rows)$' "$tmp/lofo" || { cat "$tmp/lofo"; exit 1; }
echo ok
