#!/bin/sh
# bench/kvcache_extend.sh [QUESTIONS] - a document computed once and reused:
# SmolLM2-135M-Instruct answers QUESTIONS (default 3) questions about
# tests/model/gguf/prompt.txt (about 560 tokens), each answer 16 greedy
# tokens, (a) recomputing document + question every time, (b) with the
# document's cache saved once (kvcache --save) and each question run on top
# of it (kvcache --load --extend).  Prints the seconds of each and the
# answers' agreement; bench/results/kvcache_extend.txt keeps a run.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
n=${1:-3}
m=smollm2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ak-extend.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
doc=tests/model/gguf/prompt.txt
set -- "When did Gutenberg develop his system?" "What alloy did he use?" \
       "How many books had been printed by 1500?" "Where was the Jikji printed?"
now() { python3 -c 'import time; print(time.time())'; }
i=0
for q in "$@"; do
    [ "$i" -lt "$n" ] || break
    printf '\nQuestion: %s\nAnswer:' "$q" >"$tmp/q$i.txt"
    cat "$doc" "$tmp/q$i.txt" >"$tmp/full$i.txt"
    tokenize -m $m --no-special "$tmp/full$i.txt" >"$tmp/full$i.ak"
    i=$((i + 1))
done
tokenize -m $m --no-special "$doc" >"$tmp/doc.ak"
t0=$(now)
i=0
while [ "$i" -lt "$n" ]; do
    kvcache -m $m --generate 16 "$tmp/full$i.ak" | decode -m $m --generated >"$tmp/a_full$i"
    i=$((i + 1))
done
t1=$(now)
kvcache -m $m --save "$tmp/doc.kv" "$tmp/doc.ak" >/dev/null
t2=$(now)
i=0
while [ "$i" -lt "$n" ]; do
    # the question's tokens alone: the document's tokenization ends where
    # the question's begins (a newline), so ids match the whole text's
    python3 - "$tmp/full$i.ak" "$tmp/doc.ak" >"$tmp/qids$i.ak" <<'PY'
import sys
sys.path.insert(0, "tests/py")
import akstream as s
full = list(s.docs_of(open(sys.argv[1], "rb").read()).values())[0]["tokens"]
doc = list(s.docs_of(open(sys.argv[2], "rb").read()).values())[0]["tokens"]
assert list(full[:len(doc)]) == list(doc), "the question changes the document's last token"
sys.stdout.buffer.write(s.pack_stream([s.doc("q", [s.tensor("tokens", full[len(doc):])])]))
PY
    kvcache -m $m --load "$tmp/doc.kv" --extend --generate 16 "$tmp/qids$i.ak" |
        decode -m $m --generated >"$tmp/a_ext$i"
    i=$((i + 1))
done
t3=$(now)
same=0
i=0
while [ "$i" -lt "$n" ]; do
    cmp -s "$tmp/a_full$i" "$tmp/a_ext$i" && same=$((same + 1))
    i=$((i + 1))
done
python3 - "$t0" "$t1" "$t2" "$t3" "$n" "$same" "$(stat -c %s "$tmp/doc.kv")" "$(python3 -c "
import sys; sys.path.insert(0, 'tests/py'); import akstream as s
print(len(list(s.docs_of(open('$tmp/doc.ak', 'rb').read()).values())[0]['tokens']))")" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
n, same, size, ntok = map(int, sys.argv[5:9])
print("# %d questions on a %d-token document, 16 greedy tokens each (SmolLM2-135M-Instruct Q4_1)" % (n, ntok))
print("recompute_s\t%.2f" % (t1 - t0))
print("save_once_s\t%.2f" % (t2 - t1))
print("extend_s\t%.2f" % (t3 - t2))
print("saving\t%.1fx (save included), %.1fx (questions alone)" % ((t1 - t0) / (t3 - t1), (t1 - t0) / (t3 - t2)))
print("cache_bytes\t%d (%.0f per token)" % (size, size / ntok))
print("same_answers\t%d of %d" % (same, n))
PY
