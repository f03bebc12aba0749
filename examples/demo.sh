#!/bin/sh
# examples/demo.sh BIN MODEL - the main job on the default model: which parts
# of a prompt does the model use, and what is left after pruning half of it.
set -eu
bin=$1 model=$2
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$bin:$PATH" ATTNKIT_MODEL="$model"
prompt="$here/prompt.txt"
have() { [ -x "$bin/$1" ]; }

echo "== prompt ($prompt)"
cat "$prompt"
if have tokenize && have embed && have attend && have entropy && have prune && have decode; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    echo
    echo "== tokenize | embed | attend | entropy --by block   (all-MiniLM-L6-v2, CPU)"
    tokenize --segments paragraph "$prompt" | embed | attend | entropy > "$tmp/scored.ak"
    entropy --by block --format tsv < "$tmp/scored.ak"
    echo
    echo "== prune --keep 0.5 --unit block --protect last | decode --mark"
    prune --keep 0.5 --unit block --protect last < "$tmp/scored.ak" > "$tmp/pruned.ak"
    decode --mark < "$tmp/pruned.ak"
    echo
    echo "== the stream, for a human (peek)"
    peek -n 6 "$tmp/pruned.ak"
else
    echo "(the model programs are not built yet: showing a stream round trip)"
    peek "$here/../formats/vectors/all-dtypes.ak"
fi
