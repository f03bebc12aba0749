# The stream format through peek: every test vector in formats/vectors does
# what vectors.tsv says; peek's options, errors and pipes behave.
. "$AK_TOP/tests/lib.sh"
V="$AK_TOP/formats/vectors"

tab=$(printf '\t')
grep -v '^#' "$V/vectors.tsv" | while IFS="$tab" read -r file kind field expect what; do
    if [ "$kind" = valid ]; then
        if [ "$field" = - ]; then
            ok "$file: $what" peek "$V/$file"
        else
            got=$(peek -f "$field" "$V/$file" 2>&1 | awk 'NR>1{printf "\\n"}{printf "%s",$0}')
            is "$file: $what" "$got" "$expect"
        fi
        ok "$file: --json output is JSON" sh -c "peek -j -n -1 '$V/$file' | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'"
    else
        rejects "$file: $what" peek peek "$V/$file"
        [ "$rc" -eq 65 ] && pass "$file: exit 65 (bad data)" || fail "$file: exit $rc, expected 65"
        grep -qF -- "$expect" "$T/.err" && pass "$file: message names '$expect'" ||
            fail "$file: message should contain '$expect': $(cat "$T/.err")"
    fi
done > "$T/vec.out"
cat "$T/vec.out"
grep -q '^not ok' "$T/vec.out" && ak_failed=1

# Options and errors.
ok "peek -h exits 0" peek -h
grep -q '^usage: peek' "$T/.out" && pass "peek -h prints usage" || fail "peek -h prints usage"
rejects "unknown option" peek peek --bogus
rejects "missing argument" peek peek -f
rejects "bad -n value" peek peek -n abc
rejects "missing file" peek peek "$T/does-not-exist"
rejects "a directory" peek peek "$T"
rejects "random bytes" peek sh -c "head -c 3000 /dev/urandom | peek"
rejects "text instead of a stream" peek sh -c "echo hello world | peek"

# Concatenation: two streams read as one input.
cat "$V/minimal.ak" "$V/zlib.ak" > "$T/cat.ak"
n=$(peek "$T/cat.ak" | grep -c '^doc ')
is "cat of two streams: both documents" "$n" 2

# A reader that goes away: quiet, no message.
python3 - "$T/big.ak" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[0] and __import__("os").environ["AK_TOP"] + "/tests/py")
import akstream as s
docs = [s.doc(f"d{i}", [s.tensor("x", np.arange(2000, dtype=np.float32))]) for i in range(400)]
open(sys.argv[1], "wb").write(s.pack_stream(docs))
PY
peek -f x "$T/big.ak" 2>"$T/pipe.err" | head -n 1 >/dev/null
is "peek | head: nothing on stderr" "$(cat "$T/pipe.err")" ""
n=$(peek -f x "$T/big.ak" | wc -l)
is "peek -f: one line per document" "$n" 400

# Strings that would act on a terminal: escaped in human output, exact in
# JSON (which is ASCII), escaped in error lines.
python3 - "$T/nasty.ak" <<'PY'
import os, sys, numpy as np
sys.path.insert(0, os.environ["AK_TOP"] + "/tests/py")
import akstream as s
nasty = "a\tb\x1b[2J\x07c\x7fd\x85e\x9bf\u202eg\u2066h\u2028i\\j\"k\nl"
d = s.doc(nasty, [s.tensor("t\x1b]0;x\x07" + nasty[:3], np.array([1], np.int32))],
          meta={"k\x1b": nasty, "source": "\u202etxt.exe"})
open(sys.argv[1], "wb").write(s.pack_stream([d], model={"name": nasty},
    history=[{"program": "tokenize\x1b", "version": "0\x9b", "args": ["x", nasty]}]))
PY
ok "peek reads a stream with control characters in every string" peek "$T/nasty.ak"
python3 - "$T/.out" <<'PY' && pass "peek: no control, C1 or bidi character printed raw" || fail "peek printed a control character raw"
import re, sys
out = open(sys.argv[1], "rb").read().decode("utf-8")
bad = re.findall("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]", out)
print("#", repr(bad[:5]), "in", repr(out[:200])) if bad else None
sys.exit(1 if bad or "a\\tb\\x1b[2J\\x07c\\x7fd\\u0085e\\u009bf\\u202eg" not in out else 0)
PY
peek -j -n -1 "$T/nasty.ak" > "$T/nasty.json"
python3 - "$T/nasty.json" <<'PY' && pass "peek -j: ASCII JSON that decodes to the exact strings" || fail "peek -j: strings not exact"
import json, sys
raw = open(sys.argv[1], "rb").read()
recs = [json.loads(l) for l in raw.decode("ascii").splitlines()]
nasty = "a\tb\x1b[2J\x07c\x7fd\x85e\x9bf\u202eg\u2066h\u2028i\\j\"k\nl"
h, d = recs[0], recs[1]
ok = (d["id"] == nasty and d["meta"]["k\x1b"] == nasty and h["model"]["name"] == nasty
      and h["history"][0]["args"][1] == nasty and h["history"][0]["program"] == "tokenize\x1b"
      and d["tensors"][0]["name"] == "t\x1b]0;x\x07a\tb")
