#!/bin/sh
# bench/tokenize_memory.sh [MB] - tokenize's peak memory against its input:
# one document of MB megabytes (default 20) of generated English-like prose
# with paragraphs, tokenized by all-MiniLM-L6-v2 (WordPiece; $ATTNKIT_MODEL
# overrides) as it is and
# with --lossy after one byte in 997 was made invalid UTF-8.  Peak resident
# memory from /usr/bin/time -v, as a multiple of the input and of the
# stream written.  Writes bench/results/tokenize_memory.txt.
#
# What the peak holds: the text once (read, then moved into the document),
# 29 bytes per token (ids, offsets, segments, special, types: also moved,
# not copied, into the document and written to the file without a second
# copy), and the normalizer's buffers for one 1 MiB chunk (BERT-style
# tokenizers are normalized chunk by chunk).  At about one token per 4
# bytes of English that is ~8x the input plus the model's tokenizer.
set -eu
cd "$(dirname "$0")/.."
mb=${1:-20}
export PATH="$PWD/bin:$PATH" ATTNKIT_MODEL="${ATTNKIT_MODEL:-minilm}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/akmem.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$mb" "$tmp" <<'PY'
import random, sys
mb, d = int(sys.argv[1]), sys.argv[2]
random.seed(1)
words = ("the quick brown fox jumps over a lazy dog while attention entropy tells which parts "
         "of the prompt a transformer uses caf\u00e9 na\u00efve \u6771\u4eac \U0001f642").split()
out, n = [], 0
while n < mb * 1000000:
    s = " ".join(random.choice(words) for _ in range(12)) + ". "
    if random.random() < 0.1:
        s += "\n\n"
    out.append(s)
    n += len(s.encode())
b = "".join(out).encode()
open(d + "/text.txt", "wb").write(b)
bad = bytearray(b)
bad[::997] = b"\xff" * len(bad[::997])
open(d + "/bad.txt", "wb").write(bytes(bad))
PY
peak_kb() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident/ { gsub(/ /, "", $2); print $2 }'; }
in_bytes=$(wc -c <"$tmp/text.txt")
# the tokenizer alone: an empty document
base=$(peak_kb tokenize -o "$tmp/e.ak" /dev/null)
{
    echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores; tokenize of one ${mb} MB document, model $ATTNKIT_MODEL"
    printf '%-10s %12s %12s %10s %12s %10s\n' run input_bytes peak_kb peak/input stream_bytes stream/input
    for run in normal lossy; do
        if [ $run = normal ]; then f=$tmp/text.txt; set -- tokenize; else f=$tmp/bad.txt; set -- tokenize --lossy; fi
        kb=$(peak_kb "$@" -o "$tmp/o.ak" "$f")
        out=$(wc -c <"$tmp/o.ak")
        awk -v r=$run -v i="$in_bytes" -v k="$kb" -v o="$out" \
            'BEGIN { printf "%-10s %12d %12d %9.1fx %12d %9.1fx\n", r, i, k, k * 1024 / i, o, o / i }'
    done
    echo "tokenizer alone (empty document): ${base} kB"
} | tee bench/results/tokenize_memory.txt
