#!/bin/sh
# bench/run.sh - every CPU benchmark, each against its reference in the same
# run (make bench).  Results go to stdout and bench/results/*.txt, headed by
# the machine they were measured on.  The GPU tests and benchmarks need a
# machine with a CUDA device: `make gpu-check` (bench/gpu_check.sh).
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p bench/results
machine="$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
failed=""
rc=$(mktemp)
trap 'rm -f "$rc"' EXIT
# run NAME COMMAND...: one benchmark, its output on stdout and in
# bench/results/NAME.txt; a failure is remembered (a pipe into tee would hide
# it) and the others still run
run() {
    name=$1; shift
    echo "== bench/$name.py on $machine"
    { echo "# $(date -u +%Y-%m-%d) $machine"; st=0; "$@" || st=$?; echo $st > "$rc"; } |
        tee "bench/results/$name.txt"
    [ "$(cat "$rc")" = 0 ] || failed="$failed $name"
}
for b in tokenize attention_cpu model_cpu entropy_prune python_door; do
    run $b python3 "bench/$b.py"
done
# The GGUF models against llama.cpp (and PyTorch with BENCH_TORCH=1): their
# own environment (bench/deps.sh installs it the first time; long: llama.cpp
# is compiled),
# one thread per core on every side, or BENCH_THREADS (on a machine shared
# with other jobs use 1: PyTorch's and llama.cpp's spinning thread pools
# collapse when their threads are descheduled).
if sh bench/deps.sh; then
    run model_gguf env PYTHONPATH= .cache/bench-py/bin/python bench/model_gguf.py \
        ${BENCH_THREADS:+--threads "$BENCH_THREADS"}
    run generate_speed env PYTHONPATH= .cache/bench-py/bin/python bench/generate_speed.py \
        --threads "${BENCH_THREADS:-1,2}"
else
    echo "bench/run.sh: bench/model_gguf.py and bench/generate_speed.py not run: their reference environment could not be installed (bench/deps.sh)" >&2
    failed="$failed model_gguf generate_speed"
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    sh bench/gpu_check.sh || failed="$failed gpu_check"
fi
if [ -n "$failed" ]; then
    echo "bench/run.sh: failed:$failed (their output is above and in bench/results/)" >&2
    exit 1
fi
