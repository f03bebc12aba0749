#!/bin/sh
# attend through real pipes: options, pass-through, several documents, and
# the errors (wrong model for the stream, missing input, bad options).
. "$AK_TOP/tests/lib.sh"
B="$AK_TOP/tests/model/bert_tiny" G="$AK_TOP/tests/model/gpt2_tiny"

stream() { # "ids ids ..." per document (one argument each) -> stdout
    python3 -c '
import os, sys
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
import akstream as s, numpy as np
docs = [s.doc("d%d" % i, [s.tensor("tokens", np.array([int(x) for x in a.split()], np.int32))],
              {"source": "t%d" % i}) for i, a in enumerate(sys.argv[1:])]
sys.stdout.buffer.write(s.pack_stream(docs))
' "$@"
}
field() { peek -n -1 -f "$1" "$2"; }

stream "1 2 3 4 5" "7 8 9" "" >"$T/toks.ak"
ok "embed, three documents (one empty)" embed -m "$G" -o "$T/emb.ak" "$T/toks.ak"
ok "attend, three documents" attend -m "$G" -o "$T/att.ak" "$T/emb.ak"
is "tokens pass through attend" "$(field tokens "$T/att.ak" | tr '\n' '|')" "1 2 3 4 5|7 8 9||"
is "attn.visible of a causal model counts 1..T" "$(peek -n -1 -f attn.visible "$T/att.ak" | head -2 | tr '\n' '|')" \
   "1 2 3 4 5 1 2 3 4 5|1 2 3 1 2 3|"
peek -j "$T/att.ak" >"$T/att.json"
grep -q '"hidden"' "$T/att.json" && fail "attend consumes hidden" || pass "attend consumes hidden"
grep -q '"causal": *1' "$T/att.json" && pass "meta causal=1" || fail "meta causal=1"
grep -q '"program": *"attend"' "$T/att.json" && pass "history records attend" || fail "history records attend"
ok "entropy of the first query (one visible key) is 0" sh -c \
   "peek -n -1 -f attn.entropy '$T/att.ak' | head -1 | awk '{ exit (\$1 == 0 && \$6 == 0) ? 0 : 1 }'"
ok "received mass of a causal layer sums to T per head" sh -c \
   "peek -n -1 -f attn.mass '$T/att.ak' | head -1 | awk '{ s = 0; for (i = 1; i <= 5; i++) s += \$i; exit (s > 4.999 && s < 5.001) ? 0 : 1 }'"

cat "$T/emb.ak" "$T/emb.ak" | attend -m "$G" >"$T/cat.ak" 2>"$T/.err"
is "concatenated streams: six documents" "$(field tokens "$T/cat.ak" | wc -l | tr -d ' ')" 6

embed -m "$B" "$T/toks.ak" | attend -m "$B" --probs 1:0,2 >"$T/bert.ak"
is "bert: bidirectional visible counts" "$(peek -n -1 -f attn.visible "$T/bert.ak" | head -1)" "5 5 5 5 5 5 5 5 5 5"
is "--probs 1:0,2 keeps heads 0 and 2" "$(peek -n -1 -f attn.probs.1.heads "$T/bert.ak" | head -1)" "0 2"

rejects "--logits on a model without an LM head" attend attend -m "$B" --logits last "$T/emb.ak"
rejects "--logits with a bad value" attend attend -m "$G" --logits first "$T/emb.ak"
rejects "--probs layer out of range" attend attend -m "$G" --probs 2 "$T/emb.ak"
rejects "--probs head out of range" attend attend -m "$G" --probs 0:5 "$T/emb.ak"
rejects "--probs garbage" attend attend -m "$G" --probs 0:x "$T/emb.ak"
rejects "unknown option" attend attend --frobnicate "$T/emb.ak"
rejects "unknown device" attend attend -m "$G" --device tpu "$T/emb.ak"
rejects "unknown attention dtype" attend attend -m "$G" --attn-dtype f8 "$T/emb.ak"
# bf16 rounds q, k, v: entropies move a little, not a lot, and not at all in f32.
attend -m "$G" --attn-dtype bf16 "$T/emb.ak" | peek -n -1 -f attn.entropy >"$T/e16"
peek -n -1 -f attn.entropy "$T/att.ak" >"$T/e32"
ok "--attn-dtype bf16: entropies within 1e-2 of f32, and not all equal" python3 -c '
import sys
a = [float(x) for x in open(sys.argv[1]).read().split()]
b = [float(x) for x in open(sys.argv[2]).read().split()]
assert len(a) == len(b) > 0
d = max(abs(x - y) for x, y in zip(a, b))
assert d < 1e-2 and d > 0, d
' "$T/e16" "$T/e32"
rejects "stream embedded for another model" attend attend -m "$B" "$T/emb.ak"
rejects "no hidden (not embedded)" attend attend -m "$G" "$T/toks.ak"
rejects "missing model" attend attend -m "$T/none" "$T/emb.ak"
mkdir -p "$T/t5" && cp "$G/model.safetensors" "$T/t5/" &&
    sed 's/"model_type": "gpt2"/"model_type": "t5"/' "$G/config.json" >"$T/t5/config.json"
rejects "unknown architecture" attend attend -m "$T/t5" "$T/emb.ak"
head -c 100 "$T/emb.ak" >"$T/cut.ak"
rejects "truncated stream" attend attend -m "$G" "$T/cut.ak"
attend -h >"$T/help" && grep -q "^usage: attend" "$T/help" && pass "-h prints usage" || fail "-h prints usage"
embed -h >"$T/help" && grep -q "^usage: embed" "$T/help" && pass "embed -h prints usage" || fail "embed -h prints usage"
# the progress line: on stderr with --progress (or ATTNKIT_PROGRESS=1), ending
# with the run's count and rate; nothing when stderr is not a terminal; the
# statistics are the same either way
attend -m "$G" --progress -o "$T/att_p.ak" "$T/emb.ak" 2>"$T/prog.err"
is "attend --progress: exit 0" "$?" 0
tail -c 200 "$T/prog.err" | tr '\r' '\n' | grep -q '^attend: 8 tokens, [0-9.]* tokens/s' &&
    pass "attend --progress: the last line counts the 8 tokens of the three documents" ||
    fail "attend --progress: no final count in: $(tr '\r\033' '|^' <"$T/prog.err")"
is "attend --progress: the same statistics" \
   "$(peek -n -1 -f attn.entropy "$T/att_p.ak"; peek -n -1 -f attn.mass "$T/att_p.ak")" \
   "$(peek -n -1 -f attn.entropy "$T/att.ak"; peek -n -1 -f attn.mass "$T/att.ak")"
ATTNKIT_PROGRESS=1 attend -m "$G" -o "$T/att_e.ak" "$T/emb.ak" 2>"$T/prog_e.err"
grep -q 'tokens/s' "$T/prog_e.err" && pass "ATTNKIT_PROGRESS=1: the progress line" ||
    fail "ATTNKIT_PROGRESS=1: no progress line"
attend -m "$G" -o "$T/att_n.ak" "$T/emb.ak" 2>"$T/prog_n.err"
is "no progress line when stderr is a file" "$(wc -c <"$T/prog_n.err" | tr -d ' ')" 0
rejects "ATTNKIT_PROGRESS=2 is a usage error" attend env ATTNKIT_PROGRESS=2 attend -m "$G" "$T/emb.ak"

done_testing

