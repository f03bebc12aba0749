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

# Stdin and files give the same output.
a=$(peek "$V/all-dtypes.ak"); b=$(peek < "$V/all-dtypes.ak")
is "stdin and file agree" "$a" "$b"
done_testing
