# entropy and score on the command line: help, option and input errors, the
# stream passed through.  (Values are checked against numpy in
# tests/analysis/entropy_prune_test.py and against hand-computed matrices in
# tests/unit/metrics.c.)
. "$AK_TOP/tests/lib.sh"

# A small document with attention statistics: one layer, one head, causal,
# three tokens: rows [1 0 0] [.5 .5 0] [.2 .3 .5].
python3 - "$T/s.ak" "$T/nostats.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
t = [ak.tensor("text", np.frombuffer(b"a b c", np.uint8)),
     ak.tensor("tokens", np.array([5, 6, 7], np.int32)),
     ak.tensor("offsets", np.array([[0, 1], [2, 3], [4, 5]], np.int64)),
     ak.tensor("segments", np.array([0, 0, 1], np.int32))]
e = np.array([[[0, np.log(2), 1.0296530140645737]]], np.float32)
m = np.array([[[1.7, 0.8, 0.5]]], np.float32)
s = t + [ak.tensor("attn.entropy", e), ak.tensor("attn.mass", m),
         ak.tensor("attn.visible", np.array([[1, 2, 3]], np.int32))]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("d", s, {"causal": 1})]))
open(sys.argv[2], "wb").write(ak.pack_stream([ak.doc("d", t)]))
z = [ak.tensor("text", np.zeros(0, np.uint8)), ak.tensor("tokens", np.zeros(0, np.int32)),
     ak.tensor("offsets", np.zeros((0, 2), np.int64)), ak.tensor("segments", np.zeros(0, np.int32)),
     ak.tensor("attn.entropy", np.zeros((2, 3, 0), np.float32)),
     ak.tensor("attn.mass", np.zeros((2, 3, 0), np.float32))]
open(sys.argv[1] + ".empty", "wb").write(ak.pack_stream([ak.doc("e", z)]))
PY

ok "entropy -h exits 0" entropy -h
grep -q '^usage: entropy' "$T/.out" && pass "entropy -h prints usage" || fail "entropy -h prints usage"
rejects "unknown option" entropy entropy --bogus
rejects "bad --by" entropy entropy --by rows "$T/s.ak"
rejects "bad --format" entropy entropy --format xml "$T/s.ak"
rejects "bad --layers" entropy entropy --layers 3-1 "$T/s.ak"
rejects "layers past the model" entropy entropy --layers 0-4 "$T/s.ak"
rejects "no statistics" entropy entropy "$T/nostats.ak"
rejects "missing file" entropy entropy "$T/none.ak"
rejects "not a stream" entropy sh -c "echo hello | entropy"
rejects "truncated stream" entropy sh -c "head -c 200 '$T/s.ak' | entropy"

# Hand values: corrected mass [1.7/3 .8/2 .5/1]; blocks: mean(.566667, .4), .5
got=$(entropy -f tsv -b token "$T/s.ak" | awk -F'\t' 'NR>1{printf "%s ", $10}')
is "causal corrected mass per token" "$got" "0.566667 0.4 0.5 "
got=$(entropy -f tsv -b block "$T/s.ak" | awk -F'\t' 'NR>1{printf "%s ", $9}')
is "block corrected mass" "$got" "0.483333 0.5 "
got=$(entropy -f tsv -b token -u bits "$T/s.ak" | awk -F'\t' 'NR==3{print $7 " " $8}')
is "query 1 entropy: 1 bit, normalised 1" "$got" "1 1"
entropy "$T/s.ak" | peek -f score.token > "$T/st"
is "stream: score.token" "$(cat "$T/st")" "0.56666666 0.4 0.5"
entropy "$T/s.ak" | peek | grep -q 'attn.mass' && pass "stream: statistics passed through" ||
    fail "stream: statistics passed through"
entropy "$T/s.ak" | peek | grep -q 'history .*entropy' && pass "history records entropy" ||
    fail "history records entropy"
ok "output file" entropy -o "$T/o.ak" "$T/s.ak"
ok "output file is a stream" peek "$T/o.ak"

# An empty document (no tokens) is not an error.
is "empty document: empty scores" "$(entropy "$T/s.ak.empty" | peek -f score.token)" ""
got=$(entropy -f tsv -b head "$T/s.ak.empty" | awk -F'\t' 'NR==2{print $4, $5}')
is "empty document: head entropy 0, not nan" "$got" "0 0"
is "empty document through prune" "$(prune --keep .5 "$T/s.ak.empty" | peek -f keep)" ""

ok "score -h exits 0" score -h
rejects "score: one stream only" score score "$T/s.ak"
rejects "score: no hidden.final" score score "$T/s.ak" "$T/s.ak"
# tables people read: the text beside the numbers, scores comparable across lengths
got=$(entropy -f tsv -b token "$T/s.ak" | awk -F'\t' 'NR>1{printf "%s|%s ", $11, $12}')
is "token table: mass_rel = corrected x mean keys per query (2), and the text" "$got" \
    "1.13333|a 0.8|b 1|c "
got=$(entropy -f tsv -b block "$T/s.ak" | awk -F'\t' 'NR>1{printf "%s|%s ", $10, $11}')
is "block table: mean mass_rel and the block's text" "$got" "0.966667|a b 1|c "
python3 - "$T/tab.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
text = "x\ty\nz é".encode()
t = [ak.tensor("text", np.frombuffer(text, np.uint8)),
     ak.tensor("tokens", np.array([5, 6], np.int32)),
     ak.tensor("offsets", np.array([[0, 3], [4, 7]], np.int64)),
     ak.tensor("attn.entropy", np.zeros((1, 1, 2), np.float32)),
     ak.tensor("attn.mass", np.ones((1, 1, 2), np.float32))]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("d", t)]))
PY
got=$(entropy -f tsv -b token "$T/tab.ak" | awk -F'\t' 'NR>1{printf "%s ", $12}')
is "token text escaped as TSV (tab, newline; bytes from 0x80 unchanged)" "$got" "$(printf 'x\\ty z \303 ')"
got=$(entropy -f json -b token "$T/tab.ak" | python3 -c "import json,sys; print(ascii([t['text'] for t in json.load(sys.stdin)['by_token']]))")
is "json: token text, a cut UTF-8 character repaired" "$got" "['x\\ty', 'z \\ufffd']"
rejects "--by in stream mode does nothing: refused" entropy entropy --by block "$T/s.ak"
rejects "--units in stream mode does nothing: refused" entropy entropy --units bits "$T/s.ak"
done_testing
