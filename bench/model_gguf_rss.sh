#!/bin/sh
# bench/model_gguf_rss.sh [TOKENS] - peak resident memory of embed | attend
# on the two GGUF models against each file's size.  The weights stay
# quantized (memory-mapped, rows dequantized a tile at a time), so attend's
# peak should sit near the file size plus the activations for TOKENS
# (default 512) tokens.  Prints a table; bench/results/model_gguf_rss.txt
# keeps a run.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
n=${1:-512}
models=${ATTNKIT_MODELS_DIR:-$PWD/.cache/models}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ak-rss.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# n token ids from the fidelity prompt's, repeated (both vocabularies hold them)
python3 - "$n" >"$tmp/tokens" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/py")
import akstream as s
ids = np.load("tests/model/gguf/smollm2.npz")["ids"]
n = int(sys.argv[1])
ids = np.resize(ids, n).astype(np.int32)
sys.stdout.buffer.write(s.pack_stream([s.doc("d0", [s.tensor("tokens", ids)])]))
PY
rss() { # prog args... : peak RSS in MiB of the command, stdout to $tmp/out
    /usr/bin/time -f %M -o "$tmp/time" "$@" >"$tmp/out"
    echo $(( $(cat "$tmp/time") / 1024 ))
}
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores; $n tokens; ATTNKIT_THREADS=${ATTNKIT_THREADS:-all}"
# attend_MiB: statistics only; +logits_MiB: with --logits last, which reads
# the whole (tied) head, i.e. the embedding table as well
printf '%-34s %9s %9s %10s %8s %12s\n' model file_MiB embed_MiB attend_MiB attend_s +logits_MiB
for f in "$models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$models/gemma3/gemma-3-270m-q4_k_m.gguf"; do
    [ -f "$f" ] || { echo "# missing $f"; continue; }
    size=$(( $(stat -c %s "$f") / 1048576 ))
    e=$(rss embed -m "$f" "$tmp/tokens")
    cp "$tmp/out" "$tmp/hidden"
    start=$(date +%s.%N)
    a=$(rss attend -m "$f" "$tmp/hidden")
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    al=$(rss attend -m "$f" --logits last "$tmp/hidden")
    printf '%-34s %9s %9s %10s %8.2f %12s\n' "$(basename "$f")" "$size" "$e" "$a" "$secs" "$al"
done