sys.exit(0 if ok else 1)
PY
# (not through rejects: its echo would turn the escapes back into controls)
peek -f nosuch "$T/nasty.ak" >/dev/null 2>"$T/.err"; rc=$?
[ "$rc" -eq 65 ] && [ "$(wc -l < "$T/.err")" -eq 1 ] && pass "missing field: one line, exit 65" ||
    fail "missing field: exit $rc, $(wc -l < "$T/.err") lines"
if LC_ALL=C grep -q "$(printf '[\001-\037\177]')" "$T/.err"; then
    fail "the error line carries a raw control character: $(od -c "$T/.err" | head -3)"
else
    pass "the error line escapes the id's control characters"
fi
grep -qF "document 'a\tb\x1b[2J\x07c\x7fd\u0085e\u009bf\u202eg\u2066h\u2028i" "$T/.err" &&
    pass "the error line names the id, escaped" || fail "the error line should name the escaped id"

# One flipped payload bit, through a pipe: refused, naming document and tensor.
python3 - "$V/minimal.ak" "$T/flip.ak" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(bytes.fromhex("65000000"))   # the first token, 101
b[i] ^= 0x04
open(sys.argv[2], "wb").write(b)
PY
rejects "a flipped payload bit" peek sh -c "cat '$T/flip.ak' | peek -f tokens"
grep -qF "document 'd0': tensor 'tokens': CRC-32 mismatch" "$T/.err" && [ "$rc" -eq 65 ] &&
    pass "the flip is named: document, tensor, CRC-32 (exit 65)" || fail "flip message: $(cat "$T/.err")"

# Stdin and files give the same output.
a=$(peek "$V/all-dtypes.ak"); b=$(peek < "$V/all-dtypes.ak")
is "stdin and file agree" "$a" "$b"
# options that would do nothing: -n now limits --field; -j with --field is refused
tokenize "$AK_TOP/examples/prompt.txt" >"$T/p.ak"
is "peek -n 3 -f tokens: the first three" "$(peek -n 3 -f tokens "$T/p.ak")" "101 1996 10950"
rejects "peek -j -f: one or the other" peek peek -j -f tokens "$T/p.ak"

# Zero bytes on standard input is no stream (a program before failed), not
# an empty one: every reader exits 65 saying so; a header with no documents
# is a valid empty stream.  Under sh without pipefail a failed first stage
# fails the pipeline and leaves no output file.
for c in "embed" "attend" "entropy" "prune --keep 0.5" "decode" "decode --text" "peek" "report"; do
    prog=${c%% *}
    rejects "$c on empty stdin" "$prog" sh -c "$c < /dev/null"
    [ "$rc" -eq 65 ] && grep -qF "$prog: no stream on standard input (did the program before it fail?)" "$T/.err" &&
        pass "$c on empty stdin: exit 65, the message" || fail "$c on empty stdin: exit $rc, $(cat "$T/.err")"
done
: > "$T/empty.ak"
rejects "an empty file" peek peek "$T/empty.ak"
grep -qF "empty file, no stream" "$T/.err" && pass "an empty file names itself" || fail "empty file: $(cat "$T/.err")"
ok "a header and no documents stays valid through prune" sh -c "prune --keep 0.5 < '$V/empty-stream.ak' > '$T/e2.ak'"
is "... and gives an empty stream" "$(peek "$T/e2.ak" | tail -1)" "end: 0 documents"
printf 'The cat sat on the mat.\n' > "$T/f.txt"
sh -c "tokenize -m /nonexistent.gguf '$T/f.txt' | embed | attend | entropy -o '$T/x.ak'" 2>"$T/.err"; rc=$?
[ "$rc" -eq 65 ] && [ ! -e "$T/x.ak" ] && grep -q "^tokenize: " "$T/.err" && grep -q "^embed: no stream" "$T/.err" &&
    pass "a failed tokenize fails the batch under sh (exit 65, no x.ak)" ||
    fail "failed tokenize under sh: exit $rc, x.ak $( [ -e "$T/x.ak" ] && echo exists), $(cat "$T/.err")"
done_testing
