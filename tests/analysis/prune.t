# prune on the command line: help, budgets, errors, protected spans.
# (Selection per policy is checked in tests/unit/prune.c and against numpy in
# tests/analysis/entropy_prune_test.py.)
. "$AK_TOP/tests/lib.sh"

# "[CLS] one two three. four five. Q: six? [SEP]", bidirectional, 1 layer, 1
# head; corrected mass lowest on the question.
python3 - "$T/s.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
text = b"one two three. four five. Q: six?"
offs = [[0, 0], [0, 3], [4, 7], [8, 14], [15, 19], [20, 25], [26, 28], [29, 33], [33, 33]]
T = len(offs)
mass = np.array([[[2, 1.5, 1.2, 1.1, 1.0, 0.9, 0.4, 0.4, 0.5]]], np.float32)
mass *= T / mass.sum()
ent = np.full((1, 1, T), 1.0, np.float32)
t = [ak.tensor("text", np.frombuffer(text, np.uint8)),
     ak.tensor("tokens", np.arange(T, dtype=np.int32)),
     ak.tensor("offsets", np.array(offs, np.int64)),
     ak.tensor("segments", np.array([-1, 0, 0, 0, 1, 1, 2, 2, -1], np.int32)),
     ak.tensor("special", np.array([1, 0, 0, 0, 0, 0, 0, 0, 1], np.uint8)),
     ak.tensor("attn.entropy", ent), ak.tensor("attn.mass", mass)]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("d", t)]))
PY

ok "prune -h exits 0" prune -h
grep -q '^usage: prune' "$T/.out" && pass "prune -h prints usage" || fail "prune -h prints usage"
rejects "no budget" prune prune "$T/s.ak"
rejects "ratio above 1" prune prune --keep 1.5 "$T/s.ak"
rejects "unknown policy" prune prune --keep .5 --policy best "$T/s.ak"
rejects "unknown unit" prune prune --keep .5 --unit letter "$T/s.ak"
rejects "bad --protect" prune prune --keep .5 --protect middle "$T/s.ak"
rejects "bad regex" prune prune --keep .5 --protect-regex '(' "$T/s.ak"
rejects "-m is not the marker" prune prune --keep .5 -m Q "$T/s.ak"
rejects "--recent without heavy" prune prune --keep .5 --recent 2 "$T/s.ak"
rejects "--seed without random" prune prune --keep .5 --seed 2 "$T/s.ak"
rejects "--layers with policy first" prune prune --keep .5 --policy first --layers 0 "$T/s.ak"
rejects "--agg with the score policy (entropy's scores)" prune sh -c \
    "entropy '$T/s.ak' | prune --keep .5 --agg max"
rejects "--no-protect-query with a query marker" prune prune --keep .5 --no-protect-query \
    --query-marker Q "$T/s.ak"
rejects "--count-with a missing tokenizer" prune prune --keep .5 --count-with "$T/none" "$T/s.ak"
rejects "query policy without probabilities" prune prune --keep .5 --policy query "$T/s.ak"
rejects "score policy without entropy's scores" prune prune --keep .5 --policy score "$T/s.ak"
rejects "not a stream" prune sh -c "echo hi | prune --keep .5"

# keep 5 of 9: CLS, SEP + the three best (one two three), the question not protected
is "mass keeps the heaviest" "$(prune --keep 0.55 --no-protect-query "$T/s.ak" | peek -f keep)" \
    "1 1 1 1 0 0 0 0 1"
is "dropped spans" "$(prune --keep 0.55 --no-protect-query "$T/s.ak" | peek -f dropped)" "15 33"
# by default the question (the last block) is kept: CLS, SEP, Q: six? + one
is "the question is protected by default" "$(prune --keep 0.55 "$T/s.ak" | peek -f keep)" \
    "1 1 0 0 0 0 1 1 1"
is "--query-marker names the protected span" \
    "$(prune --keep 0.55 --query-marker four "$T/s.ak" | peek -f keep)" "1 1 0 0 1 1 0 0 1"
