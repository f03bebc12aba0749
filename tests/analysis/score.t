# score with one stream: prune's output carries full.tokens, score runs the
# model on the full and the kept tokens itself.  (The two-stream mode and
# its checks are in tests/stream/valid.t and tests/analysis/entropy_prune_test.py; the
# causal log-likelihood of both modes in tests/analysis/entropy_causal_test.py.)
. "$AK_TOP/tests/lib.sh"

tokenize --segments paragraph "$AK_TOP/examples/prompt.txt" >"$T/t.ak"
embed <"$T/t.ak" | attend --hidden | entropy >"$T/full.ak"
prune --keep 0.5 --unit block "$T/full.ak" >"$T/pruned.ak"
embed <"$T/pruned.ak" | attend --hidden >"$T/pr.ak"
two=$(score "$T/full.ak" "$T/pr.ak")
one=$(score "$T/pruned.ak")
is "one stream: the same row as FULL and PRUNED through embed | attend" "$one" "$two"
is "stdin: prune | score" "$(prune --keep 0.5 --unit block "$T/full.ak" | score)" "$two"
got=$(prune --keep 0.5 --unit block "$T/full.ak" | score -s | sed -n 2p | cut -f1,2)
is "one stream --summary" "$got" "$(printf '1\t0.4300')"
rejects "a stream prune has not touched" score score "$T/full.ak"
grep -q "full.tokens" "$T/.err" && pass "  names full.tokens" || fail "  names full.tokens"
rejects "a stream from another model" score score -m "$AK_TOP/tests/model/bert_tiny" "$T/pruned.ak"
# two streams concatenated, the second made for another vocabulary
python3 - "$T/other.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
t = [ak.tensor("tokens", np.array([101, 102], np.int32)),
     ak.tensor("full.tokens", np.array([101, 7, 102], np.int32)),
     ak.tensor("keep", np.array([1, 0, 1], np.uint8))]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("x", t)], model={"vocab_size": 99}))
PY
rejects "a stream of two models" score sh -c "cat '$T/pruned.ak' '$T/other.ak' | score"
grep -q "vocabulary" "$T/.err" && pass "  names the vocabulary" || fail "  names the vocabulary"
set_tok() { python3 - "$@" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import msgpack, numpy as np, akstream as ak
recs = ak.read_records(open(sys.argv[1], "rb").read())
for r in recs:
    if r.get("type") == "doc":
        for t in r["tensors"]:
            if t["name"] == "tokens":
                a = ak.array_of(t).copy(); a[1] = 7
                t.update(ak.tensor("tokens", a))
open(sys.argv[2], "wb").write(b"".join(msgpack.packb(r, use_bin_type=True) for r in recs))
PY
}
set_tok "$T/pruned.ak" "$T/bad.ak"
rejects "tokens that are not full.tokens at the kept positions" score score "$T/bad.ak"
rejects "-m with two streams does nothing: refused" score score -m minilm "$T/full.ak" "$T/pr.ak"
rejects "--queries with one stream" score score -q "$T/full.ak" "$T/pruned.ak"
done_testing
