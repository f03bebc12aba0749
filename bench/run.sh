#!/bin/sh
# bench/run.sh - every CPU benchmark, each against its reference in the same
# run (make bench).  Results go to stdout and bench/results/*.txt, headed by
# the machine they were measured on.  The GPU benchmarks need a machine with
# a CUDA device: bench/gpu_check.sh and bench/gpu_pipeline.sh.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p bench/results
machine="$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for b in tokenize attention_cpu model_cpu entropy_prune; do
    out=bench/results/$b.txt
    echo "== bench/$b.py on $machine"
    { echo "# $(date -u +%Y-%m-%d) $machine"; python3 "bench/$b.py"; } | tee "$out"
done
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    sh bench/gpu_check.sh bench/results
fi
