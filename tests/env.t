# The environment: each program reads ATTNKIT_* once at start and hands the
# values to the library; an invalid value is a usage error (exit 64) that
# names the variable, never a silent wrap (ATTNKIT_MAX_RECORD=-1 used to
# become 2^64-1 and reject every stream).
. "$AK_TOP/tests/lib.sh"
V="$AK_TOP/formats/vectors"

# usage_env DESC VAR VALUE PROG ARGS...: exit 64, one line naming VAR.
usage_env() {
    d=$1 var=$2 val=$3; shift 3
    rejects "$d" "$1" env "$var=$val" "$@"
    rc=$(env "$var=$val" "$@" >/dev/null 2>&1; echo $?)
    is "$d: exit 64" "$rc" 64
    grep -q "$var" "$T/.err" && pass "$d: the message names $var" ||
        fail "$d: the message should name $var: $(cat "$T/.err")"
}

for v in -1 18446744073709551615 18446744073709551616 99999999999999999999999 8x 0x100 " 64" 15; do
    usage_env "ATTNKIT_MAX_RECORD='$v'" ATTNKIT_MAX_RECORD "$v" peek peek "$V/minimal.ak"
done
ok "ATTNKIT_MAX_RECORD=1000000 reads a small stream" env ATTNKIT_MAX_RECORD=1000000 peek "$V/minimal.ak"
ok "ATTNKIT_MAX_RECORD empty is unset" env ATTNKIT_MAX_RECORD= peek "$V/minimal.ak"
# the limit reaches the reader: zlib.ak's document record is over 64 bytes
rejects "ATTNKIT_MAX_RECORD=64 refuses a larger record" peek env ATTNKIT_MAX_RECORD=64 peek "$V/zlib.ak"
rc=$(ATTNKIT_MAX_RECORD=64 peek "$V/zlib.ak" >/dev/null 2>&1; echo $?)
is "ATTNKIT_MAX_RECORD=64: a data error, not a usage error" "$rc" 65

for v in 0 257 abc -2 1.5; do
    usage_env "ATTNKIT_THREADS='$v'" ATTNKIT_THREADS "$v" peek peek "$V/minimal.ak"
done
ok "ATTNKIT_THREADS=3" env ATTNKIT_THREADS=3 peek "$V/minimal.ak"

for v in 10 -1 x 1x; do
    usage_env "ATTNKIT_COMPRESS='$v'" ATTNKIT_COMPRESS "$v" peek peek "$V/minimal.ak"
done
# the level reaches the writer: repeated text compresses
yes 'the same words again and again' | head -n 400 > "$T/rep.txt"
tokenize "$T/rep.txt" > "$T/plain.ak" && ATTNKIT_COMPRESS=9 tokenize "$T/rep.txt" > "$T/z.ak"
a=$(wc -c < "$T/plain.ak") b=$(wc -c < "$T/z.ak")
[ "$b" -lt $((a / 2)) ] && pass "ATTNKIT_COMPRESS=9: $a bytes become $b" ||
    fail "ATTNKIT_COMPRESS=9 should compress ($a -> $b bytes)"
same_file "ATTNKIT_COMPRESS=9: the same tokens" \
    "$(peek -f tokens "$T/plain.ak" > "$T/t1"; echo "$T/t1")" \
    "$(peek -f tokens "$T/z.ak" > "$T/t2"; echo "$T/t2")"

rejects "ATTNKIT_DEVICE=bogus" attend env ATTNKIT_DEVICE=bogus attend "$V/minimal.ak"
grep -q "bogus" "$T/.err" && pass "ATTNKIT_DEVICE: the message names the value" ||
    fail "ATTNKIT_DEVICE: the message should name 'bogus': $(cat "$T/.err")"
rejects "ATTNKIT_MODEL=/nonexistent" tokenize env ATTNKIT_MODEL=/nonexistent tokenize "$T/rep.txt"
grep -q "/nonexistent" "$T/.err" && pass "ATTNKIT_MODEL: the message names the directory" ||
    fail "ATTNKIT_MODEL: the message should name /nonexistent: $(cat "$T/.err")"
for v in sse bogus AVX2 1; do
    usage_env "ATTNKIT_SIMD='$v'" ATTNKIT_SIMD "$v" peek peek "$V/minimal.ak"
done
for v in auto avx512 avx2 scalar; do
    ok "ATTNKIT_SIMD=$v" env ATTNKIT_SIMD=$v peek "$V/minimal.ak"