is "text unchanged" "$(prune --keep 0.55 "$T/s.ak" | peek -f text)" "$(peek -f text "$T/s.ak")"
for p in mass entropy heavy random first last; do
    for u in token sentence block; do
        got=$(prune --keep 0.55 --policy $p --unit $u --protect last "$T/s.ak" | peek -f keep |
              cut -d' ' -f7,8)
        is "--protect last survives $p/$u" "$got" "1 1"
        got=$(prune --keep 0.3 --policy $p --unit $u --protect-marker 'Q:' "$T/s.ak" | peek -f keep |
              cut -d' ' -f7,8)
        is "--protect-marker survives $p/$u" "$got" "1 1"
    done
done
got=$(entropy "$T/s.ak" | prune --keep 0.3 --no-protect-query --protect-regex 'six' | peek -f keep)
is "score (default after entropy) with a regex" "$got" "1 0 0 0 0 0 0 1 1"
got=$(prune --max-tokens 4 --policy first --no-protect-query "$T/s.ak" | peek -f tokens)
is "--max-tokens 4 first" "$got" "0 1 2 8"
prune --keep .5 "$T/s.ak" | peek | grep -q 'attn\.' && fail "attention tensors removed" ||
    pass "attention tensors removed"
# pruning a pruned document composes the keep mask
got=$(prune --keep 0.8 --policy first --no-protect-query "$T/s.ak" |
      prune --keep 0.5 --policy last --no-protect-query | peek -f keep)
is "second prune: keep over the original tokens" "$got" "1 0 0 0 1 1 0 0 1"
is "full.tokens keeps the tokens before the first prune" \
    "$(prune --keep 0.8 --policy first "$T/s.ak" | prune --keep 0.5 --policy last | peek -f full.tokens)" \
    "0 1 2 3 4 5 6 7 8"

# ---- honest budgets: the achieved ratio in meta and on stderr ----
# blocks of 3, 2, 2 tokens + 2 specials; budget round(0.7 * 9) = 6: blocks are
# taken whole in ranking order (mass ranks the 3-token block first), so
# 2 + 3 + one 2-token block = 7 does not fit and 5 are kept
prune --keep 0.7 --unit block --no-protect-query -v "$T/s.ak" 2>"$T/v.err" | peek >"$T/v.out"
grep -q 'prune_budget=6 prune_kept=5 prune_total=9 prune_ratio=0.5555' "$T/v.out" &&
    pass "meta: budget, kept, total, ratio" || fail "meta: $(grep meta "$T/v.out")"
# ... and the kept block: block 0, the 3-token one
is "-v: one line on stderr" "$(cat "$T/v.err")" "prune: d: budget 6, kept 5 of 9 (0.5556), greedy; blocks kept 0"
# the knapsack: budget 5 = 2 specials + 3; the best block (3 tokens) fits exactly
got=$(prune --max-tokens 5 --unit block --no-protect-query "$T/s.ak" | peek -f keep)
is "block budget filled exactly (the 3-token block, not a 2-token one)" "$got" "1 1 1 1 0 0 0 0 1"

# ---- word units: never a piece of a word ----
python3 - "$T/w.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
text = b"The Eiffel Tower was built in 1889.\n\nQ: when?"
# WordPiece-like pieces: The | E iff el | Tower | was | built | in | 18 89 . | Q : when ?
offs = [[0, 0], [0, 3], [4, 5], [5, 8], [8, 10], [11, 16], [17, 20], [21, 26], [27, 29],
        [30, 32], [32, 34], [34, 35], [37, 38], [38, 39], [40, 44], [44, 45], [45, 45]]
T = len(offs)
mass = np.array([[[3, 1, 5, 0.1, 5, 0.2, 0.3, 0.4, 0.5, 4, 0.1, 0.2, 1, 1, 1, 1, 3]]], np.float32)
mass *= T / mass.sum()
sp = np.zeros(T, np.uint8); sp[0] = sp[-1] = 1
t = [ak.tensor("text", np.frombuffer(text, np.uint8)),
     ak.tensor("tokens", np.arange(T, dtype=np.int32)),
     ak.tensor("offsets", np.array(offs, np.int64)),
     ak.tensor("special", sp),
     ak.tensor("attn.entropy", np.ones((1, 1, T), np.float32)), ak.tensor("attn.mass", mass)]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("w", t)]))
