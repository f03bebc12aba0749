# make bench (bench/run.sh) fails when a benchmark fails, names it, and
# still runs the others: its output goes through tee, which used to hide
# every exit status (a fresh clone's run ended 0 after two tracebacks).
# Run on a copy of run.sh beside stand-in benchmarks, so nothing is timed.
. "$AK_TOP/tests/lib.sh"

mkdir -p "$T/tree/bench" "$T/tree/.cache/bench-py/bin"
cp "$AK_TOP/bench/run.sh" "$T/tree/bench/"
for b in tokenize attention_cpu model_cpu entropy_prune python_door model_gguf generate_speed; do
    printf 'import sys\nprint("ran %s")\nsys.exit(int(__import__("os").environ.get("FAIL_%s", "0")))\n' \
        "$b" "$b" >"$T/tree/bench/$b.py"
done
ln -s "$(command -v python3)" "$T/tree/.cache/bench-py/bin/python"
printf 'exit ${DEPS_RC:-0}\n' >"$T/tree/bench/deps.sh"
# an nvidia-smi that lists nothing, so a GPU machine runs the same test
mkdir -p "$T/path"
printf '#!/bin/sh\nexit 9\n' >"$T/path/nvidia-smi"; chmod +x "$T/path/nvidia-smi"

bench() { env PATH="$T/path:$PATH" "$@" sh "$T/tree/bench/run.sh" >"$T/.out" 2>"$T/.err"; }

bench
is "all pass: exit 0" "$?" 0
is "all pass: all seven ran" "$(grep -c '^ran ' "$T/.out")" 7
is "all pass: nothing on stderr" "$(cat "$T/.err")" ""
is "results written" "$(cat "$T/tree/bench/results/model_cpu.txt" | tail -1)" "ran model_cpu"

bench FAIL_attention_cpu=3 FAIL_generate_speed=1
is "two fail: exit 1" "$?" 1
is "two fail: the others still ran" "$(grep -c '^ran ' "$T/.out")" 7
is "two fail: one line naming both" "$(cat "$T/.err")" \
    "bench/run.sh: failed: attention_cpu generate_speed (their output is above and in bench/results/)"

bench DEPS_RC=1
is "no reference environment: exit 1" "$?" 1
is "no reference environment: the CPU benchmarks ran" "$(grep -c '^ran ' "$T/.out")" 5
grep -q "failed: model_gguf generate_speed" "$T/.err" && pass "no reference environment: named" ||
    fail "no reference environment: not named: $(cat "$T/.err")"
done_testing
