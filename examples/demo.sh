#!/bin/sh
# examples/demo.sh BIN - the main job on examples/prompt.txt: a causal model,
# Qwen2.5-Coder-0.5B-Instruct (-m qwen0.5b; $DEMO_MODEL overrides), answers
# the prompt's question from the full prompt, from the prompt pruned by
# attention and from an evicted cache, with what each cost; then the encoder
# all-MiniLM-L6-v2 (-m minilm): which paragraph it looks at and what is left
# after pruning half of it.
#
# Why qwen0.5b and not the programs' default model (SmolLM2-135M-Instruct):
# it is the smallest installed model that answers this prompt correctly, from
# the full prompt and from the attention-pruned one (measured: SmolLM2 and
# Gemma 3 270M name the Rhine or deny both rivers from the full prompt;
# Qwen2.5-Coder-0.5B and -1.5B name the Danube from both).
set -eu
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$bin:$PATH"
unset ATTNKIT_MODEL
lm=${DEMO_MODEL:-qwen0.5b}
prompt="$here/prompt.txt"
have() { [ -x "$bin/$1" ]; }

echo "== prompt ($prompt)"
cat "$prompt"
if have tokenize && have embed && have attend && have entropy && have prune && have decode; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    if have kvcache && tokenize -m "$lm" --chat "$prompt" >"$tmp/chat.ak" 2>/dev/null; then
        logp() { peek "$1" | sed -n 's/.*target_logprob=\([-0-9.e]*\).*/\1/p'; }
        kept() { peek "$1" | sed -n 's/.*kv_entries=\([0-9]*\) kv_entries_full=\([0-9]*\).*/\1 of \2/p'; }
        echo
        echo "== the prompt as a question to Qwen2.5-Coder-0.5B-Instruct (-m $lm)"
        echo "   (tokenize --chat | kvcache --generate 48 | decode --generated)"
        kvcache -m "$lm" --generate 48 "$tmp/chat.ak" | decode -m "$lm" --generated | sed 's/<|im_end|>$//' >"$tmp/answer.txt"
        cat "$tmp/answer.txt"; echo
        kvcache -m "$lm" --target "$tmp/answer.txt" "$tmp/chat.ak" >"$tmp/full.ak"
        n=$(peek "$tmp/full.ak" | sed -n 's/.*kv_tokens=\([0-9]*\).*/\1/p')
        echo "   cost: all $n tokens; log-likelihood of this answer $(logp "$tmp/full.ak") nats"
        echo
        # 0.6: the chat template's 29 tokens (Qwen's default system prompt)
        # are kept and count against the budget, and a paragraph goes whole
        echo "== the prompt pruned by attention (prune --keep 0.6 --unit block --protect last --policy query), then answered"
        tokenize -m "$lm" --chat --segments paragraph "$prompt" | embed -m "$lm" | attend -m "$lm" --probs all \
            | prune --keep 0.6 --unit block --protect last --policy query >"$tmp/pr.ak"
        decode -m "$lm" --mark "$tmp/pr.ak"; echo
        kvcache -m "$lm" --target "$tmp/answer.txt" --generate 48 "$tmp/pr.ak" >"$tmp/pra.ak"
        decode -m "$lm" --generated "$tmp/pra.ak" | sed 's/<|im_end|>$//'; echo
        echo "   cost: $(peek "$tmp/pra.ak" | sed -n 's/.*kv_tokens=\([0-9]*\).*/\1/p') of $n tokens kept;" \
             "log-likelihood of the full prompt's answer $(logp "$tmp/pra.ak") nats"
        echo
        echo "== the full prompt's cache evicted (kvcache --evict h2o --keep 0.5, the question protected), then answered"
        kvcache -m "$lm" --evict h2o --keep 0.5 --protect-regex 'Question:.*' --target "$tmp/answer.txt" \
            --generate 48 "$tmp/chat.ak" >"$tmp/ev.ak"
        decode -m "$lm" --generated "$tmp/ev.ak" | sed 's/<|im_end|>$//'; echo
        echo "   cost: $(kept "$tmp/ev.ak") cache entries kept;" \
             "log-likelihood of the full prompt's answer $(logp "$tmp/ev.ak") nats"
    fi
    m=minilm   # all-MiniLM-L6-v2, an encoder
    echo
    echo "== tokenize -m minilm | embed -m minilm | attend -m minilm | entropy: which paragraph does the encoder look at?"
    echo "   (all-MiniLM-L6-v2; --device auto: the GPU when there is one)"
    tokenize -m $m --segments paragraph "$prompt" | embed -m $m | attend -m $m --probs all | entropy > "$tmp/scored.ak"
    entropy --by block --format tsv < "$tmp/scored.ak"
    echo
    echo "== prune --keep 0.5 --unit block --protect last --policy mass | decode -m minilm --mark"
    echo "   (received attention mass over the whole prompt)"
    prune --keep 0.5 --unit block --protect last --policy mass < "$tmp/scored.ak" | decode -m $m --mark
    echo
    echo "== prune --keep 0.5 --unit block --protect last --policy query | decode -m minilm --mark"
    echo "   (mass received from the question, the last paragraph)"
    prune --keep 0.5 --unit block --protect last --policy query < "$tmp/scored.ak" > "$tmp/pruned.ak"
    decode -m $m --mark < "$tmp/pruned.ak"
    echo
    echo "== the stream, for a human (peek)"
    peek -n 6 "$tmp/pruned.ak"
else
    echo "(the model programs are not built yet: showing a stream round trip)"
    peek "$here/../formats/vectors/all-dtypes.ak"
fi