PY
got=$(prune --keep 0.7 "$T/w.ak" | decode --text)
is "word units (default): whole words, the question kept, clean text" "$got" \
    "$(printf 'Eiffel 1889.\n\nQ: when?')"
got=$(prune --keep 0.5 --unit token "$T/w.ak" | decode --text)
is "token units can cut words (what --unit word avoids)" "$got" "$(printf 'E el 18\n\nQ: when?')"
is "decode --text refuses --special" "$(decode --text --special "$T/w.ak" 2>&1 >/dev/null | head -c 7)" "decode:"

# ---- --count-with: the budget in another tokenizer's tokens ----
if [ -f "$AK_SHARED/tokenizers/gpt4o/tokenizer.json" ]; then
    prune --keep 0.5 --count-with "$AK_SHARED/tokenizers/gpt4o/tokenizer.json" "$T/w.ak" |
        peek >"$T/c.out"
    grep -q 'prune_count_with=' "$T/c.out" && pass "--count-with names the tokenizer" ||
        fail "--count-with: $(grep meta "$T/c.out")"
    # GPT-4o: "The Eiffel Tower was built in 1889.\n\nQ: when?" is 15 tokens
    tot=$(sed -n 's/.*prune_total=\([0-9]*\).*/\1/p' "$T/c.out")
    kept=$(sed -n 's/.*prune_kept=\([0-9]*\).*/\1/p' "$T/c.out")
    want=$(python3 -c "
import tokenizers, sys
t = tokenizers.Tokenizer.from_file(sys.argv[1])
print(len(t.encode('The Eiffel Tower was built in 1889.\n\nQ: when?', add_special_tokens=False).ids))
" "$AK_SHARED/tokenizers/gpt4o/tokenizer.json")
    is "--count-with: prune_total is the tokenizer's count of the text (HF tokenizers)" "$tot" "$want"
    got=$(prune --keep 0.5 --count-with "$AK_SHARED/tokenizers/gpt4o" "$T/w.ak" | peek |
          sed -n 's/.*prune_total=\([0-9]*\).*/\1/p')
    is "--count-with a tokenizer directory counts the same" "$got" "$tot"
    [ -n "$kept" ] && [ "$kept" -le $(( (tot + 1) / 2 + 1 )) ] && pass "--count-with: kept $kept of $tot" ||
        fail "--count-with: kept $kept of $tot"
else
    pass "# SKIP no $AK_SHARED/tokenizers/gpt4o"
fi

# ---- --global: one budget over the stream, documents ranked ----
python3 - "$T/g.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
docs = []
for name, w in (("low", 0.2), ("high", 3.0)):
    text = b"aa bb cc dd ee ff gg hh\n\nq?"
    offs = [[0, 0]] + [[3 * i, 3 * i + 2] for i in range(8)] + [[25, 27], [27, 27]]
    T = len(offs)
    mass = np.full((1, 1, T), 1.0, np.float32)
    mass[0, 0, 1:9] = w
    mass *= T / mass.sum()
    sp = np.zeros(T, np.uint8); sp[0] = sp[-1] = 1
    docs.append(ak.doc(name, [ak.tensor("text", np.frombuffer(text, np.uint8)),
        ak.tensor("tokens", np.arange(T, dtype=np.int32)),
        ak.tensor("offsets", np.array(offs, np.int64)), ak.tensor("special", sp),
        ak.tensor("attn.entropy", np.ones((1, 1, T), np.float32)),
        ak.tensor("attn.mass", mass)]))
open(sys.argv[1], "wb").write(ak.pack_stream(docs))
PY
prune --keep 0.5 --global -v "$T/g.ak" 2>"$T/g.err" | peek -j >"$T/g.json"
got=$(python3 -c "
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if '\"doc\"' in l or 'meta' in l]
print(' '.join(str(x['meta']['prune_kept']) for x in d if 'meta' in x and 'prune_kept' in x['meta']))
" "$T/g.json")
is "--global: the better document keeps more, one budget of 11 over both" "$got" "3 8"
grep -q '^prune: all 2 documents: budget 11, kept 11 of 22' "$T/g.err" &&
    pass "--global -v: the stream's ratio" || fail "--global -v: $(cat "$T/g.err")"
done_testing
