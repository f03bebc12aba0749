#!/bin/sh
# rag.sh OUT - the question-aware experiment: does pruning keep the passage
# that answers the question?
#
# For each passage i of passages.tsv, a prompt of four passage heads (their
# first 60 words: passage i and the three after it, cyclically), with passage
# i at position i mod 4, separated by '----' lines, then "Question: " and
# passage i's query.  tokenize --marker '----' makes each head a block and the
# question the last block; attend --probs all gives the query policy its
# probabilities.  Every policy prunes by block to keep 0.35 of the tokens
# (room for the question and about one passage), with the question
# protected, and a prompt counts as a hit when passage i's block survives.
# Writes OUT/rag.tsv: policy, seed, hits, prompts.
set -eu
# all-MiniLM-L6-v2, as rag.tsv was made (the programs' default is SmolLM2)
export ATTNKIT_MODEL="${ATTNKIT_MODEL:-minilm}"
out=$1
mkdir -p "$out/rag"
names=$(awk -F'\t' '!/^#/ && NF >= 5 {print $1}' passages.tsv)
n=$(echo "$names" | wc -l)
i=0
for name in $names; do
    [ -s "$out/prompts/$name.txt" ] || { echo "rag.sh: $out/prompts/$name.txt missing (run make first)" >&2; exit 1; }
done
for name in $names; do
    pos=$((i % 4))
    # the four heads in prompt order: slot s holds passage (i - pos + s) mod n
    : > "$out/rag/$name.txt"
    for s in 0 1 2 3; do
        k=$(( (i - pos + s + 4 * n) % n ))
        other=$(echo "$names" | sed -n "$((k + 1))p")
        [ $s -gt 0 ] && printf -- '----\n' >> "$out/rag/$name.txt"
        tr -s ' \n\t' '   ' < "$out/prompts/$other.txt" | awk '{for (w = 1; w <= 60 && w <= NF; w++) printf "%s%s", $w, (w < 60 && w < NF ? " " : ""); print ""}' >> "$out/rag/$name.txt"
    done
    printf -- '----\nQuestion: %s\n' "$(cat "$out/queries/$name.txt")" >> "$out/rag/$name.txt"
    echo "$name $pos" >> "$out/rag/answers.tmp"
    i=$((i + 1))
done
mv "$out/rag/answers.tmp" "$out/rag/answers"
for name in $names; do
    [ -s "$out/rag/$name.ak" ] ||
        { tokenize --marker '----' "$out/rag/$name.txt" | embed | attend --probs all > "$out/rag/$name.ak.tmp" &&
          mv "$out/rag/$name.ak.tmp" "$out/rag/$name.ak"; }
done
{
printf 'policy\tseed\thits\tprompts\tkept\n'
for cfg in query:1 mass:1 entropy:1 first:1 last:1 random:1 random:2 random:3; do
    policy=${cfg%:*} seed=${cfg#*:}
    hits=0 kept=0
    while read -r name pos; do
        seedopt=; [ "$policy" = random ] && seedopt="--seed $seed"
        prune --keep 0.35 --unit block --policy "$policy" $seedopt --protect last \
            "$out/rag/$name.ak" > "$out/rag/$name.$policy.$seed.pruned"
        if peek -f segments "$out/rag/$name.$policy.$seed.pruned" | tr ' ' '\n' | grep -qx "$pos"; then
            hits=$((hits + 1))
        fi
        k=$(peek -f keep "$out/rag/$name.$policy.$seed.pruned" | tr ' ' '\n' | awk '{s += $1} END {printf "%.4f", s / NR}')
        kept=$(echo "$kept $k" | awk '{print $1 + $2}')
    done < "$out/rag/answers"
    printf '%s\t%s\t%s\t%s\t%.3f\n' "$policy" "$seed" "$hits" "$n" "$(echo "$kept $n" | awk '{print $1 / $2}')"
done
} > "$out/rag.tsv.tmp"
mv "$out/rag.tsv.tmp" "$out/rag.tsv"
