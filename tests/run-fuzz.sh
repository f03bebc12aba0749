#!/bin/sh
# tests/run-fuzz.sh FUZZER SECONDS - runs the libFuzzer stream target for a
# bounded time, its corpus seeded from formats/vectors/*.ak.  Prints one
# "ok"/"not ok" line; a crash leaves its input in build/fuzz/.
set -u
fuzzer=$1 seconds=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
corpus=$(mktemp -d "${TMPDIR:-/tmp}/attnkit-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT
cp "$top"/formats/vectors/*.ak "$corpus"/
if [ ! -x "$fuzzer" ]; then echo "not ok - fuzz_stream: $fuzzer not built"; exit 1; fi
log="$top/build/fuzz/fuzz.log"
if ASAN_OPTIONS=detect_leaks=1 "$fuzzer" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
      -artifact_prefix="$top/build/fuzz/" -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "ok - fuzz_stream: ${runs:-?} inputs in ${seconds}s, no crash, leak or sanitizer report"
else
    echo "not ok - fuzz_stream found a problem (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/#   /'
    exit 1
fi
