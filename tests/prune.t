# prune on the command line: help, budgets, errors, protected spans.
# (Selection per policy is checked in tests/unit/prune.c and against numpy in
# tests/entropy_prune_test.py.)
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
rejects "unknown unit" prune prune --keep .5 --unit word "$T/s.ak"
rejects "bad --protect" prune prune --keep .5 --protect middle "$T/s.ak"
rejects "bad regex" prune prune --keep .5 --protect-regex '(' "$T/s.ak"
rejects "query marker without query policy" prune prune --keep .5 --query-marker Q "$T/s.ak"
rejects "query policy without probabilities" prune prune --keep .5 --policy query "$T/s.ak"
rejects "score policy without entropy's scores" prune prune --keep .5 --policy score "$T/s.ak"
rejects "not a stream" prune sh -c "echo hi | prune --keep .5"

# keep 5 of 9: CLS, SEP + the three best (one two three)
is "mass keeps the heaviest" "$(prune --keep 0.55 "$T/s.ak" | peek -f keep)" "1 1 1 1 0 0 0 0 1"
is "dropped spans" "$(prune --keep 0.55 "$T/s.ak" | peek -f dropped)" "15 33"
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
got=$(entropy "$T/s.ak" | prune --keep 0.3 --protect-regex 'six' | peek -f keep)
is "score (default after entropy) with a regex" "$got" "1 0 0 0 0 0 0 1 1"
got=$(prune --max-tokens 4 --policy first "$T/s.ak" | peek -f tokens)
is "--max-tokens 4 first" "$got" "0 1 2 8"
prune --keep .5 "$T/s.ak" | peek | grep -q 'attn\.' && fail "attention tensors removed" ||
    pass "attention tensors removed"
# pruning a pruned document composes the keep mask
got=$(prune --keep 0.8 --policy first "$T/s.ak" | prune --keep 0.5 --policy last | peek -f keep)
is "second prune: keep over the original tokens" "$got" "1 0 0 0 1 1 0 0 1"
done_testing
