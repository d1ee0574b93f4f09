#!/bin/sh
# bench/lib/test_experiment.sh — the helpers of bench/lib/experiment.sh on made-up inputs:
# the corpus split (which files count, the 90/10 cut), json_num, and doc_block replacing
# the marked block or appending one. Run by meson (suite sim) from the repository root.
set -eu
. bench/lib/experiment.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "test_experiment: $*" >&2; exit 1; }

mkdir "$t/c" "$t/w"
printf 'AAAAAAAAAA' >"$t/c/b"          # 10 bytes
printf 'BBBBBBBBBBBBBBBBBBBB' >"$t/c/a" # 20 bytes, read first (byte order of names)
printf 'index' >"$t/c/a.dat"           # an index: left out
printf 'hidden' >"$t/c/.x"             # a dot file: left out by the glob
ln -s "$t/c/a" "$t/c/link"             # a symbolic link: left out
line=$(split_corpus "$t/c" "$t/w")
[ "$line" = "corpus: $t/c, 2 files, 30 bytes: training 27 bytes, held out the last 3" ] ||
    fail "split_corpus said \"$line\""
[ "$(cat "$t/w/train.txt")" = "BBBBBBBBBBBBBBBBBBBBAAAAAAA" ] || fail "train.txt is $(cat "$t/w/train.txt")"
[ "$(cat "$t/w/heldout.txt")" = "AAA" ] || fail "heldout.txt is $(cat "$t/w/heldout.txt")"
[ ! -e "$t/w/corpus.txt" ] || fail "the concatenation was left behind"

printf '{"kl": 1e-05, "perplexity": 9.25,\n "x": {"perplexity": 3}}\n' >"$t/j.json"
[ "$(json_num perplexity "$t/j.json")" = "9.25" ] || fail "json_num perplexity: $(json_num perplexity "$t/j.json")"
[ "$(json_num kl "$t/j.json")" = "1e-05" ] || fail "json_num kl"
[ -z "$(json_num missing "$t/j.json")" ] || fail "json_num of a missing key"

printf '# Doc\nbefore\n<!-- tbl:begin -->\nold 1\nold 2\n<!-- tbl:end -->\nafter\n' >"$t/doc.md"
printf '<!-- tbl:begin -->\nnew\n<!-- tbl:end -->\n' >"$t/block.md"
doc_block "$t/doc.md" tbl "$t/block.md"
[ "$(cat "$t/doc.md")" = "$(printf '# Doc\nbefore\n<!-- tbl:begin -->\nnew\n<!-- tbl:end -->\nafter')" ] ||
    fail "doc_block did not replace the block: $(cat "$t/doc.md")"
printf '# Other\n' >"$t/other.md"
doc_block "$t/other.md" tbl "$t/block.md"
[ "$(cat "$t/other.md")" = "$(printf '# Other\n\n<!-- tbl:begin -->\nnew\n<!-- tbl:end -->')" ] ||
    fail "doc_block did not append the block: $(cat "$t/other.md")"
[ "$(find "$t" -name '.*.md.*' | wc -l)" -eq 0 ] || fail "doc_block left a temporary"
[ "$(stat -c %a "$t/doc.md")" = 644 ] || fail "doc_block's file is not mode 644"
echo "test_experiment: ok"