done
# the level reaches the kernels: SmolLM2's greedy tokens (Q4_1, Q8_0 products
# through the fused dots) are the same at every level (tests/unit/quant.c
# holds the dots themselves within 1e-5 of an f64 reference)
# fast_logits DESC MODEL TEXT SIMD: the next-token logits after TEXT with
# --fast (at ATTNKIT_SIMD=SIMD) are within 2 of the exact ones, not equal,
# with the same argmax
fast_logits() {
    tokenize -m "$2" "$3" | embed -m "$2" > "$T/fl.ak"
    attend -m "$2" --logits last "$T/fl.ak" | peek -f logits | tr -s ' ' '\n' > "$T/le"
    ATTNKIT_SIMD=$4 attend -m "$2" --logits last --fast "$T/fl.ak" | peek -f logits |
        tr -s ' ' '\n' > "$T/lf"
    d=$(paste "$T/le" "$T/lf" | awk 'NF == 2 { n++; x = $1 - $2; if (x < 0) x = -x; if (x > m) m = x;
        if (n == 1 || $1 > be) { be = $1; ie = n } if (n == 1 || $2 > bf) { bf = $2; jf = n } }
        END { if (n < 1000 || ie != jf) print "bad " n " " ie " " jf; else print m }')
    case $d in
        bad*) fail "$1: $d (count, argmax exact, argmax fast)" ;;
        *) awk -v d="$d" 'BEGIN { exit !(d > 0 && d <= 2) }' &&
               pass "$1 within 2 of exact (max |diff| $d), same argmax" ||
               fail "$1 move by $d (more than 2, or none)" ;;
    esac
}
S=$(ls "${AK_MODELS:-/nonexistent}"/smollm2/*.gguf 2>/dev/null | head -1)
if [ -n "$S" ]; then
    printf 'Name three colours.\n' > "$T/q.txt"
    tokenize -m "$S" --chat "$T/q.txt" > "$T/q.ak"
    kvcache -m "$S" --generate 12 "$T/q.ak" | peek -n -1 -f generated > "$T/g_auto"
    [ "$(wc -w < "$T/g_auto")" -ge 1 ] && pass "SmolLM2 generates: $(cat "$T/g_auto")" ||
        fail "SmolLM2 generated nothing"
    for v in avx2 scalar; do
        ATTNKIT_SIMD=$v kvcache -m "$S" --generate 12 "$T/q.ak" | peek -n -1 -f generated > "$T/g_$v"
        same_file "ATTNKIT_SIMD=$v: SmolLM2 generates the same 12 tokens" "$T/g_auto" "$T/g_$v"
    done
    # --fast (8-bit activations, integer dots): its error is the activations'
    # rounding, not a wrong kernel: the greedy answer starts as the exact
    # one's (all 12 tokens are the same today; a rounding flip anywhere
    # moves the logits as much as the 8 bits do, so only the first 6 are
    # held), at the best level and at AVX2 (maddubs instead of VNNI), and
    # the next-token logits of a short prompt (every product through the
    # fast dots) stay within 2 of the exact ones (measured: 0.98 at most
    # over the 49,152, the same argmax; llama.cpp's own: 0.62)
    cut -d ' ' -f 1-6 "$T/g_auto" > "$T/g6"
    for v in auto avx2; do
        ATTNKIT_SIMD=$v kvcache -m "$S" --generate 12 --fast "$T/q.ak" | peek -n -1 -f generated |
            cut -d ' ' -f 1-6 > "$T/gf_$v"
        same_file "--fast, ATTNKIT_SIMD=$v: SmolLM2's first 6 tokens are the exact mode's" "$T/g6" "$T/gf_$v"
    done
    printf 'The capital of France is' > "$T/c.txt"
    fast_logits "--fast: SmolLM2's next-token logits" "$S" "$T/c.txt" auto
else
    pass "# SKIP ATTNKIT_SIMD end to end: no SmolLM2 under \$AK_MODELS"
fi
# --fast prefill: a prompt of more than 8 tokens runs Gemma 3's K-quant
# products four tokens at a time (quant.h's four-token dots; the 32-element
# types keep dequantized tiles + sgemm), at the best level and at AVX2:
# the next-token logits stay within 2 of the exact ones with the same
# argmax (measured: 0.86 at most over the 262,144; a four-token kernel
# that reads one token's blocks for another's moves them by more)
G=$(ls "${AK_MODELS:-/nonexistent}"/gemma3/*.gguf 2>/dev/null | head -1)
if [ -n "$G" ]; then
    printf 'The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is' \
        > "$T/c3.txt"
    for v in auto avx2; do
        fast_logits "--fast prefill, ATTNKIT_SIMD=$v: Gemma 3's next-token logits" "$G" "$T/c3.txt" $v
    done
else
    pass "# SKIP --fast prefill: no Gemma 3 under \$AK_MODELS"
fi
done_testing
