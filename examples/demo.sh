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
    echo "== tokenize | embed | attend | entropy: which paragraph does the model look at?"
    echo "   (all-MiniLM-L6-v2; --device auto: the GPU when there is one)"
    tokenize --segments paragraph "$prompt" | embed | attend --probs all | entropy > "$tmp/scored.ak"
    entropy --by block --format tsv < "$tmp/scored.ak"
    echo
    echo "== prune --keep 0.5 --unit block --protect last --policy mass | decode --mark"
    echo "   (received attention mass over the whole prompt)"
    prune --keep 0.5 --unit block --protect last --policy mass < "$tmp/scored.ak" | decode --mark
    echo
    echo "== prune --keep 0.5 --unit block --protect last --policy query | decode --mark"
    echo "   (mass received from the question, the last paragraph)"
    prune --keep 0.5 --unit block --protect last --policy query < "$tmp/scored.ak" > "$tmp/pruned.ak"
    decode --mark < "$tmp/pruned.ak"
    echo
    echo "== the stream, for a human (peek)"
    peek -n 6 "$tmp/pruned.ak"
else
    echo "(the model programs are not built yet: showing a stream round trip)"
    peek "$here/../formats/vectors/all-dtypes.ak"
fi
