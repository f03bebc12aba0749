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
for b in tokenize attention_cpu model_cpu entropy_prune python_door; do
    out=bench/results/$b.txt
    echo "== bench/$b.py on $machine"
    { echo "# $(date -u +%Y-%m-%d) $machine"; python3 "bench/$b.py"; } | tee "$out"
done
# The GGUF models against llama.cpp (and PyTorch with BENCH_TORCH=1): their
# own environment (bench/deps.sh installs it the first time; long: llama.cpp
# is compiled),
# one thread per core on every side, or BENCH_THREADS (on a machine shared
# with other jobs use 1: PyTorch's and llama.cpp's spinning thread pools
# collapse when their threads are descheduled).
if sh bench/deps.sh; then
    out=bench/results/model_gguf.txt
    echo "== bench/model_gguf.py on $machine"
    { echo "# $(date -u +%Y-%m-%d) $machine"
      PYTHONPATH= .cache/bench-py/bin/python bench/model_gguf.py ${BENCH_THREADS:+--threads "$BENCH_THREADS"}; } | tee "$out"
    out=bench/results/generate_speed.txt
    echo "== bench/generate_speed.py on $machine"
    { echo "# $(date -u +%Y-%m-%d) $machine"
      PYTHONPATH= .cache/bench-py/bin/python bench/generate_speed.py --threads "${BENCH_THREADS:-1,2}"; } | tee "$out"
else
    echo "bench/run.sh: bench/model_gguf.py skipped: its reference environment could not be installed" >&2
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    sh bench/gpu_check.sh
fi
