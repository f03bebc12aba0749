#!/bin/sh
# tests/run-fuzz.sh FUZZER SECONDS CORPUS_SEED_DIR... - runs a libFuzzer
# target for a bounded time, its corpus seeded from the given directories
# (their regular files).  Prints one "ok"/"not ok" line; a crash leaves its
# input in build/fuzz/.
set -u
fuzzer=$1 seconds=${2:-60}
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$fuzzer")
corpus=$(mktemp -d "${TMPDIR:-/tmp}/attnkit-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT
for d in "$@"; do find "$d" -maxdepth 1 -type f -exec cp {} "$corpus"/ \; ; done
if [ ! -x "$fuzzer" ]; then echo "not ok - $name: $fuzzer not built"; exit 1; fi
log="$top/build/fuzz/$name.log"
if ASAN_OPTIONS=detect_leaks=1 "$fuzzer" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
      -timeout=20 -artifact_prefix="$top/build/fuzz/$name-" -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "ok - $name: ${runs:-?} inputs in ${seconds}s, no crash, leak or sanitizer report"
else
    echo "not ok - $name found a problem (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/#   /'
    exit 1
fi
